//! Where the group coordinator's state is made durable before it is applied.
//!
//! In a cluster, as in Kafka, a group's state lives in one partition of the internal topic `__consumer_offsets`
//! (the partition its id hashes to), and the group coordinator is that partition's leader: every change is
//! appended there, and acknowledged once the in-sync replicas have it; a broker taking over the partition
//! replays it. [`StateJournal`] is that log as the coordinator sees it; the broker implements it over the
//! partition's log, and [`LocalJournal`] (one node that coordinates everything and keeps nothing elsewhere) is
//! for tests of this crate.
//!
//! Each change is a [`StateEntry`]: a key of the `offsets` or `groups` key space with its new value, or none
//! for a deletion (a tombstone, which compaction of the topic eventually drops with the values before it).

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use skein_core::BrokerError;

/// The key spaces the coordinator's state is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateSpace {
    /// Committed offsets (`keys::offset_key`).
    Offsets,
    /// Group records (`keys::group_key`).
    Groups,
    /// Offsets of open transactions (`keys::pending_offset_key`).
    PendingOffsets,
}

impl StateSpace {
    /// The first byte of a journal record's key.
    fn tag(self) -> u8 {
        match self {
            StateSpace::Offsets => 0,
            StateSpace::Groups => 1,
            StateSpace::PendingOffsets => 2,
        }
    }
}

/// One change of the coordinator's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    pub space: StateSpace,
    /// The key in its key space.
    pub key: Vec<u8>,
    /// The new value; `None` deletes the key.
    pub value: Option<Vec<u8>>,
}

impl StateEntry {
    /// The key of the journal record carrying this change: the key space's tag, then the key.
    pub fn record_key(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(1 + self.key.len());
        key.push(self.space.tag());
        key.extend_from_slice(&self.key);
        key
    }

    /// The change a journal record carries; `None` for a key this build does not know (skipped on replay).
    pub fn from_record(key: &[u8], value: Option<&[u8]>) -> Option<Self> {
        let (&tag, rest) = key.split_first()?;
        let space = match tag {
            0 => StateSpace::Offsets,
            1 => StateSpace::Groups,
            2 => StateSpace::PendingOffsets,
            _ => return None,
        };
        Some(StateEntry { space, key: rest.to_vec(), value: value.map(<[u8]>::to_vec) })
    }
}

/// The future of [`StateJournal::append`].
pub type AppendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send + 'a>>;

/// The replicated log of the coordinator's state, as the coordinator uses it.
pub trait StateJournal: Send + Sync + Debug {
    /// The coordinator partition of a group (Kafka's `abs(groupId.hashCode) % offsets.topic.num.partitions`).
    fn partition_for(&self, group_id: &str) -> i32;

    /// Whether this broker coordinates `group_id` now: NOT_COORDINATOR when another broker does,
    /// COORDINATOR_LOAD_IN_PROGRESS while this one is still loading the group's partition.
    fn check_coordinator(&self, group_id: &str) -> Result<(), BrokerError>;

    /// Makes `entries` (all of `group_id`) durable on the replicas of the group's partition; they may be applied
    /// locally once this returns. NOT_COORDINATOR when this broker no longer leads the partition.
    fn append<'a>(&'a self, group_id: &'a str, entries: Vec<StateEntry>) -> AppendFuture<'a>;
}

/// One node coordinating every group, with local storage as the only copy (tests of this crate).
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalJournal;

impl StateJournal for LocalJournal {
    fn partition_for(&self, _group_id: &str) -> i32 {
        0
    }

    fn check_coordinator(&self, _group_id: &str) -> Result<(), BrokerError> {
        Ok(())
    }

    fn append<'a>(&'a self, _group_id: &'a str, _entries: Vec<StateEntry>) -> AppendFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// Kafka's `String.hashCode` of a group or transactional id (UTF-16 code units, wrapping), which picks its
/// coordinator partition.
pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// Kafka's `Utils.abs(hashCode) % partitions`: the partition of `key` among `partitions` (at least 1).
pub fn partition_for_key(key: &str, partitions: i32) -> i32 {
    // Kafka's Utils.abs maps i32::MIN to 0, unlike i32::abs.
    let hash = java_string_hash(key);
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_match_kafkas_choice() {
        // Values from Java's String.hashCode.
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(partition_for_key("my-group", 50), 12);
        assert_eq!(partition_for_key("", 50), 0);
        // A hash of i32::MIN (Kafka's abs gives 0).
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for_key("polygenelubricants", 50), 0);
        // Negative hashes are folded as Kafka folds them.
        assert_eq!(java_string_hash("zzzzzzzzzz"), -1_580_979_136);
        assert_eq!(partition_for_key("zzzzzzzzzz", 7), 1_580_979_136 % 7);
    }

    #[test]
    fn entries_round_trip_through_record_keys() {
        let entry = StateEntry { space: StateSpace::Groups, key: b"g".to_vec(), value: None };
        assert_eq!(StateEntry::from_record(&entry.record_key(), None), Some(entry));
        assert_eq!(StateEntry::from_record(&[9, 1, 2], Some(b"v")), None);
        assert_eq!(StateEntry::from_record(&[], None), None);
    }
}
