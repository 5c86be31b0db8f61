//! DescribeUserScramCredentials (KIP-554): each user's SCRAM mechanisms and iteration counts, from this broker's
//! metadata image (never a salt or key). No user list (or an empty one) means every user with a credential; a named user without one
//! gets RESOURCE_NOT_FOUND, a user named twice DUPLICATE_RESOURCE.

use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_cluster::UserScramCredentialRecord;
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::message;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
    _version: i16,
) -> DescribeUserScramCredentialsResponse {
    if !broker.authorized_on_cluster(ctx, AclOperation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(error_code(&BrokerError::ClusterAuthorizationFailed));
    }
    let image = broker.cluster.image();
    let credentials = image.scram_credentials();
    // No list and an empty list both mean every user (Kafka's reading; librdkafka sends an empty one).
    let results = match request.users.filter(|users| !users.is_empty()) {
        None => credentials.iter().map(|(user, by_mechanism)| described(user, by_mechanism.values())).collect(),
        Some(users) => {
            let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
            let mut results: Vec<DescribeUserScramCredentialsResult> = Vec::new();
            for (index, name) in names.iter().enumerate() {
                if names[..index].contains(name) {
                    continue;
                }
                let result = if names[index + 1..].contains(name) {
                    failed(
                        name,
                        BrokerError::DuplicateResource(format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                        )),
                    )
                } else {
                    match credentials.get(*name) {
                        Some(by_mechanism) => described(name, by_mechanism.values()),
                        None => failed(
                            name,
                            BrokerError::ResourceNotFound(format!(
                                "Attempt to describe a user credential that does not exist: {name}"
                            )),
                        ),
                    }
                };
                results.push(result);
            }
            results
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

fn described<'a>(
    user: &str,
    credentials: impl Iterator<Item = &'a UserScramCredentialRecord>,
) -> DescribeUserScramCredentialsResult {
    let infos = credentials
        .map(|c| CredentialInfo::default().with_mechanism(c.mechanism).with_iterations(c.iterations))
        .collect();
    DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_owned()))
        .with_credential_infos(infos)
}

fn failed(user: &str, err: BrokerError) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_owned()))
        .with_error_code(error_code(&err))
        .with_error_message(message(err.to_string()))
}
