//! Kafka's domain words as types, the broker's error enum and the one mapping from errors to Kafka error codes.
//!
//! # Layout
//! - [`error`]: [`BrokerError`], and [`error::error_code`], the single exhaustive mapping to Kafka error codes.
//! - [`types`]: `TopicPartition`, `NodeId`, `LeaderEpoch` and the topic-name rules.
//! - [`config`]: the broker's settings under their Kafka names, with Kafka's defaults, and topic-level config keys.

pub mod config;
pub mod error;
pub mod types;

pub use config::BrokerConfig;
pub use error::{BrokerError, error_code};
pub use types::{LeaderEpoch, NodeId, TopicPartition};
