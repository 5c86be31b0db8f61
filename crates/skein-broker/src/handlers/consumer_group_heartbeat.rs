//! ConsumerGroupHeartbeat (KIP-848): the one request of the consumer group protocol. Members join (epoch 0),
//! heartbeat with their subscription and owned partitions, and leave (epoch -1, or -2 for a static member's
//! temporary leave); the coordinator answers with the member's epoch and, when it changed, its assignment.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment as ResponseAssignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_group::{Assignment, ConsumerHeartbeat, TopicMetadata};

use skein_cluster::ConfigResourceType;
use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::group_configs::consumer_group_timeouts;
use crate::handlers::message;

/// From this version the client generates its member id (KIP-1082) and must always send it.
const CLIENT_GENERATED_MEMBER_ID_VERSION: i16 = 1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
    version: i16,
    (client_id, client_host): (String, String),
) -> ConsumerGroupHeartbeatResponse {
    if let Err(err) = validate(&request, version) {
        return error_response(&err);
    }
    // As Kafka: READ on the group, and DESCRIBE on every topic subscribed to by name.
    let authorization = broker.authorization(ctx);
    if !authorization.allows(AclOperation::Read, ResourceType::Group, request.group_id.0.as_str()) {
        return error_response(&BrokerError::GroupAuthorizationFailed);
    }
    let subscribed = request.subscribed_topic_names.iter().flatten();
    if !subscribed
        .into_iter()
        .all(|name| authorization.allows(AclOperation::Describe, ResourceType::Topic, name.0.as_str()))
    {
        return error_response(&BrokerError::TopicAuthorizationFailed);
    }
    // The topics as the metadata image has them, as every client sees them in Metadata (this broker's registry of
    // local logs can lag the image just after a topic is created).
    let image = broker.image();
    let group_id = request.group_id.0.as_str();
    // The group's own timeouts (its GROUP configs), where it has them.
    let timeouts = consumer_group_timeouts(&broker.config, image.configs(ConfigResourceType::Group, group_id));
    let topics: Vec<TopicMetadata> = image
        .topics()
        .map(|topic| TopicMetadata {
            name: topic.name.clone(),
            topic_id: topic.topic_id,
            partitions: i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
        })
        .collect();
    let owned_partitions = request.topic_partitions.as_ref().map(|owned| {
        let mut assignment = Assignment::new();
        for topic in owned {
            assignment.entry(topic.topic_id).or_default().extend(topic.partitions.iter().copied());
        }
        assignment
    });
    let heartbeat = ConsumerHeartbeat {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|id| id.to_string()),
        rack_id: request.rack_id.as_ref().map(|id| id.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|name| name.0.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.as_ref().map(|regex| regex.to_string()),
        server_assignor: request.server_assignor.as_ref().map(|name| name.to_string()),
        owned_partitions,
        client_id,
        client_host,
        topics: Arc::new(topics),
        session_timeout: timeouts.session_timeout,
    };
    match broker.groups.consumer_heartbeat(heartbeat).await {
        Ok(outcome) => {
            let interval =
                timeouts.heartbeat_interval.unwrap_or_else(|| broker.groups.consumer_heartbeat_interval()).as_millis();
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(StrBytes::from_string(outcome.member_id)))
                .with_member_epoch(outcome.member_epoch)
                .with_heartbeat_interval_ms(i32::try_from(interval).unwrap_or(i32::MAX))
                .with_assignment(outcome.assignment.map(|assignment| {
                    ResponseAssignment::default().with_topic_partitions(
                        assignment
                            .into_iter()
                            .map(|(topic_id, partitions)| {
                                TopicPartitions::default()
                                    .with_topic_id(topic_id)
                                    .with_partitions(partitions.into_iter().collect())
                            })
                            .collect(),
                    )
                }))
        }
        Err(err) => error_response(&err),
    }
}

/// The checks Kafka makes before the coordinator sees the request; all failures are INVALID_REQUEST.
fn validate(request: &ConsumerGroupHeartbeatRequest, version: i16) -> Result<(), BrokerError> {
    let invalid = |reason: &str| Err(BrokerError::InvalidRequest(reason.into()));
    let epoch = request.member_epoch;
    if (version >= CLIENT_GENERATED_MEMBER_ID_VERSION || epoch > 0 || epoch == -1) && request.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if request.group_id.0.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if request.instance_id.as_ref().is_some_and(|id| id.is_empty()) {
        return invalid("InstanceId can't be empty.");
    }
    if request.rack_id.as_ref().is_some_and(|id| id.is_empty()) {
        return invalid("RackId can't be empty.");
    }
    match epoch {
        0 => {
            if request.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if request.topic_partitions.as_ref().is_none_or(|owned| !owned.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
                return invalid(
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                );
            }
        }
        -2 if request.instance_id.is_none() => return invalid("InstanceId can't be null."),
        epoch if epoch < -2 => return invalid("MemberEpoch is invalid."),
        _ => {}
    }
    Ok(())
}

fn error_response(err: &BrokerError) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(error_code(err))
        .with_error_message(message(err.to_string()))
}

/// Refuses a request whose group id, member id or instance id is too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &ConsumerGroupHeartbeatRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())?;
    limits::validate_id(IdKind::MemberId, request.member_id.as_str())?;
    limits::validate_optional_id(IdKind::GroupInstanceId, request.instance_id.as_ref().map(|id| id.as_str()))
}
