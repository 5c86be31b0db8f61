//! OffsetFetch: committed offsets of one group (v1-v7) or several (v8+); -1 where nothing was committed; every
//! committed partition when topics is null.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_storage::CommittedOffset;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::{Authorization, RequestContext};
use crate::broker::Broker;
use crate::handlers::topic_name;

/// One partition's answer: its committed offset if any, unless an open transaction holds offsets for it and the
/// request asked for stable offsets only.
#[derive(Debug)]
enum Fetched {
    Committed(Option<CommittedOffset>),
    /// UNSTABLE_OFFSET_COMMIT: a transaction's offsets wait for its marker (KIP-447).
    Unstable,
    /// TOPIC_AUTHORIZATION_FAILED: the principal may not describe the topic.
    Refused,
}

/// One topic's answers: (partition, answer).
type FetchedTopic = (String, Vec<(i32, Fetched)>);

const UNSTABLE_OFFSET_COMMIT: i16 = 88;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let authorization = broker.authorization(ctx);
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let wanted = group.topics.map(|topics| {
                topics.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect::<Vec<_>>()
            });
            let answer = OffsetFetchResponseGroup::default().with_group_id(group.group_id.clone());
            groups.push(match fetch(broker, &authorization, &group.group_id, wanted, request.require_stable).await {
                Ok(topics) => answer.with_topics(
                    topics
                        .into_iter()
                        .map(|(name, partitions)| {
                            OffsetFetchResponseTopics::default().with_name(topic_name(&name)).with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(index, fetched)| {
                                        let (offset, epoch, metadata, code) = split(fetched);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(index)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(metadata))
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                        })
                        .collect(),
                ),
                Err(err) => answer.with_error_code(error_code(&err)),
            });
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request
        .topics
        .map(|topics| topics.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect::<Vec<_>>());
    // From v7 a client may ask for stable offsets only.
    let require_stable = version >= 7 && request.require_stable;
    match fetch(broker, &authorization, &request.group_id, wanted, require_stable).await {
        Ok(topics) => OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default().with_name(topic_name(&name)).with_partitions(
                        partitions
                            .into_iter()
                            .map(|(index, fetched)| {
                                let (offset, epoch, metadata, code) = split(fetched);
                                let answer = OffsetFetchResponsePartition::default()
                                    .with_partition_index(index)
                                    .with_committed_offset(offset)
                                    .with_metadata(Some(metadata))
                                    .with_error_code(code);
                                // The leader epoch exists from v5 on.
                                if version >= 5 { answer.with_committed_leader_epoch(epoch) } else { answer }
                            })
                            .collect(),
                    )
                })
                .collect(),
        ),
        Err(err) => {
            let response = OffsetFetchResponse::default();
            // The top-level error exists from v2 on; v1 can only say it per partition, and has none to say it in.
            if version >= 2 { response.with_error_code(error_code(&err)) } else { response }
        }
    }
}

/// (offset, leader epoch, metadata, error code) of one partition's answer.
fn split(fetched: Fetched) -> (i64, i32, StrBytes, i16) {
    match fetched {
        Fetched::Committed(Some(c)) => {
            (c.offset, c.leader_epoch, StrBytes::from_string(c.metadata.unwrap_or_default()), 0)
        }
        Fetched::Committed(None) => (-1, -1, StrBytes::default(), 0),
        Fetched::Unstable => (-1, -1, StrBytes::default(), UNSTABLE_OFFSET_COMMIT),
        Fetched::Refused => (-1, -1, StrBytes::default(), error_code(&BrokerError::TopicAuthorizationFailed)),
    }
}

/// The committed offsets asked for, or all of the group's when `wanted` is `None`; with `require_stable`, the
/// partitions an open transaction holds offsets for are answered UNSTABLE_OFFSET_COMMIT instead.
///
/// As Kafka: the principal needs DESCRIBE on the group, and on each topic asked for (a topic it may not describe
/// is refused; all of the group's offsets leave such topics out).
async fn fetch(
    broker: &Arc<Broker>,
    authorization: &Authorization<'_>,
    group_id: &GroupId,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<FetchedTopic>, BrokerError> {
    let group_id = group_id.0.as_str();
    if !authorization.allows(AclOperation::Describe, ResourceType::Group, group_id) {
        return Err(BrokerError::GroupAuthorizationFailed);
    }
    let describable = |topic: &str| authorization.permits(AclOperation::Describe, ResourceType::Topic, topic);
    let unstable = if require_stable { broker.offsets.pending_partitions(group_id).await? } else { BTreeSet::new() };
    let answer = |topic: &str, partition: i32, committed: Option<CommittedOffset>| {
        if unstable.contains(&(topic.to_owned(), partition)) {
            Fetched::Unstable
        } else {
            Fetched::Committed(committed)
        }
    };
    let Some(wanted) = wanted else {
        let mut topics: Vec<FetchedTopic> = Vec::new();
        for (topic, partition, committed) in broker.offsets.fetch_all(group_id).await? {
            if !describable(&topic) {
                continue;
            }
            let fetched = answer(&topic, partition, Some(committed));
            match topics.last_mut() {
                Some((name, partitions)) if *name == topic => partitions.push((partition, fetched)),
                _ => topics.push((topic, vec![(partition, fetched)])),
            }
        }
        return Ok(topics);
    };
    let allowed: Vec<bool> = wanted
        .iter()
        .map(|(topic, _)| authorization.allows(AclOperation::Describe, ResourceType::Topic, topic))
        .collect();
    let keys: Vec<(String, i32)> = wanted
        .iter()
        .zip(&allowed)
        .filter(|(_, allowed)| **allowed)
        .map(|(wanted, _)| wanted)
        .flat_map(|(topic, partitions)| partitions.iter().map(move |partition| (topic.clone(), *partition)))
        .collect();
    let mut found = broker.offsets.fetch(group_id, keys).await?.into_iter();
    Ok(wanted
        .into_iter()
        .zip(allowed)
        .map(|((topic, partitions), allowed)| {
            let answers = partitions
                .into_iter()
                .map(|partition| match allowed {
                    true => (partition, answer(&topic, partition, found.next().flatten())),
                    false => (partition, Fetched::Refused),
                })
                .collect();
            (topic, answers)
        })
        .collect())
}

/// Refuses a request whose group ids or member ids are too long for Kafka's request parser ([`skein_core::limits`]):
/// the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &OffsetFetchRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())?;
    request.groups.iter().try_for_each(|group| {
        limits::validate_id(IdKind::GroupId, group.group_id.0.as_str())?;
        limits::validate_optional_id(IdKind::MemberId, group.member_id.as_ref().map(|id| id.as_str()))
    })
}
