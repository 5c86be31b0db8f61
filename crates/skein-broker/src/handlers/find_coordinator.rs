//! FindCoordinator: each group and transactional id has one coordinator among the registered brokers, chosen
//! from the key as Kafka chooses its internal topic's partition (`abs(hashCode) % 50`); until coordinators move
//! onto replicated internal topics, a key whose broker is fenced has no coordinator (COORDINATOR_NOT_AVAILABLE).

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use skein_cluster::MetadataImage;

use crate::broker::Broker;
use crate::cluster::endpoint;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    request: FindCoordinatorRequest,
    version: i16,
    listener: &str,
) -> FindCoordinatorResponse {
    let image = broker.image();
    let answer = |key: &str| {
        let found = match request.key_type {
            GROUP | TRANSACTION => coordinator(&image, key, listener),
            other => Err(BrokerError::InvalidRequest(format!("unknown coordinator key type {other}"))),
        };
        match found {
            Ok((node_id, host, port)) => (0, None, node_id, host, port),
            Err(err) => (error_code(&err), Some(StrBytes::from_string(err.to_string())), -1, String::new(), -1),
        }
    };
    if version >= 4 {
        // Batched keys: one answer per key.
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (code, message, node_id, host, port) = answer(key.as_str());
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
    let (code, message, node_id, host, port) = answer(request.key.as_str());
    let response = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(BrokerId(node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port);
    // The error message exists from v1 on.
    if version >= 1 { response.with_error_message(message) } else { response }
}

/// Kafka's internal topics have 50 partitions by default; the key picks one as Kafka's `partitionFor` does.
const COORDINATOR_SLOTS: i32 = 50;

/// The coordinator of `key`: (node id, host, port) of its broker for the listener the request came on.
fn coordinator(image: &MetadataImage, key: &str, listener: &str) -> Result<(i32, String, i32), BrokerError> {
    let brokers: Vec<_> = image.brokers().values().collect();
    if brokers.is_empty() {
        return Err(BrokerError::CoordinatorNotAvailable("no broker is registered".into()));
    }
    let slot = usize::try_from((java_hash(key) & 0x7fff_ffff) % COORDINATOR_SLOTS).unwrap_or(0);
    let chosen = brokers[slot % brokers.len()];
    if chosen.fenced {
        return Err(BrokerError::CoordinatorNotAvailable(format!("coordinator broker {} is not live", chosen.node_id)));
    }
    let endpoint = endpoint(chosen, listener)
        .ok_or_else(|| BrokerError::CoordinatorNotAvailable(format!("broker {} has no endpoint", chosen.node_id)))?;
    Ok((chosen.node_id, endpoint.host.clone(), i32::from(endpoint.port)))
}

/// Java's `String.hashCode` over UTF-16 code units.
fn java_hash(key: &str) -> i32 {
    key.encode_utf16().fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// Refuses a request whose coordinator key (a group id or a transactional id) is too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &FindCoordinatorRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::CoordinatorKey, request.key.as_str())?;
    limits::validate_ids(IdKind::CoordinatorKey, request.coordinator_keys.iter().map(|key| key.as_str()))
}
