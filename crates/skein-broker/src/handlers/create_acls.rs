//! CreateAcls: without an authorizer, as Kafka without `authorizer.class.name`, every creation is answered
//! SECURITY_DISABLED and none is kept. With one, the principal needs ALTER on the cluster; each binding is
//! checked as Kafka checks it (INVALID_REQUEST with Kafka's message), and the valid ones are written to the
//! metadata log (creating one that exists succeeds and changes nothing).
//!
//! As Kafka's request parser: a value only a filter may hold (pattern type MATCH or ANY; resource type, operation
//! or permission ANY) fails every creation of the request with UNKNOWN_SERVER_ERROR, and a value Kafka does not
//! know (UNKNOWN, or a code outside its enums) closes the connection ([`check_codes`]).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use skein_cluster::acl::{self, AclBinding, AclOperation, AclPermission, PatternType, ResourceType};
use skein_core::{BrokerError, error_code};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::controller_error;
use crate::handlers::message;

/// Kafka 4.3's message here (DescribeAcls words it differently).
const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// How long the answer waits for this broker's image to show the change.
pub(crate) const APPLIED_WAIT: Duration = Duration::from_secs(10);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreateAclsRequest,
    _version: i16,
) -> CreateAclsResponse {
    let failed = |error: &BrokerError| {
        AclCreationResult::default().with_error_code(error_code(error)).with_error_message(message(error.to_string()))
    };
    let refuse_all = |error: BrokerError| {
        CreateAclsResponse::default().with_results(request.creations.iter().map(|_| failed(&error)).collect())
    };
    if !broker.authorized_on_cluster(ctx, AclOperation::Alter) {
        return refuse_all(BrokerError::ClusterAuthorizationFailed);
    }
    if !broker.config.authorizer_enabled() {
        return refuse_all(BrokerError::SecurityDisabled(NO_AUTHORIZER));
    }
    if request.creations.iter().any(filter_only_value) {
        let unparsed = BrokerError::UnknownServerError(String::new());
        let results = request
            .creations
            .iter()
            .map(|_| AclCreationResult::default().with_error_code(error_code(&unparsed)).with_error_message(None))
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let checked: Vec<Result<AclBinding, BrokerError>> =
        request.creations.iter().map(|creation| check(creation).map_err(BrokerError::InvalidRequestMessage)).collect();
    let valid: Vec<AclBinding> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let mut stored = Ok(());
    if !valid.is_empty() {
        stored = broker.cluster.controller().create_acls(valid.clone()).await.map_err(controller_error);
        if stored.is_ok() {
            let shows = |image: &skein_cluster::MetadataImage| valid.iter().all(|b| image.acls().contains(b));
            if broker.cluster.wait_for(APPLIED_WAIT, shows).await.is_none() {
                tracing::warn!("created ACLs not visible here within {APPLIED_WAIT:?}");
            }
        }
    }
    let results = checked
        .iter()
        .map(|outcome| match (outcome, &stored) {
            (Err(err), _) | (Ok(_), Err(err)) => failed(err),
            (Ok(_), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// A creation as a binding, checked as Kafka's broker and controller check it.
fn check(creation: &AclCreation) -> Result<AclBinding, String> {
    let binding = AclBinding {
        resource_type: ResourceType::from_code(creation.resource_type),
        resource_name: creation.resource_name.to_string(),
        pattern_type: PatternType::from_code(creation.resource_pattern_type),
        principal: creation.principal.to_string(),
        host: creation.host.to_string(),
        operation: AclOperation::from_code(creation.operation),
        permission: AclPermission::from_code(creation.permission_type),
    };
    if binding.resource_type == ResourceType::Cluster && binding.resource_name != acl::CLUSTER_NAME {
        return Err(format!("The only valid name for the CLUSTER resource is {}", acl::CLUSTER_NAME));
    }
    if binding.resource_name.is_empty() {
        return Err("Invalid empty resource name".to_owned());
    }
    if !binding.principal.contains(':') {
        return Err(format!(
            "Could not parse principal from `{}` (no colon is present separating the principal type from the \
             principal name)",
            binding.principal
        ));
    }
    binding.validate()?;
    Ok(binding)
}

/// Whether a creation holds a value only a filter may hold.
fn filter_only_value(creation: &AclCreation) -> bool {
    ResourceType::from_code(creation.resource_type) == ResourceType::Any
        || matches!(PatternType::from_code(creation.resource_pattern_type), PatternType::Any | PatternType::Match)
        || AclOperation::from_code(creation.operation) == AclOperation::Any
        || AclPermission::from_code(creation.permission_type) == AclPermission::Any
}

/// Refuses a creation holding a value Kafka's enums do not have (or UNKNOWN): Kafka cannot parse such a request
/// and closes the connection.
pub(crate) fn check_codes(request: &CreateAclsRequest) -> Result<(), BrokerError> {
    let unknown = request.creations.iter().any(|c| {
        ResourceType::from_code(c.resource_type) == ResourceType::Unknown
            || PatternType::from_code(c.resource_pattern_type) == PatternType::Unknown
            || AclOperation::from_code(c.operation) == AclOperation::Unknown
            || AclPermission::from_code(c.permission_type) == AclPermission::Unknown
    });
    if unknown { Err(BrokerError::InvalidRequest("an ACL creation holds an unknown value".into())) } else { Ok(()) }
}
