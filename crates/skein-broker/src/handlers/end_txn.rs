//! EndTxn: commits or aborts the producer's transaction: markers in every partition of it, and on commit its
//! consumer offsets, all durable before the answer.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use skein_core::error_code;

use crate::broker::Broker;

pub(crate) async fn handle(broker: &Arc<Broker>, request: EndTxnRequest, _version: i16) -> EndTxnResponse {
    let result = broker
        .transactions
        .end_txn(
            request.transactional_id.0.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
            &broker.topics,
        )
        .await;
    if let Err(err) = &result {
        tracing::debug!(transactional_id = %request.transactional_id.0, error = %err, "EndTxn refused");
    }
    EndTxnResponse::default()
        .with_error_code(result.err().map_or(0, |err| error_code(&err)))
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}
