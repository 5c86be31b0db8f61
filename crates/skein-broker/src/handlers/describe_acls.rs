//! DescribeAcls: without an authorizer, as Kafka without `authorizer.class.name`, the request is answered
//! SECURITY_DISABLED at the top level with no resources. With one, the principal needs DESCRIBE on the cluster,
//! and the ACLs the filter matches are answered grouped by resource pattern.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_cluster::acl::{AclFilter, AclOperation, AclPermission, PatternType, ResourceType};
use skein_core::{BrokerError, error_code};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::message;

/// Kafka 4.3's message here (CreateAcls and DeleteAcls word it differently).
const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

pub(crate) fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeAclsRequest,
    _version: i16,
) -> DescribeAclsResponse {
    let refuse = |error: BrokerError| {
        DescribeAclsResponse::default()
            .with_error_code(error_code(&error))
            .with_error_message(message(error.to_string()))
    };
    if !broker.authorized_on_cluster(ctx, AclOperation::Describe) {
        return refuse(BrokerError::ClusterAuthorizationFailed);
    }
    if !broker.config.authorizer_enabled() {
        return refuse(BrokerError::SecurityDisabled(NO_AUTHORIZER));
    }
    let filter = filter_from_wire(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    );
    if let Err(reason) = filter.validate() {
        return refuse(BrokerError::InvalidRequest(reason));
    }
    let image = broker.cluster.image();
    let mut resources: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> = BTreeMap::new();
    for binding in image.acls().iter().filter(|b| filter.matches(b)) {
        let key = (binding.resource_type, binding.resource_name.clone(), binding.pattern_type);
        resources.entry(key).or_default().push(
            AclDescription::default()
                .with_principal(StrBytes::from_string(binding.principal.clone()))
                .with_host(StrBytes::from_string(binding.host.clone()))
                .with_operation(binding.operation.code())
                .with_permission_type(binding.permission.code()),
        );
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

/// A DescribeAcls or DeleteAcls filter from its wire fields.
pub(crate) fn filter_from_wire(
    resource_type: i8,
    resource_name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> AclFilter {
    AclFilter {
        resource_type: ResourceType::from_code(resource_type),
        resource_name: resource_name.map(ToString::to_string),
        pattern_type: PatternType::from_code(pattern_type),
        principal: principal.map(ToString::to_string),
        host: host.map(ToString::to_string),
        operation: AclOperation::from_code(operation),
        permission: AclPermission::from_code(permission),
    }
}
