//! The broker: Kafka API handlers on top of the partition logs and the topic registry.
//!
//! # Layout
//! - [`broker`]: [`Broker`], the shared state every handler sees (config, engine, topics, cluster id).
//! - [`topics`]: [`TopicRegistry`] — topic names, ids, partitions and config overrides, persisted in `meta`.
//! - [`producer_ids`]: producer ids for idempotent producers, never reused.
//! - [`router`]: the table of supported APIs and versions, dispatch by api key, and the ApiVersions answer derived
//!   from that table.
//! - [`handlers`]: one module per ApiKey, named after it.

pub mod broker;
pub mod handlers;
pub mod producer_ids;
pub mod router;
pub mod topics;

pub use broker::Broker;
pub use router::{Outcome, handle_request};
pub use topics::{Topic, TopicRegistry};
