//! Where Skein's data lives: an [`Engine`] trait with one atomic [`StoreBatch`] write across key spaces, the
//! RocksDB engine used by the broker, and an in-memory engine that is the reference model for tests.
//!
//! # Layout
//! - [`cf`]: the key spaces (RocksDB column families) and what each holds.
//! - [`keys`]: the one key codec; every key layout is defined there and only there.
//! - [`records`]: the values stored under those keys (partition state, topic records), with a version byte.
//! - [`rocks`]: the RocksDB engine (feature `rocksdb`, on by default). `rocksdb::*` appears nowhere else in the
//!   workspace.
//! - [`memory`]: the in-memory engine.

pub mod cf;
pub mod keys;
pub mod memory;
pub mod records;
#[cfg(feature = "rocksdb")]
pub mod rocks;

pub use cf::ColumnFamily;
pub use memory::MemoryEngine;
pub use records::{
    AbortedTxn, ClassicMemberRecord, CommittedOffset, ConsumerGroupRecord, ConsumerMemberRecord,
    ConsumerMemberStateRecord, DynamicBrokerConfigsRecord, GroupRecord, GroupType, PartitionState, PendingOffset,
    ProducerBatch, ProducerState, SubscribedTopicRecord, TopicPartitionsRecord, TopicRecord, TxnRecord, TxnState,
};
#[cfg(feature = "rocksdb")]
pub use rocks::RocksEngine;

/// A storage failure. Clients see it as KAFKA_STORAGE_ERROR; the broker logs the cause.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("storage engine error: {0}")]
    Engine(String),
    #[error("stored value under {key} is corrupt: {reason}")]
    CorruptValue { key: String, reason: String },
}

impl From<StorageError> for skein_core::BrokerError {
    fn from(err: StorageError) -> Self {
        skein_core::BrokerError::Storage(err.to_string())
    }
}

/// Runs a blocking storage call on the runtime's bounded blocking pool (engine calls must never run on an async
/// worker thread).
pub async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(|err| StorageError::Engine(format!("storage task failed: {err}")))?
}

/// One write operation inside a [`StoreBatch`].
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put {
        cf: ColumnFamily,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: ColumnFamily,
        key: Vec<u8>,
    },
    /// Deletes keys in `[from, to)`.
    DeleteRange {
        cf: ColumnFamily,
        from: Vec<u8>,
        to: Vec<u8>,
    },
}

/// Writes that become visible together or not at all (one RocksDB `WriteBatch`).
#[derive(Debug, Clone, Default)]
pub struct StoreBatch {
    pub ops: Vec<WriteOp>,
}

impl StoreBatch {
    pub fn put(&mut self, cf: ColumnFamily, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(WriteOp::Put { cf, key, value });
    }
    pub fn delete(&mut self, cf: ColumnFamily, key: Vec<u8>) {
        self.ops.push(WriteOp::Delete { cf, key });
    }
    pub fn delete_range(&mut self, cf: ColumnFamily, from: Vec<u8>, to: Vec<u8>) {
        self.ops.push(WriteOp::DeleteRange { cf, from, to });
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Whether a write returns once it is in the write-ahead log (survives a process crash) or once it is fsynced
/// (survives power loss too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    ProcessCrash,
    PowerLoss,
}

/// A stored key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A sorted key-value store with key spaces and atomic multi-key writes. Calls block: run them on the blocking pool.
pub trait Engine: Send + Sync + 'static {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Visits keys in `[from, to)` in ascending order until `visit` returns `false`.
    fn scan(
        &self,
        cf: ColumnFamily,
        from: &[u8],
        to: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError>;

    /// The greatest entry with `lower <= key' <= key`.
    fn floor(&self, cf: ColumnFamily, lower: &[u8], key: &[u8]) -> Result<Option<KeyValue>, StorageError>;

    fn write(&self, batch: StoreBatch, durability: Durability) -> Result<(), StorageError>;

    /// Makes everything written so far durable (used at shutdown).
    fn flush(&self) -> Result<(), StorageError>;

    /// Rewrites the files holding keys in `[from, to)` so space freed by deletes there is given back to the file
    /// system now rather than whenever background compaction gets to it.
    fn compact_range(&self, cf: ColumnFamily, from: &[u8], to: &[u8]) -> Result<(), StorageError>;

    /// The approximate file-system bytes the keys in `[from, to)` and their values take (data flushed to disk, after
    /// compression; what is only in memory counts nothing).
    fn disk_size(&self, cf: ColumnFamily, from: &[u8], to: &[u8]) -> Result<u64, StorageError>;

    /// The engine's own figures for the metrics, or `None` for an engine that keeps none.
    fn stats(&self) -> Result<Option<EngineStats>, StorageError>;
}

/// What the storage engine reports about itself (RocksDB: per-column-family figures summed over the key spaces).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// SST files the current version of the data uses.
    pub live_sst_files_bytes: u64,
    /// All SST files, including obsolete ones still held by a reader or not yet deleted.
    pub total_sst_files_bytes: u64,
    /// Blob files (the record batches flushed out of the Log column family) the current version of the data uses.
    pub live_blob_files_bytes: u64,
    /// All blob files, including obsolete ones not yet deleted.
    pub total_blob_files_bytes: u64,
    /// Active and not yet flushed memtables.
    pub memtable_bytes: u64,
    /// Bytes compaction estimates it must rewrite to bring every level under its target size.
    pub pending_compaction_bytes: u64,
    /// The rate writes are slowed to while compaction catches up; 0 when writes are not delayed.
    pub delayed_write_rate_bytes_per_second: u64,
    /// Whether writes are stopped until compaction or flushes catch up.
    pub write_stopped: bool,
    /// Bytes held in the block cache (one cache shared by every key space).
    pub block_cache_usage_bytes: u64,
}
