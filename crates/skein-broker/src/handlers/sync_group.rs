//! SyncGroup: the leader hands in the assignments; every member gets its own (followers wait for the leader).

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};
use skein_group::SyncGroup;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let authorized = broker.authorized(ctx, AclOperation::Read, ResourceType::Group, request.group_id.0.as_str());
    let sync = SyncGroup {
        group_id: request.group_id.0.to_string(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: if version >= 3 { request.group_instance_id.map(|id| id.to_string()) } else { None },
        protocol_type: if version >= 5 { request.protocol_type.map(|t| t.to_string()) } else { None },
        protocol_name: if version >= 5 { request.protocol_name.map(|n| n.to_string()) } else { None },
        assignments: request.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    let synced = if authorized { broker.groups.sync(sync).await } else { Err(BrokerError::GroupAuthorizationFailed) };
    match synced {
        Ok(synced) => {
            let response = SyncGroupResponse::default().with_assignment(synced.assignment);
            if version >= 5 {
                response
                    .with_protocol_type(synced.protocol_type.map(StrBytes::from_string))
                    .with_protocol_name(synced.protocol_name.map(StrBytes::from_string))
            } else {
                response
            }
        }
        Err(err) => SyncGroupResponse::default().with_error_code(error_code(&err)),
    }
}

/// Refuses a request whose group id, member ids or group instance id is too long for Kafka's request parser
/// ([`skein_core::limits`]): the router then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &SyncGroupRequest) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, request.group_id.0.as_str())?;
    limits::validate_id(IdKind::MemberId, request.member_id.as_str())?;
    limits::validate_optional_id(IdKind::GroupInstanceId, request.group_instance_id.as_ref().map(|id| id.as_str()))?;
    limits::validate_ids(IdKind::MemberId, request.assignments.iter().map(|a| a.member_id.as_str()))
}
