//! FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets` partition
//! (`abs(hashCode) % offsets.topic.num.partitions`, as Kafka's `partitionFor`). A transactional id's is, until
//! transaction state moves onto a replicated internal topic, the registered broker its partition picks; a key whose
//! broker is fenced has none (COORDINATOR_NOT_AVAILABLE).

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use skein_cluster::MetadataImage;

use skein_group::StateJournal;
use skein_group::journal::partition_for_key;

use crate::broker::Broker;
use crate::cluster::endpoint;
use crate::group_log::{self, GROUP_STATE_TOPIC};

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    request: FindCoordinatorRequest,
    version: i16,
    listener: &str,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= 4 { request.coordinator_keys.clone() } else { vec![request.key.clone()] };
    let mut answers = Vec::with_capacity(keys.len());
    for key in &keys {
        let found = match request.key_type {
            GROUP => group_coordinator(broker, key.as_str(), listener).await,
            TRANSACTION => transaction_coordinator(&broker.image(), key.as_str(), listener),
            other => Err(BrokerError::InvalidRequest(format!("unknown coordinator key type {other}"))),
        };
        answers.push(match found {
            Ok((node_id, host, port)) => (0, None, node_id, host, port),
            Err(err) => (error_code(&err), Some(StrBytes::from_string(err.to_string())), -1, String::new(), -1),
        });
    }
    if version >= 4 {
        // Batched keys: one answer per key.
        let coordinators = keys
            .into_iter()
            .zip(answers)
            .map(|(key, (code, message, node_id, host, port))| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node_id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (code, message, node_id, host, port) = answers.pop().unwrap_or((0, None, -1, String::new(), -1));
    let response = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(BrokerId(node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port);
    // The error message exists from v1 on.
    if version >= 1 { response.with_error_message(message) } else { response }
}

/// A group's coordinator: the leader of its `__consumer_offsets` partition (the topic is created on the first
/// lookup, as Kafka does); COORDINATOR_NOT_AVAILABLE while that partition has no leader.
async fn group_coordinator(broker: &Broker, key: &str, listener: &str) -> Result<(i32, String, i32), BrokerError> {
    group_log::ensure_topic(broker).await?;
    let partition = broker.group_log.partition_for(key);
    let image = broker.image();
    let leader = image
        .topic(GROUP_STATE_TOPIC)
        .and_then(|topic| topic.partitions.get(&partition))
        .map(|p| p.leader)
        .filter(|&leader| leader >= 0 && image.is_live(leader))
        .ok_or_else(|| {
            BrokerError::CoordinatorNotAvailable(format!("{GROUP_STATE_TOPIC} partition {partition} has no leader"))
        })?;
    let registration = image
        .broker(leader)
        .ok_or_else(|| BrokerError::CoordinatorNotAvailable(format!("broker {leader} is not registered")))?;
    let endpoint = endpoint(registration, listener)
        .ok_or_else(|| BrokerError::CoordinatorNotAvailable(format!("broker {leader} has no endpoint")))?;
    Ok((leader, endpoint.host.clone(), i32::from(endpoint.port)))
}

/// Kafka's internal topics have 50 partitions by default; the key picks one as Kafka's `partitionFor` does.
const COORDINATOR_SLOTS: i32 = 50;

/// A transactional id's coordinator: until transaction state moves onto a replicated internal topic, the broker
/// its Kafka partition picks among the registered brokers (COORDINATOR_NOT_AVAILABLE while that one is fenced).
fn transaction_coordinator(
    image: &MetadataImage,
    key: &str,
    listener: &str,
) -> Result<(i32, String, i32), BrokerError> {
    let brokers: Vec<_> = image.brokers().values().collect();
    if brokers.is_empty() {
        return Err(BrokerError::CoordinatorNotAvailable("no broker is registered".into()));
    }
    let slot = usize::try_from(partition_for_key(key, COORDINATOR_SLOTS)).unwrap_or(0);
    let chosen = brokers[slot % brokers.len()];
    if chosen.fenced {
        return Err(BrokerError::CoordinatorNotAvailable(format!("coordinator broker {} is not live", chosen.node_id)));
    }
    let endpoint = endpoint(chosen, listener)
        .ok_or_else(|| BrokerError::CoordinatorNotAvailable(format!("broker {} has no endpoint", chosen.node_id)))?;
    Ok((chosen.node_id, endpoint.host.clone(), i32::from(endpoint.port)))
}

/// Refuses a request whose coordinator key (a group id or a transactional id) is too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &FindCoordinatorRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::CoordinatorKey, request.key.as_str())?;
    limits::validate_ids(IdKind::CoordinatorKey, request.coordinator_keys.iter().map(|key| key.as_str()))
}
