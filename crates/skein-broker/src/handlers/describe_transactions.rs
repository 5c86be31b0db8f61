//! DescribeTransactions: the coordinator's view of transactional ids.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_txn::state_name;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
    _version: i16,
) -> DescribeTransactionsResponse {
    let authorization = broker.authorization(ctx);
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for transactional_id in request.transactional_ids {
        let answer = TransactionState::default().with_transactional_id(transactional_id.clone());
        if !authorization.allows(AclOperation::Describe, ResourceType::TransactionalId, transactional_id.0.as_str()) {
            let err = skein_core::BrokerError::TransactionalIdAuthorizationFailed;
            states.push(answer.with_error_code(skein_core::error_code(&err)));
            continue;
        }
        // Another broker coordinates the id (or this one is still loading it): that error, as Kafka answers.
        if let Err(err) = broker.transactions.check_coordinator(transactional_id.0.as_str()) {
            states.push(answer.with_error_code(skein_core::error_code(&err)));
            continue;
        }
        states.push(match broker.transactions.describe(transactional_id.0.as_str()).await {
            Some(record) => {
                let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in &record.partitions {
                    by_topic.entry(topic).or_default().push(*partition);
                }
                answer
                    .with_transaction_state(StrBytes::from_static_str(state_name(record.state)))
                    .with_transaction_timeout_ms(record.timeout_ms)
                    .with_transaction_start_time_ms(record.start_timestamp)
                    .with_producer_id(ProducerId(record.producer_id))
                    .with_producer_epoch(record.producer_epoch)
                    .with_topics(
                        by_topic
                            .into_iter()
                            .map(|(topic, partitions)| {
                                TopicData::default().with_topic(topic_name(topic)).with_partitions(partitions)
                            })
                            .collect(),
                    )
            }
            None => answer
                .with_error_code(error_code(&BrokerError::TransactionalIdNotFound))
                .with_transaction_state(StrBytes::default())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// Refuses a request naming a transactional id that is too long for Kafka's request parser ([`skein_core::limits`]):
/// the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &DescribeTransactionsRequest) -> Result<(), BrokerError> {
    limits::validate_ids(IdKind::TransactionalId, request.transactional_ids.iter().map(|id| id.0.as_str()))
}
