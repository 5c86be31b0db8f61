//! A partition's log with Kafka semantics on top of a storage [`Engine`](skein_storage::Engine).
//!
//! # Layout
//! - [`partition`]: [`PartitionLog`] — offsets, high watermark, reads for Fetch, offset lookups for ListOffsets, and
//!   the long-poll notifier fetches wait on.
//! - [`append`]: [`append_batches`] — appends validated batches to one or more partitions in one atomic write,
//!   with idempotent producers' sequence checks (`producers`).
//! - [`replica`]: the partition's role (leader with its followers' progress, follower, standalone) and the high
//!   watermark it allows; `follower`: appending a leader's batches and truncating a diverged suffix.

pub mod append;
pub mod compaction;
mod follower;
pub mod partition;
mod producers;
pub mod replica;

pub use append::{AppendRequest, AppendResult, append_batches, append_marker};
pub use compaction::{CompactionOutcome, CompactionSettings, IoBudget};
pub use partition::{FetchRead, Isolation, OffsetAndTimestamp, PartitionLog};
pub use replica::{FollowerProgress, LeaderState, Role};
