//! Domain types shared by every crate.

use std::fmt;
use std::sync::Arc;

/// A broker's node id (`node.id`); every partition's leader is one.
pub type NodeId = i32;
/// A partition leader's epoch; bumps whenever leadership changes (always 0 until replication exists).
pub type LeaderEpoch = i32;

/// A topic name and a partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The internal topic holding group state (Kafka's `Topic.GROUP_METADATA_TOPIC_NAME`).
pub const GROUP_STATE_TOPIC: &str = "__consumer_offsets";
/// The internal topic holding transaction state (Kafka's `Topic.TRANSACTION_STATE_TOPIC_NAME`).
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Whether `name` is one of Kafka's internal topics: listed as internal, and clients may not produce to it.
pub fn is_internal_topic(name: &str) -> bool {
    name == GROUP_STATE_TOPIC || name == TRANSACTION_STATE_TOPIC
}

/// Longest legal topic name (Kafka's `Topic.MAX_NAME_LENGTH`).
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Checks a topic name by Kafka's rules: 1..=249 characters from `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be \"{name}\""));
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return Err(format!("topic name is longer than {MAX_TOPIC_NAME_LENGTH} characters"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!(
            "topic name \"{name}\" contains '{bad}'; legal characters are ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_eu-west").is_ok());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        for bad in ["", ".", "..", "bad/name", "has space", "ünï"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }
}
