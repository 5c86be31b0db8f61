//! InitProducerId for idempotent producers: every call gets a new producer id with epoch 0, as Kafka's
//! coordinator answers requests without a transactional id (including KIP-360 epoch-bump requests).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use skein_core::error_code;

use crate::broker::Broker;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    request: InitProducerIdRequest,
    _version: i16,
) -> InitProducerIdResponse {
    let failed = |code: i16| {
        InitProducerIdResponse::default().with_error_code(code).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
    };
    if request.transactional_id.as_ref().is_some_and(|id| !id.0.is_empty()) {
        // Transactions are not served yet (FindCoordinator for transactions is not advertised either).
        return failed(ResponseError::InvalidRequest.code());
    }
    match broker.producer_ids.allocate().await {
        Ok(id) => InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(err) => {
            tracing::error!(error = %err, "producer id allocation failed");
            failed(error_code(&err))
        }
    }
}
