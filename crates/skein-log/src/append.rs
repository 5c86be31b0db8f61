//! Appending validated batches: offsets are assigned under each partition's append lock and every batch of a
//! produce request, with the partitions' new states, goes to storage in one atomic write.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use skein_core::BrokerError;
use skein_protocol::{MarkerType, RecordBatchHeader, marker_batch, rewrite_for_append};
use skein_storage::{
    AbortedTxn, ColumnFamily, Durability, Engine, PartitionState, ProducerState, StoreBatch, keys, run_blocking,
};

use crate::partition::PartitionLog;
use crate::producers::{SequenceCheck, check_sequence, record_append};

/// One validated batch for one partition.
#[derive(Debug)]
pub struct AppendRequest {
    pub log: Arc<PartitionLog>,
    /// The batch as the producer sent it (already validated).
    pub records: Bytes,
    pub header: RecordBatchHeader,
    /// `Some(now)` when the topic uses `message.timestamp.type=LogAppendTime`.
    pub log_append_time: Option<i64>,
}

/// Where a batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    /// The append time stamped on the batch, or -1 for CreateTime topics.
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

/// Appends every request in one storage write and returns, in request order, where each batch landed or why
/// it was refused (sequence errors are per batch). A storage failure fails the whole call: nothing was written.
pub async fn append_batches(
    engine: &Arc<dyn Engine>,
    requests: Vec<AppendRequest>,
    durability: Durability,
    now_ms: i64,
) -> Result<Vec<Result<AppendResult, BrokerError>>, BrokerError> {
    // Lock each partition once, in partition-id order, so concurrent multi-partition produces cannot deadlock.
    let mut logs: BTreeMap<u32, Arc<PartitionLog>> = BTreeMap::new();
    for request in &requests {
        logs.entry(request.log.partition_id).or_insert_with(|| Arc::clone(&request.log));
    }
    let mut guards = Vec::with_capacity(logs.len());
    for log in logs.values() {
        guards.push(log.append_lock.lock().await);
    }

    let mut states: BTreeMap<u32, PartitionState> = logs.iter().map(|(id, log)| (*id, log.state())).collect();
    // Producer states changed by this call, by (partition, producer id).
    let mut producers: BTreeMap<(u32, i64), ProducerState> = BTreeMap::new();
    // Transactions this call opens: (partition, producer id, first offset).
    let mut started = Vec::new();
    let mut batch = StoreBatch::default();
    let mut results = Vec::with_capacity(requests.len());
    for request in &requests {
        let id = request.log.partition_id;
        let Some(state) = states.get_mut(&id) else {
            return Err(BrokerError::Storage(format!("partition {id} vanished during append")));
        };
        if request.log.is_follower() {
            // The role changes only under the append lock held here: a follower's log takes its leader's batches.
            results.push(Err(BrokerError::NotLeaderOrFollower));
            continue;
        }
        let header = &request.header;
        let producer_key = (id, header.producer_id);
        let current = producers.get(&producer_key).cloned().or_else(|| request.log.producer_state(header.producer_id));
        let check = match check_sequence(current.as_ref(), header) {
            Ok(check) => check,
            Err(err) => {
                results.push(Err(err));
                continue;
            }
        };
        if let SequenceCheck::Duplicate(original) = check {
            results.push(Ok(AppendResult {
                base_offset: original.base_offset,
                log_append_time: -1,
                log_start_offset: state.log_start_offset,
            }));
            continue;
        }
        let base_offset = state.next_offset;
        let stored = rewrite_for_append(&request.records, base_offset, state.leader_epoch, request.log_append_time);
        batch.put(ColumnFamily::Log, keys::log_key(id, base_offset), stored);
        state.next_offset = base_offset + i64::from(header.last_offset_delta) + 1;
        if check == SequenceCheck::Append {
            let was_open = current.as_ref().is_some_and(|p| p.txn_first_offset >= 0);
            let updated = record_append(current, header, base_offset, now_ms);
            if !was_open && updated.txn_first_offset >= 0 {
                started.push((id, header.producer_id, updated.txn_first_offset));
            }
            producers.insert(producer_key, updated);
        }
        results.push(Ok(AppendResult {
            base_offset,
            log_append_time: request.log_append_time.unwrap_or(-1),
            log_start_offset: state.log_start_offset,
        }));
    }
    if batch.is_empty() {
        return Ok(results);
    }
    for (id, state) in &mut states {
        if let Some(log) = logs.get(id) {
            state.high_watermark = log.high_watermark_for(state.next_offset);
        }
        batch.put(ColumnFamily::Partition, keys::partition_key(*id), state.encode());
    }
    for ((id, producer_id), producer) in &producers {
        batch.put(ColumnFamily::Producers, keys::producer_key(*id, *producer_id), producer.encode());
    }

    let writer = Arc::clone(engine);
    run_blocking(move || writer.write(batch, durability)).await?;

    for (id, log) in &logs {
        if let Some(state) = states.get(id) {
            log.publish(*state);
        }
        let mut table = log.lock_producers();
        for ((_, producer_id), producer) in producers.range((*id, i64::MIN)..=(*id, i64::MAX)) {
            table.insert(*producer_id, producer.clone());
        }
        for (_, producer_id, first_offset) in started.iter().filter(|(partition, _, _)| partition == id) {
            log.txn_started(*producer_id, *first_offset);
        }
    }
    drop(guards);
    Ok(results)
}

/// Ends `producer_id`'s open transaction in `log` with a COMMIT or ABORT marker written under
/// `producer_epoch` (the coordinator's, which may be newer than the producer's batches: that fences older
/// epochs). An aborted transaction goes into the partition's aborted-transaction index in the same write.
/// Returns the marker's offset, or `None` when no transaction of that producer is open here (a marker already
/// written, e.g. when recovery completes a transaction again).
pub async fn append_marker(
    engine: &Arc<dyn Engine>,
    log: &Arc<PartitionLog>,
    producer_id: i64,
    producer_epoch: i16,
    marker: MarkerType,
    durability: Durability,
    now_ms: i64,
) -> Result<Option<i64>, BrokerError> {
    let _append = log.append_lock.lock().await;
    if log.is_follower() {
        return Err(BrokerError::NotLeaderOrFollower);
    }
    let Some(mut producer) = log.producer_state(producer_id).filter(|p| p.txn_first_offset >= 0) else {
        return Ok(None);
    };
    if producer_epoch < producer.producer_epoch {
        return Err(BrokerError::InvalidProducerEpoch {
            producer_id,
            epoch: producer_epoch,
            current: producer.producer_epoch,
        });
    }
    let mut state = log.state();
    let marker_offset = state.next_offset;
    let first_offset = producer.txn_first_offset;
    let records = marker_batch(producer_id, producer_epoch, marker, 0, now_ms).map_err(BrokerError::Storage)?;
    let stored = rewrite_for_append(&records, marker_offset, state.leader_epoch, None);
    let id = log.partition_id;
    let mut batch = StoreBatch::default();
    batch.put(ColumnFamily::Log, keys::log_key(id, marker_offset), stored);
    state.next_offset = marker_offset + 1;
    state.high_watermark = log.high_watermark_for(state.next_offset);
    batch.put(ColumnFamily::Partition, keys::partition_key(id), state.encode());
    if producer_epoch > producer.producer_epoch {
        producer.producer_epoch = producer_epoch;
        producer.batches.clear();
    }
    producer.txn_first_offset = -1;
    producer.last_timestamp = now_ms;
    batch.put(ColumnFamily::Producers, keys::producer_key(id, producer_id), producer.encode());
    let aborted = marker == MarkerType::Abort;
    if aborted {
        let entry = AbortedTxn { producer_id, first_offset };
        batch.put(ColumnFamily::AbortedTxns, keys::aborted_txn_key(id, marker_offset), entry.encode());
    }
    let writer = Arc::clone(engine);
    run_blocking(move || writer.write(batch, durability)).await?;
    log.lock_producers().insert(producer_id, producer);
    log.txn_ended(producer_id, first_offset, marker_offset, aborted);
    log.publish(state);
    Ok(Some(marker_offset))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::partition::OffsetAndTimestamp;
    use skein_core::TopicPartition;
    use skein_protocol::validate_client_batch;
    use skein_storage::MemoryEngine;

    /// A minimal valid batch of `count` records with timestamps `ts, ts+1, ...`.
    pub(crate) fn batch(count: i32, ts: i64) -> Bytes {
        let mut records = Vec::new();
        for i in 0..count {
            let zig = |v: i64| u8::try_from((v << 1) ^ (v >> 63)).expect("small");
            let body = [0u8, zig(i64::from(i)), zig(i64::from(i)), 1, 0, 0];
            records.push(zig(body.len() as i64));
            records.extend_from_slice(&body);
        }
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.push(2);
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(count - 1).to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&(ts + i64::from(count) - 1).to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&records);
        let crc = crc32c_of(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    /// `batch` stamped with an idempotent producer's id, epoch and base sequence.
    pub(crate) fn idempotent_batch(count: i32, producer_id: i64, epoch: i16, base_sequence: i32) -> Bytes {
        let mut b = batch(count, 0).to_vec();
        b[43..51].copy_from_slice(&producer_id.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&base_sequence.to_be_bytes());
        let crc = crc32c_of(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    fn crc32c_of(data: &[u8]) -> u32 {
        // Same polynomial as the protocol crate; computed bitwise to keep this test independent of it.
        let mut crc = !0u32;
        for byte in data {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
            }
        }
        !crc
    }

    pub(crate) fn request(log: &Arc<PartitionLog>, records: Bytes) -> AppendRequest {
        let header = validate_client_batch(&records).expect("valid batch");
        AppendRequest { log: Arc::clone(log), records, header, log_append_time: None }
    }

    #[tokio::test]
    async fn appends_assign_offsets_and_fetch_reads_whole_batches() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut setup = StoreBatch::default();
        let p0 = PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("t", 0), 1, 0, &mut setup);
        let p1 = PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("t", 1), 2, 0, &mut setup);
        engine.write(setup, Durability::ProcessCrash).expect("setup");

        let results = append_batches(
            &engine,
            vec![request(&p0, batch(3, 100)), request(&p1, batch(2, 100)), request(&p0, batch(2, 200))],
            Durability::ProcessCrash,
            0,
        )
        .await
        .expect("append");
        let offsets: Vec<i64> = results.iter().map(|r| r.as_ref().expect("appended").base_offset).collect();
        assert_eq!(offsets, vec![0, 0, 3]);
        assert_eq!((p0.high_watermark(), p1.high_watermark()), (5, 2));

        // A fetch from the middle of the first batch returns it whole, then the next one.
        let read = p0.read(1, 1 << 20, true, crate::Isolation::ReadUncommitted).await.expect("read");
        let first = RecordBatchHeader::parse(&read.records).expect("header");
        assert_eq!((first.base_offset, first.last_offset()), (0, 2));
        let second = RecordBatchHeader::parse(&read.records[first.size_in_bytes()..]).expect("header");
        assert_eq!(second.base_offset, 3);
        assert_eq!(read.records.len(), first.size_in_bytes() + second.size_in_bytes());

        // max_bytes smaller than one batch still returns the first batch, and only it.
        let read = p0.read(0, 10, true, crate::Isolation::ReadUncommitted).await.expect("read");
        assert_eq!(read.records.len(), first.size_in_bytes());
        // At the log end: empty, not an error. Past it: OFFSET_OUT_OF_RANGE.
        assert!(p0.read(5, 1 << 20, true, crate::Isolation::ReadUncommitted).await.expect("read").records.is_empty());
        assert!(matches!(
            p0.read(6, 1 << 20, true, crate::Isolation::ReadUncommitted).await,
            Err(BrokerError::OffsetOutOfRange { .. })
        ));

        // Reopening from storage gives the same state.
        let reopened = PartitionLog::open(Arc::clone(&engine), TopicPartition::new("t", 0), 1).expect("open");
        assert_eq!(reopened.state(), p0.state());
    }

    #[tokio::test]
    async fn offsets_by_timestamp() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut setup = StoreBatch::default();
        let log = PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("t", 0), 1, 0, &mut setup);
        engine.write(setup, Durability::ProcessCrash).expect("setup");
        append_batches(
            &engine,
            vec![request(&log, batch(5, 1000)), request(&log, batch(5, 2000))],
            Durability::ProcessCrash,
            0,
        )
        .await
        .expect("append");
        let found = log.offset_for_timestamp(1003).await.expect("lookup");
        assert_eq!(found, Some(OffsetAndTimestamp { offset: 3, timestamp: 1003 }));
        let found = log.offset_for_timestamp(1500).await.expect("lookup");
        assert_eq!(found, Some(OffsetAndTimestamp { offset: 5, timestamp: 2000 }));
        assert_eq!(log.offset_for_timestamp(5000).await.expect("lookup"), None);
        let max = log.offset_of_max_timestamp().await.expect("lookup");
        assert_eq!(max, Some(OffsetAndTimestamp { offset: 9, timestamp: 2004 }));
    }

    #[tokio::test]
    async fn idempotent_retries_get_original_offsets_and_gaps_are_refused_across_reopen() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut setup = StoreBatch::default();
        let log = PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("t", 0), 1, 0, &mut setup);
        engine.write(setup, Durability::ProcessCrash).expect("setup");
        let append = |records: Bytes, log: &Arc<PartitionLog>| {
            let engine = Arc::clone(&engine);
            let request = request(log, records);
            async move {
                append_batches(&engine, vec![request], Durability::ProcessCrash, 0).await.expect("write").remove(0)
            }
        };
        assert_eq!(append(idempotent_batch(3, 42, 0, 0), &log).await.expect("first").base_offset, 0);
        assert_eq!(append(idempotent_batch(2, 42, 0, 3), &log).await.expect("second").base_offset, 3);
        // A retry of the first batch: its original offset, nothing appended.
        assert_eq!(append(idempotent_batch(3, 42, 0, 0), &log).await.expect("retry").base_offset, 0);
        assert_eq!(log.high_watermark(), 5);
        // A gap is refused and appends nothing.
        assert!(matches!(append(idempotent_batch(1, 42, 0, 9), &log).await, Err(BrokerError::OutOfOrderSequence(_))));
        assert_eq!(log.high_watermark(), 5);

        // Producer state is durable with the records: after reopening, the retry is still a duplicate.
        let reopened = PartitionLog::open(Arc::clone(&engine), TopicPartition::new("t", 0), 1).expect("open");
        assert_eq!(reopened.producer_count(), 1);
        assert_eq!(append(idempotent_batch(2, 42, 0, 3), &reopened).await.expect("retry").base_offset, 3);
        assert_eq!(append(idempotent_batch(1, 42, 0, 5), &reopened).await.expect("next").base_offset, 5);
        assert!(matches!(append(idempotent_batch(1, 42, 0, 6), &reopened).await.map(|_| ()).and(Ok(())), Ok(())));
        // Expiry forgets the producer, in memory and in storage.
        assert_eq!(reopened.expire_producers(1_000_000, 10).await.expect("expire"), 1);
        let again = PartitionLog::open(Arc::clone(&engine), TopicPartition::new("t", 0), 1).expect("open");
        assert_eq!(again.producer_count(), 0);
    }
}
