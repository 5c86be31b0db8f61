//! Kafka's domain words as types, the broker's error enum and the one mapping from errors to Kafka error codes.
//!
//! # Layout
//! - [`error`]: [`BrokerError`], [`RecordError`] (one refused record of a batch), and [`error::error_code`], the
//!   single exhaustive mapping to Kafka error codes.
//! - [`types`]: `TopicPartition`, `NodeId`, `LeaderEpoch` and the topic-name rules.
//! - [`limits`]: the length limits on the ids requests carry (group, member, group instance, transactional and client
//!   ids), as Kafka enforces them.
//! - [`config`]: the broker's settings under their Kafka names, with Kafka's defaults, and topic-level config keys.
//! - [`principal`]: `ssl.principal.mapping.rules`, a TLS client certificate's subject as a principal name.
//! - [`security`]: listeners' security protocols and the TLS settings of SSL listeners.

pub mod cluster_config;
pub mod config;
pub mod error;
pub mod kafka_broker_configs;
pub mod limits;
pub mod principal;
pub mod security;
pub mod types;

pub use cluster_config::{ClusterLayout, Listener, Voter};
pub use config::BrokerConfig;
pub use error::{BrokerError, RecordError, error_code};
pub use limits::{IdKind, MAX_ID_BYTES, MAX_PARTITIONS_PER_REQUEST};
pub use types::{LeaderEpoch, NodeId, TopicPartition};

/// Wall-clock milliseconds since the Unix epoch (Kafka's timestamps).
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
