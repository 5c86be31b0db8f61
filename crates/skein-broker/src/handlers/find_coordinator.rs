//! FindCoordinator: this node coordinates every group and every transactional id.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use crate::broker::Broker;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let found = match request.key_type {
        GROUP | TRANSACTION => Ok(()),
        other => Err(BrokerError::InvalidRequest(format!("unknown coordinator key type {other}"))),
    };
    let (code, message, node_id, host, port) = match &found {
        Ok(()) => (0, None, broker.config.node_id, broker.advertised_host.clone(), broker.advertised_port),
        Err(err) => (error_code(err), Some(StrBytes::from_string(err.to_string())), -1, String::new(), -1),
    };
    if version >= 4 {
        // Batched keys: one answer per key.
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node_id))
                    .with_host(StrBytes::from_string(host.clone()))
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(BrokerId(node_id))
        .with_host(StrBytes::from_string(host))
        .with_port(port);
    // The error message exists from v1 on.
    if version >= 1 { response.with_error_message(message) } else { response }
}

/// Refuses a request whose coordinator key (a group id or a transactional id) is too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &FindCoordinatorRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::CoordinatorKey, request.key.as_str())?;
    limits::validate_ids(IdKind::CoordinatorKey, request.coordinator_keys.iter().map(|key| key.as_str()))
}
