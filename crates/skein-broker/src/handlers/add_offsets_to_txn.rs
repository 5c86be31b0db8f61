//! AddOffsetsToTxn: a consumer group's offsets will be committed by the producer's transaction.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::now_ms;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
    _version: i16,
) -> AddOffsetsToTxnResponse {
    let authorization = broker.authorization(ctx);
    let transactional_id = request.transactional_id.0.as_str();
    let result = if !authorization.allows(AclOperation::Write, ResourceType::TransactionalId, transactional_id) {
        Err(BrokerError::TransactionalIdAuthorizationFailed)
    } else if !authorization.allows(AclOperation::Read, ResourceType::Group, request.group_id.0.as_str()) {
        Err(BrokerError::GroupAuthorizationFailed)
    } else if request.group_id.0.is_empty() {
        Err(BrokerError::InvalidGroupId)
    } else {
        broker
            .transactions
            .add_offsets(
                request.transactional_id.0.as_str(),
                request.producer_id.0,
                request.producer_epoch,
                request.group_id.0.as_str(),
                now_ms(),
            )
            .await
    };
    AddOffsetsToTxnResponse::default().with_error_code(result.err().map_or(0, |err| error_code(&err)))
}

/// Refuses a request whose transactional id or group id is too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &AddOffsetsToTxnRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::TransactionalId, request.transactional_id.0.as_str())?;
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())
}
