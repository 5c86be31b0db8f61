//! CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken and DescribeDelegationToken (KIP-48).
//!
//! Skein has no delegation tokens: it answers as Kafka does without `delegation.token.secret.key`. Kafka first
//! refuses every token request on a PLAINTEXT listener and on SSL without a client certificate
//! (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED); on an authenticated listener it checks a creation's owner and renewers,
//! and then answers DELEGATION_TOKEN_AUTH_DISABLED.

use std::sync::Arc;

use kafka_protocol::messages::{
    CreateDelegationTokenRequest, CreateDelegationTokenResponse, DescribeDelegationTokenRequest,
    DescribeDelegationTokenResponse, ExpireDelegationTokenRequest, ExpireDelegationTokenResponse,
    RenewDelegationTokenRequest, RenewDelegationTokenResponse,
};
use kafka_protocol::protocol::StrBytes;
use skein_core::security::{ANONYMOUS, SecurityProtocol};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;

/// Kafka's `allowTokenRequests`: only an authenticated channel may ask (Skein has no token-authenticated one).
fn token_requests_allowed(broker: &Broker, ctx: &RequestContext) -> bool {
    match broker.cluster.layout().security_protocol(&ctx.listener) {
        SecurityProtocol::Plaintext => false,
        SecurityProtocol::Ssl => ctx.principal != ANONYMOUS,
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => true,
    }
}

/// The refusal every token request but a creation gets.
fn refusal(broker: &Broker, ctx: &RequestContext) -> i16 {
    if token_requests_allowed(broker, ctx) {
        error_code(&BrokerError::DelegationTokenAuthDisabled)
    } else {
        error_code(&BrokerError::DelegationTokenRequestNotAllowed)
    }
}

pub(crate) async fn create(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreateDelegationTokenRequest,
    version: i16,
) -> CreateDelegationTokenResponse {
    let (requester_type, requester_name) = ctx.principal.split_once(':').unwrap_or(("User", &ctx.principal));
    // The owner is the requester unless the request names another (v3, KIP-373).
    let owner = match (&request.owner_principal_type, &request.owner_principal_name) {
        (Some(owner_type), Some(owner_name)) if !owner_name.is_empty() => {
            (owner_type.as_str().to_owned(), owner_name.as_str().to_owned())
        }
        _ => (requester_type.to_owned(), requester_name.to_owned()),
    };
    let owner_is_requester = owner.0 == requester_type && owner.1 == requester_name;
    let error = if !token_requests_allowed(broker, ctx) {
        BrokerError::DelegationTokenRequestNotAllowed
    } else if !owner_is_requester
        && !broker.authorization(ctx).allows(
            AclOperation::CreateTokens,
            ResourceType::User,
            &format!("{}:{}", owner.0, owner.1),
        )
    {
        BrokerError::DelegationTokenAuthorizationFailed
    } else if request.renewers.iter().any(|renewer| renewer.principal_type.as_str() != "User") {
        BrokerError::InvalidPrincipalType
    } else {
        BrokerError::DelegationTokenAuthDisabled
    };
    let response = CreateDelegationTokenResponse::default()
        .with_error_code(error_code(&error))
        .with_principal_type(StrBytes::from_string(owner.0))
        .with_principal_name(StrBytes::from_string(owner.1))
        .with_issue_timestamp_ms(-1)
        .with_expiry_timestamp_ms(-1)
        .with_max_timestamp_ms(-1);
    // The requester is named from v3 on (KIP-373); earlier versions cannot carry it.
    if version >= 3 {
        response
            .with_token_requester_principal_type(StrBytes::from_string(requester_type.to_owned()))
            .with_token_requester_principal_name(StrBytes::from_string(requester_name.to_owned()))
    } else {
        response
    }
}

pub(crate) async fn renew(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _request: RenewDelegationTokenRequest,
    _version: i16,
) -> RenewDelegationTokenResponse {
    RenewDelegationTokenResponse::default().with_error_code(refusal(broker, ctx)).with_expiry_timestamp_ms(-1)
}

pub(crate) async fn expire(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _request: ExpireDelegationTokenRequest,
    _version: i16,
) -> ExpireDelegationTokenResponse {
    ExpireDelegationTokenResponse::default().with_error_code(refusal(broker, ctx)).with_expiry_timestamp_ms(-1)
}

pub(crate) async fn describe(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _request: DescribeDelegationTokenRequest,
    _version: i16,
) -> DescribeDelegationTokenResponse {
    DescribeDelegationTokenResponse::default().with_error_code(refusal(broker, ctx))
}
