//! Committed offsets and group records in the storage engine. Every call runs on the blocking pool.
//!
//! Every change goes to the [`StateJournal`] first (in a cluster: the group's `__consumer_offsets` partition,
//! replicated) and is applied to local storage once the journal has it; reads and writes of a group this broker
//! does not coordinate are refused (NOT_COORDINATOR, or COORDINATOR_LOAD_IN_PROGRESS while loading it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::journal::{StateEntry, StateJournal, StateSpace};

use skein_core::BrokerError;
use skein_core::limits::{self, IdKind};
use skein_storage::{ColumnFamily, CommittedOffset, Durability, Engine, GroupRecord, StorageError, StoreBatch, keys};

/// One partition's committed offset: (topic, partition, offset).
pub type TopicPartitionOffset = (String, i32, CommittedOffset);

/// One stored pending offset: (its key, topic, partition, encoded offset).
type PendingEntry = (Vec<u8>, String, i32, Vec<u8>);

/// Reads and writes the `offsets` and `groups` key spaces.
#[derive(Clone)]
pub struct OffsetStore {
    engine: Arc<dyn Engine>,
    durability: Durability,
    journal: Arc<dyn StateJournal>,
}

impl std::fmt::Debug for OffsetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetStore").field("durability", &self.durability).finish()
    }
}

/// Refuses, before any key is built, a group id longer than a request may carry ([`skein_core::MAX_ID_BYTES`]),
/// which is also shorter than a key's length-prefixed part holds: the key codec never has to cut a group id, so two
/// ids never share keys.
fn check_group_id(group_id: &str) -> Result<(), BrokerError> {
    limits::validate_id(IdKind::GroupId, group_id)
}

/// Refuses a topic name a key part cannot hold (no topic has one: names are at most 249 bytes).
fn check_topic(topic: &str) -> Result<(), BrokerError> {
    if keys::fits_key_part(topic) {
        Ok(())
    } else {
        Err(BrokerError::InvalidTopic(format!("a topic name of {} bytes", topic.len())))
    }
}

fn storage_error(err: StorageError) -> BrokerError {
    BrokerError::Storage(err.to_string())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| BrokerError::Storage(format!("storage task failed: {err}")))?
        .map_err(storage_error)
}

impl OffsetStore {
    /// Changes are journaled in `journal`, then written to the engine with `durability`; a commit is acknowledged
    /// only after both.
    pub fn new(engine: Arc<dyn Engine>, durability: Durability, journal: Arc<dyn StateJournal>) -> Self {
        OffsetStore { engine, durability, journal }
    }

    /// The journal, for the coordinator's ownership checks.
    pub fn journal(&self) -> &Arc<dyn StateJournal> {
        &self.journal
    }

    /// Journals `entries` of one group, then applies them to local storage in one write.
    async fn change(&self, group_id: &str, entries: Vec<StateEntry>) -> Result<(), BrokerError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.journal.append(group_id, entries.clone()).await?;
        let mut batch = StoreBatch::default();
        put_entries(&mut batch, entries);
        let engine = Arc::clone(&self.engine);
        let durability = self.durability;
        blocking(move || engine.write(batch, durability)).await
    }

    /// The keys stored in `[from, to)` of the offsets key space, as deletions.
    async fn offset_tombstones(&self, from: Vec<u8>, to: Vec<u8>) -> Result<Vec<StateEntry>, BrokerError> {
        let engine = Arc::clone(&self.engine);
        blocking(move || {
            let mut found = Vec::new();
            engine.scan(ColumnFamily::Offsets, &from, &to, &mut |key, _| {
                found.push(StateEntry { space: StateSpace::Offsets, key: key.to_vec(), value: None });
                true
            })?;
            Ok(found)
        })
        .await
    }

    /// Stores the offsets of one commit request in one atomic write.
    pub async fn commit(&self, group_id: &str, offsets: Vec<TopicPartitionOffset>) -> Result<(), BrokerError> {
        check_group_id(group_id)?;
        self.journal.check_coordinator(group_id)?;
        let mut entries = Vec::with_capacity(offsets.len());
        for (topic, partition, committed) in &offsets {
            check_topic(topic)?;
            entries.push(StateEntry {
                space: StateSpace::Offsets,
                key: keys::offset_key(group_id, topic, *partition),
                value: Some(committed.encode()),
            });
        }
        self.change(group_id, entries).await
    }

    /// Every committed offset of a group, by topic then partition.
    pub async fn fetch_all(&self, group_id: &str) -> Result<Vec<TopicPartitionOffset>, BrokerError> {
        check_group_id(group_id)?;
        self.journal.check_coordinator(group_id)?;
        let (from, to) = keys::offset_group_range(group_id);
        let found = self.scan_offsets(from, to).await?;
        Ok(found.into_iter().map(|(_, offset)| offset).collect())
    }

    /// Every committed offset of every group this broker coordinates, by group, topic and partition.
    pub async fn fetch_every_group(&self) -> Result<Vec<(String, TopicPartitionOffset)>, BrokerError> {
        let mut found = self.scan_offsets(Vec::new(), vec![0xff; 3]).await?;
        found.retain(|(group_id, _)| self.journal.check_coordinator(group_id).is_ok());
        Ok(found)
    }

    /// The committed offsets stored under keys in `[from, to)`, with their group ids.
    async fn scan_offsets(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
    ) -> Result<Vec<(String, TopicPartitionOffset)>, BrokerError> {
        let engine = Arc::clone(&self.engine);
        blocking(move || {
            let mut found = Vec::new();
            let mut corrupt = None;
            engine.scan(ColumnFamily::Offsets, &from, &to, &mut |key, value| {
                match (keys::decode_offset_key(key), CommittedOffset::decode(value)) {
                    (Some((group_id, topic, partition)), Ok(committed)) => {
                        found.push((group_id, (topic, partition, committed)))
                    }
                    (_, Err(err)) => corrupt = Some(err),
                    (None, _) => {
                        corrupt = Some(StorageError::CorruptValue {
                            key: "offsets".into(),
                            reason: "malformed offsets key".into(),
                        })
                    }
                }
                corrupt.is_none()
            })?;
            match corrupt {
                Some(err) => Err(err),
                None => Ok(found),
            }
        })
        .await
    }

    /// The committed offsets of the given partitions (`None` where nothing was committed, as for a topic name no
    /// topic can have).
    pub async fn fetch(
        &self,
        group_id: &str,
        wanted: Vec<(String, i32)>,
    ) -> Result<Vec<Option<CommittedOffset>>, BrokerError> {
        check_group_id(group_id)?;
        self.journal.check_coordinator(group_id)?;
        let engine = Arc::clone(&self.engine);
        let keys: Vec<Option<Vec<u8>>> = wanted
            .iter()
            .map(|(topic, partition)| keys::fits_key_part(topic).then(|| keys::offset_key(group_id, topic, *partition)))
            .collect();
        blocking(move || {
            keys.iter()
                .map(|key| match key {
                    Some(key) => match engine.get(ColumnFamily::Offsets, key)? {
                        Some(value) => CommittedOffset::decode(&value).map(Some),
                        None => Ok(None),
                    },
                    None => Ok(None),
                })
                .collect()
        })
        .await
    }

    /// Deletes the given partitions' committed offsets.
    pub async fn delete_offsets(&self, group_id: &str, partitions: Vec<(String, i32)>) -> Result<(), BrokerError> {
        check_group_id(group_id)?;
        self.journal.check_coordinator(group_id)?;
        // A topic name no topic can have has no offsets to delete.
        let entries = partitions
            .iter()
            .filter(|(topic, _)| keys::fits_key_part(topic))
            .map(|(topic, partition)| StateEntry {
                space: StateSpace::Offsets,
                key: keys::offset_key(group_id, topic, *partition),
                value: None,
            })
            .collect();
        self.change(group_id, entries).await
    }

    /// Deletes the committed offsets of a deleted topic of every group this broker coordinates (the other groups'
    /// coordinators delete theirs), so a topic created again under the same name starts without them (as in
    /// Kafka).
    pub async fn delete_topic(&self, topic: &str) -> Result<(), BrokerError> {
        if !keys::fits_key_part(topic) {
            return Ok(());
        }
        let engine = Arc::clone(&self.engine);
        let group_ids = blocking(move || group_ids_with_offsets(engine.as_ref())).await?;
        for group_id in group_ids.iter().filter(|g| self.journal.check_coordinator(g).is_ok()) {
            let (from, to) = keys::offset_topic_range(group_id, topic);
            let entries = self.offset_tombstones(from, to).await?;
            self.change(group_id, entries).await?;
        }
        Ok(())
    }

    /// Deletes a group's record and all its committed offsets in one write.
    pub(crate) async fn delete_group(&self, group_id: &str) -> Result<(), BrokerError> {
        check_group_id(group_id)?;
        self.journal.check_coordinator(group_id)?;
        let (from, to) = keys::offset_group_range(group_id);
        let mut entries = self.offset_tombstones(from, to).await?;
        entries.push(StateEntry { space: StateSpace::Groups, key: keys::group_key(group_id), value: None });
        self.change(group_id, entries).await
    }

    /// Stores a group's record.
    pub(crate) async fn save_group(&self, group_id: &str, record: &GroupRecord) -> Result<(), BrokerError> {
        check_group_id(group_id)?;
        self.journal.check_coordinator(group_id)?;
        let entry = StateEntry {
            space: StateSpace::Groups,
            key: keys::group_key(group_id),
            value: Some(record.encode().map_err(storage_error)?),
        };
        self.change(group_id, vec![entry]).await
    }

    /// TxnOffsetCommit: offsets of producer `producer_id`'s open transaction, which become the group's committed
    /// offsets when its COMMIT marker comes ([`OffsetStore::complete_transaction`]) and are dropped by its ABORT.
    /// A later commit of the same partition in the same transaction replaces an earlier one.
    pub async fn add_pending(
        &self,
        group_id: &str,
        producer_id: i64,
        offsets: Vec<TopicPartitionOffset>,
    ) -> Result<(), BrokerError> {
        check_group_id(group_id)?;
        self.journal.check_coordinator(group_id)?;
        if producer_id < 0 {
            return Err(BrokerError::InvalidProducerIdMapping);
        }
        let mut entries = Vec::with_capacity(offsets.len());
        for (topic, partition, committed) in &offsets {
            check_topic(topic)?;
            entries.push(StateEntry {
                space: StateSpace::PendingOffsets,
                key: keys::pending_offset_key(group_id, producer_id, topic, *partition),
                value: Some(committed.encode()),
            });
        }
        self.change(group_id, entries).await
    }

    /// The partitions of the group with offsets of an open transaction (OffsetFetch with `require_stable` answers
    /// UNSTABLE_OFFSET_COMMIT for them).
    pub async fn pending_partitions(&self, group_id: &str) -> Result<BTreeSet<(String, i32)>, BrokerError> {
        check_group_id(group_id)?;
        self.journal.check_coordinator(group_id)?;
        let (from, to) = keys::pending_offset_group_range(group_id);
        let engine = Arc::clone(&self.engine);
        blocking(move || {
            let mut found = BTreeSet::new();
            engine.scan(ColumnFamily::PendingOffsets, &from, &to, &mut |key, _| {
                if let Some((_, _, topic, partition)) = keys::decode_pending_offset_key(key) {
                    found.insert((topic, partition));
                }
                true
            })?;
            Ok(found)
        })
        .await
    }

    /// A transaction marker of producer `producer_id` for the groups of coordinator partition `partition` (every
    /// group when `partition` is `None`): on COMMIT its pending offsets become the groups' committed offsets, on
    /// ABORT they are dropped. Idempotent: a second marker finds nothing pending. Returns how many groups changed.
    pub async fn complete_transaction(
        &self,
        partition: Option<i32>,
        producer_id: i64,
        commit: bool,
    ) -> Result<usize, BrokerError> {
        let engine = Arc::clone(&self.engine);
        let journal = Arc::clone(&self.journal);
        let pending = blocking(move || {
            let mut by_group: BTreeMap<String, Vec<PendingEntry>> = BTreeMap::new();
            let mut corrupt = None;
            engine.scan(ColumnFamily::PendingOffsets, &[], &[0xff; 3], &mut |key, value| {
                match keys::decode_pending_offset_key(key) {
                    Some((group_id, id, topic, index))
                        if id == producer_id && partition.is_none_or(|p| journal.partition_for(&group_id) == p) =>
                    {
                        by_group.entry(group_id).or_default().push((key.to_vec(), topic, index, value.to_vec()));
                    }
                    Some(_) => {}
                    None => {
                        corrupt = Some(StorageError::CorruptValue {
                            key: "pending_offsets".into(),
                            reason: "malformed key".into(),
                        })
                    }
                }
                corrupt.is_none()
            })?;
            corrupt.map_or(Ok(by_group), Err)
        })
        .await?;
        let changed = pending.len();
        for (group_id, offsets) in pending {
            self.journal.check_coordinator(&group_id)?;
            let mut entries = Vec::with_capacity(offsets.len() * 2);
            for (key, topic, index, value) in offsets {
                entries.push(StateEntry { space: StateSpace::PendingOffsets, key, value: None });
                if commit {
                    entries.push(StateEntry {
                        space: StateSpace::Offsets,
                        key: keys::offset_key(&group_id, &topic, index),
                        value: Some(value),
                    });
                }
            }
            self.change(&group_id, entries).await?;
        }
        Ok(changed)
    }

    /// Every stored change of the groups whose coordinator partition is `partition`, as puts (blocking): what a
    /// journal that does not hold them yet must be given (storage written before the journal existed).
    pub fn entries_of_partition(&self, partition: i32) -> Result<Vec<(String, StateEntry)>, StorageError> {
        let mut entries = Vec::new();
        let journal = Arc::clone(&self.journal);
        let mut keep = |space: StateSpace, group_id: Option<String>, key: &[u8], value: &[u8]| {
            if let Some(group_id) = group_id.filter(|g| journal.partition_for(g) == partition) {
                entries.push((group_id, StateEntry { space, key: key.to_vec(), value: Some(value.to_vec()) }));
            }
            true
        };
        self.engine.scan(ColumnFamily::Groups, &[], &[0xff; 3], &mut |key, value| {
            keep(StateSpace::Groups, keys::decode_group_key(key), key, value)
        })?;
        self.engine.scan(ColumnFamily::Offsets, &[], &[0xff; 3], &mut |key, value| {
            keep(StateSpace::Offsets, keys::decode_offset_key(key).map(|(group_id, _, _)| group_id), key, value)
        })?;
        self.engine.scan(ColumnFamily::PendingOffsets, &[], &[0xff; 3], &mut |key, value| {
            let group_id = keys::decode_pending_offset_key(key).map(|(group_id, _, _, _)| group_id);
            keep(StateSpace::PendingOffsets, group_id, key, value)
        })?;
        Ok(entries)
    }

    /// Replaces, in one write, the stored state of the groups whose coordinator partition is `partition` with
    /// `entries` (replayed from its journal; later entries win, deletions remove) (blocking).
    pub fn replace_partition(&self, partition: i32, entries: Vec<StateEntry>) -> Result<(), StorageError> {
        let mut batch = StoreBatch::default();
        for (_, stale) in self.entries_of_partition(partition)? {
            batch.delete(column_family(stale.space), stale.key);
        }
        put_entries(&mut batch, entries);
        if batch.is_empty() { Ok(()) } else { self.engine.write(batch, self.durability) }
    }

    /// The groups whose coordinator partition is `partition` (blocking): those with a record, and those that only
    /// hold committed offsets.
    pub fn load_groups_of(&self, partition: i32) -> Result<BTreeMap<String, Option<GroupRecord>>, StorageError> {
        let mut groups = self.load_all_groups()?;
        groups.retain(|group_id, _| self.journal.partition_for(group_id) == partition);
        Ok(groups)
    }

    /// Every group this broker coordinates at start-up (blocking): those with a record, and those that only hold
    /// committed offsets.
    pub fn load_groups(&self) -> Result<BTreeMap<String, Option<GroupRecord>>, StorageError> {
        let mut groups = self.load_all_groups()?;
        groups.retain(|group_id, _| self.journal.check_coordinator(group_id).is_ok());
        Ok(groups)
    }

    fn load_all_groups(&self) -> Result<BTreeMap<String, Option<GroupRecord>>, StorageError> {
        let mut groups = BTreeMap::new();
        let mut corrupt = None;
        self.engine.scan(ColumnFamily::Groups, &[], &[0xff; 3], &mut |key, value| {
            match (keys::decode_group_key(key), GroupRecord::decode(value)) {
                (Some(group_id), Ok(record)) => {
                    groups.insert(group_id, Some(record));
                }
                (_, Err(err)) => corrupt = Some(err),
                (None, _) => {
                    corrupt = Some(StorageError::CorruptValue { key: "groups".into(), reason: "malformed key".into() })
                }
            }
            corrupt.is_none()
        })?;
        if let Some(err) = corrupt {
            return Err(err);
        }
        for group_id in group_ids_with_offsets(self.engine.as_ref())? {
            groups.entry(group_id).or_insert(None);
        }
        Ok(groups)
    }
}

fn column_family(space: StateSpace) -> ColumnFamily {
    match space {
        StateSpace::Offsets => ColumnFamily::Offsets,
        StateSpace::Groups => ColumnFamily::Groups,
        StateSpace::PendingOffsets => ColumnFamily::PendingOffsets,
    }
}

/// Adds the writes applying `entries` to `batch`.
fn put_entries(batch: &mut StoreBatch, entries: Vec<StateEntry>) {
    for entry in entries {
        let cf = column_family(entry.space);
        match entry.value {
            Some(value) => batch.put(cf, entry.key, value),
            None => batch.delete(cf, entry.key),
        }
    }
}

/// The groups that hold committed offsets, skipping from one group's offsets to the next instead of reading all.
fn group_ids_with_offsets(engine: &dyn Engine) -> Result<Vec<String>, StorageError> {
    let mut group_ids = Vec::new();
    let mut from = Vec::new();
    loop {
        let mut next_group = None;
        engine.scan(ColumnFamily::Offsets, &from, &[0xff; 3], &mut |key, _| {
            next_group = keys::decode_offset_key(key).map(|(group_id, _, _)| group_id);
            false
        })?;
        let Some(group_id) = next_group else { return Ok(group_ids) };
        from = keys::offset_group_range(&group_id).1;
        group_ids.push(group_id);
    }
}

#[cfg(test)]
mod tests {
    use skein_storage::MemoryEngine;

    use super::*;
    use crate::journal::LocalJournal;

    #[tokio::test]
    async fn every_group_lists_all_committed_offsets_by_group() {
        let store = OffsetStore::new(Arc::new(MemoryEngine::new()), Durability::ProcessCrash, Arc::new(LocalJournal));
        let offset = |offset| CommittedOffset { offset, leader_epoch: -1, metadata: None, commit_timestamp: 0 };
        store
            .commit("payments", vec![("orders".into(), 1, offset(7)), ("orders".into(), 0, offset(5))])
            .await
            .expect("commit");
        store.commit("audit", vec![("refunds".into(), 0, offset(2))]).await.expect("commit");

        let found: Vec<(String, String, i32, i64)> = store
            .fetch_every_group()
            .await
            .expect("fetch")
            .into_iter()
            .map(|(group_id, (topic, partition, committed))| (group_id, topic, partition, committed.offset))
            .collect();
        assert_eq!(
            found,
            vec![
                ("audit".into(), "refunds".into(), 0, 2),
                ("payments".into(), "orders".into(), 0, 5),
                ("payments".into(), "orders".into(), 1, 7),
            ]
        );
    }

    fn offset(offset: i64) -> CommittedOffset {
        CommittedOffset { offset, leader_epoch: -1, metadata: None, commit_timestamp: 0 }
    }

    #[tokio::test]
    async fn group_ids_sharing_their_first_65535_bytes_never_share_offsets() {
        let store = OffsetStore::new(Arc::new(MemoryEngine::new()), Durability::ProcessCrash, Arc::new(LocalJournal));
        // Both were cut to their shared 65,535 bytes in the key, so one's commit overwrote the other's. Now both are
        // refused (INVALID_REQUEST; the handlers close such a request's connection before it gets here, as Kafka
        // does) and nothing is written.
        let shared = "g".repeat(keys::MAX_KEY_PART_BYTES);
        for group_id in [format!("{shared}a"), format!("{shared}b")] {
            let err = store.commit(&group_id, vec![("orders".into(), 0, offset(1))]).await.expect_err("too long");
            assert_eq!(skein_core::error_code(&err), 42, "{err}");
            assert!(store.fetch(&group_id, vec![("orders".into(), 0)]).await.is_err());
            assert!(store.fetch_all(&group_id).await.is_err());
            assert!(store.delete_offsets(&group_id, vec![("orders".into(), 0)]).await.is_err());
            assert!(store.delete_group(&group_id).await.is_err());
        }
        assert!(store.fetch_every_group().await.expect("scan").is_empty());
        // So is one byte over the limit of a request string.
        let over = "g".repeat(skein_core::MAX_ID_BYTES + 1);
        assert!(store.commit(&over, vec![("orders".into(), 0, offset(1))]).await.is_err());

        // The longest ids a request may carry, differing only in their last byte, keep their own offsets.
        let shared = "g".repeat(skein_core::MAX_ID_BYTES - 1);
        let (a, b) = (format!("{shared}a"), format!("{shared}b"));
        store.commit(&a, vec![("orders".into(), 0, offset(1))]).await.expect("commit a");
        store.commit(&b, vec![("orders".into(), 0, offset(2))]).await.expect("commit b");
        let fetched = |group_id: String| {
            let store = store.clone();
            async move {
                store.fetch(&group_id, vec![("orders".into(), 0)]).await.expect("fetch")[0].as_ref().map(|c| c.offset)
            }
        };
        assert_eq!(fetched(a.clone()).await, Some(1));
        assert_eq!(fetched(b.clone()).await, Some(2));
        store.delete_group(&a).await.expect("delete a");
        assert_eq!(fetched(a).await, None);
        assert_eq!(fetched(b).await, Some(2));
    }

    #[tokio::test]
    async fn a_topic_name_no_key_can_hold_has_no_offsets() {
        let store = OffsetStore::new(Arc::new(MemoryEngine::new()), Durability::ProcessCrash, Arc::new(LocalJournal));
        let long_topic = "t".repeat(keys::MAX_KEY_PART_BYTES + 1);
        assert!(store.commit("g", vec![(long_topic.clone(), 0, offset(1))]).await.is_err());
        let found = store.fetch("g", vec![(long_topic.clone(), 0)]).await.expect("fetch");
        assert_eq!(found, vec![None]);
        store.delete_offsets("g", vec![(long_topic, 0)]).await.expect("nothing to delete");
    }
}
