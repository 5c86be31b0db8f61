//! Committed offsets and group records in the storage engine. Every call runs on the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use skein_core::BrokerError;
use skein_core::limits::{self, IdKind};
use skein_storage::{ColumnFamily, CommittedOffset, Durability, Engine, GroupRecord, StorageError, StoreBatch, keys};

/// One partition's committed offset: (topic, partition, offset).
pub type TopicPartitionOffset = (String, i32, CommittedOffset);

/// Reads and writes the `offsets` and `groups` key spaces.
#[derive(Clone)]
pub struct OffsetStore {
    engine: Arc<dyn Engine>,
    durability: Durability,
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
    /// Writes go to the engine with `durability`; a commit is acknowledged only after its write returns.
    pub fn new(engine: Arc<dyn Engine>, durability: Durability) -> Self {
        OffsetStore { engine, durability }
    }

    /// Stores the offsets of one commit request in one atomic write.
    pub async fn commit(&self, group_id: &str, offsets: Vec<TopicPartitionOffset>) -> Result<(), BrokerError> {
        check_group_id(group_id)?;
        let mut batch = StoreBatch::default();
        for (topic, partition, committed) in &offsets {
            check_topic(topic)?;
            batch.put(ColumnFamily::Offsets, keys::offset_key(group_id, topic, *partition), committed.encode());
        }
        let engine = Arc::clone(&self.engine);
        let durability = self.durability;
        blocking(move || engine.write(batch, durability)).await
    }

    /// Every committed offset of a group, by topic then partition.
    pub async fn fetch_all(&self, group_id: &str) -> Result<Vec<TopicPartitionOffset>, BrokerError> {
        check_group_id(group_id)?;
        let (from, to) = keys::offset_group_range(group_id);
        let found = self.scan_offsets(from, to).await?;
        Ok(found.into_iter().map(|(_, offset)| offset).collect())
    }

    /// Every committed offset of every group, by group, topic and partition.
    pub async fn fetch_every_group(&self) -> Result<Vec<(String, TopicPartitionOffset)>, BrokerError> {
        self.scan_offsets(Vec::new(), vec![0xff; 3]).await
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
        let mut batch = StoreBatch::default();
        // A topic name no topic can have has no offsets to delete.
        for (topic, partition) in partitions.iter().filter(|(topic, _)| keys::fits_key_part(topic)) {
            batch.delete(ColumnFamily::Offsets, keys::offset_key(group_id, topic, *partition));
        }
        let engine = Arc::clone(&self.engine);
        let durability = self.durability;
        blocking(move || engine.write(batch, durability)).await
    }

    /// Deletes every group's committed offsets of a deleted topic in one write, so a topic created again under the
    /// same name starts without them (as in Kafka).
    pub async fn delete_topic(&self, topic: &str) -> Result<(), BrokerError> {
        let engine = Arc::clone(&self.engine);
        let durability = self.durability;
        let topic = topic.to_string();
        blocking(move || {
            let mut batch = StoreBatch::default();
            for group_id in group_ids_with_offsets(engine.as_ref())? {
                let (from, to) = keys::offset_topic_range(&group_id, &topic);
                batch.delete_range(ColumnFamily::Offsets, from, to);
            }
            if batch.is_empty() { Ok(()) } else { engine.write(batch, durability) }
        })
        .await
    }

    /// Deletes a group's record and all its committed offsets in one write.
    pub(crate) async fn delete_group(&self, group_id: &str) -> Result<(), BrokerError> {
        check_group_id(group_id)?;
        let mut batch = StoreBatch::default();
        let (from, to) = keys::offset_group_range(group_id);
        batch.delete_range(ColumnFamily::Offsets, from, to);
        batch.delete(ColumnFamily::Groups, keys::group_key(group_id));
        let engine = Arc::clone(&self.engine);
        let durability = self.durability;
        blocking(move || engine.write(batch, durability)).await
    }

    /// Stores a group's record.
    pub(crate) async fn save_group(&self, group_id: &str, record: &GroupRecord) -> Result<(), BrokerError> {
        check_group_id(group_id)?;
        let mut batch = StoreBatch::default();
        batch.put(ColumnFamily::Groups, keys::group_key(group_id), record.encode().map_err(storage_error)?);
        let engine = Arc::clone(&self.engine);
        let durability = self.durability;
        blocking(move || engine.write(batch, durability)).await
    }

    /// Every group known at start-up (blocking): those with a record, and those that only hold committed offsets.
    pub fn load_groups(&self) -> Result<BTreeMap<String, Option<GroupRecord>>, StorageError> {
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

    #[tokio::test]
    async fn every_group_lists_all_committed_offsets_by_group() {
        let store = OffsetStore::new(Arc::new(MemoryEngine::new()), Durability::ProcessCrash);
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
        let store = OffsetStore::new(Arc::new(MemoryEngine::new()), Durability::ProcessCrash);
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
        let store = OffsetStore::new(Arc::new(MemoryEngine::new()), Durability::ProcessCrash);
        let long_topic = "t".repeat(keys::MAX_KEY_PART_BYTES + 1);
        assert!(store.commit("g", vec![(long_topic.clone(), 0, offset(1))]).await.is_err());
        let found = store.fetch("g", vec![(long_topic.clone(), 0)]).await.expect("fetch");
        assert_eq!(found, vec![None]);
        store.delete_offsets("g", vec![(long_topic, 0)]).await.expect("nothing to delete");
    }
}
