//! Listener security under Kafka's names: the security protocol of a listener (`listener.security.protocol.map`)
//! and the TLS settings of an SSL listener (`ssl.*`, overridden per listener by `listener.name.<name>.ssl.*`).
//!
//! Skein reads PEM only (`ssl.keystore.type` and `ssl.truststore.type` default to `PEM`, where Kafka's default
//! is JKS): a key store is one PEM file holding the private key and its certificate chain
//! (`ssl.keystore.location`) or the same given inline (`ssl.keystore.key`, `ssl.keystore.certificate.chain`);
//! a trust store is a PEM file of CA certificates (`ssl.truststore.location`) or the same inline
//! (`ssl.truststore.certificates`). Encrypted private keys (`ssl.key.password`) are not read.
//!
//! A SASL listener's mechanisms come from `sasl.enabled.mechanisms` (Skein's default: PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-512; Kafka's is GSSAPI, which Skein does not serve).

use crate::config::BrokerConfig;

/// Kafka's security protocols, with the ids brokers register their endpoints with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// Kafka's `SecurityProtocol.id`.
    pub fn id(self) -> i16 {
        match self {
            SecurityProtocol::Plaintext => 0,
            SecurityProtocol::Ssl => 1,
            SecurityProtocol::SaslPlaintext => 2,
            SecurityProtocol::SaslSsl => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// The one authorizer Skein implements, under Kafka's class name (`authorizer.class.name`).
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The principal of a connection that did not authenticate (no SASL, no TLS client certificate).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// The keys a listener may override with `listener.name.<name>.<key>`.
pub const LISTENER_KEYS: &[&str] = &[
    "max.connection.creation.rate",
    "sasl.enabled.mechanisms",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.principal.mapping.rules",
    "ssl.endpoint.identification.algorithm",
];

/// Where PEM text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    File(String),
    Inline(String),
}

/// The server's private key and certificate chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStore {
    /// One PEM file with both.
    File(String),
    /// `ssl.keystore.key` and `ssl.keystore.certificate.chain`.
    Inline { key: String, certificate_chain: String },
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// A client may present a certificate; one that does must be trusted.
    Requested,
    /// A client must present a trusted certificate.
    Required,
}

/// `ssl.enabled.protocols` entries Skein serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// The TLS settings of one SSL listener, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslSettings {
    pub key_store: KeyStore,
    /// CA certificates client certificates must chain to; required unless `client_auth` is `None`.
    pub trust_store: Option<PemSource>,
    pub client_auth: ClientAuth,
    pub versions: Vec<TlsVersion>,
    /// How a client certificate's subject becomes the principal.
    pub principal_mapper: crate::principal::PrincipalMapper,
}

impl BrokerConfig {
    /// Whether an authorizer is configured (ACLs are kept and enforced).
    pub fn authorizer_enabled(&self) -> bool {
        !self.authorizer_class_name.is_empty()
    }

    /// The principals of `super.users`.
    pub fn super_user_principals(&self) -> Vec<String> {
        self.super_users.split(';').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
    }

    /// `key` for `listener`: its `listener.name.<listener>.<key>` override, else the broker-wide value.
    pub fn listener_setting(&self, listener: &str, key: &str) -> Option<String> {
        let prefixed = format!("{}.{key}", listener.to_ascii_uppercase());
        if let Some(value) = self.listener_overrides.get(&prefixed) {
            return Some(value.clone());
        }
        let value = match key {
            "ssl.keystore.type" => Some(self.ssl_keystore_type.clone()),
            "ssl.keystore.location" => self.ssl_keystore_location.clone(),
            "ssl.keystore.certificate.chain" => self.ssl_keystore_certificate_chain.clone(),
            "ssl.keystore.key" => self.ssl_keystore_key.clone(),
            "ssl.key.password" => self.ssl_key_password.clone(),
            "ssl.truststore.type" => Some(self.ssl_truststore_type.clone()),
            "ssl.truststore.location" => self.ssl_truststore_location.clone(),
            "ssl.truststore.certificates" => self.ssl_truststore_certificates.clone(),
            "ssl.client.auth" => Some(self.ssl_client_auth.clone()),
            "ssl.enabled.protocols" => Some(self.ssl_enabled_protocols.clone()),
            "ssl.principal.mapping.rules" => Some(self.ssl_principal_mapping_rules.clone()),
            "sasl.enabled.mechanisms" => Some(self.sasl_enabled_mechanisms.clone()),
            "ssl.endpoint.identification.algorithm" => Some(self.ssl_endpoint_identification_algorithm.clone()),
            // `<mechanism>.sasl.jaas.config` falls back to `sasl.jaas.config`, as in Kafka.
            key if key.ends_with(".sasl.jaas.config") => self.sasl_jaas_config.clone(),
            _ => None,
        };
        value.filter(|v| !v.trim().is_empty())
    }

    /// The TLS settings of SSL listener `listener`; every problem at once, each naming its key.
    pub fn ssl_settings(&self, listener: &str) -> Result<SslSettings, Vec<String>> {
        let mut problems = Vec::new();
        let get = |key: &str| self.listener_setting(listener, key);
        let prefix = format!("listener {listener}: ");
        for key in ["ssl.keystore.type", "ssl.truststore.type"] {
            if let Some(kind) = get(key)
                && !kind.eq_ignore_ascii_case("PEM")
            {
                problems.push(format!(
                    "{prefix}{key} {kind} is not supported: Skein reads PEM key and trust stores (convert with \
                     openssl or keytool and set {key}: PEM)"
                ));
            }
        }
        if get("ssl.key.password").is_some() {
            problems.push(format!(
                "{prefix}ssl.key.password is set, but Skein reads unencrypted private keys only (protect the key \
                 file with its permissions)"
            ));
        }
        let key_store =
            match (get("ssl.keystore.location"), get("ssl.keystore.key"), get("ssl.keystore.certificate.chain")) {
                (Some(path), None, None) => Some(KeyStore::File(path)),
                (None, Some(key), Some(certificate_chain)) => Some(KeyStore::Inline { key, certificate_chain }),
                (None, None, None) => {
                    problems.push(format!(
                        "{prefix}an SSL listener needs ssl.keystore.location (a PEM file with the private key and its \
                     certificate chain) or ssl.keystore.key with ssl.keystore.certificate.chain"
                    ));
                    None
                }
                _ => {
                    problems.push(format!(
                        "{prefix}set either ssl.keystore.location or both ssl.keystore.key and \
                     ssl.keystore.certificate.chain"
                    ));
                    None
                }
            };
        let trust_store = match (get("ssl.truststore.location"), get("ssl.truststore.certificates")) {
            (Some(path), None) => Some(PemSource::File(path)),
            (None, Some(text)) => Some(PemSource::Inline(text)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                problems.push(format!(
                    "{prefix}set either ssl.truststore.location or ssl.truststore.certificates, not both"
                ));
                None
            }
        };
        let client_auth = match get("ssl.client.auth").unwrap_or_default().trim().to_ascii_lowercase().as_str() {
            "" | "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            other => {
                problems.push(format!("{prefix}ssl.client.auth '{other}' is not one of none, requested, required"));
                ClientAuth::None
            }
        };
        if client_auth != ClientAuth::None && trust_store.is_none() {
            problems.push(format!(
                "{prefix}ssl.client.auth is {client_auth:?} but no trust store is set (ssl.truststore.location or \
                 ssl.truststore.certificates: the CA certificates client certificates must chain to)"
            ));
        }
        let mut versions = Vec::new();
        for name in get("ssl.enabled.protocols").unwrap_or_default().split(',').map(str::trim).filter(|n| !n.is_empty())
        {
            match name {
                "TLSv1.2" => versions.push(TlsVersion::Tls12),
                "TLSv1.3" => versions.push(TlsVersion::Tls13),
                other => problems
                    .push(format!("{prefix}ssl.enabled.protocols: '{other}' is not served (TLSv1.2 and TLSv1.3 are)")),
            }
        }
        if versions.is_empty() && problems.is_empty() {
            problems.push(format!("{prefix}ssl.enabled.protocols names no protocol"));
        }
        let rules = get("ssl.principal.mapping.rules").unwrap_or_else(|| "DEFAULT".to_owned());
        let principal_mapper = match crate::principal::PrincipalMapper::parse(&rules) {
            Ok(mapper) => Some(mapper),
            Err(problem) => {
                problems.push(format!("{prefix}ssl.principal.mapping.rules: {problem}"));
                None
            }
        };
        match (key_store, principal_mapper) {
            (Some(key_store), Some(principal_mapper)) if problems.is_empty() => {
                Ok(SslSettings { key_store, trust_store, client_auth, versions, principal_mapper })
            }
            _ => Err(problems),
        }
    }
}

/// One listener-security setting as the broker resource of DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySetting {
    pub name: &'static str,
    /// `None` when unset (Kafka reports null).
    pub value: Option<String>,
    /// Set in the YAML file or on the command line.
    pub explicitly_set: bool,
    /// A secret (Kafka's PASSWORD type): reported without its value.
    pub sensitive: bool,
}

impl BrokerConfig {
    /// The broker-wide security settings, for DescribeConfigs (static: read at start-up).
    pub fn describe_security(&self) -> Vec<SecuritySetting> {
        let setting = |name: &'static str, value: Option<String>, sensitive: bool| SecuritySetting {
            name,
            value,
            explicitly_set: self.explicitly_set.contains(name),
            sensitive,
        };
        vec![
            setting("authorizer.class.name", Some(self.authorizer_class_name.clone()), false),
            setting("sasl.enabled.mechanisms", Some(self.sasl_enabled_mechanisms.clone()), false),
            setting("connections.max.reauth.ms", Some(self.connections_max_reauth_ms.to_string()), false),
            setting("sasl.server.max.receive.size", Some(self.sasl_server_max_receive_size.to_string()), false),
            setting("ssl.client.auth", Some(self.ssl_client_auth.clone()), false),
            setting("ssl.enabled.protocols", Some(self.ssl_enabled_protocols.clone()), false),
            setting("ssl.principal.mapping.rules", Some(self.ssl_principal_mapping_rules.clone()), false),
            setting("ssl.keystore.type", Some(self.ssl_keystore_type.clone()), false),
            setting("ssl.keystore.location", self.ssl_keystore_location.clone(), false),
            setting("ssl.keystore.certificate.chain", self.ssl_keystore_certificate_chain.clone(), true),
            setting("ssl.keystore.key", self.ssl_keystore_key.clone(), true),
            setting("ssl.key.password", self.ssl_key_password.clone(), true),
            setting("ssl.truststore.type", Some(self.ssl_truststore_type.clone()), false),
            setting("ssl.truststore.location", self.ssl_truststore_location.clone(), false),
            setting("ssl.truststore.certificates", self.ssl_truststore_certificates.clone(), true),
            setting(
                "ssl.endpoint.identification.algorithm",
                Some(self.ssl_endpoint_identification_algorithm.clone()),
                false,
            ),
            setting(
                "sasl.mechanism.inter.broker.protocol",
                Some(self.sasl_mechanism_inter_broker_protocol.clone()),
                false,
            ),
            setting("sasl.jaas.config", self.sasl_jaas_config.clone(), true),
        ]
    }
}

/// The SASL mechanisms Skein serves.
pub const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

impl BrokerConfig {
    /// The SASL mechanisms of SASL listener `listener` (`sasl.enabled.mechanisms`, or its listener override).
    pub fn sasl_mechanisms(&self, listener: &str) -> Result<Vec<String>, Vec<String>> {
        let mut problems = Vec::new();
        let mut mechanisms = Vec::new();
        let text = self.listener_setting(listener, "sasl.enabled.mechanisms").unwrap_or_default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if SASL_MECHANISMS.contains(&name) {
                mechanisms.push(name.to_owned());
            } else {
                problems.push(format!(
                    "listener {listener}: sasl.enabled.mechanisms: {name} is not supported ({} are)",
                    SASL_MECHANISMS.join(", ")
                ));
            }
        }
        if mechanisms.is_empty() && problems.is_empty() {
            problems.push(format!("listener {listener}: sasl.enabled.mechanisms names no mechanism"));
        }
        if problems.is_empty() { Ok(mechanisms) } else { Err(problems) }
    }
}

/// Splits `listener.name.<name>.<key>` into the upper-case listener name and a known key: one of
/// [`LISTENER_KEYS`], or `<mechanism>.sasl.jaas.config` (the mechanism lower-cased, as Kafka spells it).
pub fn parse_listener_override(key: &str) -> Result<(String, String), String> {
    let rest = key
        .strip_prefix("listener.name.")
        .ok_or_else(|| format!("'{key}' is not a listener.name.<listener>.<setting> key"))?;
    for known in LISTENER_KEYS {
        if let Some(name) = rest.strip_suffix(known).and_then(|n| n.strip_suffix('.'))
            && !name.is_empty()
            && !name.contains('.')
        {
            return Ok((name.to_ascii_uppercase(), (*known).to_owned()));
        }
    }
    if let Some((name, mechanism)) = rest.strip_suffix(".sasl.jaas.config").and_then(|n| n.split_once('.'))
        && !name.is_empty()
        && !mechanism.is_empty()
        && !mechanism.contains('.')
    {
        return Ok((name.to_ascii_uppercase(), format!("{}.sasl.jaas.config", mechanism.to_ascii_lowercase())));
    }
    Err(format!(
        "unknown key '{key}': per-listener settings are listener.name.<listener>.<setting> with one of {} or \
         <mechanism>.sasl.jaas.config",
        LISTENER_KEYS.join(", ")
    ))
}

/// How this broker logs in on another broker's SASL inter-broker listener.
#[derive(Clone, PartialEq, Eq)]
pub struct InterBrokerLogin {
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for InterBrokerLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterBrokerLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish()
    }
}

impl BrokerConfig {
    /// The login on SASL inter-broker listener `listener`: `sasl.mechanism.inter.broker.protocol`, which the
    /// listener must enable, and the `username` and `password` of its JAAS text
    /// (`listener.name.<listener>.<mechanism>.sasl.jaas.config`, else `sasl.jaas.config`).
    pub fn inter_broker_login(&self, listener: &str) -> Result<InterBrokerLogin, Vec<String>> {
        let mechanism = self.sasl_mechanism_inter_broker_protocol.trim().to_ascii_uppercase();
        let prefix = format!("listener {listener} (inter.broker.listener.name): ");
        if !SASL_MECHANISMS.contains(&mechanism.as_str()) {
            return Err(vec![format!(
                "{prefix}sasl.mechanism.inter.broker.protocol {mechanism} is not supported (set one of {})",
                SASL_MECHANISMS.join(", ")
            )]);
        }
        if !self.sasl_mechanisms(listener).unwrap_or_default().contains(&mechanism) {
            return Err(vec![format!(
                "{prefix}sasl.mechanism.inter.broker.protocol {mechanism} is not among the listener's \
                 sasl.enabled.mechanisms"
            )]);
        }
        let jaas_key = format!("{}.sasl.jaas.config", mechanism.to_ascii_lowercase());
        let Some(jaas) = self.listener_setting(listener, &jaas_key) else {
            return Err(vec![format!(
                "{prefix}the broker's own credentials are missing: set listener.name.{}.{jaas_key} (or \
                 sasl.jaas.config) with username and password options",
                listener.to_ascii_lowercase()
            )]);
        };
        let options = jaas_options(&jaas).map_err(|problem| vec![format!("{prefix}{jaas_key}: {problem}")])?;
        let option = |name: &str| options.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
        match (option("username"), option("password")) {
            (Some(username), Some(password)) => Ok(InterBrokerLogin { mechanism, username, password }),
            _ => Err(vec![format!("{prefix}{jaas_key} needs both a username and a password option")]),
        }
    }
}

impl BrokerConfig {
    /// What keeps listener `listener` (of `protocol`) from carrying this cluster's broker-to-broker requests: over
    /// TLS a broker checks the other's certificate against the listener's trust store (and host name, unless
    /// `ssl.endpoint.identification.algorithm` is empty) and presents the listener's key store as its own; over
    /// SASL it logs in with [`BrokerConfig::inter_broker_login`].
    pub fn inter_broker_problems(&self, listener: &str, protocol: SecurityProtocol) -> Vec<String> {
        let mut problems = Vec::new();
        if matches!(protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
            problems.extend(self.node_tls_problems(listener, "inter.broker.listener.name"));
        }
        if matches!(protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
            && let Err(login_problems) = self.inter_broker_login(listener)
        {
            problems.extend(login_problems);
        }
        problems
    }

    /// What keeps this node from connecting over TLS to the other nodes' listener `listener` (the inter-broker or
    /// the controller listener, `role` naming which): it checks their certificates against a trust store, and their
    /// host names with `https` (Kafka's only algorithm) or not at all (empty).
    pub fn node_tls_problems(&self, listener: &str, role: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let has_trust_store = self.listener_setting(listener, "ssl.truststore.location").is_some()
            || self.listener_setting(listener, "ssl.truststore.certificates").is_some();
        if !has_trust_store {
            problems.push(format!(
                "listener {listener} ({role}): brokers check each other's certificates against a trust store: set \
                 ssl.truststore.location or ssl.truststore.certificates"
            ));
        }
        let algorithm = self.listener_setting(listener, "ssl.endpoint.identification.algorithm");
        if algorithm.as_deref().is_some_and(|name| !name.eq_ignore_ascii_case("https")) {
            problems.push(format!(
                "listener {listener}: ssl.endpoint.identification.algorithm must be https or empty, not {}",
                algorithm.unwrap_or_default()
            ));
        }
        problems
    }
}

/// The options of a JAAS login-module entry, `<LoginModule class> <flag> key="value" key2=value2;`.
pub fn jaas_options(text: &str) -> Result<Vec<(String, String)>, String> {
    let body = text.trim().strip_suffix(';').ok_or("a JAAS entry ends with ';'")?;
    let mut rest = body.trim_start();
    let mut words = 0;
    // The login module's class and its control flag.
    while words < 2 {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if end == 0 {
            return Err("a JAAS entry starts with a login module and a control flag".into());
        }
        rest = rest[end..].trim_start();
        words += 1;
    }
    let mut options = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| format!("'{rest}' is not key=value"))?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("'{key}' is not an option name"));
        }
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| format!("the value of {key} has no closing quote"))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        options.push((key.to_owned(), value.to_owned()));
        rest = remaining.trim_start();
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_options_are_read_as_kafka_writes_them() {
        let text = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="broker"
            password="s3 cr=t" debug=true;"#;
        let options = jaas_options(text).expect("parses");
        let expected = [("username", "broker"), ("password", "s3 cr=t"), ("debug", "true")];
        assert_eq!(options, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert!(jaas_options("org.Module required username=\"x\"").is_err(), "no ';'");
        assert!(jaas_options("org.Module required password=\"open;").is_err(), "no closing quote");
    }

    #[test]
    fn the_inter_broker_login_comes_from_the_listeners_jaas_text() {
        let mut config =
            BrokerConfig { sasl_mechanism_inter_broker_protocol: "SCRAM-SHA-512".into(), ..Default::default() };
        let (listener, key) =
            parse_listener_override("listener.name.internal.SCRAM-SHA-512.sasl.jaas.config").expect("known");
        assert_eq!((listener.as_str(), key.as_str()), ("INTERNAL", "scram-sha-512.sasl.jaas.config"));
        config.listener_overrides.insert(
            format!("{listener}.{key}"),
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="b" password="p";"#.into(),
        );
        let login = config.inter_broker_login("INTERNAL").expect("login");
        assert_eq!(
            (login.mechanism.as_str(), login.username.as_str(), login.password.as_str()),
            ("SCRAM-SHA-512", "b", "p")
        );
        assert!(!format!("{login:?}").contains("password"), "the password stays out of logs");
        let other = config.inter_broker_login("OTHER").expect_err("no credentials for that listener");
        assert!(other[0].contains("listener.name.other.scram-sha-512.sasl.jaas.config"), "{other:?}");
        config.sasl_mechanism_inter_broker_protocol = "GSSAPI".into();
        assert!(config.inter_broker_login("INTERNAL").expect_err("GSSAPI")[0].contains("not supported"));
    }

    fn ssl_config() -> BrokerConfig {
        BrokerConfig { ssl_keystore_location: Some("/keys/server.pem".into()), ..BrokerConfig::default() }
    }

    #[test]
    fn defaults_read_a_pem_key_store_without_client_certificates() {
        let settings = ssl_config().ssl_settings("SSL").expect("valid");
        assert_eq!(settings.key_store, KeyStore::File("/keys/server.pem".into()));
        assert_eq!(settings.client_auth, ClientAuth::None);
        assert_eq!(settings.trust_store, None);
        assert_eq!(settings.versions, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
    }

    #[test]
    fn a_listener_override_wins_over_the_broker_wide_value() {
        let mut config = ssl_config();
        config.listener_overrides.insert("EXTERNAL.ssl.client.auth".into(), "required".into());
        config.listener_overrides.insert("EXTERNAL.ssl.truststore.location".into(), "/keys/ca.pem".into());
        let external = config.ssl_settings("external").expect("valid");
        assert_eq!(external.client_auth, ClientAuth::Required);
        assert_eq!(external.trust_store, Some(PemSource::File("/keys/ca.pem".into())));
        assert_eq!(config.ssl_settings("INTERNAL").expect("valid").client_auth, ClientAuth::None);
    }

    #[test]
    fn problems_name_their_keys() {
        let config = BrokerConfig {
            ssl_keystore_type: "JKS".into(),
            ssl_key_password: Some("secret".into()),
            ssl_client_auth: "required".into(),
            ssl_enabled_protocols: "TLSv1.1".into(),
            ..BrokerConfig::default()
        };
        let problems = config.ssl_settings("SSL").expect_err("invalid").join("\n");
        for key in ["ssl.keystore.type JKS", "ssl.key.password", "ssl.keystore.location", "no trust store", "TLSv1.1"] {
            assert!(problems.contains(key), "{key} missing from {problems}");
        }
    }

    #[test]
    fn listener_override_keys_are_checked() {
        assert_eq!(
            parse_listener_override("listener.name.external.ssl.keystore.location"),
            Ok(("EXTERNAL".to_string(), "ssl.keystore.location".to_string()))
        );
        assert!(parse_listener_override("listener.name.external.ssl.keystore.locaton").is_err());
        assert!(parse_listener_override("listener.name..ssl.client.auth").is_err());
        assert!(parse_listener_override("listener.name.a.b.ssl.client.auth").is_err());
    }

    #[test]
    fn protocol_names_and_ids_are_kafkas() {
        assert_eq!(SecurityProtocol::parse("ssl").map(SecurityProtocol::id), Some(1));
        assert_eq!(SecurityProtocol::parse("SASL_SSL").map(SecurityProtocol::id), Some(3));
        assert_eq!(SecurityProtocol::parse("TLS"), None);
    }
}
