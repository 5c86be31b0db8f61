//! CreateAcls: Skein has no authorizer, so, as Kafka without `authorizer.class.name`, every creation of the
//! request is answered SECURITY_DISABLED and none is kept.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use skein_core::{BrokerError, error_code};

use crate::handlers::message;

/// Kafka 4.3's message here (DescribeAcls words it differently).
const NO_AUTHORIZER: &str = "No Authorizer is configured.";

pub(crate) fn handle(request: CreateAclsRequest, _version: i16) -> CreateAclsResponse {
    let error = BrokerError::SecurityDisabled(NO_AUTHORIZER);
    let results = request
        .creations
        .iter()
        .map(|_| {
            AclCreationResult::default()
                .with_error_code(error_code(&error))
                .with_error_message(message(error.to_string()))
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
