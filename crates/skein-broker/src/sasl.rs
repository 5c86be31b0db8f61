//! SASL authentication of a connection on a SASL_PLAINTEXT or SASL_SSL listener, as Kafka's broker does it:
//! until the client is authenticated only ApiVersions, SaslHandshake (v1) and SaslAuthenticate are served and any
//! other request closes the connection; a failed authentication is answered SASL_AUTHENTICATION_FAILED and the
//! connection closed.
//!
//! Mechanisms: SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802/7677) against the credentials in the metadata image
//! (AlterUserScramCredentials), and PLAIN, whose password is checked against the same credentials (Kafka's PLAIN
//! reads users from its JAAS file instead; Skein keeps one store, salted and hashed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use kafka_protocol::messages::SaslHandshakeResponse;
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use ring::rand::SecureRandom;
use skein_cluster::UserScramCredentialRecord;
use skein_core::{BrokerError, error_code};
use skein_protocol::RequestFrame;

use crate::broker::Broker;
use crate::handlers::message;
use crate::router::{Outcome, RequestQuota, respond};
use crate::scram::{ScramMechanism, keys_equal};

/// A SASL mechanism Skein serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
}

impl SaslMechanism {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::Scram(ScramMechanism::Sha256)),
            "SCRAM-SHA-512" => Some(SaslMechanism::Scram(ScramMechanism::Sha512)),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(scram) => scram.name(),
        }
    }
}

/// Where a SCRAM exchange is after the client's first message.
struct ScramExchange {
    mechanism: ScramMechanism,
    user: String,
    credential: UserScramCredentialRecord,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

enum State {
    AwaitingHandshake,
    Handshaken(SaslMechanism),
    ScramFinal(Box<ScramExchange>),
    Authenticated,
}

/// What the connection does after a request served by [`SaslSession::serve`].
pub struct SaslStep {
    pub outcome: Outcome,
    /// Close the connection once the response is written (a failed authentication).
    pub close_after: Option<String>,
}

/// One connection's SASL state.
pub struct SaslSession {
    mechanisms: Vec<SaslMechanism>,
    state: State,
    /// The authenticated user (principal `User:<name>`), and the mechanism it authenticated with.
    user: Option<String>,
    mechanism: Option<SaslMechanism>,
    /// `connections.max.reauth.ms` (KIP-368): how long an authentication lasts, if it expires.
    session_lifetime: Option<Duration>,
    expires_at: Option<Instant>,
}

impl SaslSession {
    pub fn new(mechanisms: Vec<SaslMechanism>, session_lifetime: Option<Duration>) -> Self {
        SaslSession {
            mechanisms,
            state: State::AwaitingHandshake,
            user: None,
            mechanism: None,
            session_lifetime,
            expires_at: None,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated)
    }

    /// Whether this request is the session's to serve: every request until authenticated, and a SaslHandshake
    /// after (a re-authentication, KIP-368).
    pub fn serves(&self, api_key: i16) -> bool {
        !self.is_authenticated() || api_key == ApiKey::SaslHandshake as i16
    }

    /// Whether the authentication has expired (`connections.max.reauth.ms`) and this request does not start a
    /// re-authentication: the connection must close rather than serve it.
    pub fn expired(&self, api_key: i16, now: Instant) -> bool {
        self.is_authenticated()
            && api_key != ApiKey::SaslHandshake as i16
            && self.expires_at.is_some_and(|expiry| now >= expiry)
    }

    /// The authenticated user's name.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Serves a request [`Self::serves`]: ApiVersions, SaslHandshake and SaslAuthenticate until authenticated
    /// (anything else closes the connection), and a re-authentication after.
    pub async fn serve(
        &mut self,
        broker: &Arc<Broker>,
        frame: RequestFrame,
        client_host: &str,
        listener: &str,
    ) -> SaslStep {
        let started = Instant::now();
        let (api_key, api_version) = (frame.api_key, frame.api_version);
        let sasl_api = [ApiKey::ApiVersions, ApiKey::SaslHandshake, ApiKey::SaslAuthenticate]
            .iter()
            .any(|key| *key as i16 == api_key);
        let step = self.step(broker, frame, client_host, listener).await;
        // Only what is served is counted as a request; anything else closed the connection (a protocol error).
        if sasl_api {
            broker.metrics.record_request(api_key, api_version, &step.outcome, started.elapsed());
        }
        step
    }

    async fn step(&mut self, broker: &Arc<Broker>, frame: RequestFrame, client_host: &str, listener: &str) -> SaslStep {
        let step = |outcome| SaslStep { outcome, close_after: None };
        match ApiKey::try_from(frame.api_key) {
            Ok(ApiKey::ApiVersions) => step(crate::handlers::api_versions::handle(&frame)),
            Ok(ApiKey::SaslHandshake)
                if frame.api_version == 1 && matches!(self.state, State::AwaitingHandshake | State::Authenticated) =>
            {
                let offered: Vec<StrBytes> =
                    self.mechanisms.iter().map(|m| StrBytes::from_static_str(m.name())).collect();
                let mut chosen = None;
                // A re-authentication (KIP-368) keeps the mechanism of the first authentication.
                let first = self.mechanism;
                let outcome = respond(RequestQuota::Exempt, frame, |request: SaslHandshakeRequest, _| {
                    let wanted = SaslMechanism::parse(request.mechanism.as_str())
                        .filter(|m| self.mechanisms.contains(m))
                        .filter(|m| first.is_none_or(|first| first == *m));
                    chosen = wanted;
                    let response = SaslHandshakeResponse::default().with_mechanisms(offered);
                    async move {
                        match wanted {
                            Some(_) => response,
                            None => response
                                .with_error_code(error_code(&BrokerError::UnsupportedSaslMechanism(String::new()))),
                        }
                    }
                })
                .await;
                if let Some(mechanism) = chosen {
                    self.state = State::Handshaken(mechanism);
                }
                step(outcome)
            }
            Ok(ApiKey::SaslAuthenticate) if matches!(self.state, State::Handshaken(_) | State::ScramFinal(_)) => {
                let image = broker.cluster.image();
                let mut failure = None;
                let lifetime_ms = self.session_lifetime.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                let outcome = respond(RequestQuota::Exempt, frame, |request: SaslAuthenticateRequest, version| {
                    let answer = self.authenticate(&request.auth_bytes, |user, mechanism| {
                        image.scram_credential(user, mechanism.type_id()).cloned()
                    });
                    let response = match answer {
                        // v1+: how long the session lasts (0: no limit), once the authentication is complete.
                        Ok(bytes) if version >= 1 && self.is_authenticated() => SaslAuthenticateResponse::default()
                            .with_auth_bytes(bytes)
                            .with_session_lifetime_ms(lifetime_ms),
                        Ok(bytes) => SaslAuthenticateResponse::default().with_auth_bytes(bytes),
                        Err(reason) => {
                            let err = BrokerError::SaslAuthenticationFailed(reason);
                            failure = Some(err.to_string());
                            SaslAuthenticateResponse::default()
                                .with_error_code(error_code(&err))
                                .with_error_message(message(err.to_string()))
                        }
                    };
                    async move { response }
                })
                .await;
                if let Some(reason) = &failure {
                    broker.metrics.sasl_authentication_failed();
                    tracing::info!(%client_host, %listener, %reason, "SASL authentication failed");
                }
                SaslStep { outcome, close_after: failure }
            }
            // Anything else before authentication, as Kafka: the connection is closed unanswered.
            _ => step(Outcome::Close(format!(
                "api key {} version {} before SASL authentication completed",
                frame.api_key, frame.api_version
            ))),
        }
    }

    /// One SaslAuthenticate token: the server's answer, or why authentication failed (Kafka's messages).
    fn authenticate(
        &mut self,
        token: &[u8],
        credential: impl Fn(&str, ScramMechanism) -> Option<UserScramCredentialRecord>,
    ) -> Result<Bytes, String> {
        match std::mem::replace(&mut self.state, State::AwaitingHandshake) {
            State::Handshaken(SaslMechanism::Plain) => {
                let user = plain(token, &credential).ok_or("Authentication failed: Invalid username or password")?;
                self.authenticated(SaslMechanism::Plain, user)?;
                Ok(Bytes::new())
            }
            State::Handshaken(SaslMechanism::Scram(mechanism)) => {
                let invalid = || scram_failure(mechanism);
                let text = std::str::from_utf8(token).map_err(|_| invalid())?;
                let (user, client_nonce, client_first_bare) = parse_client_first(text).ok_or_else(invalid)?;
                let credential = credential(&user, mechanism).ok_or_else(invalid)?;
                let mut random = [0u8; 24];
                ring::rand::SystemRandom::new().fill(&mut random).map_err(|_| invalid())?;
                let nonce = format!("{client_nonce}{}", BASE64.encode(random).replace(['+', '/', '='], "x"));
                let server_first =
                    format!("r={nonce},s={},i={}", BASE64.encode(&credential.salt), credential.iterations);
                let answer = Bytes::from(server_first.clone().into_bytes());
                self.state = State::ScramFinal(Box::new(ScramExchange {
                    mechanism,
                    user,
                    credential,
                    nonce,
                    client_first_bare,
                    server_first,
                }));
                Ok(answer)
            }
            State::ScramFinal(exchange) => {
                let invalid = || scram_failure(exchange.mechanism);
                let text = std::str::from_utf8(token).map_err(|_| invalid())?;
                let server_signature = verify_client_final(&exchange, text).ok_or_else(invalid)?;
                self.authenticated(SaslMechanism::Scram(exchange.mechanism), exchange.user.clone())?;
                Ok(Bytes::from(format!("v={}", BASE64.encode(server_signature)).into_bytes()))
            }
            State::AwaitingHandshake | State::Authenticated => Err("Unexpected SaslAuthenticate request".into()),
        }
    }
}

impl SaslSession {
    /// A completed authentication: starts the session, or renews it when the same user re-authenticates.
    fn authenticated(&mut self, mechanism: SaslMechanism, user: String) -> Result<(), String> {
        if let Some(previous) = &self.user
            && *previous != user
        {
            return Err(format!("Cannot change principals during re-authentication from User:{previous}: User:{user}"));
        }
        self.user = Some(user);
        self.mechanism = Some(mechanism);
        self.expires_at = self.session_lifetime.map(|lifetime| Instant::now() + lifetime);
        self.state = State::Authenticated;
        Ok(())
    }
}

/// Kafka's message for a SCRAM exchange that fails (unknown user, wrong proof, malformed message).
fn scram_failure(mechanism: ScramMechanism) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
        mechanism.name()
    )
}

/// PLAIN (RFC 4616): `authzid \0 authcid \0 password`; the password checked against the user's SCRAM credential.
fn plain(
    token: &[u8],
    credential: &impl Fn(&str, ScramMechanism) -> Option<UserScramCredentialRecord>,
) -> Option<String> {
    let mut parts = token.split(|b| *b == 0);
    let (authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() || (!authzid.is_empty() && authzid != user) {
        return None;
    }
    let user = std::str::from_utf8(user).ok()?;
    for mechanism in [ScramMechanism::Sha512, ScramMechanism::Sha256] {
        if let Some(stored) = credential(user, mechanism) {
            let iterations = u32::try_from(stored.iterations).ok()?;
            let salted = mechanism.salted_password(password, &stored.salt, iterations);
            let (stored_key, _) = mechanism.stored_and_server_keys(&salted);
            return keys_equal(&stored_key, &stored.stored_key).then(|| user.to_owned());
        }
    }
    None
}

/// Splits `gs2-header client-first-bare`: the user (unescaped), the client nonce and the bare message. Channel
/// binding (`p=`) is refused, as Kafka refuses it; an authorization id must be the user itself.
fn parse_client_first(text: &str) -> Option<(String, String, String)> {
    let (flag, rest) = text.split_once(',')?;
    if flag != "n" && flag != "y" {
        return None;
    }
    let (authzid, bare) = rest.split_once(',')?;
    let mut user = None;
    let mut nonce = None;
    for attribute in bare.split(',') {
        if let Some(name) = attribute.strip_prefix("n=") {
            user = Some(name.replace("=2C", ",").replace("=3D", "="));
        } else if let Some(value) = attribute.strip_prefix("r=") {
            nonce = Some(value.to_owned());
        }
    }
    let (user, nonce) = (user?, nonce?);
    if user.is_empty() || nonce.is_empty() {
        return None;
    }
    if let Some(authzid) = authzid.strip_prefix("a=")
        && authzid.replace("=2C", ",").replace("=3D", "=") != user
    {
        return None;
    }
    Some((user, nonce, bare.to_owned()))
}

/// Checks `c=...,r=...,p=proof` and answers the server signature.
fn verify_client_final(exchange: &ScramExchange, text: &str) -> Option<Vec<u8>> {
    let (without_proof, proof) = text.rsplit_once(",p=")?;
    let proof = BASE64.decode(proof).ok()?;
    let mut channel_binding = None;
    let mut nonce = None;
    for attribute in without_proof.split(',') {
        if let Some(value) = attribute.strip_prefix("c=") {
            channel_binding = Some(value);
        } else if let Some(value) = attribute.strip_prefix("r=") {
            nonce = Some(value);
        }
    }
    // "biws" is base64("n,,"), the only header without channel binding or an authorization id Kafka clients send;
    // others are accepted when they decode to a header without channel binding.
    let header = BASE64.decode(channel_binding?).ok()?;
    if !(header.starts_with(b"n,") || header.starts_with(b"y,")) || nonce? != exchange.nonce {
        return None;
    }
    let auth_message = format!("{},{},{}", exchange.client_first_bare, exchange.server_first, without_proof);
    let mechanism = exchange.mechanism;
    let client_signature = mechanism.hmac_sign(&exchange.credential.stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return None;
    }
    let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
    let stored_key = mechanism.hash(&client_key);
    if !keys_equal(&stored_key, &exchange.credential.stored_key) {
        return None;
    }
    Some(mechanism.hmac_sign(&exchange.credential.server_key, auth_message.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram::ScramClient;

    fn alice(mechanism: ScramMechanism, password: &[u8]) -> UserScramCredentialRecord {
        let salted = mechanism.salted_password(password, b"salt", 4096);
        let (stored_key, server_key) = mechanism.stored_and_server_keys(&salted);
        UserScramCredentialRecord {
            name: "alice".into(),
            mechanism: mechanism.type_id(),
            salt: b"salt".to_vec(),
            stored_key,
            server_key,
            iterations: 4096,
        }
    }

    #[test]
    fn scram_exchanges_succeed_only_with_the_password() {
        for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let stored = alice(mechanism, b"secret");
            let lookup = |user: &str, m: ScramMechanism| (user == "alice" && m == mechanism).then(|| stored.clone());
            for (password, accepted) in [("secret", true), ("wrong", false)] {
                let mut session = SaslSession::new(vec![SaslMechanism::Scram(mechanism)], None);
                session.state = State::Handshaken(SaslMechanism::Scram(mechanism));
                let client = ScramClient::new(mechanism, "alice", password, "abc123");
                assert_eq!(client.first(), "n,,n=alice,r=abc123");
                let server_first = session.authenticate(client.first().as_bytes(), lookup).expect("first");
                let server_first = std::str::from_utf8(&server_first).expect("utf8").to_owned();
                assert!(server_first.starts_with("r=abc123"), "{server_first}");
                let (last, server_signature) = client.finish(&server_first).expect("client final");
                let answer = session.authenticate(last.as_bytes(), lookup);
                assert_eq!(answer.is_ok(), accepted, "{answer:?}");
                assert_eq!(session.is_authenticated(), accepted);
                if accepted {
                    let expected = format!("v={}", BASE64.encode(server_signature));
                    assert_eq!(answer.expect("ok"), expected.as_bytes(), "the server proves the credential");
                    assert_eq!(session.user(), Some("alice"));
                }
            }
            let mut session = SaslSession::new(vec![SaslMechanism::Scram(mechanism)], None);
            session.state = State::Handshaken(SaslMechanism::Scram(mechanism));
            let unknown = session.authenticate(b"n,,n=bob,r=abc", lookup).expect_err("unknown user");
            assert!(unknown.contains("invalid credentials"), "{unknown}");
        }
    }

    #[test]
    fn a_reauthentication_keeps_the_user_and_renews_the_session() {
        let mechanism = ScramMechanism::Sha256;
        let alice_credential = alice(mechanism, b"secret");
        let bob_credential = UserScramCredentialRecord { name: "bob".into(), ..alice(mechanism, b"hunter2") };
        let lookup = |user: &str, asked: ScramMechanism| match user {
            "alice" if asked == mechanism => Some(alice_credential.clone()),
            "bob" if asked == mechanism => Some(bob_credential.clone()),
            _ => None,
        };
        let mut session = SaslSession::new(vec![SaslMechanism::Plain], Some(Duration::from_secs(60)));
        session.state = State::Handshaken(SaslMechanism::Plain);
        session.authenticate(b"\0alice\0secret", lookup).expect("alice");
        let now = Instant::now();
        assert!(!session.expired(ApiKey::Metadata as i16, now));
        assert!(session.expired(ApiKey::Metadata as i16, now + Duration::from_secs(61)));
        assert!(!session.expired(ApiKey::SaslHandshake as i16, now + Duration::from_secs(61)));
        assert!(session.serves(ApiKey::SaslHandshake as i16) && !session.serves(ApiKey::Metadata as i16));

        session.state = State::Handshaken(SaslMechanism::Plain);
        session.authenticate(b"\0alice\0secret", lookup).expect("alice again");
        assert!(!session.expired(ApiKey::Metadata as i16, now + Duration::from_secs(59)));
        session.state = State::Handshaken(SaslMechanism::Plain);
        let err = session.authenticate(b"\0bob\0hunter2", lookup).expect_err("another user");
        assert_eq!(err, "Cannot change principals during re-authentication from User:alice: User:bob");
    }

    #[test]
    fn plain_checks_the_password_against_the_scram_credential() {
        let stored = alice(ScramMechanism::Sha256, b"secret");
        let lookup =
            |user: &str, m: ScramMechanism| (user == "alice" && m == ScramMechanism::Sha256).then(|| stored.clone());
        assert_eq!(plain(b"\0alice\0secret", &lookup).as_deref(), Some("alice"));
        assert_eq!(plain(b"alice\0alice\0secret", &lookup).as_deref(), Some("alice"));
        assert_eq!(plain(b"\0alice\0wrong", &lookup), None);
        assert_eq!(plain(b"bob\0alice\0secret", &lookup), None);
        assert_eq!(plain(b"\0bob\0secret", &lookup), None);
        assert_eq!(plain(b"garbage", &lookup), None);
    }
}
