//! Client metrics subscriptions (KIP-714): Kafka's CLIENT_METRICS config resources, named subscriptions of
//! `metrics` (name prefixes), `interval.ms` (the push interval) and `match` (client selectors), set with
//! IncrementalAlterConfigs or AlterConfigs (`kafka-client-metrics --alter`) and kept in the metadata log. They are
//! checked as Kafka checks them, with its messages. As on Kafka without a telemetry receiver plugin, no client is
//! asked to push metrics (GetTelemetrySubscriptions and PushTelemetry are not served): they are stored and listed.

use std::collections::BTreeMap;

use skein_core::BrokerError;

pub const METRICS: &str = "metrics";
pub const INTERVAL_MS: &str = "interval.ms";
pub const MATCH: &str = "match";

/// The subscription's settings with Kafka's defaults, sorted by name as Kafka lists them.
pub const CLIENT_METRICS_CONFIGS: [(&str, &str); 3] = [(INTERVAL_MS, "300000"), (MATCH, ""), (METRICS, "")];

/// The client properties a `match` selector may name.
const MATCH_PARAMS: [&str; 6] = [
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
];

const MIN_INTERVAL_MS: i32 = 100;
const MAX_INTERVAL_MS: i32 = 3_600_000;

/// DescribeConfigs' `config_type`: `interval.ms` is an int, the others lists.
pub fn config_type(name: &str) -> i8 {
    if name == INTERVAL_MS { 3 } else { 7 }
}

/// Checks a subscription's complete new settings as Kafka does.
pub fn validate(subscription: &str, configs: &BTreeMap<String, String>) -> Result<(), BrokerError> {
    if subscription.is_empty() {
        return Err(BrokerError::InvalidRequestMessage("Subscription name can't be empty".into()));
    }
    if let Some(unknown) = configs.keys().find(|name| CLIENT_METRICS_CONFIGS.iter().all(|(known, _)| known != name)) {
        return Err(BrokerError::InvalidRequestMessage(format!("Unknown client metrics configuration: {unknown}")));
    }
    if let Some(value) = configs.get(INTERVAL_MS) {
        let value = value.trim();
        let interval: i32 = value.parse().map_err(|_| {
            BrokerError::InvalidConfigMessage(format!(
                "Invalid value {value} for configuration {INTERVAL_MS}: Not a number of type INT"
            ))
        })?;
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval) {
            return Err(BrokerError::InvalidRequestMessage(format!(
                "Invalid value {interval} for {INTERVAL_MS}, interval must be between 100 and 3600000 (1 hour)"
            )));
        }
    }
    if let Some(patterns) = configs.get(MATCH) {
        for pattern in list(patterns) {
            check_match(pattern)?;
        }
    }
    Ok(())
}

/// A list setting's items, as Kafka's `ConfigDef` splits them (comma separated, trimmed).
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty())
}

/// A selector is `<client property>=<regular expression>`, with exactly one `=`.
fn check_match(pattern: &str) -> Result<(), BrokerError> {
    let illegal = || BrokerError::InvalidConfigMessage(format!("Illegal client matching pattern: {pattern}"));
    // Java's split drops trailing empty parts: "client_id=" has one part, and is refused as Kafka refuses it.
    let parts: Vec<&str> = pattern.trim_end_matches('=').split('=').collect();
    let [param, regex] = parts.as_slice() else {
        return Err(illegal());
    };
    if !MATCH_PARAMS.contains(&param.trim()) || regex::Regex::new(regex.trim()).is_err() {
        return Err(illegal());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn kafkas_checks_and_messages() {
        let ok =
            configs(&[(METRICS, "org.apache.kafka.producer."), (INTERVAL_MS, "1000"), (MATCH, "client_id=app-.*")]);
        assert!(validate("s", &ok).is_ok());
        let message = |name: &str, pairs: &[(&str, &str)]| match validate(name, &configs(pairs)) {
            Err(err) => err.to_string(),
            Ok(()) => "ok".to_string(),
        };
        assert_eq!(message("", &[]), "Subscription name can't be empty");
        assert_eq!(message("s", &[("foo", "1")]), "Unknown client metrics configuration: foo");
        assert_eq!(
            message("s", &[(INTERVAL_MS, "50")]),
            "Invalid value 50 for interval.ms, interval must be between 100 and 3600000 (1 hour)"
        );
        assert_eq!(message("s", &[(MATCH, "foo=bar")]), "Illegal client matching pattern: foo=bar");
        assert_eq!(message("s", &[(MATCH, "client_id")]), "Illegal client matching pattern: client_id");
        assert_eq!(message("s", &[(MATCH, "client_id=")]), "Illegal client matching pattern: client_id=");
        assert_eq!(message("s", &[(MATCH, "client_id=a=b")]), "Illegal client matching pattern: client_id=a=b");
        assert_eq!(message("s", &[(MATCH, "client_id=(")]), "Illegal client matching pattern: client_id=(");
    }
}
