//! EndTxn: commits or aborts the producer's transaction: markers in every partition of it, and on commit its
//! consumer offsets, all durable before the answer. From v5 (Transactions V2) the epoch is bumped each time and the
//! new producer id and epoch are answered.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;

/// From this version every EndTxn bumps the producer epoch and answers the new one (Transactions V2).
const BUMPS_EPOCH_VERSION: i16 = 5;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let transactional_id = request.transactional_id.0.as_str();
    let result = if !broker.authorized(ctx, AclOperation::Write, ResourceType::TransactionalId, transactional_id) {
        Err(BrokerError::TransactionalIdAuthorizationFailed)
    } else {
        broker
            .transactions
            .end_txn(
                transactional_id,
                request.producer_id.0,
                request.producer_epoch,
                request.committed,
                version >= BUMPS_EPOCH_VERSION,
                broker.as_ref(),
            )
            .await
    };
    match result {
        Ok((producer_id, producer_epoch)) => {
            EndTxnResponse::default().with_producer_id(ProducerId(producer_id)).with_producer_epoch(producer_epoch)
        }
        Err(err) => {
            tracing::debug!(transactional_id = %request.transactional_id.0, error = %err, "EndTxn refused");
            EndTxnResponse::default()
                .with_error_code(error_code(&err))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

/// Refuses a request whose transactional id is too long for Kafka's request parser ([`skein_core::limits`]): the router
/// then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &EndTxnRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::TransactionalId, request.transactional_id.0.as_str())
}
