//! The metadata log, vote and snapshot in RocksDB (`<data.dir>/metadata`), behind openraft's
//! `RaftLogStorage` and `RaftStateMachine`.
//!
//! # Column families and keys (spec: `docs/specs/metadata-log.md`)
//! - `meta`:
//!   - `format_version` → u32 big-endian ([`FORMAT_VERSION`]);
//!   - `node_id` → i32 big-endian, the node that formatted the directory;
//!   - `cluster_id` → UTF-8, once known;
//!   - `vote` → JSON `Vote` (written with fsync before it is acted on);
//!   - `committed` → JSON `LogId`, the last committed entry (a hint: re-applying from the snapshot up to it
//!     at start-up serves the image sooner; losing it is harmless);
//!   - `last_purged` → JSON `LogId`, the last entry removed by a purge.
//! - `log`: index (u64 big-endian, so byte order is index order) → JSON `Entry` (a [`MetadataBatch`],
//!   a blank entry of a new leader, or a membership change). Appends are one synced `WriteBatch`.
//! - `snapshot`: `current` → JSON `{meta, image}`, the last snapshot (the whole [`MetadataImage`]).
//!
//! The state machine itself is not persisted: at start-up the image is the snapshot's, and openraft
//! re-applies the log after it. A snapshot is written before the log below it is purged.
//!
//! [`MetadataBatch`]: crate::records::MetadataBatch

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, EntryPayload, LogState, OptionalSend, RaftLogReader, RaftSnapshotBuilder, Snapshot, StorageIOError,
};
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use crate::error::QuorumError;
use crate::image::MetadataImage;
use crate::records::{Applied, NodeId};
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig, Vote, offset_of};

/// Version of this directory's layout; a newer one is refused at start-up.
pub(crate) const FORMAT_VERSION: u32 = 1;

const CF_META: &str = "meta";
const CF_LOG: &str = "log";
const CF_SNAPSHOT: &str = "snapshot";

const KEY_FORMAT_VERSION: &[u8] = b"format_version";
const KEY_NODE_ID: &[u8] = b"node_id";
const KEY_CLUSTER_ID: &[u8] = b"cluster_id";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
const KEY_SNAPSHOT: &[u8] = b"current";

/// The open metadata database.
#[derive(Debug)]
pub(crate) struct MetadataDb {
    db: DB,
    dir: PathBuf,
    /// Dropped after `db` (fields drop in declaration order): its receiver learns that RocksDB is closed,
    /// not merely that the last `Arc` is going away.
    _closed: oneshot::Sender<()>,
}

/// Resolves once the database is closed.
pub(crate) type DbClosed = oneshot::Receiver<()>;

/// A snapshot as stored and as sent: the image and openraft's description of it.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    pub(crate) meta: SnapshotMeta,
    pub(crate) image: MetadataImage,
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn storage(err: impl std::fmt::Display) -> QuorumError {
    QuorumError::Storage(err.to_string())
}

impl MetadataDb {
    /// Opens (creating if needed) the database and checks it belongs to `node_id` and, when one is
    /// configured, to `cluster_id`. Returns the database, the cluster id stored (or just stored), and a
    /// receiver that resolves when the database has been closed.
    pub(crate) fn open(
        dir: &Path,
        node_id: NodeId,
        cluster_id: Option<&str>,
    ) -> Result<(Arc<MetadataDb>, Option<String>, DbClosed), QuorumError> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let cfs = [CF_META, CF_LOG, CF_SNAPSHOT].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&options, dir, cfs).map_err(storage)?;
        let (closed_tx, closed_rx) = oneshot::channel();
        let this = MetadataDb { db, dir: dir.to_path_buf(), _closed: closed_tx };
        let stored = this.check_identity(node_id, cluster_id)?;
        Ok((Arc::new(this), stored, closed_rx))
    }

    fn dir_name(&self) -> String {
        self.dir.display().to_string()
    }

    fn check_identity(&self, node_id: NodeId, cluster_id: Option<&str>) -> Result<Option<String>, QuorumError> {
        let version = self.get_meta(KEY_FORMAT_VERSION).map_err(storage)?;
        match version {
            None => {
                // A fresh directory: format it for this node (and cluster, if known) in one synced write.
                let mut batch = WriteBatch::default();
                let cf = self.cf(CF_META).map_err(storage)?;
                batch.put_cf(cf, KEY_FORMAT_VERSION, FORMAT_VERSION.to_be_bytes());
                batch.put_cf(cf, KEY_NODE_ID, node_id.to_be_bytes());
                if let Some(id) = cluster_id {
                    batch.put_cf(cf, KEY_CLUSTER_ID, id.as_bytes());
                }
                self.db.write_opt(batch, &synced()).map_err(storage)?;
                Ok(cluster_id.map(str::to_owned))
            }
            Some(raw) => {
                let found = <[u8; 4]>::try_from(raw.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| QuorumError::Storage("format_version is not 4 bytes".to_owned()))?;
                if found > FORMAT_VERSION {
                    return Err(QuorumError::UnsupportedFormat {
                        dir: self.dir_name(),
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                let stored_node = self
                    .get_meta(KEY_NODE_ID)
                    .map_err(storage)?
                    .and_then(|raw| <[u8; 4]>::try_from(raw.as_slice()).ok())
                    .map(i32::from_be_bytes)
                    .ok_or_else(|| QuorumError::Storage("node_id missing or malformed".to_owned()))?;
                if stored_node != node_id {
                    return Err(QuorumError::NodeIdMismatch {
                        dir: self.dir_name(),
                        stored: stored_node,
                        configured: node_id,
                    });
                }
                let stored_cluster = self
                    .get_meta(KEY_CLUSTER_ID)
                    .map_err(storage)?
                    .map(|raw| String::from_utf8(raw).map_err(storage))
                    .transpose()?;
                match (stored_cluster, cluster_id) {
                    (Some(stored), Some(configured)) if stored != configured => Err(QuorumError::ClusterIdMismatch {
                        dir: self.dir_name(),
                        stored,
                        configured: configured.to_owned(),
                    }),
                    (Some(stored), _) => Ok(Some(stored)),
                    (None, Some(configured)) => {
                        self.set_cluster_id(configured).map_err(storage)?;
                        Ok(Some(configured.to_owned()))
                    }
                    (None, None) => Ok(None),
                }
            }
        }
    }

    /// Records the cluster id this directory now belongs to (synced).
    pub(crate) fn set_cluster_id(&self, id: &str) -> Result<(), DbError> {
        Ok(self.db.put_cf_opt(self.cf(CF_META)?, KEY_CLUSTER_ID, id.as_bytes(), &synced())?)
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, DbError> {
        // The column families are created at open, so a missing handle means a damaged database.
        self.db.cf_handle(name).ok_or_else(|| DbError::Corrupt(format!("column family {name} missing")))
    }

    fn get_meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self.db.get_cf(self.cf(CF_META)?, key)?)
    }

    fn get_json<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, DbError> {
        match self.get_meta(key)? {
            None => Ok(None),
            Some(raw) => Ok(Some(serde_json::from_slice(&raw)?)),
        }
    }

    fn put_json<T: Serialize>(&self, key: &[u8], value: &T, sync: bool) -> Result<(), DbError> {
        let raw = serde_json::to_vec(value)?;
        let opts = if sync { synced() } else { WriteOptions::default() };
        Ok(self.db.put_cf_opt(self.cf(CF_META)?, key, raw, &opts)?)
    }

    fn read_entries(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry>, DbError> {
        let cf = self.cf(CF_LOG)?;
        let from = index_key(start);
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&from, Direction::Forward)) {
            let (key, value) = item?;
            let index = <[u8; 8]>::try_from(key.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| DbError::Corrupt("log key is not 8 bytes".to_owned()))?;
            if end.is_some_and(|end| index >= end) {
                break;
            }
            let entry: Entry = serde_json::from_slice(&value)?;
            out.push(entry);
        }
        Ok(out)
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId>, DbError> {
        let cf = self.cf(CF_LOG)?;
        match self.db.iterator_cf(cf, IteratorMode::End).next() {
            None => Ok(None),
            Some(item) => {
                let (_, value) = item?;
                let entry: Entry = serde_json::from_slice(&value)?;
                Ok(Some(entry.log_id))
            }
        }
    }

    fn append(&self, entries: &[Entry]) -> Result<(), DbError> {
        let cf = self.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        for entry in entries {
            let raw = serde_json::to_vec(entry)?;
            batch.put_cf(cf, index_key(entry.log_id.index), raw);
        }
        Ok(self.db.write_opt(batch, &synced())?)
    }

    /// Deletes `[from, to)` of the log, and records `purged` in the same synced write when given.
    fn delete_entries(&self, from: u64, to: u64, purged: Option<&LogId>) -> Result<(), DbError> {
        let log = self.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(log, index_key(from), index_key(to));
        if to == u64::MAX {
            batch.delete_cf(log, index_key(u64::MAX));
        }
        if let Some(purged) = purged {
            let meta = self.cf(CF_META)?;
            batch.put_cf(meta, KEY_LAST_PURGED, serde_json::to_vec(purged)?);
        }
        Ok(self.db.write_opt(batch, &synced())?)
    }

    fn read_snapshot(&self) -> Result<Option<StoredSnapshot>, DbError> {
        let cf = self.cf(CF_SNAPSHOT)?;
        match self.db.get_cf(cf, KEY_SNAPSHOT)? {
            None => Ok(None),
            Some(raw) => Ok(Some(serde_json::from_slice(&raw)?)),
        }
    }

    fn write_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), DbError> {
        let cf = self.cf(CF_SNAPSHOT)?;
        let raw = serde_json::to_vec(snapshot)?;
        Ok(self.db.put_cf_opt(cf, KEY_SNAPSHOT, raw, &synced())?)
    }
}

/// A failure inside the metadata database.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error(transparent)]
    Rocks(#[from] rocksdb::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("metadata database damaged: {0}")]
    Corrupt(String),
    #[error("blocking task failed: {0}")]
    Join(String),
}

/// Runs a blocking RocksDB call on the blocking pool.
async fn blocking<T, F>(db: &Arc<MetadataDb>, f: F) -> Result<T, AnyError>
where
    T: Send + 'static,
    F: FnOnce(&MetadataDb) -> Result<T, DbError> + Send + 'static,
{
    let db = Arc::clone(db);
    match tokio::task::spawn_blocking(move || f(&db)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(AnyError::new(&e)),
        Err(e) => Err(AnyError::new(&DbError::Join(e.to_string()))),
    }
}

/// The Raft log and vote (openraft's `RaftLogStorage`); clones share the database.
#[derive(Clone, Debug)]
pub(crate) struct LogStore {
    db: Arc<MetadataDb>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<MetadataDb>) -> Self {
        Self { db }
    }
}

fn range_to_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => Some(i.saturating_add(1)),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = range_to_bounds(&range);
        blocking(&self.db, move |db| db.read_entries(start, end))
            .await
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let (last_purged, last) = blocking(&self.db, |db| {
            let purged: Option<LogId> = db.get_json(KEY_LAST_PURGED)?;
            Ok((purged, db.last_entry_log_id()?))
        })
        .await
        .map_err(|e| StorageIOError::read_logs(&e))?;
        let last_log_id = last.or(last_purged);
        Ok(LogState { last_purged_log_id: last_purged, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        blocking(&self.db, move |db| db.put_json(KEY_VOTE, &vote, true))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        blocking(&self.db, |db| db.get_json(KEY_VOTE)).await.map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        blocking(&self.db, move |db| db.put_json(KEY_COMMITTED, &committed, false))
            .await
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        blocking(&self.db, |db| Ok(db.get_json::<Option<LogId>>(KEY_COMMITTED)?.flatten()))
            .await
            .map_err(|e| StorageIOError::read(&e).into())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        // The write is synced before returning, so the entries are durable (and readable) at once.
        let result = blocking(&self.db, move |db| db.append(&entries)).await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let from = log_id.index;
        blocking(&self.db, move |db| db.delete_entries(from, u64::MAX, None))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let to = log_id.index.saturating_add(1);
        blocking(&self.db, move |db| db.delete_entries(0, to, Some(&log_id)))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

/// The state machine: applies entries into the image and publishes it.
#[derive(Debug)]
pub(crate) struct StateMachine {
    db: Arc<MetadataDb>,
    image: Arc<watch::Sender<Arc<MetadataImage>>>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshots_built: u64,
}

impl StateMachine {
    /// Loads the last snapshot (if any) as the starting image.
    pub(crate) async fn open(
        db: Arc<MetadataDb>,
        image: Arc<watch::Sender<Arc<MetadataImage>>>,
    ) -> Result<Self, QuorumError> {
        let snapshot = blocking(&db, |db| db.read_snapshot()).await.map_err(storage)?;
        let mut sm =
            Self { db, image, last_applied: None, membership: StoredMembership::default(), snapshots_built: 0 };
        if let Some(snapshot) = snapshot {
            sm.last_applied = snapshot.meta.last_log_id;
            sm.membership = snapshot.meta.last_membership.clone();
            sm.image.send_replace(Arc::new(snapshot.image));
        }
        Ok(sm)
    }
}

/// Builds a snapshot from the image as it was when the builder was taken.
#[derive(Debug)]
pub(crate) struct SnapshotBuilder {
    db: Arc<MetadataDb>,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot_id: String,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: self.snapshot_id.clone(),
        };
        let stored = StoredSnapshot { meta: meta.clone(), image: (*self.image).clone() };
        let image = stored.image.clone();
        blocking(&self.db, move |db| db.write_snapshot(&stored))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        tracing::info!(snapshot = %meta, "metadata snapshot written");
        Ok(Snapshot { meta, snapshot: Box::new(image) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut next: MetadataImage = (**self.image.borrow()).clone();
        let mut responses = Vec::new();
        for entry in entries {
            let offset = offset_of(&entry.log_id);
            match entry.payload {
                EntryPayload::Blank => next.advance(offset),
                EntryPayload::Normal(batch) => next.apply(offset, &batch.records),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    next.advance(offset);
                }
            }
            self.last_applied = Some(entry.log_id);
            responses.push(Applied);
        }
        self.image.send_replace(Arc::new(next));
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots_built += 1;
        let (term, index) = self.last_applied.map(|l| (l.leader_id.term, l.index)).unwrap_or_default();
        SnapshotBuilder {
            db: Arc::clone(&self.db),
            image: Arc::clone(&self.image.borrow()),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            snapshot_id: format!("{term}-{index}-{}", self.snapshots_built),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<MetadataImage>, StorageError> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<MetadataImage>,
    ) -> Result<(), StorageError> {
        let stored = StoredSnapshot { meta: meta.clone(), image: *snapshot };
        let image = stored.image.clone();
        let signature = meta.signature();
        blocking(&self.db, move |db| db.write_snapshot(&stored))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(signature), &e))?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.image.send_replace(Arc::new(image));
        tracing::info!(snapshot = %meta, "metadata snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored =
            blocking(&self.db, |db| db.read_snapshot()).await.map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|s| Snapshot { meta: s.meta, snapshot: Box::new(s.image) }))
    }
}
