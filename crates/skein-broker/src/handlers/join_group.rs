//! JoinGroup: hands the request to the group coordinator and waits for the rebalance to complete.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_group::JoinGroup;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: JoinGroupRequest,
    version: i16,
    (client_id, client_host): (String, String),
) -> JoinGroupResponse {
    let authorized = broker.authorized(ctx, AclOperation::Read, ResourceType::Group, request.group_id.0.as_str());
    let join = JoinGroup {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: if version >= 5 { request.group_instance_id.map(|id| id.to_string()) } else { None },
        client_id,
        client_host,
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout serves as one, as in Kafka.
        rebalance_timeout_ms: if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms },
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let request_member_id = request.member_id;
    let joined = if authorized { broker.groups.join(join).await } else { Err(BrokerError::GroupAuthorizationFailed) };
    match joined {
        Ok(joined) => {
            let members = joined
                .members
                .into_iter()
                .map(|member| {
                    let described = JoinGroupResponseMember::default()
                        .with_member_id(StrBytes::from_string(member.member_id))
                        .with_metadata(member.metadata);
                    if version >= 5 {
                        described.with_group_instance_id(member.group_instance_id.map(StrBytes::from_string))
                    } else {
                        described
                    }
                })
                .collect();
            let mut response = JoinGroupResponse::default()
                .with_generation_id(joined.generation_id)
                .with_protocol_name(Some(StrBytes::from_string(joined.protocol_name.unwrap_or_default())))
                .with_leader(StrBytes::from_string(joined.leader))
                .with_member_id(StrBytes::from_string(joined.member_id))
                .with_members(members);
            if version >= 7 {
                response = response.with_protocol_type(joined.protocol_type.map(StrBytes::from_string));
            }
            if version >= 9 {
                response = response.with_skip_assignment(joined.skip_assignment);
            }
            response
        }
        Err(err) => {
            let member_id = match &err {
                BrokerError::MemberIdRequired { member_id } => StrBytes::from_string(member_id.clone()),
                _ => request_member_id,
            };
            // The protocol name is nullable from v7; before that an error carries an empty one.
            let protocol_name = if version >= 7 { None } else { Some(StrBytes::default()) };
            JoinGroupResponse::default()
                .with_error_code(error_code(&err))
                .with_generation_id(-1)
                .with_protocol_name(protocol_name)
                .with_member_id(member_id)
        }
    }
}

/// Refuses a request whose group id, member id or group instance id is too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &JoinGroupRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())?;
    limits::validate_id(IdKind::MemberId, request.member_id.as_str())?;
    limits::validate_optional_id(IdKind::GroupInstanceId, request.group_instance_id.as_ref().map(|id| id.as_str()))
}
