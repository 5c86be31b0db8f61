//! Log compaction (`cleanup.policy=compact`): in the cleanable part of a partition, only the latest record of
//! each key is kept; a tombstone (null value) that is the latest of its key goes once it is older than
//! `delete.retention.ms`; records of aborted transactions go. Offsets never change: a compacted batch keeps the
//! offsets of the records it still holds, and a batch left empty is deleted (clients skip the gaps).
//!
//! What is cleanable stops before the last stable offset (an open transaction is never touched) and before records
//! younger than `min.compaction.lag.ms`. Control batches (transaction markers) and the batches producers' sequence
//! state still refers to (so retries of recent batches are still recognised) are kept whole.
//!
//! A pass works as Kafka's cleaner does, in bounded memory: it maps each key of the dirty part (what was written
//! since the last pass, as far as `log.cleaner.dedupe.buffer.size` allows) to its latest offset, then rewrites the
//! log up to the dirty part's end one window of about a MiB at a time, each window's changes written under the
//! partition's append lock (held briefly, so producers wait little) after checking that the log start did not
//! move. Reading and writing keep to the I/O budget (`log.cleaner.io.max.bytes.per.second`): the pass pauses
//! whenever it is ahead of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};
use skein_core::BrokerError;
use skein_protocol::{RecordBatchHeader, decode_batch_records, uncompressed_limit};
use skein_storage::{ColumnFamily, Durability, StorageError, StoreBatch, keys, run_blocking};

use crate::partition::PartitionLog;

/// The topic settings a compaction pass obeys.
#[derive(Debug, Clone, Copy)]
pub struct CompactionSettings {
    /// `delete.retention.ms`: how long a tombstone stays readable.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a removable record older than this is compacted whatever the dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: the share of removable records (in the cleanable range) that makes a pass
    /// worth writing.
    pub min_cleanable_dirty_ratio: f64,
    /// The broker's `log.cleaner.dedupe.buffer.size`: the most memory a pass's key map may take.
    pub dedupe_buffer_bytes: usize,
}

/// How often (in bytes read) a pass checks it is within its I/O budget.
const READ_CHECK_BYTES: usize = 1 << 20;

/// The cleaner's I/O budget (`log.cleaner.io.max.bytes.per.second`), shared by the passes of one cleaning round:
/// tells how long to pause so the bytes read and written since the round started took at least
/// bytes / budget seconds.
#[derive(Debug, Clone)]
pub struct IoBudget {
    bytes_per_second: f64,
    spent: Arc<Mutex<(Instant, f64)>>,
}

impl IoBudget {
    pub fn new(bytes_per_second: f64) -> Self {
        IoBudget { bytes_per_second, spent: Arc::new(Mutex::new((Instant::now(), 0.0))) }
    }

    /// Counts `bytes` of I/O and returns the pause that keeps the round within budget (zero when unlimited).
    fn spend(&self, bytes: usize) -> Duration {
        let unlimited = !self.bytes_per_second.is_finite() || self.bytes_per_second == f64::MAX;
        if unlimited || self.bytes_per_second <= 0.0 {
            return Duration::ZERO;
        }
        let mut spent = match self.spent.lock() {
            Ok(spent) => spent,
            Err(poisoned) => poisoned.into_inner(),
        };
        spent.1 += bytes as f64;
        let due = Duration::from_secs_f64((spent.1 / self.bytes_per_second).min(3600.0));
        due.saturating_sub(spent.0.elapsed())
    }
}

/// One change a pass makes to a stored batch.
struct Rewrite {
    key: Vec<u8>,
    /// The batch with fewer records, or `None` when it goes whole.
    value: Option<Vec<u8>>,
    records_removed: u64,
    bytes_reclaimed: u64,
    batch_rewritten: bool,
    /// The rewritten batch still holds a tombstone.
    keeps_tombstone: bool,
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    pub records_removed: u64,
    pub bytes_reclaimed: u64,
    pub batches_rewritten: u64,
}

/// One stored batch.
struct StoredBatch {
    key: Vec<u8>,
    bytes: Vec<u8>,
    header: RecordBatchHeader,
}

/// What the cleaner remembers of a partition between passes. It lives in memory: after a restart the first pass
/// finds the whole log dirty, which only costs work.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CleanerCheckpoint {
    /// Where the part no pass has cleaned yet starts.
    first_dirty: i64,
    /// Bytes of the batches the last pass kept before `first_dirty`.
    clean_bytes: u64,
    /// The newest timestamp of a batch holding a tombstone the last pass kept: once the oldest such is past
    /// `delete.retention.ms`, a pass is due even without new records.
    oldest_kept_tombstone: Option<i64>,
}

/// The most bytes of batches a pass holds at once while rewriting.
const REWRITE_WINDOW_BYTES: usize = 1 << 20;
/// What one key costs in the key map besides its bytes (entry, offset, table slack), for the dedupe budget.
const KEY_MAP_ENTRY_BYTES: usize = 48;

/// The dirty part's key map: the latest offset of every key between the first dirty offset and `dirty_end`.
struct DirtyPart {
    latest: HashMap<Bytes, i64>,
    dirty_end: i64,
    dirty_bytes: u64,
    /// The newest timestamp of the first dirty batch (for `max.compaction.lag.ms`).
    first_dirty_timestamp: Option<i64>,
}

impl PartitionLog {
    /// Compacts this partition once, as Kafka's cleaner does: a key map of the dirty part (the records written
    /// since the last pass, as far as `log.cleaner.dedupe.buffer.size` allows) decides which records of the log
    /// up to the dirty part's end are superseded; the log is then rewritten a window at a time. A pass runs when
    /// the dirty part's share of the cleanable bytes reaches `min.cleanable.dirty.ratio`, when its oldest record is
    /// past `max.compaction.lag.ms`, or when a kept tombstone is past `delete.retention.ms`.
    pub async fn compact(
        &self,
        settings: CompactionSettings,
        budget: &IoBudget,
        durability: Durability,
        now_ms: i64,
    ) -> Result<CompactionOutcome, BrokerError> {
        let state = self.state();
        let log_start = state.log_start_offset;
        let end = self.last_stable_offset();
        if end <= log_start {
            return Ok(CompactionOutcome::default());
        }
        let mut checkpoint = self.cleaner_checkpoint();
        if checkpoint.first_dirty <= log_start {
            checkpoint = CleanerCheckpoint { first_dirty: log_start, ..CleanerCheckpoint::default() };
        }
        let aborted = self.aborted_transactions(log_start, end).await?;
        let lag_cutoff = now_ms.saturating_sub(settings.min_compaction_lag_ms);
        let dirty = self.scan_dirty_part(&checkpoint, end, lag_cutoff, &aborted, &settings, budget).await?;

        let tombstone_cutoff = now_ms.saturating_sub(settings.delete_retention_ms);
        let overdue_cutoff = now_ms.saturating_sub(settings.max_compaction_lag_ms);
        let tombstones_due = checkpoint.oldest_kept_tombstone.is_some_and(|newest| newest < tombstone_cutoff);
        let overdue = dirty.first_dirty_timestamp.is_some_and(|newest| newest < overdue_cutoff);
        let cleanable = checkpoint.clean_bytes + dirty.dirty_bytes;
        let dirty_ratio = if cleanable == 0 { 0.0 } else { dirty.dirty_bytes as f64 / cleanable as f64 };
        let worth_it = dirty.dirty_bytes > 0 && (dirty_ratio >= settings.min_cleanable_dirty_ratio || overdue);
        if !worth_it && !tombstones_due {
            return Ok(CompactionOutcome::default());
        }

        let rewrite_end = dirty.dirty_end.max(checkpoint.first_dirty);
        let mut outcome = CompactionOutcome::default();
        let mut kept_bytes = 0u64;
        let mut oldest_kept_tombstone: Option<i64> = None;
        let mut cursor = log_start;
        while cursor < rewrite_end {
            let window = self.read_window(cursor, rewrite_end, budget).await?;
            let Some(last) = window.last() else { break };
            cursor = last.header.last_offset() + 1;
            let mut chunk = StoreBatch::default();
            let mut chunk_outcome = CompactionOutcome::default();
            let mut chunk_bytes = 0;
            for batch in &window {
                // Producers' sequence state is stored apart from the log, so a retry of a batch compacted away is
                // still recognised; control batches (transaction markers) stay.
                let fate = if batch.header.is_control() {
                    BatchFate::Kept { holds_tombstone: false }
                } else {
                    rewrite_batch(batch, &dirty.latest, &aborted, tombstone_cutoff)?
                };
                let (bytes_left, holds_tombstone) = match &fate {
                    BatchFate::Kept { holds_tombstone } => (batch.bytes.len(), *holds_tombstone),
                    BatchFate::Changed(rewrite) => {
                        (rewrite.value.as_ref().map_or(0, Vec::len), rewrite.keeps_tombstone)
                    }
                };
                kept_bytes += bytes_left as u64;
                if holds_tombstone {
                    let newest = batch.header.max_timestamp;
                    oldest_kept_tombstone = Some(oldest_kept_tombstone.map_or(newest, |t| t.min(newest)));
                }
                let BatchFate::Changed(rewrite) = fate else { continue };
                chunk_outcome.records_removed += rewrite.records_removed;
                chunk_outcome.bytes_reclaimed += rewrite.bytes_reclaimed;
                chunk_outcome.batches_rewritten += u64::from(rewrite.batch_rewritten);
                chunk_bytes += rewrite.key.len() + rewrite.value.as_ref().map_or(0, Vec::len);
                match rewrite.value {
                    Some(value) => chunk.put(ColumnFamily::Log, rewrite.key, value),
                    None => chunk.delete(ColumnFamily::Log, rewrite.key),
                }
            }
            if chunk.is_empty() {
                continue;
            }
            {
                let _append = self.append_lock.lock().await;
                if self.log_start_offset() != log_start {
                    // Retention or DeleteRecords moved the start meanwhile: a rewrite could bring back a deleted
                    // batch, so the pass stops here (what it wrote stands) and the next one starts afresh.
                    self.set_cleaner_checkpoint(CleanerCheckpoint::default());
                    return Ok(outcome);
                }
                let engine = Arc::clone(&self.engine);
                run_blocking(move || engine.write(chunk, durability)).await?;
            }
            outcome.records_removed += chunk_outcome.records_removed;
            outcome.bytes_reclaimed += chunk_outcome.bytes_reclaimed;
            outcome.batches_rewritten += chunk_outcome.batches_rewritten;
            tokio::time::sleep(budget.spend(chunk_bytes)).await;
        }
        self.set_cleaner_checkpoint(CleanerCheckpoint {
            first_dirty: rewrite_end,
            clean_bytes: kept_bytes,
            oldest_kept_tombstone,
        });
        Ok(outcome)
    }

    /// Reads the dirty part from the checkpoint's first dirty offset and maps each key to its latest offset. Stops
    /// before a batch within `min.compaction.lag.ms` or at the last stable offset, and after the batch that takes
    /// the key map past the dedupe budget (the rest waits for the next pass).
    async fn scan_dirty_part(
        &self,
        checkpoint: &CleanerCheckpoint,
        end: i64,
        lag_cutoff: i64,
        aborted: &[(i64, i64, i64)],
        settings: &CompactionSettings,
        budget: &IoBudget,
    ) -> Result<DirtyPart, BrokerError> {
        let engine = Arc::clone(&self.engine);
        let (from, to) =
            (keys::log_key(self.partition_id, checkpoint.first_dirty), keys::log_key(self.partition_id, end));
        let aborted = aborted.to_vec();
        let budget = budget.clone();
        let key_map_budget = settings.dedupe_buffer_bytes;
        let first_dirty = checkpoint.first_dirty;
        run_blocking(move || {
            let mut dirty = DirtyPart {
                latest: HashMap::new(),
                dirty_end: first_dirty,
                dirty_bytes: 0,
                first_dirty_timestamp: None,
            };
            let mut key_map_bytes = 0usize;
            let mut unchecked = 0;
            let mut failure = None;
            engine.scan(ColumnFamily::Log, &from, &to, &mut |key, value| {
                let Ok(header) = RecordBatchHeader::parse(value) else { return true };
                if header.max_timestamp > lag_cutoff || header.last_offset() >= end {
                    return false;
                }
                unchecked += key.len() + value.len();
                if unchecked >= READ_CHECK_BYTES {
                    // A blocking thread: the pause holds up nothing else.
                    std::thread::sleep(budget.spend(unchecked));
                    unchecked = 0;
                }
                if !header.is_control() && !is_aborted(&header, &aborted) {
                    match decode_batch_records(value, uncompressed_limit(value.len())) {
                        Ok(records) => {
                            for record in records {
                                if let Some(record_key) = record.key {
                                    let size = record_key.len() + KEY_MAP_ENTRY_BYTES;
                                    if dirty.latest.insert(record_key, record.offset).is_none() {
                                        key_map_bytes += size;
                                    }
                                }
                            }
                        }
                        Err(err) => {
                            failure = Some(format!("cannot decode a stored batch for compaction: {err}"));
                            return false;
                        }
                    }
                }
                dirty.first_dirty_timestamp.get_or_insert(header.max_timestamp);
                dirty.dirty_bytes += value.len() as u64;
                dirty.dirty_end = header.last_offset() + 1;
                key_map_bytes < key_map_budget
            })?;
            match failure {
                Some(reason) => Err(StorageError::Engine(reason)),
                None => Ok(dirty),
            }
        })
        .await
        .map_err(BrokerError::from)
    }

    /// The batches from `from` on (before `to`), up to about [`REWRITE_WINDOW_BYTES`].
    async fn read_window(&self, from: i64, to: i64, budget: &IoBudget) -> Result<Vec<StoredBatch>, BrokerError> {
        let engine = Arc::clone(&self.engine);
        let (from, to) = (keys::log_key(self.partition_id, from), keys::log_key(self.partition_id, to));
        let budget = budget.clone();
        run_blocking(move || {
            let mut window = Vec::new();
            let mut bytes = 0;
            engine.scan(ColumnFamily::Log, &from, &to, &mut |key, value| {
                if let Ok(header) = RecordBatchHeader::parse(value) {
                    window.push(StoredBatch { key: key.to_vec(), bytes: value.to_vec(), header });
                }
                bytes += key.len() + value.len();
                bytes < REWRITE_WINDOW_BYTES
            })?;
            std::thread::sleep(budget.spend(bytes));
            Ok(window)
        })
        .await
        .map_err(BrokerError::from)
    }
}

/// What a pass does with one stored batch.
enum BatchFate {
    /// Left as it is.
    Kept { holds_tombstone: bool },
    /// Rewritten with fewer records, or deleted.
    Changed(Rewrite),
}

/// A batch of an aborted transaction goes whole (no read_committed consumer ever reads it); otherwise records
/// superseded by a later record of their key go, and so does a latest tombstone past `delete.retention.ms`.
fn rewrite_batch(
    batch: &StoredBatch,
    latest: &HashMap<Bytes, i64>,
    aborted: &[(i64, i64, i64)],
    tombstone_cutoff: i64,
) -> Result<BatchFate, BrokerError> {
    let count = u64::try_from(batch.header.records_count).unwrap_or(0);
    let removed_whole = || Rewrite {
        key: batch.key.clone(),
        value: None,
        records_removed: count,
        bytes_reclaimed: batch.bytes.len() as u64,
        batch_rewritten: false,
        keeps_tombstone: false,
    };
    if is_aborted(&batch.header, aborted) {
        return Ok(BatchFate::Changed(removed_whole()));
    }
    let records = decode_batch_records(&batch.bytes, uncompressed_limit(batch.bytes.len()))
        .map_err(|err| BrokerError::Storage(format!("cannot decode a stored batch for compaction: {err}")))?;
    let keep: Vec<_> = records
        .iter()
        .filter(|record| match &record.key {
            None => true,
            Some(key) => {
                let superseded = latest.get(key).is_some_and(|latest| *latest > record.offset);
                let expired_tombstone = record.value.is_none() && batch.header.max_timestamp < tombstone_cutoff;
                !superseded && !expired_tombstone
            }
        })
        .cloned()
        .collect();
    let holds_tombstone = keep.iter().any(|record| record.key.is_some() && record.value.is_none());
    if keep.len() == records.len() {
        return Ok(BatchFate::Kept { holds_tombstone });
    }
    if keep.is_empty() {
        return Ok(BatchFate::Changed(removed_whole()));
    }
    let compression = compression_of(batch.header.compression_codec());
    let mut rewritten = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression };
    RecordBatchEncoder::encode(&mut rewritten, &keep, &options)
        .map_err(|err| BrokerError::Storage(format!("cannot encode a compacted batch: {err}")))?;
    // The batch stays under its original key: offsets, and so fetch positions, do not move.
    Ok(BatchFate::Changed(Rewrite {
        key: batch.key.clone(),
        bytes_reclaimed: (batch.bytes.len() as u64).saturating_sub(rewritten.len() as u64),
        value: Some(rewritten.to_vec()),
        records_removed: (records.len() - keep.len()) as u64,
        batch_rewritten: true,
        keeps_tombstone: holds_tombstone,
    }))
}

/// Whether a transactional batch belongs to an aborted transaction (producer id, first offset, marker offset).
fn is_aborted(header: &RecordBatchHeader, aborted: &[(i64, i64, i64)]) -> bool {
    header.is_transactional()
        && aborted.iter().any(|(producer_id, first_offset, marker_offset)| {
            *producer_id == header.producer_id && (*first_offset..*marker_offset).contains(&header.base_offset)
        })
}

fn compression_of(codec: i16) -> Compression {
    match codec {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::append::{AppendRequest, append_batches, append_marker};
    use crate::partition::Isolation;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{Record, RecordBatchDecoder, TimestampType};
    use skein_core::TopicPartition;
    use skein_protocol::{MarkerType, validate_client_batch};
    use skein_storage::{Engine, MemoryEngine};

    const HOUR_AGO: i64 = 1_700_000_000_000;
    const NOW: i64 = HOUR_AGO + 3_600_000;

    fn settings(delete_retention_ms: i64) -> CompactionSettings {
        CompactionSettings {
            delete_retention_ms,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.0,
            dedupe_buffer_bytes: 1 << 20,
        }
    }

    /// A batch of (key, value) records (value `None` = tombstone), optionally transactional.
    fn batch(records: &[(&str, Option<&str>)], producer: Option<(i64, i16, i32)>) -> Bytes {
        let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
        let encoded: Vec<Record> = records
            .iter()
            .zip(0i64..)
            .map(|((key, value), offset)| Record {
                transactional: producer.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset,
                sequence: if producer.is_some() { base_sequence + offset as i32 } else { offset as i32 - 1 },
                timestamp: HOUR_AGO + offset,
                key: Some(Bytes::copy_from_slice(key.as_bytes())),
                value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::Lz4 };
        RecordBatchEncoder::encode(&mut buf, &encoded, &options).expect("encode");
        buf.freeze()
    }

    async fn append(engine: &Arc<dyn Engine>, log: &Arc<PartitionLog>, records: Bytes) {
        let header = validate_client_batch(&records).expect("valid");
        let request = AppendRequest { log: Arc::clone(log), records, header, log_append_time: None };
        append_batches(engine, vec![request], Durability::ProcessCrash, NOW)
            .await
            .expect("append")
            .remove(0)
            .expect("ok");
    }

    /// What read_committed sees, filtered as clients filter: (offset, key, value) of every data record. A
    /// producer's records are dropped from an aborted transaction's first offset until its ABORT marker.
    async fn committed(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let read = log.read(log.log_start_offset(), usize::MAX, true, Isolation::ReadCommitted).await.expect("read");
        let mut pending = read.aborted_transactions.unwrap_or_default();
        let mut aborting = std::collections::HashSet::new();
        let mut buf = read.records.clone();
        let mut out = Vec::new();
        while !buf.is_empty() {
            let set = RecordBatchDecoder::decode(&mut buf).expect("decode");
            for record in set.records {
                pending.retain(|(producer, first)| {
                    let starts = *first <= record.offset;
                    if starts {
                        aborting.insert(*producer);
                    }
                    !starts
                });
                if record.control {
                    aborting.remove(&record.producer_id);
                } else if !(record.transactional && aborting.contains(&record.producer_id)) {
                    let text = |b: Option<Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
                    out.push((record.offset, text(record.key).unwrap_or_default(), text(record.value)));
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn keeps_the_latest_value_per_key_at_its_offset_and_drops_old_tombstones_and_aborted_records() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut setup = StoreBatch::default();
        let log = PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("c", 0), 1, 0, &mut setup);
        engine.write(setup, Durability::ProcessCrash).expect("setup");

        // Offsets 0..5: a=1 b=1 c=1 a=2 b=2 c=(tombstone).
        append(&engine, &log, batch(&[("a", Some("1")), ("b", Some("1")), ("c", Some("1"))], None)).await;
        append(&engine, &log, batch(&[("a", Some("2")), ("b", Some("2")), ("c", None)], None)).await;
        // Offsets 6..7: an aborted transaction writing a=bad, then its ABORT marker at 8.
        append(&engine, &log, batch(&[("a", Some("bad")), ("d", Some("bad"))], Some((9, 0, 0)))).await;
        append_marker(&engine, &log, 9, 0, MarkerType::Abort, Durability::ProcessCrash, NOW).await.expect("abort");
        // Offset 9: d=1, written by a plain producer.
        append(&engine, &log, batch(&[("d", Some("1"))], None)).await;
        // Producer 9 commits five batches of e (offsets 10..14, marker 15): its sequence state no longer
        // refers to the aborted batch, which may now go.
        for (sequence, value) in (2..).zip(["1", "2", "3", "4", "5"]) {
            append(&engine, &log, batch(&[("e", Some(value))], Some((9, 0, sequence)))).await;
        }
        append_marker(&engine, &log, 9, 0, MarkerType::Commit, Durability::ProcessCrash, NOW).await.expect("commit");

        // Nothing was compacted yet: the whole log is dirty.
        let outcome = log
            .compact(settings(i64::MAX), &IoBudget::new(f64::MAX), Durability::ProcessCrash, NOW)
            .await
            .expect("compact");
        assert_eq!(outcome.records_removed, 3 + 2 + 4, "a=1 b=1 c=1, the aborted pair, e=1..4");
        let expected = vec![
            (3, "a".into(), Some("2".into())),
            (4, "b".into(), Some("2".into())),
            (5, "c".into(), None),
            (9, "d".into(), Some("1".into())),
            (14, "e".into(), Some("5".into())),
        ];
        assert_eq!(committed(&log).await, expected, "latest per key, offsets unchanged, tombstone kept");
        assert_eq!(log.high_watermark(), 16);
        // Producer 9's last batch is gone from the log but not from its sequence state: a retry is a duplicate.
        append(&engine, &log, batch(&[("e", Some("5"))], Some((9, 0, 6)))).await;
        assert_eq!(log.high_watermark(), 16, "the retry was not appended");

        // With delete.retention.ms passed, the tombstone goes too; a second pass changes nothing more.
        let outcome = log
            .compact(settings(1_000), &IoBudget::new(f64::MAX), Durability::ProcessCrash, NOW)
            .await
            .expect("compact");
        assert_eq!(outcome.records_removed, 1);
        let left: Vec<i64> = committed(&log).await.iter().map(|(offset, _, _)| *offset).collect();
        assert_eq!(left, vec![3, 4, 9, 14]);
        assert_eq!(
            log.compact(settings(1_000), &IoBudget::new(f64::MAX), Durability::ProcessCrash, NOW)
                .await
                .expect("again")
                .records_removed,
            0
        );
    }

    #[tokio::test]
    async fn leaves_open_transactions_and_recent_records_alone() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut setup = StoreBatch::default();
        let log = PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("c", 0), 1, 0, &mut setup);
        engine.write(setup, Durability::ProcessCrash).expect("setup");
        append(&engine, &log, batch(&[("a", Some("1"))], None)).await;
        // An open transaction at offset 1: the last stable offset is 1, nothing after it is cleanable.
        append(&engine, &log, batch(&[("a", Some("2"))], Some((5, 0, 0)))).await;
        append(&engine, &log, batch(&[("a", Some("3"))], None)).await;
        let outcome =
            log.compact(settings(0), &IoBudget::new(f64::MAX), Durability::ProcessCrash, NOW).await.expect("compact");
        assert_eq!(outcome, CompactionOutcome::default());
        // Within min.compaction.lag.ms nothing is cleanable either.
        let lagging = CompactionSettings { min_compaction_lag_ms: 7_200_000, ..settings(0) };
        assert_eq!(
            log.compact(lagging, &IoBudget::new(f64::MAX), Durability::ProcessCrash, NOW)
                .await
                .expect("compact")
                .records_removed,
            0
        );
    }

    #[test]
    fn the_budget_asks_for_the_pause_that_keeps_io_within_it() {
        assert_eq!(IoBudget::new(f64::MAX).spend(1 << 30), Duration::ZERO, "unlimited");
        let budget = IoBudget::new(1_000_000.0);
        let pause = budget.spend(500_000);
        assert!(pause > Duration::from_millis(400) && pause <= Duration::from_millis(500), "{pause:?}");
        // A clone shares the spending: the next 500 kB are due after a second in all.
        let pause = budget.clone().spend(500_000);
        assert!(pause > Duration::from_millis(900) && pause <= Duration::from_millis(1000), "{pause:?}");
    }

    #[tokio::test]
    async fn a_pass_keeps_to_its_io_budget_and_compacts_the_same() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut setup = StoreBatch::default();
        let log = PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("c", 0), 1, 0, &mut setup);
        engine.write(setup, Durability::ProcessCrash).expect("setup");
        // 300 updates of one key, ~4 kB each (pseudo-random digits, so compression keeps them large): about
        // 1.2 MB to read.
        let mut state = 12_345u64;
        for _ in 0..300 {
            let value: String = (0..4_000)
                .map(|_| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    char::from(b'0' + ((state >> 33) % 10) as u8)
                })
                .collect();
            append(&engine, &log, batch(&[("k", Some(value.as_str()))], None)).await;
        }
        let started = std::time::Instant::now();
        let outcome = log
            .compact(settings(i64::MAX), &IoBudget::new(2_000_000.0), Durability::ProcessCrash, NOW)
            .await
            .expect("compact");
        let elapsed = started.elapsed();
        assert_eq!(outcome.records_removed, 299);
        // Reading the first MiB at 2 MB/s is due after about half a second.
        assert!(elapsed >= Duration::from_millis(450), "a budgeted pass took only {elapsed:?}");
        let left: Vec<i64> = committed(&log).await.iter().map(|(offset, _, _)| *offset).collect();
        assert_eq!(left, vec![299]);
    }

    #[tokio::test]
    async fn a_pass_waits_for_the_dirty_ratio_and_a_small_key_map_takes_several() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut setup = StoreBatch::default();
        let log = PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("c", 0), 1, 0, &mut setup);
        engine.write(setup, Durability::ProcessCrash).expect("setup");
        let budget = IoBudget::new(f64::MAX);
        // Keys k0..k9, three rounds of updates (offsets 0..29): a key map of 2 entries' worth covers a round of
        // a few keys at a time, so cleaning takes several passes, each starting where the last stopped.
        for round in 0..3 {
            for key in 0..10 {
                let (key, value) = (format!("k{key}"), format!("{round}"));
                append(&engine, &log, batch(&[(key.as_str(), Some(value.as_str()))], None)).await;
            }
        }
        let small_map = CompactionSettings { dedupe_buffer_bytes: 2 * (KEY_MAP_ENTRY_BYTES + 2), ..settings(i64::MAX) };
        // Each pass maps two keys, from where the last one stopped: fifteen passes reach the end.
        let mut removing_passes = 0;
        for _ in 0..15 {
            let outcome = log.compact(small_map, &budget, Durability::ProcessCrash, NOW).await.expect("compact");
            removing_passes += u32::from(outcome.records_removed > 0);
        }
        assert!(removing_passes > 1, "a key map this small cannot clean the log in one pass");
        let left: Vec<i64> = committed(&log).await.iter().map(|(offset, _, _)| *offset).collect();
        assert_eq!(left, (20..30).collect::<Vec<_>>(), "the last round survives");

        // One more update to a single key: 1 dirty batch against 10 clean ones is below a ratio of 0.5 ...
        append(&engine, &log, batch(&[("k0", Some("3"))], None)).await;
        let picky = CompactionSettings { min_cleanable_dirty_ratio: 0.5, ..settings(i64::MAX) };
        assert_eq!(
            log.compact(picky, &budget, Durability::ProcessCrash, NOW).await.expect("picky"),
            CompactionOutcome::default()
        );
        // ... and is cleaned at a lower ratio, or when it is past max.compaction.lag.ms.
        let overdue = CompactionSettings { max_compaction_lag_ms: 1_000, ..picky };
        let outcome = log.compact(overdue, &budget, Durability::ProcessCrash, NOW).await.expect("overdue");
        assert_eq!(outcome.records_removed, 1, "k0=2 went");
        let left: Vec<i64> = committed(&log).await.iter().map(|(offset, _, _)| *offset).collect();
        assert_eq!(left, (21..31).collect::<Vec<_>>());
    }
}
