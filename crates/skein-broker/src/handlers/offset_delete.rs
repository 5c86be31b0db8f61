//! OffsetDelete: removes committed offsets of topics the group does not consume (GROUP_SUBSCRIBED_TO_TOPIC for
//! topics a member of a consumer group subscribes to).

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Buf;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::protocol::Decodable;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_group::{ConsumerGroupDescription, GroupDescription, GroupState};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;

/// What the group's members consume: `None` means every topic (a non-consumer group with members, or metadata
/// that cannot be read).
fn subscribed_topics(group: &GroupDescription) -> Option<BTreeSet<String>> {
    if group.state == GroupState::Empty {
        return Some(BTreeSet::new());
    }
    if group.protocol_type != "consumer" {
        return None;
    }
    let mut topics = BTreeSet::new();
    for member in &group.members {
        let mut metadata = member.metadata.clone();
        if metadata.remaining() < 2 {
            return None;
        }
        let version = metadata.get_i16();
        // Subscriptions newer than this codec knows are read as the newest it knows (fields are only appended).
        let subscription = ConsumerProtocolSubscription::decode(&mut metadata, version.clamp(0, 3)).ok()?;
        topics.extend(subscription.topics.iter().map(|t| t.to_string()));
    }
    Some(topics)
}

/// What the members of a KIP-848 consumer group consume: the topics they name and the topics they are assigned
/// (which covers regex subscriptions).
fn consumer_group_topics(broker: &Broker, group: &ConsumerGroupDescription) -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    for member in &group.members {
        topics.extend(member.subscribed_topic_names.iter().cloned());
        for topic_id in member.assignment.keys().chain(member.target_assignment.keys()) {
            if let Some(topic) = broker.topics.get_by_id(topic_id) {
                topics.insert(topic.name.to_string());
            }
        }
    }
    topics
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: OffsetDeleteRequest,
    _version: i16,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    // As Kafka: DELETE on the group, then READ on each topic.
    let authorization = broker.authorization(ctx);
    if !authorization.allows(AclOperation::Delete, ResourceType::Group, &group_id) {
        return OffsetDeleteResponse::default().with_error_code(error_code(&BrokerError::GroupAuthorizationFailed));
    }
    let subscribed = match broker.groups.describe(group_id.clone()).await {
        Ok(Some(group)) => subscribed_topics(&group),
        Ok(None) => match broker.groups.describe_consumer_group(group_id.clone()).await {
            Ok(Some(group)) => Some(consumer_group_topics(broker, &group)),
            Ok(None) => {
                return OffsetDeleteResponse::default().with_error_code(error_code(&BrokerError::GroupIdNotFound));
            }
            Err(err) => return OffsetDeleteResponse::default().with_error_code(error_code(&err)),
        },
        Err(err) => return OffsetDeleteResponse::default().with_error_code(error_code(&err)),
    };
    let Some(subscribed) = subscribed else {
        return OffsetDeleteResponse::default().with_error_code(error_code(&BrokerError::NonEmptyGroup));
    };
    let mut doomed = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted_topic in &request.topics {
        let name = wanted_topic.name.0.as_str();
        let topic = broker.topics.get(name);
        let topic_allowed = authorization.allows(AclOperation::Read, ResourceType::Topic, name);
        let mut partitions = Vec::with_capacity(wanted_topic.partitions.len());
        for wanted in &wanted_topic.partitions {
            let result = if !topic_allowed {
                Err(BrokerError::TopicAuthorizationFailed)
            } else if topic.as_ref().and_then(|t| t.partition(wanted.partition_index)).is_none() {
                Err(BrokerError::UnknownTopicOrPartition)
            } else if subscribed.contains(name) {
                Err(BrokerError::GroupSubscribedToTopic)
            } else {
                doomed.push((name.to_string(), wanted.partition_index));
                Ok(())
            };
            partitions.push(
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(wanted.partition_index)
                    .with_error_code(result.err().map_or(0, |err| error_code(&err))),
            );
        }
        topics.push(OffsetDeleteResponseTopic::default().with_name(topic_name(name)).with_partitions(partitions));
    }
    if !doomed.is_empty()
        && let Err(err) = broker.offsets.delete_offsets(&group_id, doomed).await
    {
        return OffsetDeleteResponse::default().with_error_code(error_code(&err));
    }
    OffsetDeleteResponse::default().with_topics(topics)
}

/// Refuses a request whose group id is too long for Kafka's request parser ([`skein_core::limits`]): the router then
/// closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &OffsetDeleteRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())
}
