//! ListTransactions: transactional ids, filtered by state, producer id, (v1+) how long they have been open and
//! (v2+, KIP-1152) a regular expression the whole transactional id must match.

use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, error_code};
use skein_txn::state_name;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::now_ms;

/// The state names Kafka knows (unknown filters are echoed back in the response).
const KNOWN_STATES: &[&str] = &[
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    // As Kafka: only the transactional ids the principal may describe are listed.
    let authorization = broker.authorization(ctx);
    let unknown: Vec<StrBytes> =
        request.state_filters.iter().filter(|s| !KNOWN_STATES.contains(&s.as_str())).cloned().collect();
    // An empty or null pattern lists every transaction; one that does not compile fails the request, as Kafka's.
    let pattern = match request.transactional_id_pattern.as_ref().filter(|pattern| !pattern.is_empty()) {
        None => None,
        Some(pattern) => match regex::Regex::new(&format!("^(?:{})$", pattern.as_str())) {
            Ok(regex) => Some(regex),
            Err(err) => {
                let err = BrokerError::InvalidRegularExpression(format!(
                    "Transaction ID pattern `{}` is not a valid regular expression: {err}.",
                    pattern.as_str()
                ));
                return ListTransactionsResponse::default().with_error_code(error_code(&err));
            }
        },
    };
    let now = now_ms();
    let states = broker
        .transactions
        .list()
        .await
        .into_iter()
        .filter(|txn| {
            let state = state_name(txn.record.state);
            let by_state =
                request.state_filters.is_empty() || request.state_filters.iter().any(|s| s.as_str() == state);
            let by_producer = request.producer_id_filters.is_empty()
                || request.producer_id_filters.iter().any(|id| id.0 == txn.record.producer_id);
            // v1+: only transactions open for longer than the duration filter.
            let by_duration = version < 1
                || request.duration_filter < 0
                || (txn.record.start_timestamp >= 0 && now - txn.record.start_timestamp > request.duration_filter);
            let by_pattern = pattern.as_ref().is_none_or(|regex| regex.is_match(&txn.transactional_id));
            by_state
                && by_producer
                && by_duration
                && by_pattern
                && authorization.permits(AclOperation::Describe, ResourceType::TransactionalId, &txn.transactional_id)
        })
        .map(|txn| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(txn.transactional_id)))
                .with_producer_id(ProducerId(txn.record.producer_id))
                .with_transaction_state(StrBytes::from_static_str(state_name(txn.record.state)))
        })
        .collect();
    ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(states)
}
