//! DeleteAcls: Skein has no authorizer, so, as Kafka without `authorizer.class.name`, every filter of the request
//! is answered SECURITY_DISABLED with no matching ACLs.

use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use skein_core::{BrokerError, error_code};

use crate::handlers::message;

/// Kafka 4.3's message here (DescribeAcls words it differently).
const NO_AUTHORIZER: &str = "No Authorizer is configured.";

pub(crate) fn handle(request: DeleteAclsRequest, _version: i16) -> DeleteAclsResponse {
    let error = BrokerError::SecurityDisabled(NO_AUTHORIZER);
    let filter_results = request
        .filters
        .iter()
        .map(|_| {
            DeleteAclsFilterResult::default()
                .with_error_code(error_code(&error))
                .with_error_message(message(error.to_string()))
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(filter_results)
}
