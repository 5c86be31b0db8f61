//! The metadata quorum: KRaft's shape on openraft.
//!
//! Controllers replicate ONE metadata log with Raft; every node applies it into a [`MetadataImage`] and
//! serves from its own copy. Partition data is not replicated here: partitions replicate the Kafka way
//! (followers fetch from the leader), and this crate only records who leads, who is in sync, and the epochs
//! that fence stale leaders (`notes/cluster-design.md`).
//!
//! Non-voting members, **observers** (KRaft's `process.roles=broker` nodes, [`QuorumConfig::observer`]),
//! follow the same log as openraft learners: they never vote or bootstrap, ask the leader to add them
//! ([`ControllerRequest::AddObserver`], retried in the background), receive AppendEntries and snapshots on
//! their own listener, apply the log like any node and forward controller operations to the leader.
//! [`QuorumStatus::observers`] lists them.
//!
//! Decisions are made by the quorum leader's [`ControllerClient`] operations (validated against the
//! image, serialized, after a linearizable read) and written as records; applying records never decides
//! anything, so every node's image is the same function of the log.
//!
//! # Why openraft 0.9.25
//! - **Stable and maintained**: 0.9 is openraft's current stable line (0.10 is still alpha releases); the
//!   exact pin (`=0.9.25`) keeps a patch release from changing consensus behaviour under us unnoticed.
//! - **Async on tokio**: Raft runs as tasks on our runtime; no threads of its own, no blocking calls.
//! - **Storage and network are ours**: openraft defines `RaftLogStorage` / `RaftStateMachine` /
//!   `RaftNetwork` traits (feature `storage-v2`), so the log lives in RocksDB with a documented layout
//!   (`docs/specs/metadata-log.md`) and RPCs use our own bounded TCP frame. `generic-snapshot-data` lets
//!   a snapshot be the image itself instead of a byte stream.
//! - raft-rs (TiKV's) is the alternative, but leaves the event loop, storage driving and message transport
//!   to the application — far more glue for a single metadata group.
//!
//! # Layout
//! - [`config`]: [`QuorumConfig`] — node id, voters, observer or not, addresses, timeouts, data directory.
//! - [`acl`]: ACL bindings and filters, and the StandardAuthorizer's decision for one action.
//! - [`quota`]: client quota entities (KIP-546) and which entity's quota applies to a client.
//! - [`records`]: the metadata records ([`MetadataRecord`]), one [`MetadataBatch`] per log entry; JSON.
//! - [`image`]: [`MetadataImage`], the applied state (brokers, topics, partitions, configs, producer ids).
//! - `controller`: leader-side validation and record planning; broker sessions and fencing.
//! - `placement`: replica placement (Kafka's rack-aware and rack-unaware assignment).
//! - `storage`: RocksDB column families for the Raft log, vote and snapshot; the state machine.
//! - `network`: the private TCP frame, openraft's RPC client and the controller listener (Raft traffic from
//!   voters only; Hello and Propose from any node, observers included).
//! - `quorum`: [`MetadataQuorum`] (start, bootstrap or join as an observer, status, shutdown) and
//!   [`ControllerClient`] (operations, forwarded to the leader from any node; an observer that knows no
//!   leader asks the voters in turn).
//! - [`error`]: [`ControllerError`] (one Kafka error code each) and [`QuorumError`].
//!
//! # Example
//! A one-node quorum (in a cluster, every voter runs the same with its own id and the full voter list):
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::BTreeMap;
//! use skein_cluster::{MetadataQuorum, QuorumConfig, Uuid};
//!
//! let addr = "127.0.0.1:9093".parse()?;
//! let quorum = MetadataQuorum::start(QuorumConfig::new(1, vec![(1, addr)], addr, "/var/lib/skein".into())).await?;
//! let controller = quorum.controller(); // runs on the leader, forwarded from any node
//! let broker_epoch = controller.register_broker(1, Uuid::new_v4(), vec![], None).await?;
//! controller.heartbeat(1, broker_epoch, false).await?; // unfenced: can take replicas
//! let (topic_id, _partitions) = controller.create_topic("orders", 3, 1, BTreeMap::new()).await?;
//! assert!(quorum.image().topic_by_id(topic_id).is_some());
//! quorum.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! An observer (a broker-only node) lists the same voters, is not one of them, and sets `observer`:
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::SocketAddr;
//! use skein_cluster::{MetadataQuorum, QuorumConfig};
//!
//! let voter = |id, addr: &str| addr.parse::<SocketAddr>().map(|a| (id, a));
//! let voters = vec![voter(1, "10.0.0.1:9093")?, voter(2, "10.0.0.2:9093")?, voter(3, "10.0.0.3:9093")?];
//! let mut config = QuorumConfig::new(4, voters, "10.0.0.4:9093".parse()?, "/var/lib/skein".into());
//! config.observer = true;
//! let quorum = MetadataQuorum::start(config).await?; // returns at once; joins in the background
//! let image = quorum.wait_for_applied(1).await; // follows the log once the leader added it
//! # let _ = image;
//! # Ok(()) }
//! ```

pub mod acl;
pub mod config;
mod controller;
pub mod error;
pub mod image;
mod network;
mod placement;
mod quorum;
pub mod quota;
pub mod records;
mod storage;
pub mod transport;
mod types;

pub use config::QuorumConfig;
pub use controller::{
    ControllerRequest, ControllerResponse, MAX_PARTITIONS_PER_REQUEST, PRODUCER_ID_BLOCK_SIZE, ProducerIdBlock,
    UNCLEAN_LEADER_ELECTION_ENABLE,
};
pub use error::{ControllerError, QuorumError};
pub use image::{BrokerRegistration, MetadataImage, MetadataOffset, PartitionRegistration, TopicImage};
pub use quorum::{ControllerClient, MetadataQuorum, QuorumStatus, VoterStatus};
pub use records::{
    ConfigResource, ConfigResourceType, Endpoint, MetadataBatch, MetadataRecord, NO_LEADER, NodeId,
    UserScramCredentialRecord,
};
/// Topic ids and incarnation ids are UUIDs of this crate's `uuid` version.
pub use uuid::Uuid;
