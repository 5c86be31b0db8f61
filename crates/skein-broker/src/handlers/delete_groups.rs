//! DeleteGroups: deletes Empty groups with their committed offsets; groups with members are NON_EMPTY_GROUP.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use skein_core::limits::{self, IdKind};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteGroupsRequest,
    _version: i16,
) -> DeleteGroupsResponse {
    let authorization = broker.authorization(ctx);
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let result = if !authorization.allows(AclOperation::Delete, ResourceType::Group, group_id.0.as_str()) {
            Err(BrokerError::GroupAuthorizationFailed)
        } else if group_id.0.is_empty() {
            Err(BrokerError::InvalidGroupId)
        } else {
            broker.groups.delete(group_id.0.to_string()).await
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(result.err().map_or(0, |err| error_code(&err))),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

/// Refuses a request naming a group id that is too long for Kafka's request parser ([`skein_core::limits`]): the router
/// then closes the connection unanswered, as Kafka 4.3.1 does.
pub(crate) fn check_ids(request: &DeleteGroupsRequest) -> Result<(), BrokerError> {
    limits::validate_ids(IdKind::GroupId, request.groups_names.iter().map(|group_id| group_id.0.as_str()))
}
