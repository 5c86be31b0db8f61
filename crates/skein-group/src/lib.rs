//! The group coordinator for Kafka's classic consumer group protocol and the KIP-848 consumer group protocol, and
//! committed offsets.
//!
//! # Layout
//! - [`coordinator`]: [`GroupCoordinator`], the handle handlers call, and [`CoordinatorTask`], the one task that owns
//!   every group's state (an actor fed by a bounded channel; no lock is shared with handlers).
//! - [`group`]: one group's state machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead), its
//!   members, protocol selection and leader election.
//! - [`consumer_group`]: one KIP-848 consumer group: member epochs, the target assignment and the step-by-step
//!   reconciliation of each member towards it; [`assignor`]: the server-side assignors (uniform, range).
//! - [`offsets`]: committed offsets and group records in the storage engine (`offsets` and `groups` key spaces).
//!
//! This node is the coordinator of every group. The task is the only writer of group state; offsets are written by
//! the handler after the coordinator has validated the committing member.

pub mod assignor;
pub mod consumer_group;
pub mod coordinator;
pub mod group;
pub mod offsets;

pub use assignor::{Assignment, Assignor};
pub use consumer_group::{
    ConsumerGroupDescription, ConsumerGroupSettings, ConsumerGroupState, ConsumerHeartbeat, ConsumerMemberDescription,
    HeartbeatOutcome, TopicMetadata,
};
pub use coordinator::{
    CommitCheck, CoordinatorTask, GroupCoordinator, GroupDescription, GroupListing, JoinGroup, JoinOutcome,
    JoinedMember, LeaveMember, MemberDescription, SyncGroup, SyncOutcome,
};
pub use group::{GroupSettings, GroupState};
pub use offsets::OffsetStore;
