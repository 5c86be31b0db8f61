//! One partition's log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use skein_core::{BrokerError, TopicPartition};
use skein_protocol::{RecordBatchHeader, uncompressed_limit, walk_records};
use skein_storage::keys::{self, PartitionId};
use skein_storage::{
    AbortedTxn, ColumnFamily, Engine, PartitionState, ProducerState, StorageError, StoreBatch, run_blocking,
};

use crate::compaction::CleanerCheckpoint;
use crate::follower::load_epochs;
use crate::producers::ProducerTable;
use crate::replica::{FollowerProgress, LeaderState, NodeId, Role};
use tokio::sync::watch;

/// The most a fetch's read buffer reserves before it knows how much it reads: Kafka's default
/// `max.partition.fetch.bytes`.
const READ_BUFFER_HINT_BYTES: usize = 1 << 20;

/// What a fetch read from one partition.
#[derive(Debug, Clone)]
pub struct FetchRead {
    /// Whole batches, concatenated as stored. Empty (never null) when there is nothing to return.
    pub records: Bytes,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For `read_committed`: the aborted transactions (producer id, first offset) whose records may be in
    /// `records`, so the client can drop them. `None` for `read_uncommitted`.
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
}

/// Which records a fetch may see (Kafka's `isolation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Everything up to the high watermark.
    ReadUncommitted,
    /// Only up to the last stable offset: no record of a transaction still open.
    ReadCommitted,
    /// A follower's fetch: everything up to the log end.
    LogEnd,
}

impl Isolation {
    /// From the protocol's `isolation_level` (0 = read_uncommitted, 1 = read_committed).
    pub fn from_level(level: i8) -> Self {
        if level == 1 { Isolation::ReadCommitted } else { Isolation::ReadUncommitted }
    }
}

/// An offset found by timestamp, with the timestamp of the record at that offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    pub offset: i64,
    pub timestamp: i64,
}

/// A partition's log: durable batches in the engine, its state mirrored in memory.
pub struct PartitionLog {
    pub topic_partition: TopicPartition,
    pub partition_id: PartitionId,
    pub(crate) engine: Arc<dyn Engine>,
    state: Mutex<PartitionState>,
    /// Idempotent producers' state, mirrored from the `producers` key space; changed only under `append_lock`.
    producers: Mutex<ProducerTable>,
    /// Serialises appends so offsets are assigned in write order.
    pub(crate) append_lock: tokio::sync::Mutex<()>,
    /// Open transactions in this partition: (first offset, producer id). Changed only under `append_lock`.
    ongoing_txns: Mutex<BTreeSet<(i64, i64)>>,
    /// The largest `marker offset - first offset` of any aborted transaction here, to bound index scans.
    max_aborted_span: AtomicI64,
    /// The high watermark (mirrors `state.high_watermark`); consumers' fetches waiting for data subscribe to it.
    high_watermark: watch::Sender<i64>,
    /// The log end offset; followers' fetches waiting for data subscribe to it.
    log_end: watch::Sender<i64>,
    /// Ticks when a follower reports another log start offset (DeleteRecords waits for the low watermark).
    log_start_moved: watch::Sender<()>,
    /// The leader epoch cache: each epoch's first offset. Changed only under `append_lock`.
    epochs: Mutex<BTreeMap<i32, i64>>,
    /// Leader, follower or standalone, and as leader the followers' progress. Locked before `state`.
    role: Mutex<Role>,
    /// Where log compaction stands (compacted topics only).
    cleaner: Mutex<CleanerCheckpoint>,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("topic_partition", &self.topic_partition)
            .field("partition_id", &self.partition_id)
            .finish()
    }
}

impl PartitionLog {
    /// A new, empty partition and the write that records it. Its role is unassigned: the broker makes it a
    /// leader or follower from the metadata before it serves anything (until then nothing counts as committed).
    pub fn create(
        engine: Arc<dyn Engine>,
        topic_partition: TopicPartition,
        partition_id: PartitionId,
        leader_epoch: i32,
        batch: &mut StoreBatch,
    ) -> Arc<Self> {
        let state = PartitionState { log_start_offset: 0, next_offset: 0, leader_epoch, high_watermark: 0 };
        batch.put(ColumnFamily::Partition, keys::partition_key(partition_id), state.encode());
        let leader_epoch = leader_epoch.max(0);
        batch.put(
            ColumnFamily::Partition,
            keys::leader_epoch_key(partition_id, leader_epoch),
            0i64.to_be_bytes().to_vec(),
        );
        let log = Self::with_state(engine, topic_partition, partition_id, state, Role::Unassigned);
        log.lock_epochs().insert(leader_epoch, 0);
        Arc::new(log)
    }

    /// [`PartitionLog::create`] for a log outside any cluster (tools and tests): every record is committed once
    /// written.
    pub fn create_standalone(
        engine: Arc<dyn Engine>,
        topic_partition: TopicPartition,
        partition_id: PartitionId,
        leader_epoch: i32,
        batch: &mut StoreBatch,
    ) -> Arc<Self> {
        let log = Self::create(engine, topic_partition, partition_id, leader_epoch, batch);
        log.assume_standalone();
        log
    }

    /// Loads an existing partition's state (blocking).
    pub fn open(
        engine: Arc<dyn Engine>,
        topic_partition: TopicPartition,
        partition_id: PartitionId,
    ) -> Result<Arc<Self>, StorageError> {
        let state = match engine.get(ColumnFamily::Partition, &keys::partition_key(partition_id))? {
            Some(value) => PartitionState::decode(&value)?,
            None => {
                return Err(StorageError::CorruptValue {
                    key: format!("partition {partition_id}"),
                    reason: format!("state of {topic_partition} is missing"),
                });
            }
        };
        let mut producers = ProducerTable::new();
        let (from, to) = keys::producer_range(partition_id);
        let mut corrupt = None;
        engine.scan(ColumnFamily::Producers, &from, &to, &mut |key, value| {
            match (keys::producer_key_id(key), ProducerState::decode(value)) {
                (Some(id), Ok(producer)) => {
                    producers.insert(id, producer);
                }
                (_, Err(err)) => corrupt = Some(err),
                (None, _) => {}
            }
            corrupt.is_none()
        })?;
        if let Some(err) = corrupt {
            return Err(err);
        }
        let mut max_aborted_span = 0;
        let (from, to) = keys::aborted_txn_range(partition_id);
        engine.scan(ColumnFamily::AbortedTxns, &from, &to, &mut |key, value| {
            match (keys::log_key_offset(key), AbortedTxn::decode(value)) {
                (Some(marker_offset), Ok(aborted)) => {
                    max_aborted_span = max_aborted_span.max(marker_offset - aborted.first_offset);
                }
                (_, Err(err)) => corrupt = Some(err),
                (None, _) => {}
            }
            corrupt.is_none()
        })?;
        if let Some(err) = corrupt {
            return Err(err);
        }
        let epochs = load_epochs(&*engine, partition_id, &state)?;
        let log = Self::with_state(engine, topic_partition, partition_id, state, Role::Unassigned);
        *log.lock_epochs() = epochs;
        *log.lock_ongoing() = producers
            .iter()
            .filter(|(_, producer)| producer.txn_first_offset >= 0)
            .map(|(id, producer)| (producer.txn_first_offset, *id))
            .collect();
        log.max_aborted_span.store(max_aborted_span, Ordering::Relaxed);
        *log.lock_producers() = producers;
        Ok(Arc::new(log))
    }

    fn with_state(
        engine: Arc<dyn Engine>,
        topic_partition: TopicPartition,
        partition_id: PartitionId,
        state: PartitionState,
        role: Role,
    ) -> Self {
        let (high_watermark, _) = watch::channel(state.high_watermark);
        let (log_end, _) = watch::channel(state.next_offset);
        let (log_start_moved, _) = watch::channel(());
        PartitionLog {
            topic_partition,
            partition_id,
            engine,
            state: Mutex::new(state),
            producers: Mutex::new(ProducerTable::new()),
            append_lock: tokio::sync::Mutex::new(()),
            ongoing_txns: Mutex::new(BTreeSet::new()),
            max_aborted_span: AtomicI64::new(0),
            high_watermark,
            log_end,
            log_start_moved,
            epochs: Mutex::new(BTreeMap::new()),
            role: Mutex::new(role),
            cleaner: Mutex::new(CleanerCheckpoint::default()),
        }
    }

    /// The writes that remove this partition's data and state.
    pub fn delete_into(&self, batch: &mut StoreBatch) {
        let (from, to) = keys::log_range(self.partition_id);
        batch.delete_range(ColumnFamily::Log, from, to);
        batch.delete(ColumnFamily::Partition, keys::partition_key(self.partition_id));
        let (from, to) = keys::producer_range(self.partition_id);
        batch.delete_range(ColumnFamily::Producers, from, to);
        let (from, to) = keys::aborted_txn_range(self.partition_id);
        batch.delete_range(ColumnFamily::AbortedTxns, from, to);
        let (from, to) = keys::leader_epoch_range(self.partition_id);
        batch.delete_range(ColumnFamily::Partition, from, to);
    }

    pub(crate) fn lock_ongoing(&self) -> MutexGuard<'_, BTreeSet<(i64, i64)>> {
        // A set of plain pairs changed by whole inserts and removals.
        self.ongoing_txns.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a transaction that began at `first_offset` (after its first batch is durable).
    pub(crate) fn txn_started(&self, producer_id: i64, first_offset: i64) {
        self.lock_ongoing().insert((first_offset, producer_id));
    }

    /// Records a transaction that ended with a marker at `marker_offset` (after the marker is durable).
    pub(crate) fn txn_ended(&self, producer_id: i64, first_offset: i64, marker_offset: i64, aborted: bool) {
        self.lock_ongoing().remove(&(first_offset, producer_id));
        if aborted {
            self.max_aborted_span.fetch_max(marker_offset - first_offset, Ordering::Relaxed);
        }
    }

    /// The last stable offset: the first offset of the oldest open transaction, else the high watermark. A
    /// `read_committed` consumer sees nothing at or beyond it.
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        self.lock_ongoing().first().map_or(high_watermark, |(first, _)| (*first).min(high_watermark))
    }

    /// How many transactions are open in this partition.
    pub fn ongoing_transaction_count(&self) -> usize {
        self.lock_ongoing().len()
    }

    pub(crate) fn lock_producers(&self) -> MutexGuard<'_, ProducerTable> {
        // Entries are replaced whole; a panic elsewhere cannot leave one half-written.
        self.producers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state of one idempotent producer in this partition, if known.
    pub fn producer_state(&self, producer_id: i64) -> Option<ProducerState> {
        self.lock_producers().get(&producer_id).cloned()
    }

    /// How many idempotent producers this partition tracks.
    pub fn producer_count(&self) -> usize {
        self.lock_producers().len()
    }

    /// Forgets producers whose last append is older than `max_age_ms` (`producer.id.expiration.ms`), in memory and
    /// in storage, so the state kept stays bounded with many short-lived producers. Returns how many expired.
    pub async fn expire_producers(&self, now_ms: i64, max_age_ms: i64) -> Result<usize, BrokerError> {
        let _append = self.append_lock.lock().await;
        let expired: Vec<i64> = self
            .lock_producers()
            .iter()
            // A producer with an open transaction is kept until the transaction ends.
            .filter(|(_, state)| state.txn_first_offset < 0 && now_ms.saturating_sub(state.last_timestamp) > max_age_ms)
            .map(|(id, _)| *id)
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let mut batch = StoreBatch::default();
        for id in &expired {
            batch.delete(ColumnFamily::Producers, keys::producer_key(self.partition_id, *id));
        }
        let engine = Arc::clone(&self.engine);
        run_blocking(move || engine.write(batch, skein_storage::Durability::ProcessCrash)).await?;
        let mut producers = self.lock_producers();
        for id in &expired {
            producers.remove(id);
        }
        Ok(expired.len())
    }

    pub(crate) fn cleaner_checkpoint(&self) -> CleanerCheckpoint {
        match self.cleaner.lock() {
            Ok(checkpoint) => *checkpoint,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub(crate) fn set_cleaner_checkpoint(&self, checkpoint: CleanerCheckpoint) {
        match self.cleaner.lock() {
            Ok(mut current) => *current = checkpoint,
            Err(poisoned) => *poisoned.into_inner() = checkpoint,
        }
    }

    pub(crate) fn lock_state(&self) -> MutexGuard<'_, PartitionState> {
        // The state is plain data updated in one assignment; a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> PartitionState {
        *self.lock_state()
    }

    /// Publishes a new durable state after a successful write, moves the high watermark as the role allows and
    /// wakes waiting fetches. The high watermark in memory never goes back here (only truncation lowers it).
    pub(crate) fn publish(&self, mut state: PartitionState) {
        let role = self.lock_role();
        {
            let mut current = self.lock_state();
            state.high_watermark = current.high_watermark.min(state.next_offset);
            *current = state;
        }
        self.log_end.send_replace(state.next_offset);
        self.advance_high_watermark(&role);
    }

    /// Publishes the state after a truncation: the log end (and the high watermark with it) went back.
    pub(crate) fn truncated(&self, state: PartitionState) {
        *self.lock_state() = state;
        self.log_end.send_replace(state.next_offset);
        self.high_watermark.send_replace(state.high_watermark);
    }

    /// Moves the high watermark up to what `role` allows, if that is higher. Called with the role locked.
    fn advance_high_watermark(&self, role: &Role) {
        let mut state = self.lock_state();
        if let Some(allowed) = role.high_watermark(state.next_offset)
            && allowed > state.high_watermark
        {
            state.high_watermark = allowed;
            self.high_watermark.send_replace(allowed);
        }
    }

    /// The high watermark to store with a write that moves the log end to `log_end`: what it will be once the
    /// write is published (the whole log end for a leader alone in its ISR), never above the log end.
    pub(crate) fn high_watermark_for(&self, log_end: i64) -> i64 {
        let role = self.lock_role();
        let current = self.lock_state().high_watermark;
        role.high_watermark(log_end).map_or(current, |allowed| allowed.max(current)).min(log_end)
    }

    /// The offset below which every record is committed (replicated to the whole ISR): consumers see nothing at
    /// or beyond it.
    pub fn high_watermark(&self) -> i64 {
        self.state().high_watermark
    }

    /// The offset the next record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.state().next_offset
    }

    pub(crate) fn lock_role(&self) -> MutexGuard<'_, Role> {
        // The role is replaced whole or changed field by field without intermediate invariants.
        self.role.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn lock_epochs(&self) -> MutexGuard<'_, BTreeMap<i32, i64>> {
        self.epochs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// This partition's role on this node.
    pub fn role(&self) -> Role {
        self.lock_role().clone()
    }

    /// How many replicas are in sync, as this node knows (1 for a log outside a cluster, 0 when not leading).
    pub fn isr_size(&self) -> usize {
        self.lock_role().isr_size()
    }

    /// Wakes every fetch and produce waiting on this partition (its role changed: they re-check it).
    pub(crate) fn wake_waiters(&self) {
        self.high_watermark.send_modify(|_| {});
        self.log_end.send_modify(|_| {});
    }

    /// Whether this node copies the partition from another broker's leader: then only the leader's batches may
    /// be written here.
    pub fn is_follower(&self) -> bool {
        matches!(*self.lock_role(), Role::Follower { .. })
    }

    /// Whether this log takes clients' writes and reads here: it leads (or stands alone).
    pub fn is_leader(&self) -> bool {
        matches!(*self.lock_role(), Role::Leader(_) | Role::Standalone)
    }

    /// Treats an opened log as outside any cluster (tools and tests): every record is committed once written.
    pub fn assume_standalone(&self) {
        let mut role = self.lock_role();
        *role = Role::Standalone;
        self.advance_high_watermark(&role);
    }

    /// Makes this node the partition's leader in `leader_epoch` with the controller's replicas and ISR: the epoch
    /// is stored and starts at the log end (the leader epoch cache), followers start unknown. When this node
    /// already leads in that epoch, only the ISR is taken (and an in-flight ISR change is settled).
    pub async fn become_leader(
        &self,
        node_id: NodeId,
        leader_epoch: i32,
        replicas: Vec<NodeId>,
        isr: Vec<NodeId>,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        {
            let mut role = self.lock_role();
            if let Role::Leader(leader) = &mut *role
                && leader.leader_epoch == leader_epoch
            {
                // An in-flight ISR change settles when the metadata shows a new ISR (or the controller refuses).
                if leader.isr != isr || leader.replicas != replicas {
                    for replica in replicas.iter().filter(|&&r| r != node_id) {
                        leader.followers.entry(*replica).or_insert_with(|| FollowerProgress::fresh(0));
                    }
                    leader.followers.retain(|r, _| replicas.contains(r));
                    leader.replicas = replicas;
                    leader.maximal_isr.clone_from(&isr);
                    leader.isr = isr;
                    leader.change_in_flight = false;
                    self.advance_high_watermark(&role);
                    drop(role);
                    self.wake_waiters();
                }
                return Ok(());
            }
        }
        let _append = self.append_lock.lock().await;
        let mut state = self.state();
        let mut batch = StoreBatch::default();
        state.leader_epoch = leader_epoch;
        batch.put(ColumnFamily::Partition, keys::partition_key(self.partition_id), state.encode());
        let assigned = self.assign_epoch_into(leader_epoch, state.next_offset, &mut batch);
        let engine = Arc::clone(&self.engine);
        run_blocking(move || engine.write(batch, skein_storage::Durability::ProcessCrash)).await?;
        if let Some((epoch, start)) = assigned {
            self.lock_epochs().insert(epoch, start);
        }
        {
            let mut role = self.lock_role();
            *role = Role::Leader(LeaderState::new(node_id, leader_epoch, replicas, isr, now_ms));
            *self.lock_state() = state;
            self.advance_high_watermark(&role);
        }
        self.wake_waiters();
        Ok(())
    }

    /// Makes this node a follower of the partition in `leader_epoch`: it stops leading (produce and consumer
    /// fetches are refused by the broker) and takes its high watermark from the leader's fetch responses.
    pub async fn become_follower(&self, leader_epoch: i32) -> Result<(), BrokerError> {
        {
            let role = self.lock_role();
            if *role == (Role::Follower { leader_epoch }) {
                return Ok(());
            }
        }
        let _append = self.append_lock.lock().await;
        let mut state = self.state();
        if state.leader_epoch != leader_epoch {
            state.leader_epoch = leader_epoch;
            let mut batch = StoreBatch::default();
            batch.put(ColumnFamily::Partition, keys::partition_key(self.partition_id), state.encode());
            let engine = Arc::clone(&self.engine);
            run_blocking(move || engine.write(batch, skein_storage::Durability::ProcessCrash)).await?;
        }
        {
            let mut role = self.lock_role();
            *role = Role::Follower { leader_epoch };
            self.lock_state().leader_epoch = leader_epoch;
        }
        self.wake_waiters();
        Ok(())
    }

    /// acks=all: waits until every in-sync replica has the records below `offset` (the high watermark reaches
    /// it), as leader in the epoch this node leads now. Refused when leadership moves meanwhile
    /// (NOT_LEADER_OR_FOLLOWER), when the ISR is then smaller than `min_insync` (NOT_ENOUGH_REPLICAS_AFTER_APPEND),
    /// or after `timeout` (REQUEST_TIMED_OUT): the records may still become committed, but are not acknowledged.
    pub async fn wait_replicated(
        &self,
        offset: i64,
        min_insync: usize,
        timeout: std::time::Duration,
    ) -> Result<(), BrokerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.subscribe();
        let leading_epoch = |role: &Role| match role {
            Role::Leader(leader) => Some(leader.leader_epoch),
            Role::Standalone => Some(-1),
            Role::Unassigned | Role::Follower { .. } => None,
        };
        let epoch = leading_epoch(&self.lock_role()).ok_or(BrokerError::NotLeaderOrFollower)?;
        loop {
            let isr = {
                let role = self.lock_role();
                if leading_epoch(&role) != Some(epoch) {
                    return Err(BrokerError::NotLeaderOrFollower);
                }
                role.isr_size()
            };
            if self.high_watermark() >= offset {
                return if isr < min_insync {
                    Err(BrokerError::NotEnoughReplicasAfterAppend { isr, min: min_insync })
                } else {
                    Ok(())
                };
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(BrokerError::NotLeaderOrFollower),
                Err(_) => {
                    return Err(BrokerError::RequestTimedOut(format!(
                        "the in-sync replicas did not confirm offset {} within {} ms",
                        offset - 1,
                        timeout.as_millis()
                    )));
                }
            }
        }
    }

    /// As leader, records a follower's fetch from `fetch_offset` and moves the high watermark if it can. Returns
    /// false when this node does not lead in `leader_epoch` or the replica is not one of the partition's.
    pub fn record_follower_fetch(
        &self,
        replica: NodeId,
        fetch_offset: i64,
        log_start_offset: i64,
        now_ms: i64,
    ) -> bool {
        let mut role = self.lock_role();
        let leader_end = self.state().next_offset;
        let Role::Leader(leader) = &mut *role else {
            return false;
        };
        let start_before = leader.followers.get(&replica).map(|p| p.log_start_offset);
        if !leader.record_fetch(replica, fetch_offset.min(leader_end), log_start_offset, leader_end, now_ms) {
            return false;
        }
        self.advance_high_watermark(&role);
        drop(role);
        if start_before != Some(log_start_offset) {
            // A DeleteRecords may be waiting for this follower's log start.
            self.log_start_moved.send_modify(|_| {});
        }
        true
    }

    /// Kafka's low watermark: the lowest log start offset over the leader and its in-sync followers (just
    /// the log start offset when this node does not lead).
    pub fn low_watermark(&self) -> i64 {
        self.lock_role().low_watermark(self.log_start_offset())
    }

    /// DeleteRecords: waits until the low watermark reaches `offset` (every in-sync replica deleted the records
    /// before it), up to `timeout` (REQUEST_TIMED_OUT); answers the low watermark. Refused with
    /// NOT_LEADER_OR_FOLLOWER when leadership moves meanwhile.
    pub async fn wait_low_watermark(&self, offset: i64, timeout: std::time::Duration) -> Result<i64, BrokerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut moved = self.log_start_moved.subscribe();
        let mut roles = self.subscribe();
        loop {
            if !self.is_leader() {
                return Err(BrokerError::NotLeaderOrFollower);
            }
            let low_watermark = self.low_watermark();
            if low_watermark >= offset {
                return Ok(low_watermark);
            }
            tokio::select! {
                changed = moved.changed() => if changed.is_err() { return Err(BrokerError::NotLeaderOrFollower) },
                changed = roles.changed() => if changed.is_err() { return Err(BrokerError::NotLeaderOrFollower) },
                () = tokio::time::sleep_until(deadline) => {
                    return Err(BrokerError::RequestTimedOut(format!(
                        "the in-sync replicas did not delete the records before offset {offset} within {} ms",
                        timeout.as_millis()
                    )));
                }
            }
        }
    }

    /// As leader, the ISR to ask the controller for, if it should change (`replica.lag.time.max.ms` =
    /// `max_lag_ms`), with the leader epoch it is asked in; marks the change in flight so it is asked once.
    pub fn isr_change(&self, now_ms: i64, max_lag_ms: i64) -> Option<(i32, Vec<NodeId>)> {
        let mut role = self.lock_role();
        let high_watermark = self.high_watermark();
        let Role::Leader(leader) = &mut *role else {
            return None;
        };
        let epoch_start = self.lock_epochs().get(&leader.leader_epoch).copied().unwrap_or(0);
        let proposed = leader.proposed_isr(high_watermark, epoch_start, now_ms, max_lag_ms)?;
        for member in &proposed {
            if !leader.maximal_isr.contains(member) {
                leader.maximal_isr.push(*member);
            }
        }
        leader.change_in_flight = true;
        Some((leader.leader_epoch, proposed))
    }

    /// The controller refused or lost an ISR change: ask again on the next check.
    pub fn isr_change_failed(&self) {
        let mut role = self.lock_role();
        if let Role::Leader(leader) = &mut *role {
            leader.change_in_flight = false;
            leader.maximal_isr.clone_from(&leader.isr);
        }
    }

    /// As follower, takes the leader's high watermark (capped at this log's end) and log start offset.
    pub async fn follow_leader_marks(
        &self,
        leader_high_watermark: i64,
        leader_log_start: i64,
        leader_epoch: i32,
    ) -> Result<(), BrokerError> {
        self.check_following(leader_epoch)?;
        {
            let mut state = self.lock_state();
            let high_watermark = leader_high_watermark.min(state.next_offset);
            if high_watermark > state.high_watermark {
                state.high_watermark = high_watermark;
                self.high_watermark.send_replace(high_watermark);
            }
        }
        if leader_log_start > self.log_start_offset() && leader_log_start <= self.high_watermark() {
            self.advance_log_start(leader_log_start).await?;
        }
        Ok(())
    }

    /// The latest leader epoch in this log's epoch cache, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.lock_epochs().last_key_value().map(|(epoch, _)| *epoch)
    }

    /// Kafka's end offset for a leader epoch (OffsetForLeaderEpoch, and the divergence check of a fetch): for the
    /// latest epoch, the log end; for an older one, the start of the next epoch this log has, paired with the
    /// largest epoch at or below the one asked (or the one asked, when the log has none that old: its history
    /// begins later). `(-1, -1)` for an epoch newer than any this log has, or -1 asked.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (-1, -1);
        let epochs = self.lock_epochs();
        if requested < 0 {
            return UNDEFINED;
        }
        if epochs.last_key_value().is_some_and(|(latest, _)| *latest == requested) {
            return (requested, self.log_end_offset());
        }
        let Some((_, &next_start)) = epochs.range(requested.saturating_add(1)..).next() else {
            return UNDEFINED;
        };
        match epochs.range(..=requested).next_back() {
            Some((&epoch, _)) => (epoch, next_start),
            None => (requested, next_start),
        }
    }

    /// Adds `epoch` starting at `start` to the epoch cache write, when it is newer than every epoch there.
    /// Returns the entry to publish after the write.
    pub(crate) fn assign_epoch_into(&self, epoch: i32, start: i64, batch: &mut StoreBatch) -> Option<(i32, i64)> {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return None;
        }
        batch.put(
            ColumnFamily::Partition,
            keys::leader_epoch_key(self.partition_id, epoch),
            start.to_be_bytes().to_vec(),
        );
        Some((epoch, start))
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state().log_start_offset
    }

    pub fn leader_epoch(&self) -> i32 {
        self.state().leader_epoch
    }

    /// A receiver that changes whenever the high watermark moves (consumers' long-poll fetches, acks=all).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// A receiver that changes whenever the log end moves (followers' long-poll fetches).
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// Reads whole batches starting with the one containing `fetch_offset`, up to the high watermark, stopping
    /// before `max_bytes` would be exceeded — except that the first batch is returned whatever its size when
    /// `at_least_one` is set, so a consumer can always make progress.
    pub async fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        at_least_one: bool,
        isolation: Isolation,
    ) -> Result<FetchRead, BrokerError> {
        let state = self.state();
        let last_stable_offset = self.last_stable_offset();
        if fetch_offset < state.log_start_offset || fetch_offset > state.next_offset {
            return Err(BrokerError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset: state.log_start_offset,
                log_end_offset: state.next_offset,
            });
        }
        let upper = match isolation {
            Isolation::ReadUncommitted => state.high_watermark,
            Isolation::ReadCommitted => last_stable_offset,
            Isolation::LogEnd => state.next_offset,
        };
        let mut read = FetchRead {
            records: Bytes::new(),
            high_watermark: state.high_watermark,
            last_stable_offset,
            log_start_offset: state.log_start_offset,
            aborted_transactions: (isolation == Isolation::ReadCommitted).then(Vec::new),
        };
        if fetch_offset >= upper || (max_bytes == 0 && !at_least_one) {
            return Ok(read);
        }
        if isolation == Isolation::ReadCommitted {
            let aborted = self.aborted_transactions(fetch_offset, upper).await?;
            read.aborted_transactions =
                Some(aborted.into_iter().map(|(producer, first, _)| (producer, first)).collect());
        }
        let engine = Arc::clone(&self.engine);
        let partition_id = self.partition_id;
        read.records = run_blocking(move || {
            let lower = keys::log_key(partition_id, 0);
            let start = match engine.floor(ColumnFamily::Log, &lower, &keys::log_key(partition_id, fetch_offset))? {
                Some((key, _)) => key,
                None => keys::log_key(partition_id, fetch_offset),
            };
            // Sized up front (up to READ_BUFFER_HINT_BYTES, never more than the fetch may take), so batches are
            // copied in once instead of again at every doubling of the buffer.
            let mut out = BytesMut::with_capacity(max_bytes.min(READ_BUFFER_HINT_BYTES));
            engine.scan(ColumnFamily::Log, &start, &keys::log_key(partition_id, upper), &mut |_, value| {
                let Ok(header) = RecordBatchHeader::parse(value) else {
                    return false;
                };
                if header.last_offset() < fetch_offset {
                    return true;
                }
                let first = out.is_empty();
                if out.len() + value.len() > max_bytes && !(first && at_least_one) {
                    return false;
                }
                out.extend_from_slice(value);
                out.len() < max_bytes
            })?;
            Ok(out.freeze())
        })
        .await?;
        Ok(read)
    }

    /// Moves the log start offset forward to `offset` (DeleteRecords): records before it are no longer served,
    /// and stored batches entirely before it are deleted in the same write as the new state (so is the
    /// aborted-transaction index below it). `offset` beyond the high watermark is OFFSET_OUT_OF_RANGE; an offset
    /// at or before the current start changes nothing. Returns the log start offset afterwards.
    pub async fn advance_log_start(&self, offset: i64) -> Result<i64, BrokerError> {
        let _append = self.append_lock.lock().await;
        let mut state = self.state();
        if offset < 0 || offset > state.high_watermark.max(state.log_start_offset) {
            return Err(BrokerError::OffsetOutOfRange {
                offset,
                log_start_offset: state.log_start_offset,
                log_end_offset: state.next_offset,
            });
        }
        if offset <= state.log_start_offset {
            return Ok(state.log_start_offset);
        }
        let partition_id = self.partition_id;
        // Batches wholly before `offset` go; the batch holding `offset` stays (a fetch from `offset` reads it).
        let cut = self.start_of_batch_holding(offset).await?;
        state.log_start_offset = offset;
        let mut batch = StoreBatch::default();
        batch.delete_range(ColumnFamily::Log, keys::log_key(partition_id, 0), keys::log_key(partition_id, cut));
        batch.delete_range(
            ColumnFamily::AbortedTxns,
            keys::aborted_txn_key(partition_id, 0),
            keys::aborted_txn_key(partition_id, offset),
        );
        batch.put(ColumnFamily::Partition, keys::partition_key(partition_id), state.encode());
        let engine = Arc::clone(&self.engine);
        run_blocking(move || engine.write(batch, skein_storage::Durability::ProcessCrash)).await?;
        self.publish(state);
        Ok(offset)
    }

    /// The base offset of the stored batch holding `offset`, or `offset` itself when no batch holds it.
    pub(crate) async fn start_of_batch_holding(&self, offset: i64) -> Result<i64, BrokerError> {
        let engine = Arc::clone(&self.engine);
        let partition_id = self.partition_id;
        let start = run_blocking(move || {
            let lower = keys::log_key(partition_id, 0);
            let holding = engine.floor(ColumnFamily::Log, &lower, &keys::log_key(partition_id, offset))?;
            Ok(match holding.and_then(|(key, value)| Some((keys::log_key_offset(&key)?, value))) {
                Some((base, value)) if RecordBatchHeader::parse(&value).is_ok_and(|h| h.last_offset() >= offset) => {
                    base
                }
                _ => offset,
            })
        })
        .await?;
        Ok(start)
    }

    /// Where retention moves the log start (Kafka's `cleanup.policy=delete`), if anywhere: past the oldest batches
    /// whose newest timestamp is older than `retention_ms` (-1 = no time limit), and past the oldest batches while
    /// the partition holds more than `retention_bytes` (-1 = no size limit). Never past the last stable offset, so
    /// an open transaction keeps its records.
    pub async fn retention_point(
        &self,
        retention_ms: i64,
        retention_bytes: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, BrokerError> {
        if retention_ms < 0 && retention_bytes < 0 {
            return Ok(None);
        }
        let state = self.state();
        let limit = self.last_stable_offset();
        let engine = Arc::clone(&self.engine);
        let partition_id = self.partition_id;
        let (from, to) = (keys::log_key(partition_id, state.log_start_offset), keys::log_key(partition_id, limit));
        // (bytes, newest timestamp, next offset) of each batch from the log start, oldest first.
        let batches = run_blocking(move || {
            let mut batches = Vec::new();
            let cutoff = now_ms.saturating_sub(retention_ms);
            engine.scan(ColumnFamily::Log, &from, &to, &mut |_, value| {
                if let Ok(header) = RecordBatchHeader::parse(value) {
                    batches.push((value.len() as i64, header.max_timestamp, header.last_offset() + 1));
                    // Time alone only needs the expired prefix; size needs every batch.
                    return retention_bytes >= 0 || header.max_timestamp < cutoff;
                }
                true
            })?;
            Ok(batches)
        })
        .await?;
        let mut start = state.log_start_offset;
        if retention_ms >= 0 {
            let cutoff = now_ms.saturating_sub(retention_ms);
            for (_, _, next) in batches.iter().take_while(|(_, max_timestamp, _)| *max_timestamp < cutoff) {
                start = start.max(*next);
            }
        }
        if retention_bytes >= 0 {
            // As Kafka: the oldest batch goes only while what remains still holds at least retention.bytes.
            let mut total: i64 = batches.iter().map(|(bytes, _, _)| *bytes).sum();
            for (bytes, _, next) in &batches {
                if total - bytes < retention_bytes {
                    break;
                }
                total -= bytes;
                start = start.max(*next);
            }
        }
        let start = start.min(limit);
        Ok((start > state.log_start_offset).then_some(start))
    }

    /// Gives the space of batches before the log start back to the file system: the files holding them are
    /// rewritten, and every column family is flushed so the write-ahead log files that still held those batches
    /// (kept while any column family's unflushed writes are in them) can go too.
    pub async fn reclaim_space(&self) -> Result<(), BrokerError> {
        let engine = Arc::clone(&self.engine);
        let partition_id = self.partition_id;
        let start = self.log_start_offset();
        run_blocking(move || {
            engine.compact_range(
                ColumnFamily::Log,
                &keys::log_key(partition_id, 0),
                &keys::log_key(partition_id, start),
            )?;
            engine.flush()
        })
        .await
        .map_err(BrokerError::from)
    }

    /// The approximate bytes this partition's batches take on disk (see [`skein_storage::Engine::disk_size`]);
    /// cheap enough for every metrics scrape.
    pub fn disk_bytes(&self) -> Result<u64, BrokerError> {
        let (from, to) = keys::log_range(self.partition_id);
        self.engine.disk_size(ColumnFamily::Log, &from, &to).map_err(BrokerError::from)
    }

    /// The bytes of the record batches stored for this partition, as Kafka counts a log's size (read by
    /// scanning: for admin requests only).
    pub async fn size_in_bytes(&self) -> Result<u64, BrokerError> {
        let engine = Arc::clone(&self.engine);
        let (from, to) = keys::log_range(self.partition_id);
        run_blocking(move || {
            let mut total = 0u64;
            engine.scan(ColumnFamily::Log, &from, &to, &mut |_, value| {
                total += value.len() as u64;
                true
            })?;
            Ok(total)
        })
        .await
        .map_err(BrokerError::from)
    }

    /// The producers with an open transaction or recent appends here, for DescribeProducers:
    /// (producer id, state).
    pub fn producers(&self) -> Vec<(i64, ProducerState)> {
        let mut producers: Vec<(i64, ProducerState)> =
            self.lock_producers().iter().map(|(id, state)| (*id, state.clone())).collect();
        producers.sort_by_key(|(id, _)| *id);
        producers
    }

    /// The aborted transactions with records in `[from, to)`: those whose marker is at or after `from` and whose
    /// first offset is before `to`. Markers are keyed by offset; no transaction spans more than the largest span
    /// seen, which bounds the scan.
    /// Each as (producer id, first offset, marker offset).
    pub(crate) async fn aborted_transactions(&self, from: i64, to: i64) -> Result<Vec<(i64, i64, i64)>, BrokerError> {
        let engine = Arc::clone(&self.engine);
        let partition_id = self.partition_id;
        let scan_to = to.saturating_add(self.max_aborted_span.load(Ordering::Relaxed)).saturating_add(1);
        run_blocking(move || {
            let mut found = Vec::new();
            let mut corrupt = None;
            let (lower, upper) =
                (keys::aborted_txn_key(partition_id, from), keys::aborted_txn_key(partition_id, scan_to));
            engine.scan(ColumnFamily::AbortedTxns, &lower, &upper, &mut |key, value| {
                let marker = keys::log_key_offset(key).unwrap_or(i64::MAX);
                match AbortedTxn::decode(value) {
                    Ok(aborted) if aborted.first_offset < to => {
                        found.push((aborted.producer_id, aborted.first_offset, marker));
                    }
                    Ok(_) => {}
                    Err(err) => corrupt = Some(err),
                }
                corrupt.is_none()
            })?;
            match corrupt {
                Some(err) => Err(err),
                None => Ok(found),
            }
        })
        .await
        .map_err(BrokerError::from)
    }

    /// Visits every stored batch header (with its bytes) from the log start, in offset order, until `visit`
    /// returns false.
    async fn scan_batches<T: Send + 'static>(
        &self,
        mut visit: impl FnMut(&RecordBatchHeader, &[u8]) -> Option<T> + Send + 'static,
    ) -> Result<Option<T>, BrokerError> {
        let engine = Arc::clone(&self.engine);
        let (from, to) = keys::log_range(self.partition_id);
        run_blocking(move || {
            let mut found = None;
            engine.scan(ColumnFamily::Log, &from, &to, &mut |_, value| match RecordBatchHeader::parse(value) {
                Ok(header) => {
                    found = visit(&header, value);
                    found.is_none()
                }
                Err(_) => true,
            })?;
            Ok(found)
        })
        .await
        .map_err(BrokerError::from)
    }

    /// The first offset whose record timestamp is `>= timestamp` (Kafka's ListOffsets by timestamp), if any.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<OffsetAndTimestamp>, BrokerError> {
        let log_start = self.log_start_offset();
        self.scan_batches(move |header, bytes| {
            if header.max_timestamp < timestamp {
                return None;
            }
            first_record_matching(bytes, |offset, ts| offset >= log_start && ts >= timestamp)
        })
        .await
    }

    /// The offset of the (first) record with the largest timestamp (ListOffsets `MAX_TIMESTAMP`).
    pub async fn offset_of_max_timestamp(&self) -> Result<Option<OffsetAndTimestamp>, BrokerError> {
        let engine = Arc::clone(&self.engine);
        let (from, to) = keys::log_range(self.partition_id);
        let best = run_blocking(move || {
            let mut best: Option<(i64, Vec<u8>)> = None;
            engine.scan(ColumnFamily::Log, &from, &to, &mut |_, value| {
                if let Ok(header) = RecordBatchHeader::parse(value)
                    && best.as_ref().is_none_or(|(max, _)| header.max_timestamp > *max)
                {
                    best = Some((header.max_timestamp, value.to_vec()));
                }
                true
            })?;
            Ok(best)
        })
        .await?;
        Ok(best.and_then(|(max, bytes)| first_record_matching(&bytes, |_, ts| ts == max)))
    }
}

/// Reads one stored batch's records (off the hot path: ListOffsets only) and returns the first matching `wanted`.
fn first_record_matching(batch: &[u8], wanted: impl Fn(i64, i64) -> bool) -> Option<OffsetAndTimestamp> {
    let header = RecordBatchHeader::parse(batch).ok()?;
    let mut found = None;
    let _ = walk_records(batch, &header, uncompressed_limit(batch.len()), |record| {
        let offset = header.base_offset.saturating_add(i64::from(record.offset_delta));
        let timestamp = header.base_timestamp.saturating_add(record.timestamp_delta);
        if found.is_none() && wanted(offset, timestamp) {
            found = Some(OffsetAndTimestamp { offset, timestamp });
        }
        Ok(())
    });
    found
}
