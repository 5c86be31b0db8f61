//! TxnOffsetCommit: consumer offsets committed inside a transaction. The group coordinator checks the member
//! (when the request names one, KIP-447); the offsets are held by the transaction and become the group's
//! committed offsets when it commits.

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_group::CommitCheck;
use skein_storage::CommittedOffset;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::{now_ms, partition_ids, topic_name};
use crate::txn_markers;

/// From this version the request adds the group to the transaction itself (Transactions V2).
const ADDS_GROUP_VERSION: i16 = 5;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let names_member = version >= 3 && (request.generation_id >= 0 || !request.member_id.is_empty());
    // As Kafka: WRITE on the transactional id and READ on the group (else every partition is refused), then READ
    // on each topic.
    let authorization = broker.authorization(ctx);
    let transactional_id = request.transactional_id.0.as_str();
    let topic_refused: Vec<&str> = request
        .topics
        .iter()
        .map(|t| t.name.0.as_str())
        .filter(|name| !authorization.allows(AclOperation::Read, ResourceType::Topic, name))
        .collect();
    let member_check = if !authorization.allows(AclOperation::Write, ResourceType::TransactionalId, transactional_id) {
        Err(BrokerError::TransactionalIdAuthorizationFailed)
    } else if !authorization.allows(AclOperation::Read, ResourceType::Group, &group_id) {
        Err(BrokerError::GroupAuthorizationFailed)
    } else if group_id.is_empty() {
        Err(BrokerError::InvalidGroupId)
    } else if names_member {
        broker
            .groups
            .check_commit(CommitCheck {
                group_id: group_id.clone(),
                generation_id: request.generation_id,
                member_id: request.member_id.to_string(),
                group_instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
                partitions: partition_ids(
                    broker,
                    request.topics.iter().map(|t| (t.name.0.as_str(), t.partitions.iter().map(|p| p.partition_index))),
                ),
            })
            .await
    } else {
        Ok(())
    };
    let image = broker.image();
    let known = |name: &str, partition: i32| image.topic(name).is_some_and(|t| t.partitions.contains_key(&partition));
    let now = now_ms();
    let mut pending = Vec::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            if known(topic.name.0.as_str(), partition.partition_index)
                && !topic_refused.contains(&topic.name.0.as_str())
            {
                let committed = CommittedOffset {
                    offset: partition.committed_offset,
                    leader_epoch: if version >= 2 { partition.committed_leader_epoch } else { -1 },
                    metadata: partition.committed_metadata.as_ref().map(|m| m.to_string()),
                    commit_timestamp: now,
                };
                pending.push((topic.name.0.to_string(), partition.partition_index, committed));
            }
        }
    }
    let member_check_error = member_check.as_ref().err().cloned();
    let outcome = match member_check {
        Ok(()) if pending.is_empty() => Ok(()),
        Ok(()) => 'commit: {
            // Another broker coordinates the group: its answer, before any check of the transaction.
            if let Err(err) = broker.offsets.journal().check_coordinator(&group_id) {
                break 'commit Err(err);
            }
            let transactional_id = request.transactional_id.0.as_str();
            let (producer_id, producer_epoch) = (request.producer_id.0, request.producer_epoch);
            // Transactions V2 clients skip AddOffsetsToTxn: the group joins the transaction here.
            let adds_group = version >= ADDS_GROUP_VERSION;
            let added = match txn_markers::remote_coordinator(broker, transactional_id) {
                Ok(None) if adds_group => {
                    broker.transactions.add_offsets(transactional_id, producer_id, producer_epoch, &group_id, now).await
                }
                Ok(None) => {
                    broker.transactions.verify_offsets(transactional_id, producer_id, producer_epoch, &group_id).await
                }
                Ok(Some(node)) if adds_group => {
                    let id = transactional_id;
                    txn_markers::add_offsets_at(broker, node, id, producer_id, producer_epoch, &group_id).await
                }
                // Before v5 a group coordinator on another broker takes the offsets unchecked, as Kafka's did:
                // the client added the group to the transaction (AddOffsetsToTxn) before.
                Ok(Some(_)) => Ok(()),
                Err(err) => Err(err),
            };
            match added {
                // The offsets wait here, at the group's coordinator, for the transaction's marker.
                Ok(()) => broker.offsets.add_pending(&group_id, producer_id, pending).await,
                Err(err) => Err(err),
            }
        }
        Err(err) => Err(err),
    };
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let code = if matches!(
                        member_check_error,
                        Some(BrokerError::TransactionalIdAuthorizationFailed | BrokerError::GroupAuthorizationFailed)
                    ) {
                        outcome.as_ref().err().map_or(0, error_code)
                    } else if topic_refused.contains(&topic.name.0.as_str()) {
                        error_code(&BrokerError::TopicAuthorizationFailed)
                    } else if !known(topic.name.0.as_str(), partition.partition_index) {
                        error_code(&BrokerError::UnknownTopicOrPartition)
                    } else {
                        outcome.as_ref().err().map_or(0, error_code)
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic_name(topic.name.0.as_str()))
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// Refuses a request whose transactional id, group id, member id or group instance id is too long for Kafka's request
/// parser ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &TxnOffsetCommitRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::TransactionalId, request.transactional_id.0.as_str())?;
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())?;
    limits::validate_id(IdKind::MemberId, request.member_id.as_str())?;
    limits::validate_optional_id(IdKind::GroupInstanceId, request.group_instance_id.as_ref().map(|id| id.as_str()))
}
