//! The RocksDB engine: one column family per [`ColumnFamily`], one `WriteBatch` per [`StoreBatch`].

use std::path::Path;

use rocksdb::properties;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Options, ReadOptions, WriteBatch,
    WriteOptions,
};

use crate::{ColumnFamily, Durability, Engine, EngineStats, KeyValue, StorageError, StoreBatch, WriteOp};

/// Record batches this large or larger are kept in the Log column family's blob files, smaller ones in its table
/// files (where a value costs no second read).
const LOG_MIN_BLOB_BYTES: u64 = 1024;
/// A blob file's size limit: space comes back a whole file at a time, so not RocksDB's default of 256 MiB.
const LOG_BLOB_FILE_BYTES: u64 = 64 << 20;

/// RocksDB behind the [`Engine`] trait.
pub struct RocksEngine {
    db: DB,
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine").field("path", &self.db.path()).finish()
    }
}

// Integer properties the crate has no constants for (RocksDB's `DB::Properties`).
const LIVE_BLOB_FILE_SIZE: &str = "rocksdb.live-blob-file-size";
const TOTAL_BLOB_FILE_SIZE: &str = "rocksdb.total-blob-file-size";

fn engine_error(err: rocksdb::Error) -> StorageError {
    StorageError::Engine(err.into_string())
}

/// How much memory RocksDB may hold, and how many files it keeps open: what bounds the broker's memory besides
/// its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RocksSettings {
    /// The block cache, shared by all column families.
    pub block_cache_bytes: usize,
    /// The records' memtable: filled, it is flushed to a table file while a second one takes writes.
    pub log_write_buffer_bytes: usize,
    /// Every memtable together (RocksDB's `db_write_buffer_size`): past it, the largest is flushed.
    pub total_write_buffer_bytes: usize,
    /// Table files kept open (their indexes in memory); -1: all of them.
    pub max_open_files: i32,
}

impl Default for RocksSettings {
    fn default() -> Self {
        RocksSettings {
            block_cache_bytes: 64 << 20,
            log_write_buffer_bytes: 64 << 20,
            total_write_buffer_bytes: 128 << 20,
            max_open_files: -1,
        }
    }
}

impl RocksEngine {
    /// Opens (creating if needed) the database in `path` with the default [`RocksSettings`].
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_with(path, RocksSettings::default())
    }

    /// Opens (creating if needed) the database in `path`.
    pub fn open_with(path: &Path, settings: RocksSettings) -> Result<Self, StorageError> {
        let cache = Cache::new_lru_cache(settings.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        let cf_options = |cf: ColumnFamily| {
            let mut opts = Options::default();
            opts.set_block_based_table_factory(&table);
            // Keys, small values and (below) the blob files' indexes: LZ4 is cheap on them.
            opts.set_compression_type(DBCompressionType::Lz4);
            if cf == ColumnFamily::Log {
                opts.set_write_buffer_size(settings.log_write_buffer_bytes);
                // Record batches go to blob files when a memtable is flushed, and stay there: compaction then
                // rewrites only keys and blob references, so a batch is written twice (the write-ahead log, its
                // blob file) instead of once more per level it passes through. Like Kafka, the broker does not
                // compress what producers send: they compress batches themselves when they want to.
                opts.set_enable_blob_files(true);
                opts.set_min_blob_size(LOG_MIN_BLOB_BYTES);
                opts.set_blob_file_size(LOG_BLOB_FILE_BYTES);
                opts.set_blob_compression_type(DBCompressionType::None);
                // A blob file is deleted once every batch in it is deleted (retention, DeleteRecords, a deleted
                // topic). One that keeps a few live batches among garbage (a compacted topic, a partition with
                // longer retention) has them moved to a newer file by compaction, and compaction is forced
                // on the oldest files once half of them is garbage: deleted data cannot pin space forever.
                opts.set_enable_blob_gc(true);
                opts.set_blob_gc_age_cutoff(0.25);
                opts.set_blob_gc_force_threshold(0.5);
            } else {
                // Group, offset and transaction state is small next to the records.
                opts.set_write_buffer_size((settings.log_write_buffer_bytes / 8).max(1 << 20));
            }
            opts
        };
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_max_background_jobs(2);
        db_options.set_keep_log_file_num(4);
        db_options.set_db_write_buffer_size(settings.total_write_buffer_bytes);
        db_options.set_max_open_files(settings.max_open_files);
        let descriptors = ColumnFamily::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(*cf)))
            .collect::<Vec<_>>();
        let db = DB::open_cf_descriptors(&db_options, path, descriptors).map_err(engine_error)?;
        Ok(RocksEngine { db })
    }

    /// An integer property of one column family (RocksDB's `DB::Properties`), 0 when RocksDB has none.
    fn int_property(&self, cf: ColumnFamily, name: &str) -> Result<u64, StorageError> {
        Ok(self.db.property_int_value_cf(self.handle(cf)?, name).map_err(engine_error)?.unwrap_or(0))
    }

    fn handle(&self, cf: ColumnFamily) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db.cf_handle(cf.name()).ok_or_else(|| StorageError::Engine(format!("column family {} missing", cf.name())))
    }
}

impl Engine for RocksEngine {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_cf(self.handle(cf)?, key).map_err(engine_error)
    }

    fn scan(
        &self,
        cf: ColumnFamily,
        from: &[u8],
        to: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let mut read_options = ReadOptions::default();
        read_options.set_iterate_upper_bound(to.to_vec());
        let mut iter = self.db.raw_iterator_cf_opt(self.handle(cf)?, read_options);
        iter.seek(from);
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !visit(key, value) {
                return Ok(());
            }
            iter.next();
        }
        iter.status().map_err(engine_error)
    }

    fn floor(&self, cf: ColumnFamily, lower: &[u8], key: &[u8]) -> Result<Option<KeyValue>, StorageError> {
        let mut read_options = ReadOptions::default();
        read_options.set_iterate_lower_bound(lower.to_vec());
        let mut iter = self.db.raw_iterator_cf_opt(self.handle(cf)?, read_options);
        iter.seek_for_prev(key);
        match (iter.key(), iter.value()) {
            (Some(found), Some(value)) if found >= lower => Ok(Some((found.to_vec(), value.to_vec()))),
            _ => iter.status().map(|()| None).map_err(engine_error),
        }
    }

    fn write(&self, batch: StoreBatch, durability: Durability) -> Result<(), StorageError> {
        let mut write_batch = WriteBatch::default();
        for op in &batch.ops {
            match op {
                WriteOp::Put { cf, key, value } => write_batch.put_cf(self.handle(*cf)?, key, value),
                WriteOp::Delete { cf, key } => write_batch.delete_cf(self.handle(*cf)?, key),
                WriteOp::DeleteRange { cf, from, to } => write_batch.delete_range_cf(self.handle(*cf)?, from, to),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(durability == Durability::PowerLoss);
        self.db.write_opt(write_batch, &options).map_err(engine_error)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true).map_err(engine_error)?;
        for cf in ColumnFamily::ALL {
            self.db.flush_cf(self.handle(cf)?).map_err(engine_error)?;
        }
        Ok(())
    }

    fn compact_range(&self, cf: ColumnFamily, from: &[u8], to: &[u8]) -> Result<(), StorageError> {
        self.db.compact_range_cf(self.handle(cf)?, Some(from), Some(to));
        Ok(())
    }

    fn disk_size(&self, cf: ColumnFamily, from: &[u8], to: &[u8]) -> Result<u64, StorageError> {
        let table_bytes = self.db.get_approximate_sizes_cf(self.handle(cf)?, &[rocksdb::Range::new(from, to)]);
        let table_bytes = table_bytes.first().copied().unwrap_or(0);
        // The range's share of the blob files, prorated by its share of the table files (the range's keys hold
        // the references to its blobs), as RocksDB's own estimate with blob files included does.
        let all_table_bytes = self.int_property(cf, properties::LIVE_SST_FILES_SIZE.as_str())?;
        if all_table_bytes == 0 {
            return Ok(table_bytes);
        }
        let blob_bytes = u128::from(self.int_property(cf, LIVE_BLOB_FILE_SIZE)?);
        let blob_share = blob_bytes * u128::from(table_bytes.min(all_table_bytes)) / u128::from(all_table_bytes);
        Ok(table_bytes.saturating_add(u64::try_from(blob_share).unwrap_or(u64::MAX)))
    }

    fn stats(&self) -> Result<Option<EngineStats>, StorageError> {
        let sum = |name: &str| -> Result<u64, StorageError> {
            ColumnFamily::ALL.iter().try_fold(0u64, |total, cf| Ok(total.saturating_add(self.int_property(*cf, name)?)))
        };
        // Write stalls are decided for the whole database, so any column family answers for all; the block cache is
        // shared, so one column family's figure is the whole cache's.
        Ok(Some(EngineStats {
            live_sst_files_bytes: sum(properties::LIVE_SST_FILES_SIZE.as_str())?,
            total_sst_files_bytes: sum(properties::TOTAL_SST_FILES_SIZE.as_str())?,
            live_blob_files_bytes: sum(LIVE_BLOB_FILE_SIZE)?,
            total_blob_files_bytes: sum(TOTAL_BLOB_FILE_SIZE)?,
            memtable_bytes: sum(properties::CUR_SIZE_ALL_MEM_TABLES.as_str())?,
            pending_compaction_bytes: sum(properties::ESTIMATE_PENDING_COMPACTION_BYTES.as_str())?,
            delayed_write_rate_bytes_per_second: self
                .int_property(ColumnFamily::Log, properties::ACTUAL_DELAYED_WRITE_RATE.as_str())?,
            write_stopped: self.int_property(ColumnFamily::Log, properties::IS_WRITE_STOPPED.as_str())? != 0,
            block_cache_usage_bytes: self.int_property(ColumnFamily::Log, properties::BLOCK_CACHE_USAGE.as_str())?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryEngine;
    use crate::keys::log_key;

    /// The same operations against both engines give the same answers.
    fn exercise(engine: &dyn Engine) -> Vec<String> {
        let mut seen = Vec::new();
        let mut batch = StoreBatch::default();
        for offset in [0i64, 10, 20, 30] {
            batch.put(ColumnFamily::Log, log_key(1, offset), offset.to_string().into_bytes());
        }
        batch.put(ColumnFamily::Log, log_key(2, 0), b"other".to_vec());
        batch.put(ColumnFamily::Meta, b"k".to_vec(), b"v".to_vec());
        engine.write(batch, Durability::ProcessCrash).expect("write");

        let floor = |offset| engine.floor(ColumnFamily::Log, &log_key(1, 0), &log_key(1, offset)).expect("floor");
        seen.push(format!("{:?}", floor(15).map(|(_, v)| v)));
        seen.push(format!("{:?}", floor(30).map(|(_, v)| v)));
        seen.push(format!("{:?}", engine.floor(ColumnFamily::Log, &log_key(2, 0), &log_key(2, 0)).expect("f")));

        let mut scanned = Vec::new();
        engine
            .scan(ColumnFamily::Log, &log_key(1, 10), &log_key(1, i64::MAX), &mut |_, v| {
                scanned.push(String::from_utf8_lossy(v).to_string());
                true
            })
            .expect("scan");
        seen.push(scanned.join(","));

        let mut batch = StoreBatch::default();
        batch.delete_range(ColumnFamily::Log, log_key(1, 0), log_key(1, 20));
        batch.delete(ColumnFamily::Meta, b"k".to_vec());
        engine.write(batch, Durability::PowerLoss).expect("write");
        let mut left = Vec::new();
        engine
            .scan(ColumnFamily::Log, &log_key(0, 0), &log_key(9, 0), &mut |_, v| {
                left.push(String::from_utf8_lossy(v).to_string());
                true
            })
            .expect("scan");
        seen.push(left.join(","));
        seen.push(format!("{:?}", engine.get(ColumnFamily::Meta, b"k").expect("get")));
        seen
    }

    #[test]
    fn rocks_engine_matches_the_memory_model() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rocks = RocksEngine::open(dir.path()).expect("open");
        let memory = MemoryEngine::new();
        let expected = exercise(&memory);
        assert_eq!(expected[0], format!("{:?}", Some(b"10".to_vec())));
        assert_eq!(expected[3], "10,20,30");
        assert_eq!(expected[4], "20,30,other");
        assert_eq!(exercise(&rocks), expected);
    }

    const BLOB_TEST_VALUE_BYTES: usize = 16 << 10;

    /// Writes `rounds` rounds of 64 batches to partition 1 (round `r` at offsets `64 r..64 r + 63`, every byte `r`),
    /// each round flushed on its own, so into a blob file of its own.
    fn write_flushed_rounds(rocks: &RocksEngine, rounds: i64) {
        for round in 0..rounds {
            let mut batch = StoreBatch::default();
            for offset in 0..64 {
                batch.put(ColumnFamily::Log, log_key(1, round * 64 + offset), vec![round as u8; BLOB_TEST_VALUE_BYTES]);
            }
            rocks.write(batch, Durability::ProcessCrash).expect("write");
            rocks.flush().expect("flush");
        }
    }

    /// Every value stored for partition 1, in offset order.
    fn stored_values(rocks: &RocksEngine) -> Vec<Vec<u8>> {
        let mut values = Vec::new();
        rocks
            .scan(ColumnFamily::Log, &log_key(1, 0), &log_key(1, i64::MAX), &mut |_, value| {
                values.push(value.to_vec());
                true
            })
            .expect("scan");
        values
    }

    /// Batches in blob files give their space back once deleted: retention deletes a range and compacts it.
    #[test]
    fn deleted_batches_give_their_blob_files_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rocks = RocksEngine::open(dir.path()).expect("open");
        let blob_files_bytes = || -> u64 {
            let files = std::fs::read_dir(dir.path()).expect("read dir");
            files
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().ends_with(".blob"))
                .map(|entry| entry.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        };
        write_flushed_rounds(&rocks, 4);
        let written = rocks.stats().expect("stats").expect("RocksDB has figures");
        assert!(written.live_blob_files_bytes >= 4 * 64 * (16 << 10), "{written:?}");
        assert!(blob_files_bytes() >= 4 * 64 * (16 << 10));
        let (from, to) = (log_key(1, 0), log_key(1, 3 * 64));
        assert!(rocks.disk_size(ColumnFamily::Log, &from, &to).expect("disk size") >= 2 * 64 * (16 << 10));

        // The first three rounds go; the blob files that held only them are deleted.
        let mut batch = StoreBatch::default();
        batch.delete_range(ColumnFamily::Log, from.clone(), to.clone());
        rocks.write(batch, Durability::ProcessCrash).expect("write");
        rocks.compact_range(ColumnFamily::Log, &from, &to).expect("compact");
        let left = rocks.stats().expect("stats").expect("RocksDB has figures");
        assert!(left.live_blob_files_bytes < 2 * 64 * (16 << 10), "{left:?}");
        assert!(blob_files_bytes() < 2 * 64 * (16 << 10), "{} bytes of blob files", blob_files_bytes());
        assert_eq!(stored_values(&rocks), vec![vec![3u8; BLOB_TEST_VALUE_BYTES]; 64]);
    }

    /// Batches deleted one by one among live ones (what the log cleaner leaves of a compacted topic) give their
    /// space back too: blob garbage collection moves the live batches out of files that are mostly garbage.
    #[test]
    fn blob_files_mostly_garbage_are_collected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rocks = RocksEngine::open(dir.path()).expect("open");
        write_flushed_rounds(&rocks, 8);
        let live_blob_bytes = || rocks.stats().expect("stats").expect("RocksDB has figures").live_blob_files_bytes;
        assert!(live_blob_bytes() >= 8 * 64 * (16 << 10));

        // Nine batches in ten go, spread over every blob file.
        let mut batch = StoreBatch::default();
        for offset in (0..8 * 64).filter(|offset| offset % 10 != 0) {
            batch.delete(ColumnFamily::Log, log_key(1, offset));
        }
        rocks.write(batch, Durability::ProcessCrash).expect("write");
        rocks.flush().expect("flush");
        rocks.compact_range(ColumnFamily::Log, &log_key(1, 0), &log_key(1, i64::MAX)).expect("compact");
        // 52 batches are left: once the forced collection has run, the files hold little more than them.
        let left = 52 * (16 << 10);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while live_blob_bytes() > 2 * left {
            assert!(std::time::Instant::now() < deadline, "{} blob bytes for {left} live", live_blob_bytes());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let kept: Vec<Vec<u8>> = (0..8 * 64)
            .filter(|offset| offset % 10 == 0)
            .map(|offset| vec![(offset / 64) as u8; BLOB_TEST_VALUE_BYTES])
            .collect();
        assert_eq!(stored_values(&rocks), kept);
    }

    #[test]
    fn rocks_engine_reports_its_figures_and_the_memory_engine_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rocks = RocksEngine::open(dir.path()).expect("open");
        let mut batch = StoreBatch::default();
        batch.put(ColumnFamily::Log, log_key(1, 0), vec![7; 4096]);
        rocks.write(batch, Durability::ProcessCrash).expect("write");
        let written = rocks.stats().expect("stats").expect("RocksDB has figures");
        assert_eq!(written.live_sst_files_bytes, 0, "nothing flushed yet");
        assert!(written.memtable_bytes > 4096, "{written:?}");

        rocks.flush().expect("flush");
        let flushed = rocks.stats().expect("stats").expect("RocksDB has figures");
        assert!(flushed.live_sst_files_bytes > 0, "{flushed:?}");
        assert!(flushed.total_sst_files_bytes >= flushed.live_sst_files_bytes, "{flushed:?}");
        // The batch went to a blob file, and the partition's disk size counts it.
        assert!(flushed.live_blob_files_bytes >= 4096, "{flushed:?}");
        assert!(flushed.total_blob_files_bytes >= flushed.live_blob_files_bytes, "{flushed:?}");
        let (from, to) = (log_key(1, 0), log_key(1, i64::MAX));
        assert!(rocks.disk_size(ColumnFamily::Log, &from, &to).expect("disk size") >= 4096);
        assert_eq!(rocks.get(ColumnFamily::Log, &log_key(1, 0)).expect("get"), Some(vec![7; 4096]));
        assert!(!flushed.write_stopped);
        assert_eq!(flushed.delayed_write_rate_bytes_per_second, 0);

        assert_eq!(MemoryEngine::new().stats().expect("stats"), None);
    }

    #[test]
    fn rocks_engine_keeps_data_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let rocks = RocksEngine::open(dir.path()).expect("open");
            let mut batch = StoreBatch::default();
            batch.put(ColumnFamily::Partition, vec![1], vec![42]);
            rocks.write(batch, Durability::ProcessCrash).expect("write");
        }
        let rocks = RocksEngine::open(dir.path()).expect("reopen");
        assert_eq!(rocks.get(ColumnFamily::Partition, &[1]).expect("get"), Some(vec![42]));
    }
}
