//! The broker: Kafka API handlers on top of the partition logs and the topic registry.
//!
//! # Layout
//! - [`broker`]: [`Broker`], the shared state every handler sees (config, engine, topics, cluster id).
//! - [`broker_configs`]: the broker settings in effect: static ones overlaid with dynamic ones (AlterConfigs).
//! - [`topics`]: [`TopicRegistry`] — topic names, ids, partitions and config overrides, persisted in `meta`.
//! - [`router`]: the table of supported APIs and versions, dispatch by api key, and the ApiVersions answer derived
//!   from that table.
//! - [`handlers`]: one module per ApiKey, named after it.
//! - [`metrics`]: [`Metrics`], every Prometheus metric the broker exports (counted by the router, a few handlers and
//!   the server), and [`metrics::render`], the `/metrics` text with the gauges read from the broker's state.
//! - [`replication`]: followers fetching from partition leaders, and leaders keeping their ISR current.
//! - [`txn_markers`]: transaction markers written at partition leaders, here or on other brokers.
//! - [`scram`]: SCRAM credentials (RFC 5802/7677) as Kafka derives and stores them.
//! - [`authorizer`]: [`RequestContext`] (who sent a request) and the ACL checks handlers make.
//! - [`quotas`]: client byte-rate quotas measured and enforced by throttling (KIP-13, KIP-219).
//! - [`sasl`]: a SASL listener's connections authenticating (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).

pub mod authorizer;
pub mod broker;
pub mod broker_configs;
pub mod client_metrics_configs;
pub mod cluster;
pub mod features;
pub mod group_configs;
pub mod group_log;
pub mod handlers;
pub mod metrics;
pub mod peer;
pub mod quotas;
pub mod replication;
pub mod router;
pub mod sasl;
pub mod scram;
mod state_log;
pub mod topics;
pub mod txn_log;
pub mod txn_markers;

pub use authorizer::RequestContext;
pub use broker::Broker;
pub use cluster::{ClusterMember, JoinError, controller_error};
pub use metrics::Metrics;
pub use router::{Outcome, handle_request};
pub use topics::{Topic, TopicRegistry};
