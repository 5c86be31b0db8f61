//! DescribeGroups: state, protocol and members; member metadata and assignments only while Stable, as Kafka.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_group::GroupState;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::message;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let authorization = broker.authorization(ctx);
    let mut groups = Vec::with_capacity(request.groups.len());
    for group_id in request.groups {
        let answer = DescribedGroup::default().with_group_id(group_id.clone());
        if !authorization.allows(AclOperation::Describe, ResourceType::Group, group_id.0.as_str()) {
            let err = BrokerError::GroupAuthorizationFailed;
            groups.push(answer.with_error_code(error_code(&err)));
            continue;
        }
        let described = match broker.groups.describe(group_id.0.to_string()).await {
            Ok(Some(description)) => {
                let stable = description.state == GroupState::Stable;
                let members = description
                    .members
                    .into_iter()
                    .map(|member| {
                        let mut described = DescribedGroupMember::default()
                            .with_member_id(StrBytes::from_string(member.member_id))
                            .with_client_id(StrBytes::from_string(member.client_id))
                            .with_client_host(StrBytes::from_string(member.client_host));
                        if stable {
                            described = described
                                .with_member_metadata(member.metadata)
                                .with_member_assignment(member.assignment);
                        }
                        if version >= 4 {
                            described =
                                described.with_group_instance_id(member.group_instance_id.map(StrBytes::from_string));
                        }
                        described
                    })
                    .collect();
                answer
                    .with_group_state(StrBytes::from_static_str(description.state.name()))
                    .with_protocol_type(StrBytes::from_string(description.protocol_type))
                    .with_protocol_data(StrBytes::from_string(if stable {
                        description.protocol_name
                    } else {
                        String::new()
                    }))
                    .with_members(members)
            }
            Ok(None) => {
                let dead = answer.with_group_state(StrBytes::from_static_str(GroupState::Dead.name()));
                // From v6 an unknown group is an error; before, Kafka describes it as Dead without one.
                if version >= 6 {
                    let err = BrokerError::GroupIdNotFound;
                    dead.with_error_code(error_code(&err))
                        .with_error_message(message(format!("group {} not found", group_id.0)))
                } else {
                    dead
                }
            }
            Err(err) => answer.with_error_code(error_code(&err)),
        };
        // v3+: the operations the principal may do on the group, when asked.
        let described = if version >= 3 && request.include_authorized_operations {
            let operations = authorization.operations(ResourceType::Group, described.group_id.0.as_str());
            described.with_authorized_operations(operations)
        } else {
            described
        };
        groups.push(described);
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

/// Refuses a request naming a group id that is too long for Kafka's request parser ([`skein_core::limits`]): the router
/// then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &DescribeGroupsRequest) -> Result<(), BrokerError> {
    limits::validate_ids(IdKind::GroupId, request.groups.iter().map(|group_id| group_id.0.as_str()))
}
