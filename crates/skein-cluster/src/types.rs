//! The openraft type configuration: what the metadata log carries and how nodes are named.

use crate::image::{MetadataImage, MetadataOffset};
use crate::records::{Applied, MetadataBatch, NodeId};

openraft::declare_raft_types!(
    /// Raft types of the metadata quorum. Raft node ids are Kafka node ids widened to `u64`.
    pub(crate) TypeConfig:
        D = MetadataBatch,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        // `generic-snapshot-data`: a snapshot is the image itself, sent in one frame (network.rs).
        SnapshotData = MetadataImage,
        AsyncRuntime = openraft::TokioRuntime,
);

pub(crate) type RaftNodeId = u64;
pub(crate) type Raft = openraft::Raft<TypeConfig>;
pub(crate) type LogId = openraft::LogId<RaftNodeId>;
pub(crate) type Vote = openraft::Vote<RaftNodeId>;
pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type StorageError = openraft::StorageError<RaftNodeId>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<RaftNodeId, openraft::BasicNode>;
pub(crate) type StoredMembership = openraft::StoredMembership<RaftNodeId, openraft::BasicNode>;

/// A Kafka node id as a Raft node id (ids are validated non-negative at start-up).
pub(crate) fn raft_id(node_id: NodeId) -> RaftNodeId {
    u64::try_from(node_id).unwrap_or(u64::MAX)
}

/// A Raft node id back as a Kafka node id; ids only ever come from the configured voters.
pub(crate) fn kafka_id(id: RaftNodeId) -> NodeId {
    NodeId::try_from(id).unwrap_or(-1)
}

pub(crate) fn offset_of(log_id: &LogId) -> MetadataOffset {
    MetadataOffset { index: log_id.index, term: log_id.leader_id.term }
}
