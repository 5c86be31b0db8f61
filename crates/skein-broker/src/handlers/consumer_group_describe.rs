//! ConsumerGroupDescribe (KIP-848): state, epochs, assignor and members of consumer groups, with each member's
//! current and target assignment. A group id that is not a consumer group is GROUP_ID_NOT_FOUND, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_group::Assignment;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::{message, topic_name};

/// `member_type` of a member that uses the consumer protocol (v1+).
const CONSUMER_MEMBER_TYPE: i8 = 1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
    version: i16,
) -> ConsumerGroupDescribeResponse {
    let authorization = broker.authorization(ctx);
    let mut groups = Vec::with_capacity(request.group_ids.len());
    for group_id in request.group_ids {
        let answer = DescribedGroup::default().with_group_id(group_id.clone());
        if !authorization.allows(AclOperation::Describe, ResourceType::Group, group_id.0.as_str()) {
            groups.push(with_error(answer, &skein_core::BrokerError::GroupAuthorizationFailed));
            continue;
        }
        let described = match broker.groups.describe_consumer_group(group_id.0.to_string()).await {
            Ok(Some(group)) => answer
                .with_group_state(StrBytes::from_static_str(group.state.name()))
                .with_group_epoch(group.group_epoch)
                .with_assignment_epoch(group.assignment_epoch)
                .with_assignor_name(StrBytes::from_string(group.assignor_name))
                .with_members(
                    group
                        .members
                        .into_iter()
                        .map(|member| {
                            let described = Member::default()
                                .with_member_id(StrBytes::from_string(member.member_id))
                                .with_instance_id(member.instance_id.map(StrBytes::from_string))
                                .with_rack_id(member.rack_id.map(StrBytes::from_string))
                                .with_member_epoch(member.member_epoch)
                                .with_client_id(StrBytes::from_string(member.client_id))
                                .with_client_host(StrBytes::from_string(member.client_host))
                                .with_subscribed_topic_names(
                                    member.subscribed_topic_names.iter().map(|name| topic_name(name)).collect(),
                                )
                                .with_subscribed_topic_regex(member.subscribed_topic_regex.map(StrBytes::from_string))
                                .with_assignment(described_assignment(broker, &member.assignment))
                                .with_target_assignment(described_assignment(broker, &member.target_assignment));
                            if version >= 1 { described.with_member_type(CONSUMER_MEMBER_TYPE) } else { described }
                        })
                        .collect(),
                ),
            Ok(None) => with_error(answer, &BrokerError::GroupIdNotFound),
            Err(err) => with_error(answer, &err),
        };
        let described = if request.include_authorized_operations {
            let operations = authorization.operations(ResourceType::Group, described.group_id.as_str());
            described.with_authorized_operations(operations)
        } else {
            described
        };
        groups.push(described);
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

fn with_error(group: DescribedGroup, err: &BrokerError) -> DescribedGroup {
    group.with_error_code(error_code(err)).with_error_message(message(err.to_string()))
}

/// Partitions by topic id and name; topics deleted since the assignment are left out.
fn described_assignment(broker: &Broker, assignment: &Assignment) -> DescribedAssignment {
    DescribedAssignment::default().with_topic_partitions(
        assignment
            .iter()
            .filter_map(|(topic_id, partitions)| {
                let topic = broker.topics.get_by_id(topic_id)?;
                Some(
                    TopicPartitions::default()
                        .with_topic_id(*topic_id)
                        .with_topic_name(topic_name(&topic.name))
                        .with_partitions(partitions.iter().copied().collect()),
                )
            })
            .collect(),
    )
}

/// Refuses a request naming a group id that is too long for Kafka's request parser ([`skein_core::limits`]): the router
/// then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &ConsumerGroupDescribeRequest) -> Result<(), BrokerError> {
    limits::validate_ids(IdKind::GroupId, request.group_ids.iter().map(|group_id| group_id.0.as_str()))
}
