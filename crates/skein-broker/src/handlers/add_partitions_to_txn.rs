//! AddPartitionsToTxn: partitions join a producer's transaction. v0-v3 is the client's form (one transaction);
//! v4+ is the batched form brokers use, whose `verify_only` checks that partitions were added (KIP-890).

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::{now_ms, topic_name};

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let authorization = broker.authorization(ctx);
    if version <= 3 {
        // As Kafka: WRITE on the transactional id (else every partition is refused), and on each topic.
        let transactional_id = request.v3_and_below_transactional_id.0.as_str();
        let refused = if !authorization.allows(AclOperation::Write, ResourceType::TransactionalId, transactional_id) {
            Refused::Transaction
        } else {
            Refused::Topics(
                request
                    .v3_and_below_topics
                    .iter()
                    .map(|t| t.name.0.to_string())
                    .filter(|name| !authorization.allows(AclOperation::Write, ResourceType::Topic, name))
                    .collect(),
            )
        };
        let results = add(
            broker,
            refused,
            request.v3_and_below_transactional_id.0.as_str(),
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            false,
            &request.v3_and_below_topics,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    // The batched form is the brokers' own (KIP-890 verification).
    if !authorization.allows_on_cluster(AclOperation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(error_code(&BrokerError::ClusterAuthorizationFailed));
    }
    let mut by_transaction = Vec::with_capacity(request.transactions.len());
    for transaction in &request.transactions {
        let results = add(
            broker,
            Refused::Topics(Vec::new()),
            transaction.transactional_id.0.as_str(),
            transaction.producer_id.0,
            transaction.producer_epoch,
            transaction.verify_only,
            &transaction.topics,
        )
        .await;
        by_transaction.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id.clone())
                .with_topic_results(results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(by_transaction)
}

/// What the ACLs refused of a client's AddPartitionsToTxn.
enum Refused {
    /// WRITE on the transactional id: every partition fails.
    Transaction,
    /// WRITE on these topics: their partitions fail, the others are not attempted.
    Topics(Vec<String>),
}

/// One transaction's partitions: unknown partitions fail alone and the others are OPERATION_NOT_ATTEMPTED, as in
/// Kafka; otherwise every partition gets the coordinator's answer.
async fn add(
    broker: &Broker,
    refused: Refused,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    // The coordinator need not hold a replica of the partition: the metadata says whether it exists.
    let image = broker.image();
    let known = |name: &str, partition: i32| image.topic(name).is_some_and(|t| t.partitions.contains_key(&partition));
    let all_known = topics.iter().all(|t| t.partitions.iter().all(|p| known(t.name.0.as_str(), *p)));
    let partitions: Vec<(String, i32)> =
        topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p))).collect();
    let topic_refused = |name: &str| matches!(&refused, Refused::Topics(names) if names.iter().any(|n| n == name));
    let outcome = if matches!(refused, Refused::Transaction) {
        Err(BrokerError::TransactionalIdAuthorizationFailed)
    } else if !all_known || topics.iter().any(|t| topic_refused(t.name.0.as_str())) {
        // Refused and unknown partitions fail alone; the others are not attempted.
        Err(BrokerError::OperationNotAttempted)
    } else if verify_only {
        broker.transactions.verify_partitions(transactional_id, producer_id, producer_epoch, &partitions).await
    } else {
        broker.transactions.add_partitions(transactional_id, producer_id, producer_epoch, &partitions, now_ms()).await
    };
    topics
        .iter()
        .map(|topic| {
            let results = topic
                .partitions
                .iter()
                .map(|partition| {
                    let code = match &outcome {
                        Err(BrokerError::OperationNotAttempted) if topic_refused(topic.name.0.as_str()) => {
                            error_code(&BrokerError::TopicAuthorizationFailed)
                        }
                        Err(BrokerError::OperationNotAttempted) if !known(topic.name.0.as_str(), *partition) => {
                            error_code(&BrokerError::UnknownTopicOrPartition)
                        }
                        Err(err) => error_code(err),
                        Ok(()) => 0,
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*partition)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic_name(topic.name.0.as_str()))
                .with_results_by_partition(results)
        })
        .collect()
}

/// Refuses a request whose transactional ids are too long for Kafka's request parser ([`skein_core::limits`]): the
/// router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &AddPartitionsToTxnRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::TransactionalId, request.v3_and_below_transactional_id.0.as_str())?;
    limits::validate_ids(IdKind::TransactionalId, request.transactions.iter().map(|t| t.transactional_id.0.as_str()))
}
