//! FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets` partition
//! (`abs(hashCode) % offsets.topic.num.partitions`, as Kafka's `partitionFor`), a transactional id's the leader of
//! its `__transaction_state` partition; a partition without a live leader has none (COORDINATOR_NOT_AVAILABLE).

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::endpoint;
use crate::{group_log, txn_log};

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let listener: &str = &ctx.listener;
    let authorization = broker.authorization(ctx);
    let keys: Vec<StrBytes> = if version >= 4 { request.coordinator_keys.clone() } else { vec![request.key.clone()] };
    let mut answers = Vec::with_capacity(keys.len());
    for key in &keys {
        let found = match request.key_type {
            GROUP if !authorization.allows(AclOperation::Describe, ResourceType::Group, key.as_str()) => {
                Err(BrokerError::GroupAuthorizationFailed)
            }
            TRANSACTION
                if !authorization.allows(AclOperation::Describe, ResourceType::TransactionalId, key.as_str()) =>
            {
                Err(BrokerError::TransactionalIdAuthorizationFailed)
            }
            GROUP => group_coordinator(broker, key.as_str(), listener).await,
            TRANSACTION => transaction_coordinator(broker, key.as_str(), listener).await,
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
    address(broker, group_log::coordinator_of(broker, key)?, listener)
}

async fn transaction_coordinator(
    broker: &Broker,
    key: &str,
    listener: &str,
) -> Result<(i32, String, i32), BrokerError> {
    address(broker, txn_log::coordinator_of(broker, key).await?, listener)
}

/// A coordinator broker's address on `listener`: (node id, host, port).
fn address(broker: &Broker, node_id: i32, listener: &str) -> Result<(i32, String, i32), BrokerError> {
    let image = broker.image();
    let registration = image
        .broker(node_id)
        .ok_or_else(|| BrokerError::CoordinatorNotAvailable(format!("broker {node_id} is not registered")))?;
    let endpoint = endpoint(registration, listener)
        .ok_or_else(|| BrokerError::CoordinatorNotAvailable(format!("broker {node_id} has no endpoint")))?;
    Ok((node_id, endpoint.host.clone(), i32::from(endpoint.port)))
}

pub(crate) fn check_ids(request: &FindCoordinatorRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::CoordinatorKey, request.key.as_str())?;
    limits::validate_ids(IdKind::CoordinatorKey, request.coordinator_keys.iter().map(|key| key.as_str()))
}
