//! ListGroups: every group this node coordinates (classic and KIP-848 consumer groups), filtered by state (v4+) and
//! type (v5+).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::error_code;

use skein_cluster::acl::{AclOperation, CLUSTER_NAME, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    // As Kafka: DESCRIBE on the cluster lists every group; else the groups the principal may describe.
    let authorization = broker.authorization(ctx);
    let all = authorization.permits(AclOperation::Describe, ResourceType::Cluster, CLUSTER_NAME);
    let listings = match broker.groups.list().await {
        Ok(listings) => listings,
        Err(err) => return ListGroupsResponse::default().with_error_code(error_code(&err)),
    };
    let wanted =
        |filter: &[StrBytes], value: &str| filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value));
    let groups = listings
        .into_iter()
        .filter(|listing| wanted(&request.types_filter, listing.group_type.name()))
        .filter(|listing| wanted(&request.states_filter, listing.state))
        .filter(|listing| all || authorization.permits(AclOperation::Describe, ResourceType::Group, &listing.group_id))
        .map(|listing| {
            let mut group = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(listing.group_id)))
                .with_protocol_type(StrBytes::from_string(listing.protocol_type));
            if version >= 4 {
                group = group.with_group_state(StrBytes::from_static_str(listing.state));
            }
            if version >= 5 {
                group = group.with_group_type(StrBytes::from_static_str(listing.group_type.name()));
            }
            group
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
