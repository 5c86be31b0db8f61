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
//! - [`offsets`]: committed offsets and group records in the storage engine (`offsets` and `groups` key spaces),
//!   each change journaled first in [`journal`] (in a cluster, the group's replicated `__consumer_offsets`
//!   partition, whose leader is the group's coordinator).
//!
//! The task holds the groups of the coordinator partitions this broker leads (loaded and unloaded as leadership
//! moves) and is the only writer of group state; offsets are written by the handler after the coordinator has
//! validated the committing member.

pub mod assignor;
pub mod consumer_group;
pub mod coordinator;
pub mod group;
pub mod journal;
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
pub use journal::{LocalJournal, StateEntry, StateJournal, StateSpace};
pub use offsets::OffsetStore;
