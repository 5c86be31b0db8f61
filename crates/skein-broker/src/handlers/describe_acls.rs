//! DescribeAcls: Skein has no authorizer, so, as Kafka without `authorizer.class.name`, the request is answered
//! SECURITY_DISABLED at the top level with no resources.

use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use skein_core::{BrokerError, error_code};

use crate::handlers::message;

/// Kafka 4.3's message here (CreateAcls and DeleteAcls word it differently).
const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

pub(crate) fn handle(_request: DescribeAclsRequest, _version: i16) -> DescribeAclsResponse {
    let error = BrokerError::SecurityDisabled(NO_AUTHORIZER);
    DescribeAclsResponse::default().with_error_code(error_code(&error)).with_error_message(message(error.to_string()))
}
