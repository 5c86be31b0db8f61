//! LeaveGroup: one member (v0-v2) or a batch of members by member id or instance id (v3+).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use skein_core::error_code;
use skein_group::LeaveMember;

use crate::broker::Broker;

pub(crate) async fn handle(broker: &Arc<Broker>, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
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
