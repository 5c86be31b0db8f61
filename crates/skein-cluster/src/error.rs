//! Errors: [`ControllerError`] for metadata operations (each becomes one Kafka error code in
//! `skein_core::error_code`), [`QuorumError`] for starting and running the quorum.

use serde::{Deserialize, Serialize};

use crate::records::NodeId;

/// Why a controller operation failed. Serializable: a forwarded operation's error comes back over the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ControllerError {
    /// This node is not the quorum leader (and forwarding found none in time).
    #[error("not the controller (leader: {leader_id:?})")]
    NotController {
        /// The current leader, when known.
        leader_id: Option<NodeId>,
    },
    /// The operation did not complete in time; it may or may not have been applied.
    #[error("controller operation timed out")]
    Timeout,
    /// Replication factor below 1 or above the number of live brokers.
    #[error("replication factor {requested} is invalid with {available} live brokers")]
    InvalidReplicationFactor {
        /// Asked for.
        requested: i32,
        /// Unfenced brokers.
        available: usize,
    },
    /// A manual replica assignment that cannot be used.
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// Partition count below 1, or not above the current count.
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    /// The topic name is not legal.
    #[error("invalid topic name: {0}")]
    InvalidTopicName(String),
    /// The topic exists already.
    #[error("topic {0} already exists")]
    TopicAlreadyExists(String),
    /// No such topic or partition.
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),
    /// No topic with this id.
    #[error("unknown topic id {0}")]
    UnknownTopicId(uuid::Uuid),
    /// The broker has no registration.
    #[error("broker {node_id} is not registered")]
    BrokerNotRegistered {
        /// The broker.
        node_id: NodeId,
    },
    /// The broker epoch in the request is not the registration's.
    #[error("stale broker epoch for broker {node_id}: current {current}, request {requested}")]
    StaleBrokerEpoch {
        /// The broker.
        node_id: NodeId,
        /// The registration's epoch.
        current: i64,
        /// The epoch in the request.
        requested: i64,
    },
    /// Another live incarnation holds this broker id.
    #[error("broker id {node_id} is registered by a live incarnation")]
    DuplicateBrokerRegistration {
        /// The broker id.
        node_id: NodeId,
    },
    /// The requester is not the partition's leader.
    #[error("broker {requester} is not the leader (leader: {leader})")]
    NotLeader {
        /// Who asked.
        requester: NodeId,
        /// The current leader.
        leader: NodeId,
    },
    /// The leader epoch in the request is not the partition's.
    #[error("fenced leader epoch: current {current}, request {requested}")]
    FencedLeaderEpoch {
        /// The partition's leader epoch.
        current: i32,
        /// The epoch in the request.
        requested: i32,
    },
    /// The partition epoch in the request is not the partition's.
    #[error("invalid update version: partition epoch {current}, request {requested}")]
    InvalidUpdateVersion {
        /// The partition's epoch.
        current: i32,
        /// The epoch in the request.
        requested: i32,
    },
    /// The proposed ISR contains a fenced or unregistered broker.
    #[error("replica {replica} is not eligible for the ISR")]
    IneligibleReplica {
        /// The broker.
        replica: NodeId,
    },
    /// No replica may become leader (no live ISR member, unclean election disabled).
    #[error("no eligible leader available")]
    EligibleLeadersNotAvailable,
    /// The partition already has the leader the election asks for: a live ISR leader (unclean election), or
    /// its preferred replica (preferred election).
    #[error("leader election not needed")]
    ElectionNotNeeded,
    /// Preferred election: the first replica is fenced or out of the ISR, and the current leader stays.
    #[error("the preferred leader {preferred} is not available (fenced or not in the ISR)")]
    PreferredLeaderNotAvailable {
        /// The partition's first replica (-1 when it has none).
        preferred: NodeId,
    },
    /// A reassignment was to be cancelled, but the partition has none under way.
    #[error("no reassignment is in progress for partition {0}")]
    NoReassignmentInProgress(String),
    /// A reassignment would change the replica count while the request does not allow it (KIP-860).
    #[error("The replication factor is changed from {current} to {requested}")]
    ReplicationFactorChange {
        /// The partition's replica count now.
        current: usize,
        /// The count the reassignment asks for.
        requested: usize,
    },
    /// A config key or value is not acceptable.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The request is malformed (ISR not a subset of replicas, negative ids, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A credential to delete does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The quorum is shutting down or its storage failed.
    #[error("metadata quorum unavailable: {0}")]
    Unavailable(String),
}

/// Why the quorum could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// The configuration is unusable; every problem is listed.
    #[error("invalid quorum config: {}", .0.join("; "))]
    Config(Vec<String>),
    /// The data directory was formatted for another cluster.
    #[error(
        "data directory {dir} belongs to cluster {stored}, but this node is configured for cluster {configured}; \
         point it at an empty directory or at this cluster's data"
    )]
    ClusterIdMismatch {
        /// The metadata directory.
        dir: String,
        /// Cluster id stored there.
        stored: String,
        /// Cluster id configured.
        configured: String,
    },
    /// The data directory belongs to another node id.
    #[error("data directory {dir} belongs to node {stored}, but this node is node {configured}")]
    NodeIdMismatch {
        /// The metadata directory.
        dir: String,
        /// Node id stored there.
        stored: NodeId,
        /// Node id configured.
        configured: NodeId,
    },
    /// The data directory was written by a newer format.
    #[error("metadata directory {dir} has format version {found}; this build reads up to {supported}")]
    UnsupportedFormat {
        /// The metadata directory.
        dir: String,
        /// Version found.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// RocksDB or file I/O failed.
    #[error("metadata storage: {0}")]
    Storage(String),
    /// Binding the controller listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// openraft refused to start or stopped.
    #[error("raft: {0}")]
    Raft(String),
}
