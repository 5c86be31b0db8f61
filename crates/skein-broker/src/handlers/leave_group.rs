//! LeaveGroup: one member (v0-v2) or a batch of members by member id or instance id (v3+).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_group::LeaveMember;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    if !broker.authorized(ctx, AclOperation::Read, ResourceType::Group, request.group_id.0.as_str()) {
        return LeaveGroupResponse::default().with_error_code(error_code(&BrokerError::GroupAuthorizationFailed));
    }
    let group_id = request.group_id.0.to_string();
    if version < 3 {
        let leaving = vec![LeaveMember { member_id: request.member_id.to_string(), group_instance_id: None }];
        let results = broker.groups.leave(group_id, leaving).await;
        let code = results.into_iter().next().and_then(Result::err).map_or(0, |err| error_code(&err));
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let leaving = request
        .members
        .iter()
        .map(|member| LeaveMember {
            member_id: member.member_id.to_string(),
            group_instance_id: member.group_instance_id.as_ref().map(|id| id.to_string()),
        })
        .collect();
    let results = broker.groups.leave(group_id, leaving).await;
    let members = request
        .members
        .into_iter()
        .zip(results)
        .map(|(member, result)| {
            MemberResponse::default()
                .with_member_id(member.member_id)
                .with_group_instance_id(member.group_instance_id)
                .with_error_code(result.err().map_or(0, |err| error_code(&err)))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

/// Refuses a request whose group id, member ids or group instance ids are too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &LeaveGroupRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())?;
    limits::validate_id(IdKind::MemberId, request.member_id.as_str())?;
    request.members.iter().try_for_each(|member| {
        limits::validate_id(IdKind::MemberId, member.member_id.as_str())?;
        limits::validate_optional_id(IdKind::GroupInstanceId, member.group_instance_id.as_ref().map(|id| id.as_str()))
    })
}
