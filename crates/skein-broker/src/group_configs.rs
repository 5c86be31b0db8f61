//! Group-level dynamic configs: Kafka's GROUP config resource (KIP-848), set with IncrementalAlterConfigs or
//! AlterConfigs (`kafka-configs --entity-type groups`) and kept in the metadata log as topic configs are. The
//! names, types, defaults and bounds are Kafka 4.3's, and a group's new overrides are checked as Kafka's controller
//! checks them, in its order and with its messages.
//!
//! Skein's consumer groups use `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`, kept within the
//! broker's `group.consumer.{min,max}.*` bounds at each use as Kafka keeps them. The others are stored and
//! reported only: share and streams groups are not served, and Skein assigns at once (no assignment interval).

use std::collections::BTreeMap;
use std::time::Duration;

use skein_core::config::ConfigSource;
use skein_core::{BrokerConfig, BrokerError};

use crate::broker_configs::CurrentConfig;

/// A group config's type, with the check Kafka's `ConfigDef` makes of a value.
#[derive(Debug, Clone, Copy)]
pub enum GroupConfigKind {
    Int {
        at_least: i32,
    },
    Bool,
    OneOf(&'static [&'static str]),
    /// `share.auto.offset.reset`: earliest, latest or `by_duration:<ISO-8601 duration>`.
    AutoOffsetReset,
}

impl GroupConfigKind {
    /// DescribeConfigs' `config_type`.
    pub fn config_type(self) -> i8 {
        match self {
            GroupConfigKind::Bool => 1,
            GroupConfigKind::OneOf(_) | GroupConfigKind::AutoOffsetReset => 2,
            GroupConfigKind::Int { .. } => 3,
        }
    }
}

/// One group config.
#[derive(Debug)]
pub struct GroupConfigDef {
    pub name: &'static str,
    pub kind: GroupConfigKind,
    /// The value when neither the group nor the broker setting it inherits from sets one.
    pub default: &'static str,
    /// Whether a group without an override inherits a broker setting's value (see [`GroupConfigDef::broker_synonym`]).
    pub inherits: bool,
    /// The broker settings bounding a group's value: (minimum, maximum).
    pub bounds: (Option<&'static str>, Option<&'static str>),
}

const fn int(
    name: &'static str,
    at_least: i32,
    default: &'static str,
    bounds: (Option<&'static str>, Option<&'static str>),
) -> GroupConfigDef {
    GroupConfigDef { name, kind: GroupConfigKind::Int { at_least }, default, inherits: true, bounds }
}

impl GroupConfigDef {
    /// The broker setting a group without an override inherits from: Kafka names it `group.<name>`.
    pub fn broker_synonym(&self) -> Option<String> {
        self.inherits.then(|| format!("group.{}", self.name))
    }
}

pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// Kafka 4.3's group configs, in its order (the order of its checks and of DescribeConfigs).
pub const GROUP_CONFIGS: &[GroupConfigDef] = &[
    int(
        CONSUMER_SESSION_TIMEOUT_MS,
        1,
        "45000",
        (Some("group.consumer.min.session.timeout.ms"), Some("group.consumer.max.session.timeout.ms")),
    ),
    int(
        CONSUMER_HEARTBEAT_INTERVAL_MS,
        1,
        "5000",
        (Some("group.consumer.min.heartbeat.interval.ms"), Some("group.consumer.max.heartbeat.interval.ms")),
    ),
    int(
        "consumer.assignment.interval.ms",
        0,
        "1000",
        (Some("group.consumer.min.assignment.interval.ms"), Some("group.consumer.max.assignment.interval.ms")),
    ),
    int(
        "share.session.timeout.ms",
        1,
        "45000",
        (Some("group.share.min.session.timeout.ms"), Some("group.share.max.session.timeout.ms")),
    ),
    int(
        "share.heartbeat.interval.ms",
        1,
        "5000",
        (Some("group.share.min.heartbeat.interval.ms"), Some("group.share.max.heartbeat.interval.ms")),
    ),
    int(
        "share.record.lock.duration.ms",
        1000,
        "30000",
        (Some("group.share.min.record.lock.duration.ms"), Some("group.share.max.record.lock.duration.ms")),
    ),
    int(
        "share.delivery.count.limit",
        2,
        "5",
        (Some("group.share.min.delivery.count.limit"), Some("group.share.max.delivery.count.limit")),
    ),
    int(
        "share.partition.max.record.locks",
        100,
        "2000",
        (Some("group.share.min.partition.max.record.locks"), Some("group.share.max.partition.max.record.locks")),
    ),
    GroupConfigDef {
        name: "share.auto.offset.reset",
        kind: GroupConfigKind::AutoOffsetReset,
        default: "latest",
        inherits: false,
        bounds: (None, None),
    },
    GroupConfigDef {
        name: "share.isolation.level",
        kind: GroupConfigKind::OneOf(&["read_committed", "read_uncommitted"]),
        default: "read_uncommitted",
        inherits: false,
        bounds: (None, None),
    },
    GroupConfigDef {
        name: "share.renew.acknowledge.enable",
        kind: GroupConfigKind::Bool,
        default: "true",
        inherits: false,
        bounds: (None, None),
    },
    int(
        "share.assignment.interval.ms",
        0,
        "1000",
        (Some("group.share.min.assignment.interval.ms"), Some("group.share.max.assignment.interval.ms")),
    ),
    int(
        "streams.session.timeout.ms",
        1,
        "45000",
        (Some("group.streams.min.session.timeout.ms"), Some("group.streams.max.session.timeout.ms")),
    ),
    int(
        "streams.heartbeat.interval.ms",
        1,
        "5000",
        (Some("group.streams.min.heartbeat.interval.ms"), Some("group.streams.max.heartbeat.interval.ms")),
    ),
    int("streams.num.standby.replicas", 0, "0", (None, Some("group.streams.max.standby.replicas"))),
    int("streams.initial.rebalance.delay.ms", 0, "3000", (None, None)),
    int(
        "streams.assignment.interval.ms",
        0,
        "1000",
        (Some("group.streams.min.assignment.interval.ms"), Some("group.streams.max.assignment.interval.ms")),
    ),
];

/// The order of Kafka's bound checks: each kind of group's heartbeat interval before its session timeout.
const BOUND_CHECK_ORDER: &[&str] = &[
    "consumer.heartbeat.interval.ms",
    "consumer.session.timeout.ms",
    "consumer.assignment.interval.ms",
    "share.heartbeat.interval.ms",
    "share.session.timeout.ms",
    "share.record.lock.duration.ms",
    "share.delivery.count.limit",
    "share.partition.max.record.locks",
    "share.assignment.interval.ms",
    "streams.heartbeat.interval.ms",
    "streams.session.timeout.ms",
    "streams.num.standby.replicas",
    "streams.assignment.interval.ms",
];

/// Each kind of group's (session timeout, heartbeat interval): the first must exceed the second.
const SESSION_OVER_HEARTBEAT: &[(&str, &str)] = &[
    ("consumer.session.timeout.ms", "consumer.heartbeat.interval.ms"),
    ("share.session.timeout.ms", "share.heartbeat.interval.ms"),
    ("streams.session.timeout.ms", "streams.heartbeat.interval.ms"),
];

pub fn group_config_def(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|def| def.name == name)
}

/// Every level a group without an override inherits `def`'s value from, highest first, down to the default: the
/// broker setting's levels, or the group config's own default where no broker setting stands behind it.
fn inherited_levels(def: &GroupConfigDef, current: &CurrentConfig<'_>) -> Vec<(String, ConfigSource)> {
    match def.broker_synonym() {
        Some(synonym) => current.broker_setting_levels(&synonym),
        None => vec![(def.default.to_string(), ConfigSource::Default)],
    }
}

fn broker_int(current: &CurrentConfig<'_>, name: &str) -> Option<i32> {
    current.broker_setting_levels(name).first().and_then(|(value, _)| value.trim().parse().ok())
}

fn invalid_value(name: &str, value: &str, reason: &str) -> BrokerError {
    BrokerError::InvalidConfigMessage(format!("Invalid value {value} for configuration {name}: {reason}"))
}

/// Parses a value as Kafka's `ConfigDef` does for `def`, with its messages.
fn parse(def: &GroupConfigDef, value: &str) -> Result<Option<i32>, BrokerError> {
    let trimmed = value.trim();
    match def.kind {
        GroupConfigKind::Int { at_least } => {
            let number: i32 =
                trimmed.parse().map_err(|_| invalid_value(def.name, trimmed, "Not a number of type INT"))?;
            if number < at_least {
                return Err(invalid_value(def.name, trimmed, &format!("Value must be at least {at_least}")));
            }
            Ok(Some(number))
        }
        GroupConfigKind::Bool => {
            if trimmed.eq_ignore_ascii_case("true") || trimmed.eq_ignore_ascii_case("false") {
                Ok(None)
            } else {
                Err(invalid_value(def.name, trimmed, "Expected value to be either true or false"))
            }
        }
        GroupConfigKind::OneOf(allowed) => {
            if allowed.contains(&trimmed) {
                Ok(None)
            } else {
                Err(invalid_value(def.name, trimmed, &format!("String must be one of: {}", allowed.join(", "))))
            }
        }
        GroupConfigKind::AutoOffsetReset => {
            if is_auto_offset_reset(trimmed) {
                Ok(None)
            } else {
                let reason = format!(
                    "Invalid value `{trimmed}` for configuration {}. The value must be either 'earliest', 'latest' \
                     or of the format 'by_duration:<PnDTnHnMn.nS>'.",
                    def.name
                );
                Err(invalid_value(def.name, trimmed, &reason))
            }
        }
    }
}

/// earliest, latest, or `by_duration:` with a non-negative ISO-8601 duration of days to seconds (`PnDTnHnMn.nS`).
fn is_auto_offset_reset(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if lower == "earliest" || lower == "latest" {
        return true;
    }
    let Some(duration) = lower.strip_prefix("by_duration:") else {
        return false;
    };
    let Some(rest) = duration.trim().strip_prefix('p') else {
        return false;
    };
    let (days, time) = match rest.split_once('t') {
        Some((days, time)) if !time.is_empty() => (days, Some(time)),
        Some(_) => return false,
        None => (rest, None),
    };
    let days_ok = days.is_empty()
        || days.strip_suffix('d').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let time_ok = time.is_none_or(|time| {
        let mut rest = time;
        let mut units = ['h', 'm', 's'].into_iter();
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            let (number, tail) = rest.split_at(digits);
            let Some(unit) = tail.chars().next() else {
                return false;
            };
            if number.is_empty() || !units.by_ref().any(|expected| expected == unit) {
                return false;
            }
            if number.contains('.') && unit != 's' {
                return false;
            }
            rest = &tail[1..];
        }
        true
    });
    (days.is_empty() && time.is_some() || !days.is_empty()) && days_ok && time_ok
}

/// Checks a group's complete new set of overrides as Kafka's controller does: the group's name, the config names,
/// then every value (the group's or the one it inherits) parsed in definition order, then each override within
/// the broker's bounds, then each kind of group's session timeout above its heartbeat interval.
pub fn validate(
    group_id: &str,
    overrides: &BTreeMap<String, String>,
    current: &CurrentConfig<'_>,
) -> Result<(), BrokerError> {
    if group_id.is_empty() {
        return Err(BrokerError::InvalidRequestMessage("Default group resources are not allowed.".into()));
    }
    if let Some(unknown) = overrides.keys().find(|name| group_config_def(name).is_none()) {
        return Err(BrokerError::InvalidConfigMessage(format!("Unknown group config name: {unknown}")));
    }
    let mut ints: BTreeMap<&str, i32> = BTreeMap::new();
    for def in GROUP_CONFIGS {
        let value = match overrides.get(def.name) {
            Some(value) => value.clone(),
            None => inherited_levels(def, current)
                .into_iter()
                .next()
                .map_or_else(|| def.default.to_string(), |(value, _)| value),
        };
        if let Some(number) = parse(def, &value)? {
            ints.insert(def.name, number);
        }
    }
    for name in BOUND_CHECK_ORDER.iter().copied().filter(|name| overrides.contains_key(*name)) {
        let (Some(def), Some(value)) = (group_config_def(name), ints.get(name)) else {
            continue;
        };
        if let Some(min_key) = def.bounds.0
            && broker_int(current, min_key).is_some_and(|min| *value < min)
        {
            return Err(BrokerError::InvalidConfigMessage(format!(
                "{name} must be greater than or equal to {min_key}"
            )));
        }
        if let Some(max_key) = def.bounds.1
            && broker_int(current, max_key).is_some_and(|max| *value > max)
        {
            return Err(BrokerError::InvalidConfigMessage(format!("{name} must be less than or equal to {max_key}")));
        }
    }
    for (session, heartbeat) in SESSION_OVER_HEARTBEAT {
        if let (Some(session_ms), Some(heartbeat_ms)) = (ints.get(session), ints.get(heartbeat))
            && session_ms <= heartbeat_ms
        {
            return Err(BrokerError::InvalidConfigMessage(format!("{session} must be greater than {heartbeat}")));
        }
    }
    Ok(())
}

/// One group config as DescribeConfigs reports it: (value, source, synonyms highest first).
pub fn describe(
    def: &GroupConfigDef,
    overrides: Option<&BTreeMap<String, String>>,
    current: &CurrentConfig<'_>,
) -> (String, ConfigSource, Vec<(String, String, ConfigSource)>) {
    let synonym_name = def.broker_synonym().unwrap_or_else(|| def.name.to_string());
    let mut synonyms: Vec<(String, String, ConfigSource)> = inherited_levels(def, current)
        .into_iter()
        .map(|(value, source)| (synonym_name.clone(), value, source))
        .collect();
    if let Some(value) = overrides.and_then(|configs| configs.get(def.name)) {
        synonyms.insert(0, (def.name.to_string(), value.clone(), ConfigSource::DynamicGroup));
    }
    let (value, source) = synonyms.first().map_or_else(
        || (def.default.to_string(), ConfigSource::Default),
        |(_, value, source)| (value.clone(), *source),
    );
    (value, source, synonyms)
}

/// A consumer group's timeouts: its overrides where it has them, kept within the broker's bounds (as Kafka keeps a
/// value set before the bounds changed), else the broker's. `None` where the broker's own applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerGroupTimeouts {
    pub session_timeout: Option<Duration>,
    pub heartbeat_interval: Option<Duration>,
}

pub fn consumer_group_timeouts(
    config: &BrokerConfig,
    overrides: Option<&BTreeMap<String, String>>,
) -> ConsumerGroupTimeouts {
    let clamped = |name: &str, min: i64, max: i64| {
        let value: i64 = overrides?.get(name)?.trim().parse().ok()?;
        Some(Duration::from_millis(u64::try_from(value.clamp(min, max.max(min))).unwrap_or(0)))
    };
    ConsumerGroupTimeouts {
        session_timeout: clamped(
            CONSUMER_SESSION_TIMEOUT_MS,
            config.group_consumer_min_session_timeout_ms,
            config.group_consumer_max_session_timeout_ms,
        ),
        heartbeat_interval: clamped(
            CONSUMER_HEARTBEAT_INTERVAL_MS,
            config.group_consumer_min_heartbeat_interval_ms,
            config.group_consumer_max_heartbeat_interval_ms,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broker_synonym_is_a_kafka_broker_setting() {
        for def in GROUP_CONFIGS {
            if let Some(synonym) = def.broker_synonym() {
                assert!(skein_core::kafka_broker_configs::kafka_broker_config(&synonym).is_some(), "{synonym}");
            }
            for bound in [def.bounds.0, def.bounds.1].into_iter().flatten() {
                assert!(skein_core::kafka_broker_configs::kafka_broker_config(bound).is_some(), "{bound}");
            }
        }
        assert!(group_config_def("consumer.foo").is_none());
    }

    #[test]
    fn auto_offset_reset_values() {
        for ok in ["earliest", "LATEST", "by_duration:P1D", "by_duration:PT1H30M", "by_duration:P2DT0.5S"] {
            assert!(is_auto_offset_reset(ok), "{ok}");
        }
        for bad in ["none", "by_duration:", "by_duration:P", "by_duration:PT", "by_duration:-P1D", "by_duration:PT1M1H"]
        {
            assert!(!is_auto_offset_reset(bad), "{bad}");
        }
    }

    #[test]
    fn overrides_are_kept_within_the_brokers_bounds() {
        let config = BrokerConfig::default();
        let overrides = BTreeMap::from([
            (CONSUMER_SESSION_TIMEOUT_MS.to_string(), "50000".to_string()),
            (CONSUMER_HEARTBEAT_INTERVAL_MS.to_string(), "1".to_string()),
        ]);
        let timeouts = consumer_group_timeouts(&config, Some(&overrides));
        assert_eq!(timeouts.session_timeout, Some(Duration::from_millis(50_000)));
        assert_eq!(timeouts.heartbeat_interval, Some(Duration::from_millis(5_000)));
        assert_eq!(consumer_group_timeouts(&config, None), ConsumerGroupTimeouts::default());
    }
}
