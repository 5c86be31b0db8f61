//! DeleteAcls: without an authorizer, as Kafka without `authorizer.class.name`, every filter is answered
//! SECURITY_DISABLED with no matching ACLs. With one, the principal needs ALTER on the cluster; every ACL a
//! filter matches is deleted, and each filter's result lists the ACLs it matched.

use std::sync::Arc;

use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_cluster::acl::{AclFilter, AclOperation};
use skein_core::{BrokerError, error_code};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::controller_error;
use crate::handlers::create_acls::APPLIED_WAIT;
use crate::handlers::describe_acls::filter_from_wire;
use crate::handlers::message;

/// Kafka 4.3's message here (DescribeAcls words it differently).
const NO_AUTHORIZER: &str = "No Authorizer is configured.";

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteAclsRequest,
    _version: i16,
) -> DeleteAclsResponse {
    let failed = |error: &BrokerError| {
        DeleteAclsFilterResult::default()
            .with_error_code(error_code(error))
            .with_error_message(message(error.to_string()))
    };
    let refuse_all = |error: BrokerError| {
        DeleteAclsResponse::default().with_filter_results(request.filters.iter().map(|_| failed(&error)).collect())
    };
    if !broker.authorized_on_cluster(ctx, AclOperation::Alter) {
        return refuse_all(BrokerError::ClusterAuthorizationFailed);
    }
    if !broker.config.authorizer_enabled() {
        return refuse_all(BrokerError::SecurityDisabled(NO_AUTHORIZER));
    }
    let checked: Vec<Result<AclFilter, BrokerError>> = request
        .filters
        .iter()
        .map(|f| {
            let filter = filter(f);
            filter.validate().map(|()| filter).map_err(BrokerError::InvalidRequest)
        })
        .collect();
    let valid: Vec<AclFilter> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let matched = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        broker.cluster.controller().delete_acls(valid).await.map_err(controller_error)
    };
    if let Ok(matched) = &matched {
        let gone = |image: &skein_cluster::MetadataImage| matched.iter().flatten().all(|b| !image.acls().contains(b));
        if broker.cluster.wait_for(APPLIED_WAIT, gone).await.is_none() {
            tracing::warn!("deleted ACLs still visible here after {APPLIED_WAIT:?}");
        }
    }
    let mut matched_per_filter = matched.as_ref().ok().map(|m| m.iter());
    let results = checked
        .iter()
        .map(|outcome| match (outcome, &matched) {
            (Err(err), _) => failed(err),
            (Ok(_), Err(err)) => failed(err),
            (Ok(_), Ok(_)) => {
                let bindings = matched_per_filter.as_mut().and_then(Iterator::next).cloned().unwrap_or_default();
                let matching_acls = bindings
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(StrBytes::from_string(b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(StrBytes::from_string(b.principal))
                            .with_host(StrBytes::from_string(b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect();
                DeleteAclsFilterResult::default().with_matching_acls(matching_acls)
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn filter(f: &DeleteAclsFilter) -> AclFilter {
    filter_from_wire(
        f.resource_type_filter,
        f.resource_name_filter.as_ref(),
        f.pattern_type_filter,
        f.principal_filter.as_ref(),
        f.host_filter.as_ref(),
        f.operation,
        f.permission_type,
    )
}
