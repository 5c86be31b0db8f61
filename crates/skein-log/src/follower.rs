//! A follower's side of a partition log: appending the leader's batches unchanged (same offsets, same epochs),
//! rebuilding producer state from them, and truncating a suffix that diverged from the leader's log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use skein_core::BrokerError;
use skein_protocol::{MarkerType, RecordBatchHeader, marker_type_of, verify_stored_batch};
use skein_storage::{
    AbortedTxn, ColumnFamily, Durability, Engine, PartitionState, ProducerState, StorageError, StoreBatch, keys,
    run_blocking,
};

use crate::partition::PartitionLog;
use crate::producers::{ProducerTable, record_append, record_marker};

/// Reads a partition's leader epoch cache; a log written before the cache existed gets it rebuilt from its
/// batches' epochs (once: the rebuilt cache is stored).
pub(crate) fn load_epochs(
    engine: &dyn Engine,
    partition_id: keys::PartitionId,
    state: &PartitionState,
) -> Result<BTreeMap<i32, i64>, StorageError> {
    let mut epochs = BTreeMap::new();
    let (from, to) = keys::leader_epoch_range(partition_id);
    engine.scan(ColumnFamily::Partition, &from, &to, &mut |key, value| {
        if let (Some(epoch), Ok(start)) = (keys::leader_epoch_key_epoch(key), <[u8; 8]>::try_from(value)) {
            epochs.insert(epoch, i64::from_be_bytes(start));
        }
        true
    })?;
    if !epochs.is_empty() {
        return Ok(epochs);
    }
    let (from, to) = keys::log_range(partition_id);
    engine.scan(ColumnFamily::Log, &from, &to, &mut |_, value| {
        if let Ok(header) = RecordBatchHeader::parse(value)
            && header.partition_leader_epoch >= 0
            && epochs.last_key_value().is_none_or(|(latest, _)| *latest < header.partition_leader_epoch)
        {
            epochs.insert(header.partition_leader_epoch, header.base_offset);
        }
        true
    })?;
    let current = state.leader_epoch.max(0);
    if epochs.last_key_value().is_none_or(|(latest, _)| *latest < current) {
        epochs.insert(current, state.next_offset);
    }
    let mut batch = StoreBatch::default();
    for (epoch, start) in &epochs {
        batch.put(ColumnFamily::Partition, keys::leader_epoch_key(partition_id, *epoch), start.to_be_bytes().to_vec());
    }
    engine.write(batch, Durability::ProcessCrash)?;
    Ok(epochs)
}

/// One batch of a leader's fetch response, checked.
struct Replicated<'a> {
    header: RecordBatchHeader,
    bytes: &'a [u8],
    marker: Option<MarkerType>,
}

impl PartitionLog {
    /// Appends batches fetched from the leader, as the leader stored them, after this log's end: batches wholly
    /// below the log end are skipped (a repeated response), a batch overlapping it or damaged stops the append
    /// with an error and nothing of the response is written. Producer state, open transactions, the
    /// aborted-transaction index and the leader epoch cache follow the batches. Returns the new log end.
    pub async fn append_replicated(&self, records: Bytes, now_ms: i64) -> Result<i64, BrokerError> {
        let _append = self.append_lock.lock().await;
        let mut state = self.state();
        let mut batches = Vec::new();
        let mut at = 0usize;
        let mut next = state.next_offset;
        while at < records.len() {
            let Ok(header) = RecordBatchHeader::parse(&records[at..]) else {
                // A partial batch at the end of a response: the next fetch asks for it again.
                break;
            };
            let bytes = &records[at..at + header.size_in_bytes()];
            at += header.size_in_bytes();
            let header = verify_stored_batch(bytes)?;
            if header.last_offset() < next {
                continue;
            }
            if header.base_offset < next {
                return Err(BrokerError::CorruptMessage(format!(
                    "replicated batch {}..={} overlaps the log end {next}",
                    header.base_offset,
                    header.last_offset()
                )));
            }
            let marker = if header.is_control() { marker_type_of(bytes) } else { None };
            next = header.last_offset() + 1;
            batches.push(Replicated { header, bytes, marker });
        }
        if batches.is_empty() {
            return Ok(state.next_offset);
        }

        let id = self.partition_id;
        let mut batch = StoreBatch::default();
        let mut producers: BTreeMap<i64, ProducerState> = BTreeMap::new();
        let mut started = Vec::new();
        let mut ended = Vec::new();
        let mut new_epochs = Vec::new();
        for replicated in &batches {
            let header = &replicated.header;
            batch.put(ColumnFamily::Log, keys::log_key(id, header.base_offset), replicated.bytes.to_vec());
            let latest = new_epochs.last().map(|(e, _)| *e).or_else(|| self.latest_epoch());
            if header.partition_leader_epoch >= 0 && latest.is_none_or(|l| l < header.partition_leader_epoch) {
                let start = header.base_offset;
                batch.put(
                    ColumnFamily::Partition,
                    keys::leader_epoch_key(id, header.partition_leader_epoch),
                    start.to_be_bytes().to_vec(),
                );
                new_epochs.push((header.partition_leader_epoch, start));
            }
            state.next_offset = header.last_offset() + 1;
            if header.producer_id < 0 {
                continue;
            }
            let current =
                producers.get(&header.producer_id).cloned().or_else(|| self.producer_state(header.producer_id));
            let was_open = current.as_ref().and_then(|p| (p.txn_first_offset >= 0).then_some(p.txn_first_offset));
            let updated = if header.is_control() {
                if let Some(first_offset) = was_open {
                    let aborted = replicated.marker == Some(MarkerType::Abort);
                    if aborted {
                        let entry = AbortedTxn { producer_id: header.producer_id, first_offset };
                        batch.put(
                            ColumnFamily::AbortedTxns,
                            keys::aborted_txn_key(id, header.base_offset),
                            entry.encode(),
                        );
                    }
                    ended.push((header.producer_id, first_offset, header.base_offset, aborted));
                }
                record_marker(current, header, now_ms)
            } else {
                let updated = record_append(current, header, header.base_offset, now_ms);
                if was_open.is_none() && updated.txn_first_offset >= 0 {
                    started.push((header.producer_id, updated.txn_first_offset));
                }
                updated
            };
            producers.insert(header.producer_id, updated);
        }
        if let Some((epoch, _)) = new_epochs.last() {
            state.leader_epoch = state.leader_epoch.max(*epoch);
        }
        batch.put(ColumnFamily::Partition, keys::partition_key(id), state.encode());
        for (producer_id, producer) in &producers {
            batch.put(ColumnFamily::Producers, keys::producer_key(id, *producer_id), producer.encode());
        }
        let writer = Arc::clone(&self.engine);
        run_blocking(move || writer.write(batch, Durability::ProcessCrash)).await?;

        self.lock_epochs().extend(new_epochs);
        {
            let mut table = self.lock_producers();
            for (producer_id, producer) in producers {
                table.insert(producer_id, producer);
            }
        }
        for (producer_id, first_offset) in started {
            self.txn_started(producer_id, first_offset);
        }
        for (producer_id, first_offset, marker_offset, aborted) in ended {
            self.txn_ended(producer_id, first_offset, marker_offset, aborted);
        }
        self.publish(state);
        Ok(state.next_offset)
    }

    /// Removes every record at or after `offset` (a suffix that is not the leader's): the batches, their
    /// epochs in the epoch cache, aborted-transaction entries, and the producer state they built, which is
    /// rebuilt from what remains. The high watermark drops with the log end if it was above it. A batch holding
    /// `offset` goes whole (`offset` is a batch boundary whenever it comes from an epoch's end).
    pub async fn truncate_to(&self, offset: i64) -> Result<(), BrokerError> {
        let _append = self.append_lock.lock().await;
        let mut state = self.state();
        if offset >= state.next_offset {
            return Ok(());
        }
        let offset = offset.max(state.log_start_offset);
        let id = self.partition_id;
        // The batch holding `offset`, if it starts before it, goes too: the log ends at a batch boundary.
        let cut = self.start_of_batch_holding(offset).await?;
        let cut = cut.max(state.log_start_offset);
        tracing::info!(partition = %self.topic_partition, from = state.next_offset, to = cut, "truncating a diverged suffix");
        let mut batch = StoreBatch::default();
        batch.delete_range(ColumnFamily::Log, keys::log_key(id, cut), keys::log_key(id, i64::MAX));
        batch.delete_range(
            ColumnFamily::AbortedTxns,
            keys::aborted_txn_key(id, cut),
            keys::aborted_txn_key(id, i64::MAX),
        );
        let removed_epochs: Vec<i32> =
            self.lock_epochs().iter().filter(|(_, start)| **start >= cut).map(|(epoch, _)| *epoch).collect();
        for epoch in &removed_epochs {
            batch.delete(ColumnFamily::Partition, keys::leader_epoch_key(id, *epoch));
        }
        state.next_offset = cut;
        state.high_watermark = state.high_watermark.min(cut);
        batch.put(ColumnFamily::Partition, keys::partition_key(id), state.encode());
        let (producers, ongoing) = self.rebuild_producers(cut).await?;
        let (from, to) = keys::producer_range(id);
        batch.delete_range(ColumnFamily::Producers, from, to);
        for (producer_id, producer) in &producers {
            batch.put(ColumnFamily::Producers, keys::producer_key(id, *producer_id), producer.encode());
        }
        let writer = Arc::clone(&self.engine);
        run_blocking(move || writer.write(batch, Durability::ProcessCrash)).await?;
        {
            let mut epochs = self.lock_epochs();
            for epoch in removed_epochs {
                epochs.remove(&epoch);
            }
        }
        *self.lock_producers() = producers;
        *self.lock_ongoing() = ongoing;
        self.truncated(state);
        Ok(())
    }

    /// Empties the log and starts it again at `offset`: a follower whose log ends before the leader's log start
    /// (the leader deleted what it still needs) continues from there.
    pub async fn restart_at(&self, offset: i64) -> Result<(), BrokerError> {
        let _append = self.append_lock.lock().await;
        let mut state = self.state();
        let id = self.partition_id;
        tracing::info!(partition = %self.topic_partition, from = state.next_offset, to = offset, "restarting the log at the leader's log start");
        let mut batch = StoreBatch::default();
        let (from, to) = keys::log_range(id);
        batch.delete_range(ColumnFamily::Log, from, to);
        let (from, to) = keys::aborted_txn_range(id);
        batch.delete_range(ColumnFamily::AbortedTxns, from, to);
        let (from, to) = keys::producer_range(id);
        batch.delete_range(ColumnFamily::Producers, from, to);
        let (from, to) = keys::leader_epoch_range(id);
        batch.delete_range(ColumnFamily::Partition, from, to);
        state.log_start_offset = offset;
        state.next_offset = offset;
        state.high_watermark = offset;
        batch.put(ColumnFamily::Partition, keys::partition_key(id), state.encode());
        let writer = Arc::clone(&self.engine);
        run_blocking(move || writer.write(batch, Durability::ProcessCrash)).await?;
        self.lock_epochs().clear();
        self.lock_producers().clear();
        self.lock_ongoing().clear();
        self.truncated(state);
        Ok(())
    }

    /// Producer states and open transactions as the batches below `end` leave them (read from the log start).
    async fn rebuild_producers(&self, end: i64) -> Result<(ProducerTable, BTreeSet<(i64, i64)>), BrokerError> {
        let engine = Arc::clone(&self.engine);
        let (from, to) = (keys::log_key(self.partition_id, 0), keys::log_key(self.partition_id, end));
        run_blocking(move || {
            let mut producers = ProducerTable::new();
            engine.scan(ColumnFamily::Log, &from, &to, &mut |_, value| {
                if let Ok(header) = RecordBatchHeader::parse(value)
                    && header.producer_id >= 0
                {
                    let current = producers.remove(&header.producer_id);
                    let updated = if header.is_control() {
                        record_marker(current, &header, 0)
                    } else {
                        record_append(current, &header, header.base_offset, 0)
                    };
                    producers.insert(header.producer_id, updated);
                }
                true
            })?;
            let now_ms = skein_core::wall_clock_ms();
            for producer in producers.values_mut() {
                producer.last_timestamp = now_ms;
            }
            let ongoing = producers
                .iter()
                .filter(|(_, p)| p.txn_first_offset >= 0)
                .map(|(id, p)| (p.txn_first_offset, *id))
                .collect();
            Ok((producers, ongoing))
        })
        .await
        .map_err(BrokerError::from)
    }
}
