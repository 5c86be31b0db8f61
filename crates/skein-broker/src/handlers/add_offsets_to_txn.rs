//! AddOffsetsToTxn: a consumer group's offsets will be committed by the producer's transaction.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use skein_core::{BrokerError, error_code};

use crate::broker::Broker;
use crate::handlers::now_ms;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    request: AddOffsetsToTxnRequest,
    _version: i16,
) -> AddOffsetsToTxnResponse {
    let result = if request.group_id.0.is_empty() {
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
