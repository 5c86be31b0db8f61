//! A partition's log with Kafka semantics on top of a storage [`Engine`](skein_storage::Engine).
//!
//! # Layout
//! - [`partition`]: [`PartitionLog`] — offsets, high watermark, reads for Fetch, offset lookups for ListOffsets, and
//!   the long-poll notifier fetches wait on.
//! - [`append`]: [`append_batches`] — appends validated batches to one or more partitions in one atomic write,
//!   with idempotent producers' sequence checks (`producers`).

pub mod append;
pub mod compaction;
pub mod partition;
mod producers;

pub use append::{AppendRequest, AppendResult, append_batches, append_marker};
pub use compaction::{CompactionOutcome, CompactionSettings, IoBudget};
pub use partition::{FetchRead, Isolation, OffsetAndTimestamp, PartitionLog};
