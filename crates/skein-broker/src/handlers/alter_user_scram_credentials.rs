//! AlterUserScramCredentials (KIP-554): sets and deletes users' SCRAM credentials, through the controller, so
//! every broker has them (they live in the metadata log). The client sends the salted password; only the stored
//! key and server key derived from it are kept.
//!
//! One result per user. A user fails as a whole when any of its alterations does: an unknown mechanism
//! (UNSUPPORTED_SASL_MECHANISM), an empty name or iterations outside 4096..=16384 (UNACCEPTABLE_CREDENTIAL), the
//! same user in two alterations, whatever their mechanisms (DUPLICATE_RESOURCE, as Kafka), or deleting a
//! credential that does not exist (RESOURCE_NOT_FOUND). Answered once this broker's image shows the change.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_cluster::{MetadataImage, UserScramCredentialRecord};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::controller_error;
use crate::handlers::message;
use crate::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramMechanism};

/// How long the answer waits for this broker's image to show an applied change.
const APPLIED_WAIT: Duration = Duration::from_secs(10);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
    _version: i16,
) -> AlterUserScramCredentialsResponse {
    let authorized = broker.authorized_on_cluster(ctx, AclOperation::Alter);
    // Users in the order they first appear, each with its first error.
    let mut users: Vec<(String, Option<BrokerError>)> = Vec::new();
    // Kafka takes one alteration per user and request, whatever the mechanisms.
    let mut seen: Vec<String> = Vec::new();
    let fail = |users: &mut Vec<(String, Option<BrokerError>)>, name: &str, err: Option<BrokerError>| match users
        .iter_mut()
        .find(|(user, _)| user == name)
    {
        Some((_, first)) => {
            if first.is_none() {
                *first = err;
            }
        }
        None => users.push((name.to_owned(), err)),
    };
    let mut check = |name: &str, mechanism: i8, users: &mut Vec<(String, Option<BrokerError>)>| {
        let err = if name.is_empty() {
            Some(BrokerError::UnacceptableCredential("Username must not be empty".into()))
        } else if ScramMechanism::from_type(mechanism).is_none() {
            Some(BrokerError::UnsupportedSaslMechanism("Unknown SCRAM mechanism".into()))
        } else if seen.iter().any(|n| n == name) {
            Some(BrokerError::DuplicateResource("A user credential cannot be altered twice in the same request".into()))
        } else {
            None
        };
        seen.push(name.to_owned());
        fail(users, name, err);
    };
    for deletion in &request.deletions {
        check(deletion.name.as_str(), deletion.mechanism, &mut users);
    }
    for upsertion in &request.upsertions {
        check(upsertion.name.as_str(), upsertion.mechanism, &mut users);
        let iterations = upsertion.iterations;
        if iterations < MIN_ITERATIONS {
            let err = BrokerError::UnacceptableCredential("Too few iterations".into());
            fail(&mut users, upsertion.name.as_str(), Some(err));
        } else if iterations > MAX_ITERATIONS {
            let err = BrokerError::UnacceptableCredential("Too many iterations".into());
            fail(&mut users, upsertion.name.as_str(), Some(err));
        }
    }

    // Without ALTER on the cluster every user is refused (and nothing is altered).
    if !authorized {
        for (_, first) in users.iter_mut() {
            *first = Some(BrokerError::ClusterAuthorizationFailed);
        }
    }
    let valid = |name: &str| users.iter().any(|(user, err)| user == name && err.is_none());
    let deletions: Vec<(String, i8)> = request
        .deletions
        .iter()
        .filter(|d| valid(d.name.as_str()))
        .map(|d| (d.name.to_string(), d.mechanism))
        .collect();
    let upsertions: Vec<UserScramCredentialRecord> = request
        .upsertions
        .iter()
        .filter(|u| valid(u.name.as_str()))
        .filter_map(|u| {
            let mechanism = ScramMechanism::from_type(u.mechanism)?;
            let (stored_key, server_key) = mechanism.stored_and_server_keys(&u.salted_password);
            Some(UserScramCredentialRecord {
                name: u.name.to_string(),
                mechanism: u.mechanism,
                salt: u.salt.to_vec(),
                stored_key,
                server_key,
                iterations: u.iterations,
            })
        })
        .collect();

    if !deletions.is_empty() || !upsertions.is_empty() {
        match broker.cluster.controller().alter_scram_credentials(deletions.clone(), upsertions.clone()).await {
            Ok(failed) => {
                for (name, err) in failed {
                    fail(&mut users, &name, Some(controller_error(err)));
                }
                let applied = |name: &str| users.iter().any(|(user, err)| user == name && err.is_none());
                let shows = |image: &MetadataImage| {
                    deletions
                        .iter()
                        .filter(|(name, _)| applied(name))
                        .all(|(name, mechanism)| image.scram_credential(name, *mechanism).is_none())
                        && upsertions
                            .iter()
                            .filter(|r| applied(&r.name))
                            .all(|r| image.scram_credential(&r.name, r.mechanism) == Some(r))
                };
                if broker.cluster.wait_for(APPLIED_WAIT, shows).await.is_none() {
                    tracing::warn!("SCRAM credential changes not visible here within {APPLIED_WAIT:?}");
                }
            }
            Err(err) => {
                let err = controller_error(err);
                for (_, first) in users.iter_mut().filter(|(_, first)| first.is_none()) {
                    *first = Some(err.clone());
                }
            }
        }
    }

    let results = users
        .into_iter()
        .map(|(user, err)| {
            let result = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match err {
                None => result,
                Some(err) => result.with_error_code(error_code(&err)).with_error_message(message(err.to_string())),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
