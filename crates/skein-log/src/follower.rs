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
use crate::replica::Role;

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
    /// with an error and nothing of the response is written. Only as follower in `leader_epoch`. Producer state, open transactions, the
    /// aborted-transaction index and the leader epoch cache follow the batches. Returns the new log end.
    pub async fn append_replicated(&self, records: Bytes, leader_epoch: i32, now_ms: i64) -> Result<i64, BrokerError> {
        let _append = self.append_lock.lock().await;
        self.check_following(leader_epoch)?;
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
    pub async fn truncate_to(&self, offset: i64, leader_epoch: i32) -> Result<(), BrokerError> {
        let _append = self.append_lock.lock().await;
        self.check_following(leader_epoch)?;
        let mut state = self.state();
        if offset > state.next_offset {
            return Ok(());
        }
        if offset == state.next_offset {
            // No record goes, but an epoch that starts here (one this node led without writing to it) does: the
            // next fetch must name the epoch of the last record kept, or the leader answers the divergence again.
            return self.forget_epochs_from(offset).await;
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

    /// Refuses a change a fetch response asks for unless this log follows the partition in `leader_epoch`: a
    /// response from a leader this node no longer follows (it leads now, or follows another) must not touch it.
    /// Checked under the append lock, which every role change takes.
    pub(crate) fn check_following(&self, leader_epoch: i32) -> Result<(), BrokerError> {
        match *self.lock_role() {
            crate::replica::Role::Follower { leader_epoch: following } if following == leader_epoch => Ok(()),
            _ => Err(BrokerError::NotLeaderOrFollower),
        }
    }

    /// Removes the epochs starting at or after `offset` from the epoch cache.
    async fn forget_epochs_from(&self, offset: i64) -> Result<(), BrokerError> {
        let removed: Vec<i32> =
            self.lock_epochs().iter().filter(|(_, start)| **start >= offset).map(|(epoch, _)| *epoch).collect();
        if removed.is_empty() {
            return Ok(());
        }
        let mut batch = StoreBatch::default();
        for epoch in &removed {
            batch.delete(ColumnFamily::Partition, keys::leader_epoch_key(self.partition_id, *epoch));
        }
        let writer = Arc::clone(&self.engine);
        run_blocking(move || writer.write(batch, Durability::ProcessCrash)).await?;
        let mut epochs = self.lock_epochs();
        for epoch in removed {
            epochs.remove(&epoch);
        }
        Ok(())
    }

    /// Empties the log and starts it again at `offset`: a follower whose log ends before the leader's log start
    /// (the leader deleted what it still needs) continues from there.
    pub async fn restart_at(&self, offset: i64, leader_epoch: i32) -> Result<(), BrokerError> {
        let _append = self.append_lock.lock().await;
        self.check_following(leader_epoch)?;
        tracing::info!(partition = %self.topic_partition, from = self.state().next_offset, to = offset, "restarting the log at the leader's log start");
        self.empty_at(offset).await
    }

    /// This node no longer holds a replica of the partition (a reassignment moved it elsewhere): the records,
    /// producer state and leader epochs are deleted, and the log, with no role, starts again empty at offset 0.
    /// Should the partition come back here, it is fetched again from its leader.
    pub async fn become_unassigned(&self) -> Result<(), BrokerError> {
        let _append = self.append_lock.lock().await;
        let state = self.state();
        if *self.lock_role() == Role::Unassigned && state.next_offset == 0 && state.log_start_offset == 0 {
            return Ok(());
        }
        *self.lock_role() = Role::Unassigned;
        tracing::info!(partition = %self.topic_partition, log_end_offset = state.next_offset, "replica removed from this broker: deleting its data");
        self.empty_at(0).await?;
        self.wake_waiters();
        Ok(())
    }

    /// Deletes every record, producer state, aborted transaction and leader epoch, and starts the log again at
    /// `offset` (the caller holds the append lock).
    async fn empty_at(&self, offset: i64) -> Result<(), BrokerError> {
        let mut state = self.state();
        let id = self.partition_id;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::append::tests::{batch, idempotent_batch, request};
    use crate::{Isolation, append_batches};
    use skein_core::TopicPartition;
    use skein_storage::MemoryEngine;

    fn new_log(engine: &Arc<dyn Engine>, partition_id: u32) -> Arc<PartitionLog> {
        let mut setup = StoreBatch::default();
        let log = PartitionLog::create_standalone(
            Arc::clone(engine),
            TopicPartition::new("t", 0),
            partition_id,
            0,
            &mut setup,
        );
        engine.write(setup, Durability::ProcessCrash).expect("setup");
        log
    }

    async fn append(engine: &Arc<dyn Engine>, log: &Arc<PartitionLog>, records: Bytes) -> i64 {
        let results = append_batches(engine, vec![request(log, records)], Durability::ProcessCrash, 0).await;
        results.expect("write").remove(0).expect("appended").base_offset
    }

    #[tokio::test]
    async fn a_follower_copies_batches_epochs_and_producer_state_and_truncates_a_suffix() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let leader = new_log(&engine, 1);
        assert_eq!(append(&engine, &leader, idempotent_batch(3, 7, 0, 0)).await, 0);
        leader.become_leader(1, 2, vec![1], vec![1], 0).await.expect("leader in epoch 2");
        assert_eq!(append(&engine, &leader, idempotent_batch(2, 7, 0, 3)).await, 3);
        assert_eq!(append(&engine, &leader, batch(4, 100)).await, 5);
        assert_eq!((leader.log_end_offset(), leader.high_watermark()), (9, 9));

        let follower = new_log(&engine, 2);
        follower.become_follower(2).await.expect("follower");
        let read = leader.read(0, 1 << 20, true, Isolation::LogEnd).await.expect("read");
        assert_eq!(follower.append_replicated(read.records.clone(), 2, 0).await.expect("replicate"), 9);
        // The same response again appends nothing.
        assert_eq!(follower.append_replicated(read.records, 2, 0).await.expect("again"), 9);
        let copied = follower.read(0, 1 << 20, true, Isolation::LogEnd).await.expect("read follower");
        let original = leader.read(0, 1 << 20, true, Isolation::LogEnd).await.expect("read leader");
        assert_eq!(copied.records, original.records, "byte for byte");
        assert_eq!(follower.end_offset_for_epoch(0), (0, 3));
        assert_eq!(follower.end_offset_for_epoch(2), (2, 9));
        assert_eq!(follower.end_offset_for_epoch(1), (0, 3));
        assert_eq!(follower.end_offset_for_epoch(5), (-1, -1), "newer than any epoch here");
        assert_eq!(follower.producer_state(7).map(|p| p.batches.len()), Some(2));
        // A follower's high watermark is the leader's, never beyond its own log end.
        assert_eq!(follower.high_watermark(), 0);
        follower.follow_leader_marks(12, 0, 2).await.expect("marks");
        assert_eq!(follower.high_watermark(), 9);
        // Local writes to a follower are refused.
        let refused = append_batches(&engine, vec![request(&follower, batch(1, 0))], Durability::ProcessCrash, 0).await;
        assert!(matches!(refused.expect("write").remove(0), Err(BrokerError::NotLeaderOrFollower)));

        // Truncating into epoch 2 (from the middle of the last batch) drops that whole batch and what it built.
        follower.truncate_to(6, 2).await.expect("truncate");
        assert_eq!((follower.log_end_offset(), follower.high_watermark()), (5, 5));
        assert_eq!(follower.end_offset_for_epoch(2), (2, 5));
        follower.truncate_to(3, 2).await.expect("truncate into epoch 0");
        assert_eq!(follower.end_offset_for_epoch(2), (-1, -1), "epoch 2 started at 3: it is gone");
        assert_eq!(follower.end_offset_for_epoch(0), (0, 3));
        assert_eq!(follower.producer_state(7).map(|p| p.batches.len()), Some(1), "rebuilt from what is left");
        // An epoch with no records (this node led it without writing) goes when truncating to where it starts.
        follower.become_leader(2, 7, vec![2], vec![2], 0).await.expect("led epoch 7");
        follower.become_follower(8).await.expect("follows again");
        assert_eq!(follower.latest_epoch(), Some(7));
        follower.truncate_to(3, 8).await.expect("truncate to the log end");
        assert_eq!((follower.latest_epoch(), follower.log_end_offset()), (Some(0), 3));
        // It survives a reopen.
        let reopened = PartitionLog::open(Arc::clone(&engine), TopicPartition::new("t", 0), 2).expect("open");
        assert_eq!((reopened.log_end_offset(), reopened.high_watermark()), (3, 3));
        assert_eq!((reopened.latest_epoch(), reopened.end_offset_for_epoch(0)), (Some(0), (0, 3)));
        // Starting over at a leader's log start empties the log.
        follower.restart_at(40, 8).await.expect("restart");
        assert_eq!((follower.log_start_offset(), follower.log_end_offset(), follower.latest_epoch()), (40, 40, None));
    }
}
