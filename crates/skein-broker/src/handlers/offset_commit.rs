//! OffsetCommit: the coordinator checks the committing member (or allows a simple commit to a group without
//! members); the offsets of one request are then written in one atomic, durable write before the answer.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_group::CommitCheck;
use skein_storage::CommittedOffset;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::{now_ms, partition_ids, topic_name};

/// Kafka's `offset.metadata.max.bytes` default: longer metadata is refused per partition.
const OFFSET_METADATA_MAX_BYTES: usize = 4096;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let authorization = broker.authorization(ctx);
    // As Kafka: READ on the group (else every partition is refused), then READ on each topic.
    let group_allowed = authorization.allows(AclOperation::Read, ResourceType::Group, &group_id);
    let check = CommitCheck {
        group_id: group_id.clone(),
        generation_id: request.generation_id_or_member_epoch,
        member_id: request.member_id.to_string(),
        group_instance_id: if version >= 7 { request.group_instance_id.map(|id| id.to_string()) } else { None },
        partitions: partition_ids(
            broker,
            request.topics.iter().map(|t| (t.name.0.as_str(), t.partitions.iter().map(|p| p.partition_index))),
        ),
    };
    let verdict = if group_allowed {
        broker.groups.check_commit(check).await
    } else {
        Err(BrokerError::GroupAuthorizationFailed)
    };
    if let Err(err) = &verdict {
        tracing::debug!(%group_id, member_id = %request.member_id, generation = request.generation_id_or_member_epoch, error = %err, "offset commit refused");
    }
    let commit_timestamp = now_ms();
    // (topic index, partition index in the response) of every partition whose offset is written.
    let mut to_write = Vec::new();
    let mut positions = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted_topic in &request.topics {
        let name = wanted_topic.name.0.as_str();
        let topic = broker.topics.get(name);
        let topic_allowed = group_allowed && authorization.allows(AclOperation::Read, ResourceType::Topic, name);
        let mut partitions = Vec::with_capacity(wanted_topic.partitions.len());
        for wanted in &wanted_topic.partitions {
            let metadata = wanted.committed_metadata.as_ref().map(|m| m.to_string());
            let result = match &verdict {
                Err(err) => Err(err.clone()),
                Ok(()) if !topic_allowed => Err(BrokerError::TopicAuthorizationFailed),
                Ok(()) if topic.as_ref().and_then(|t| t.partition(wanted.partition_index)).is_none() => {
                    Err(BrokerError::UnknownTopicOrPartition)
                }
                Ok(()) if metadata.as_ref().is_some_and(|m| m.len() > OFFSET_METADATA_MAX_BYTES) => {
                    Err(BrokerError::OffsetMetadataTooLarge)
                }
                Ok(()) => Ok(()),
            };
            if result.is_ok() {
                to_write.push((
                    name.to_string(),
                    wanted.partition_index,
                    CommittedOffset {
                        offset: wanted.committed_offset,
                        leader_epoch: if version >= 6 { wanted.committed_leader_epoch } else { -1 },
                        metadata,
                        commit_timestamp,
                    },
                ));
                positions.push((topics.len(), partitions.len()));
            }
            partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(wanted.partition_index)
                    .with_error_code(result.err().map_or(0, |err| error_code(&err))),
            );
        }
        topics.push(OffsetCommitResponseTopic::default().with_name(topic_name(name)).with_partitions(partitions));
    }
    if !to_write.is_empty()
        && let Err(err) = broker.offsets.commit(&group_id, to_write).await
    {
        tracing::error!(%group_id, error = %err, "offset commit failed");
        let code = error_code(&err);
        for (topic, partition) in positions {
            if let Some(answer) = topics.get_mut(topic).and_then(|t| t.partitions.get_mut(partition)) {
                answer.error_code = code;
            }
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}

/// Refuses a request whose group id, member id or group instance id is too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &OffsetCommitRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())?;
    limits::validate_id(IdKind::MemberId, request.member_id.as_str())?;
    limits::validate_optional_id(IdKind::GroupInstanceId, request.group_instance_id.as_ref().map(|id| id.as_str()))
}
