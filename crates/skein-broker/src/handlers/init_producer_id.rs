//! InitProducerId. Without a transactional id: a new producer id with epoch 0 for an idempotent producer (also
//! for KIP-360 epoch-bump requests, as Kafka answers them). With one: the transaction coordinator's producer id for
//! that id with a bumped epoch, fencing older incarnations and aborting a transaction they left open.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::now_ms;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let authorization = broker.authorization(ctx);
    let result = match request.transactional_id.as_ref().filter(|id| !id.0.is_empty()) {
        Some(transactional_id)
            if !authorization.allows(
                AclOperation::Write,
                ResourceType::TransactionalId,
                transactional_id.0.as_str(),
            ) =>
        {
            Err(BrokerError::TransactionalIdAuthorizationFailed)
        }
        // KIP-679: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
        None if !authorization.allows_idempotent_write() => Err(BrokerError::ClusterAuthorizationFailed),
        Some(transactional_id) => {
            let expected = (request.producer_id.0 >= 0).then_some((request.producer_id.0, request.producer_epoch));
            broker
                .transactions
                .init_producer_id(
                    transactional_id.0.as_str(),
                    request.transaction_timeout_ms,
                    expected,
                    broker.as_ref(),
                    now_ms(),
                )
                .await
        }
        None => broker.producer_ids.allocate().await.map(|id| (id, 0)),
    };
    match result {
        Ok((producer_id, epoch)) => {
            InitProducerIdResponse::default().with_producer_id(ProducerId(producer_id)).with_producer_epoch(epoch)
        }
        Err(err) => {
            if matches!(err, BrokerError::Storage(_)) {
                tracing::error!(error = %err, "InitProducerId failed");
            }
            InitProducerIdResponse::default()
                .with_error_code(error_code(&err))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

/// Refuses a request whose transactional id is too long for Kafka's request parser ([`skein_core::limits`]): the router
/// then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &InitProducerIdRequest) -> Result<(), BrokerError> {
    limits::validate_optional_id(IdKind::TransactionalId, request.transactional_id.as_ref().map(|id| id.0.as_str()))
}
