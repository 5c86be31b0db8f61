//! Heartbeat: keeps a member's session alive and tells it when the group rebalances.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: HeartbeatRequest,
    version: i16,
) -> HeartbeatResponse {
    if !broker.authorized(ctx, AclOperation::Read, ResourceType::Group, request.group_id.0.as_str()) {
        return HeartbeatResponse::default().with_error_code(error_code(&BrokerError::GroupAuthorizationFailed));
    }
    let group_instance_id = if version >= 3 { request.group_instance_id.map(|id| id.to_string()) } else { None };
    let result = broker
        .groups
        .heartbeat(
            request.group_id.0.to_string(),
            request.member_id.to_string(),
            group_instance_id,
            request.generation_id,
        )
        .await;
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |err| error_code(&err)))
}

/// Refuses a request whose group id, member id or group instance id is too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &HeartbeatRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())?;
    limits::validate_id(IdKind::MemberId, request.member_id.as_str())?;
    limits::validate_optional_id(IdKind::GroupInstanceId, request.group_instance_id.as_ref().map(|id| id.as_str()))
}
