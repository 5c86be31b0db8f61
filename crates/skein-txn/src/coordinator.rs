//! The transaction coordinator: the state of every transactional id, stored in the `transactions` key space
//! before any answer depends on it.
//!
//! Ending a transaction is three durable steps: the decision (PrepareCommit / PrepareAbort), a COMMIT or ABORT
//! marker in every partition of the transaction (and, on commit, the transaction's consumer offsets), then the
//! completion (CompleteCommit / CompleteAbort). A crash between them leaves a Prepare state that recovery finishes
//! at start-up; markers are idempotent (a partition without an open transaction of the producer gets none).
//!
//! Each transactional id has its own lock, held across a state change and its write (and across a transactional
//! produce's check and append), so operations on one id are serialised and ids never wait for each other.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use skein_core::BrokerError;
use skein_core::limits::{self, IdKind};
use skein_group::OffsetStore;
use skein_storage::{
    ColumnFamily, CommittedOffset, Durability, Engine, StorageError, StoreBatch, TxnRecord, TxnState, keys,
    run_blocking,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::producer_ids::ProducerIdAllocator;

/// The markers that end one transaction: a COMMIT or ABORT control record for producer `producer_id` in each of
/// its partitions, and the same decision for its offsets at the coordinator of each of its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMarkers {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
    pub groups: Vec<String>,
}

pub type MarkerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send + 'a>>;

/// Where the coordinator's state is made durable before it is applied, and which transactional ids this broker
/// coordinates. In a cluster, as in Kafka, an id's state lives in one partition of `__transaction_state` (the
/// one its id hashes to), whose leader is the id's coordinator: every change is appended there and acknowledged
/// once the in-sync replicas have it; a broker taking over the partition replays it.
pub trait TxnJournal: Send + Sync {
    /// Ok when this broker coordinates `transactional_id` now; NOT_COORDINATOR, or COORDINATOR_LOAD_IN_PROGRESS
    /// while it loads the id's partition.
    fn check_coordinator(&self, transactional_id: &str) -> Result<(), BrokerError>;

    /// Makes the id's new state (`None`: the id is removed) durable in the journal.
    fn append<'a>(&'a self, transactional_id: &'a str, record: Option<Vec<u8>>) -> MarkerFuture<'a>;
}

/// The journal of one node that coordinates every id and keeps nothing elsewhere (tests of this crate).
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalTxnJournal;

impl TxnJournal for LocalTxnJournal {
    fn check_coordinator(&self, _transactional_id: &str) -> Result<(), BrokerError> {
        Ok(())
    }

    fn append<'a>(&'a self, _transactional_id: &'a str, _record: Option<Vec<u8>>) -> MarkerFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// Writes a transaction's markers where they belong: the leaders of its partitions (this broker or another, with
/// WriteTxnMarkers) and its groups' coordinators. Done once every marker is durable where it was written (a
/// partition deleted meanwhile needs none); markers are idempotent, so a failed attempt is simply repeated.
pub trait MarkerWriter: Send + Sync {
    fn write_markers<'a>(&'a self, markers: &'a TxnMarkers) -> MarkerFuture<'a>;
}

/// The transaction settings (`transaction.*`).
#[derive(Debug, Clone)]
pub struct TxnSettings {
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_check_interval: Duration,
    /// `transactional.id.expiration.ms`: an id without a transaction for this long is forgotten.
    pub id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub expiration_check_interval: Duration,
}

impl Default for TxnSettings {
    fn default() -> Self {
        TxnSettings {
            max_timeout_ms: 900_000,
            abort_check_interval: Duration::from_millis(10_000),
            id_expiration_ms: 604_800_000,
            expiration_check_interval: Duration::from_millis(3_600_000),
        }
    }
}

/// One transactional id as DescribeTransactions and ListTransactions report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub record: TxnRecord,
}

/// The name Kafka gives a transaction state in DescribeTransactions and ListTransactions.
pub fn state_name(state: TxnState) -> &'static str {
    match state {
        TxnState::Empty => "Empty",
        TxnState::Ongoing => "Ongoing",
        TxnState::PrepareCommit => "PrepareCommit",
        TxnState::PrepareAbort => "PrepareAbort",
        TxnState::CompleteCommit => "CompleteCommit",
        TxnState::CompleteAbort => "CompleteAbort",
        TxnState::Dead => "Dead",
    }
}

pub struct TransactionCoordinator {
    engine: Arc<dyn Engine>,
    durability: Durability,
    offsets: OffsetStore,
    producer_ids: Arc<ProducerIdAllocator>,
    settings: TxnSettings,
    journal: Arc<dyn TxnJournal>,
    /// The ids this broker coordinates (loaded with their `__transaction_state` partition). The map's lock is
    /// never held across an await; each id's own lock is.
    txns: std::sync::Mutex<HashMap<String, TxnSlot>>,
}

/// One id's state behind its own lock. `None`: no record — being created, or removed (expired or unloaded)
/// while a request waited for the lock.
type TxnSlot = Arc<Mutex<Option<TxnRecord>>>;

/// An id's slot, locked.
type LockedTxn = OwnedMutexGuard<Option<TxnRecord>>;

impl std::fmt::Debug for TransactionCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionCoordinator").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl TransactionCoordinator {
    /// A coordinator over `journal`: it coordinates no id until [`TransactionCoordinator::load`] takes over the
    /// ids of a `__transaction_state` partition.
    pub fn open(
        engine: Arc<dyn Engine>,
        durability: Durability,
        offsets: OffsetStore,
        producer_ids: Arc<ProducerIdAllocator>,
        settings: TxnSettings,
        journal: Arc<dyn TxnJournal>,
    ) -> Self {
        TransactionCoordinator {
            engine,
            durability,
            offsets,
            producer_ids,
            settings,
            journal,
            txns: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, TxnSlot>> {
        self.txns.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every slot `wanted` selects, taken out of the map's lock so each can be locked in turn.
    fn selected_slots(&self, wanted: impl Fn(&str) -> bool) -> Vec<(String, TxnSlot)> {
        self.slots().iter().filter(|(id, _)| wanted(id)).map(|(id, slot)| (id.clone(), Arc::clone(slot))).collect()
    }

    /// The id's record, locked: NOT_COORDINATOR when the id was unloaded meanwhile, INVALID_PRODUCER_ID_MAPPING
    /// when the id has no record.
    async fn lock(&self, transactional_id: &str) -> Result<LockedTxn, BrokerError> {
        let slot = self.slots().get(transactional_id).cloned().ok_or(BrokerError::InvalidProducerIdMapping)?;
        let locked = slot.lock_owned().await;
        if locked.is_none() {
            self.journal.check_coordinator(transactional_id)?;
            return Err(BrokerError::InvalidProducerIdMapping);
        }
        Ok(locked)
    }

    /// The id's slot, locked, created empty if the id has none; the slot is still the map's (not removed while
    /// this waited for its lock).
    async fn lock_or_create(&self, transactional_id: &str) -> LockedTxn {
        loop {
            let slot = Arc::clone(self.slots().entry(transactional_id.to_string()).or_default());
            let locked = Arc::clone(&slot).lock_owned().await;
            let current = self.slots().get(transactional_id).is_some_and(|in_map| Arc::ptr_eq(in_map, &slot));
            if current {
                return locked;
            }
        }
    }

    /// Removes the id's slot from the map if it is still `slot`.
    fn forget(&self, transactional_id: &str, slot: &TxnSlot) {
        let mut slots = self.slots();
        if slots.get(transactional_id).is_some_and(|in_map| Arc::ptr_eq(in_map, slot)) {
            slots.remove(transactional_id);
        }
    }

    pub fn settings(&self) -> &TxnSettings {
        &self.settings
    }

    /// Ok when this broker coordinates `transactional_id` now (see [`TxnJournal::check_coordinator`]).
    pub fn check_coordinator(&self, transactional_id: &str) -> Result<(), BrokerError> {
        self.journal.check_coordinator(transactional_id)
    }

    /// Every stored record of the ids `wanted` selects (blocking).
    pub fn stored(&self, wanted: impl Fn(&str) -> bool) -> Result<Vec<(String, TxnRecord)>, StorageError> {
        let mut found = Vec::new();
        let mut corrupt = None;
        self.engine.scan(ColumnFamily::Transactions, &[], &[0xff; 4], &mut |key, value| {
            let transactional_id = String::from_utf8_lossy(key).into_owned();
            if wanted(&transactional_id) {
                match TxnRecord::decode(value) {
                    Ok(record) => found.push((transactional_id, record)),
                    Err(err) => corrupt = Some(err),
                }
            }
            corrupt.is_none()
        })?;
        corrupt.map_or(Ok(found), Err)
    }

    /// Replaces, in one write, the stored records of the ids `wanted` selects with `records` (replayed from the
    /// journal: id and encoded record, or `None` for a removed id) (blocking).
    pub fn replace_stored(
        &self,
        wanted: impl Fn(&str) -> bool,
        records: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(), StorageError> {
        let mut batch = StoreBatch::default();
        for (transactional_id, _) in self.stored(&wanted)? {
            batch.delete(ColumnFamily::Transactions, keys::transaction_key(&transactional_id));
        }
        for (transactional_id, record) in records {
            if let Some(record) = record {
                TxnRecord::decode(&record)?;
                batch.put(ColumnFamily::Transactions, keys::transaction_key(&transactional_id), record);
            }
        }
        if batch.is_empty() { Ok(()) } else { self.engine.write(batch, self.durability) }
    }

    /// Takes over the ids `wanted` selects, as stored locally (after their journal was replayed into storage).
    /// Returns how many.
    pub async fn load(&self, wanted: impl Fn(&str) -> bool) -> Result<usize, BrokerError> {
        let stored = self.stored(wanted)?;
        let count = stored.len();
        let mut slots = self.slots();
        for (transactional_id, record) in stored {
            slots.insert(transactional_id, Arc::new(Mutex::new(Some(record))));
        }
        Ok(count)
    }

    /// Gives up the ids `wanted` selects (another broker coordinates them now). Returns how many.
    /// Waits for the requests under way on those ids: each ends before this does.
    pub async fn unload(&self, wanted: impl Fn(&str) -> bool) -> usize {
        let unloaded: Vec<TxnSlot> = {
            let mut slots = self.slots();
            let ids: Vec<String> = slots.keys().filter(|id| wanted(id)).cloned().collect();
            ids.iter().filter_map(|id| slots.remove(id)).collect()
        };
        let mut count = 0;
        for slot in unloaded {
            if slot.lock().await.take().is_some() {
                count += 1;
            }
        }
        count
    }

    /// Finishes the transactions of the ids `wanted` selects that were left between their decision and their
    /// completion (by a crash, or by the broker that coordinated them before). Returns how many.
    pub async fn recover(
        &self,
        wanted: impl Fn(&str) -> bool,
        markers: &dyn MarkerWriter,
    ) -> Result<usize, BrokerError> {
        let mut recovered = 0;
        for (transactional_id, slot) in self.selected_slots(wanted) {
            let mut locked = slot.lock().await;
            let Some(record) = locked.as_mut() else { continue };
            let commit = match record.state {
                TxnState::PrepareCommit => true,
                TxnState::PrepareAbort => false,
                _ => continue,
            };
            tracing::info!(%transactional_id, commit, "completing a transaction left prepared");
            self.complete(&transactional_id, record, commit, markers).await?;
            recovered += 1;
        }
        Ok(recovered)
    }

    /// InitProducerId with a transactional id: the producer id of the id (new on first use) with a bumped epoch,
    /// which fences every older incarnation. A transaction the previous incarnation left open is aborted first.
    /// `expected` is the (producer id, epoch) a producer re-initialising after an error sends (KIP-360).
    pub async fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        markers: &dyn MarkerWriter,
        now_ms: i64,
    ) -> Result<(i64, i16), BrokerError> {
        // Handlers close the connection of a request with a longer id before it gets here, as Kafka does; no state
        // is ever kept under one.
        limits::validate_id(IdKind::TransactionalId, transactional_id)?;
        if timeout_ms <= 0 || timeout_ms > self.settings.max_timeout_ms {
            return Err(BrokerError::InvalidTransactionTimeout {
                requested: timeout_ms,
                max: self.settings.max_timeout_ms,
            });
        }
        self.journal.check_coordinator(transactional_id)?;
        let mut locked = self.lock_or_create(transactional_id).await;
        let Some(record) = locked.as_mut() else {
            match self.create(transactional_id, timeout_ms, now_ms).await {
                Ok(record) => {
                    let producer_id = record.producer_id;
                    *locked = Some(record);
                    return Ok((producer_id, 0));
                }
                Err(err) => {
                    let slot = Arc::clone(OwnedMutexGuard::mutex(&locked));
                    self.forget(transactional_id, &slot);
                    return Err(err);
                }
            }
        };
        if let Some((producer_id, epoch)) = expected
            && (producer_id != record.producer_id || epoch != record.producer_epoch)
        {
            return Err(BrokerError::ProducerFenced { requested: epoch, current: record.producer_epoch });
        }
        match record.state {
            TxnState::PrepareCommit => self.complete(transactional_id, record, true, markers).await?,
            TxnState::PrepareAbort => self.complete(transactional_id, record, false, markers).await?,
            TxnState::Ongoing => {
                // Fence the previous incarnation: its transaction is aborted under a newer epoch.
                tracing::info!(%transactional_id, "aborting the transaction of a fenced producer");
                self.bump_epoch(record).await?;
                self.complete(transactional_id, record, false, markers).await?;
            }
            _ => {}
        }
        self.bump_epoch(record).await?;
        record.timeout_ms = timeout_ms;
        record.last_update_timestamp = now_ms;
        self.save(transactional_id, record).await?;
        Ok((record.producer_id, record.producer_epoch))
    }

    /// The first record of an id: a new producer id at epoch 0, durable.
    async fn create(&self, transactional_id: &str, timeout_ms: i32, now_ms: i64) -> Result<TxnRecord, BrokerError> {
        let record = TxnRecord {
            producer_id: self.producer_ids.allocate().await?,
            producer_epoch: 0,
            timeout_ms,
            state: TxnState::Empty,
            partitions: Vec::new(),
            groups: Vec::new(),
            pending_offsets: Vec::new(),
            start_timestamp: -1,
            last_update_timestamp: now_ms,
        };
        self.save(transactional_id, &record).await?;
        Ok(record)
    }

    /// AddPartitionsToTxn: the partitions join the producer's transaction, which starts if it had not.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        added: &[(String, i32)],
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        self.journal.check_coordinator(transactional_id)?;
        let mut locked = self.lock(transactional_id).await?;
        let record = checked(&mut locked, producer_id, producer_epoch)?;
        let mut changed = begin(record, now_ms);
        for partition in added {
            if !record.partitions.contains(partition) {
                record.partitions.push(partition.clone());
                changed = true;
            }
        }
        if changed {
            record.last_update_timestamp = now_ms;
            self.save(transactional_id, record).await?;
        }
        Ok(())
    }

    /// Whether the partitions are in the producer's ongoing transaction (KIP-890 verification of transactional
    /// produce, and AddPartitionsToTxn's verify-only form).
    pub async fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        wanted: &[(String, i32)],
    ) -> Result<(), BrokerError> {
        self.journal.check_coordinator(transactional_id)?;
        let mut locked = self.lock(transactional_id).await?;
        let record = checked(&mut locked, producer_id, producer_epoch)?;
        if record.state != TxnState::Ongoing || wanted.iter().any(|p| !record.partitions.contains(p)) {
            return Err(BrokerError::InvalidTxnState("the partition was not added to the transaction".into()));
        }
        Ok(())
    }

    /// Holds the id while a produce request with transactional batches is verified and appended, so no marker
    /// can end the transaction between the check and the append (which would leave a hanging transaction in the
    /// partition). Other ids are not held.
    pub async fn produce_verifier<'a>(&'a self, transactional_id: &'a str) -> ProduceVerifier<'a> {
        ProduceVerifier { coordinator: self, transactional_id, locked: self.lock(transactional_id).await }
    }

    /// AddOffsetsToTxn: the group's offsets will be committed with the transaction.
    pub async fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        limits::validate_id(IdKind::GroupId, group_id)?;
        self.journal.check_coordinator(transactional_id)?;
        let mut locked = self.lock(transactional_id).await?;
        let record = checked(&mut locked, producer_id, producer_epoch)?;
        let mut changed = begin(record, now_ms);
        if !record.groups.iter().any(|g| g == group_id) {
            record.groups.push(group_id.to_string());
            changed = true;
        }
        if changed {
            record.last_update_timestamp = now_ms;
            self.save(transactional_id, record).await?;
        }
        Ok(())
    }

    /// TxnOffsetCommit's check: the group was added to the producer's ongoing transaction (the offsets themselves
    /// wait at the group's coordinator for the transaction's marker).
    pub async fn verify_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> Result<(), BrokerError> {
        self.journal.check_coordinator(transactional_id)?;
        let mut locked = self.lock(transactional_id).await?;
        let record = checked(&mut locked, producer_id, producer_epoch)?;
        if record.state != TxnState::Ongoing || !record.groups.iter().any(|g| g == group_id) {
            return Err(BrokerError::InvalidTxnState("the group was not added to the transaction".into()));
        }
        Ok(())
    }

    /// EndTxn: commits or aborts the ongoing transaction. A retried EndTxn of a completed transaction succeeds.
    /// With Transactions V2 (`bump_epoch`, EndTxn v5+) every EndTxn also bumps the producer epoch — the markers
    /// carry the new epoch, so nothing of the old one can be appended after them — and the answer carries the new
    /// producer id and epoch. Returns them (unchanged without V2).
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        bump_epoch: bool,
        markers: &dyn MarkerWriter,
    ) -> Result<(i64, i16), BrokerError> {
        self.journal.check_coordinator(transactional_id)?;
        let mut locked = self.lock(transactional_id).await?;
        if !bump_epoch {
            let record = checked(&mut locked, producer_id, producer_epoch)?;
            return match (record.state, commit) {
                (TxnState::Ongoing, _) => {
                    self.complete(transactional_id, record, commit, markers).await?;
                    Ok((record.producer_id, record.producer_epoch))
                }
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                    Ok((record.producer_id, record.producer_epoch))
                }
                (state, _) => Err(invalid_transition(state, commit)),
            };
        }
        let record = locked.as_mut().ok_or(BrokerError::InvalidProducerIdMapping)?;
        if record.producer_id != producer_id {
            return Err(BrokerError::InvalidProducerIdMapping);
        }
        // A retry of an EndTxn that already completed (and bumped the epoch) carries the epoch before the bump.
        let retry = producer_epoch.checked_add(1) == Some(record.producer_epoch);
        let current = producer_epoch == record.producer_epoch;
        let valid_epoch = match record.state {
            TxnState::Ongoing | TxnState::Empty | TxnState::Dead => current,
            TxnState::PrepareCommit | TxnState::PrepareAbort => retry,
            TxnState::CompleteCommit | TxnState::CompleteAbort => retry || current,
        };
        if !valid_epoch {
            return Err(BrokerError::ProducerFenced { requested: producer_epoch, current: record.producer_epoch });
        }
        match (record.state, commit) {
            (TxnState::Ongoing, _) => {
                self.bump_epoch(record).await?;
                self.complete(transactional_id, record, commit, markers).await?;
            }
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => return Err(BrokerError::ConcurrentTransactions),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if retry => {}
            // Aborting a transaction with nothing in it: only the epoch moves.
            (TxnState::CompleteCommit | TxnState::CompleteAbort | TxnState::Empty, false) => {
                self.bump_epoch(record).await?;
                self.complete(transactional_id, record, false, markers).await?;
            }
            (state, _) => return Err(invalid_transition(state, commit)),
        }
        Ok((record.producer_id, record.producer_epoch))
    }

    /// Aborts transactions open longer than their timeout, fencing their producers (the epoch is bumped, so the
    /// stale producer's next request is refused). Returns how many were aborted.
    pub async fn abort_timed_out(&self, markers: &dyn MarkerWriter, now_ms: i64) -> usize {
        let mut aborted = 0;
        for (transactional_id, slot) in self.selected_slots(|_| true) {
            let mut locked = slot.lock().await;
            let Some(record) = locked.as_mut() else { continue };
            let transactional_id = transactional_id.as_str();
            // A completion that failed half-way (e.g. a storage error) is retried here.
            let retry = match record.state {
                TxnState::PrepareCommit => Some(true),
                TxnState::PrepareAbort => Some(false),
                _ => None,
            };
            if let Some(commit) = retry {
                if let Err(err) = self.complete(transactional_id, record, commit, markers).await {
                    tracing::warn!(%transactional_id, error = %err, "could not complete a prepared transaction");
                }
                continue;
            }
            let expired = record.state == TxnState::Ongoing
                && now_ms.saturating_sub(record.start_timestamp) > i64::from(record.timeout_ms);
            if !expired {
                continue;
            }
            tracing::info!(%transactional_id, timeout_ms = record.timeout_ms, "aborting a timed-out transaction");
            let result = match self.bump_epoch(record).await {
                Ok(()) => self.complete(transactional_id, record, false, markers).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(()) => aborted += 1,
                Err(err) => tracing::warn!(%transactional_id, error = %err, "could not abort a timed-out transaction"),
            }
        }
        aborted
    }

    /// Forgets the ids this broker coordinates that have had no transaction for `transactional.id.expiration.ms`
    /// (none open, none being ended), as Kafka does: their state is removed from the journal (a tombstone) and
    /// from storage, so many short-lived ids keep no state. A later InitProducerId for one starts it afresh with
    /// a new producer id. Returns how many.
    pub async fn expire_ids(&self, now_ms: i64) -> usize {
        let mut removed = 0;
        for (transactional_id, slot) in self.selected_slots(|_| true) {
            let mut locked = Arc::clone(&slot).lock_owned().await;
            let expired = locked.as_ref().is_some_and(|record| {
                matches!(record.state, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
                    && now_ms.saturating_sub(record.last_update_timestamp) > self.settings.id_expiration_ms
            });
            if !expired {
                continue;
            }
            match self.remove(&transactional_id).await {
                Ok(()) => {
                    *locked = None;
                    self.forget(&transactional_id, &slot);
                    removed += 1;
                }
                Err(err) => tracing::warn!(%transactional_id, error = %err, "cannot expire a transactional id"),
            }
        }
        removed
    }

    pub async fn describe(&self, transactional_id: &str) -> Option<TxnRecord> {
        self.lock(transactional_id).await.ok().and_then(|locked| locked.clone())
    }

    pub async fn list(&self) -> Vec<TxnDescription> {
        let mut listed = Vec::new();
        for (transactional_id, slot) in self.selected_slots(|_| true) {
            if let Some(record) = slot.lock().await.clone() {
                listed.push(TxnDescription { transactional_id, record });
            }
        }
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        listed
    }

    /// Transactions currently open.
    pub async fn ongoing_count(&self) -> usize {
        let mut ongoing = 0;
        for (_, slot) in self.selected_slots(|_| true) {
            if slot.lock().await.as_ref().is_some_and(|record| record.state == TxnState::Ongoing) {
                ongoing += 1;
            }
        }
        ongoing
    }

    /// The decision, the markers (and offsets on commit), then the completion — each durable before the next.
    async fn complete(
        &self,
        transactional_id: &str,
        record: &mut TxnRecord,
        commit: bool,
        markers: &dyn MarkerWriter,
    ) -> Result<(), BrokerError> {
        record.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
        self.save(transactional_id, record).await?;
        let now = wall_clock_ms();
        let ending = TxnMarkers {
            transactional_id: transactional_id.to_owned(),
            producer_id: record.producer_id,
            producer_epoch: record.producer_epoch,
            commit,
            partitions: record.partitions.clone(),
            groups: record.groups.clone(),
        };
        markers.write_markers(&ending).await?;
        // Offsets a transaction kept in its own record (stored before the groups' coordinators kept them).
        if commit {
            let mut by_group: HashMap<&str, Vec<(String, i32, CommittedOffset)>> = HashMap::new();
            for pending in &record.pending_offsets {
                by_group.entry(pending.group_id.as_str()).or_default().push((
                    pending.topic.clone(),
                    pending.partition,
                    CommittedOffset {
                        offset: pending.offset,
                        leader_epoch: pending.leader_epoch,
                        metadata: pending.metadata.clone(),
                        commit_timestamp: now,
                    },
                ));
            }
            for (group_id, offsets) in by_group {
                self.offsets.commit(group_id, offsets).await?;
            }
        }
        record.state = if commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        record.partitions.clear();
        record.groups.clear();
        record.pending_offsets.clear();
        // The start time stays, as Kafka keeps it: DescribeTransactions (kafka-transactions describe) reports a
        // completed transaction's start and duration.
        record.last_update_timestamp = now;
        self.save(transactional_id, record).await
    }

    /// A newer epoch for the id's producer (a new producer id when the epoch is exhausted).
    async fn bump_epoch(&self, record: &mut TxnRecord) -> Result<(), BrokerError> {
        if record.producer_epoch >= i16::MAX - 1 {
            record.producer_id = self.producer_ids.allocate().await?;
            record.producer_epoch = 0;
        } else {
            record.producer_epoch += 1;
        }
        Ok(())
    }

    /// Removes an id's state: a tombstone in the journal, then the stored record.
    async fn remove(&self, transactional_id: &str) -> Result<(), BrokerError> {
        self.journal.append(transactional_id, None).await?;
        let mut batch = StoreBatch::default();
        batch.delete(ColumnFamily::Transactions, keys::transaction_key(transactional_id));
        let engine = Arc::clone(&self.engine);
        let durability = self.durability;
        run_blocking(move || engine.write(batch, durability)).await.map_err(BrokerError::from)
    }

    async fn save(&self, transactional_id: &str, record: &TxnRecord) -> Result<(), BrokerError> {
        let encoded = record.encode()?;
        self.journal.append(transactional_id, Some(encoded.clone())).await?;
        let mut batch = StoreBatch::default();
        batch.put(ColumnFamily::Transactions, keys::transaction_key(transactional_id), encoded);
        let engine = Arc::clone(&self.engine);
        let durability = self.durability;
        run_blocking(move || engine.write(batch, durability)).await.map_err(BrokerError::from)
    }
}

fn invalid_transition(state: TxnState, commit: bool) -> BrokerError {
    BrokerError::InvalidTxnState(format!(
        "cannot {} a transaction in state {}",
        if commit { "commit" } else { "abort" },
        state_name(state)
    ))
}

/// See [`TransactionCoordinator::produce_verifier`].
pub struct ProduceVerifier<'a> {
    coordinator: &'a TransactionCoordinator,
    transactional_id: &'a str,
    locked: Result<LockedTxn, BrokerError>,
}

impl ProduceVerifier<'_> {
    /// Whether a transactional batch of `producer_id`/`producer_epoch` may be appended to the partition: it must
    /// have been added to the producer's ongoing transaction (KIP-890 part 1). With Transactions V2 (`add`,
    /// Produce v12+) the partition is added here instead, starting the transaction if needed (part 2).
    pub async fn verify(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        partition: &(String, i32),
        add: bool,
        now_ms: i64,
    ) -> Result<(), BrokerError> {
        let transactional_id = self.transactional_id;
        self.coordinator.journal.check_coordinator(transactional_id)?;
        let locked = self.locked.as_mut().map_err(|err| err.clone())?;
        let record = checked(locked, producer_id, producer_epoch).map_err(|err| match err {
            // Produce reports a stale epoch as Kafka's partition leader does.
            BrokerError::ProducerFenced { requested, current } => {
                BrokerError::InvalidProducerEpoch { producer_id, epoch: requested, current }
            }
            other => other,
        })?;
        if add && (record.state != TxnState::Ongoing || !record.partitions.contains(partition)) {
            begin(record, now_ms);
            record.partitions.push(partition.clone());
            record.last_update_timestamp = now_ms;
            return self.coordinator.save(transactional_id, record).await;
        }
        if record.state != TxnState::Ongoing || !record.partitions.contains(partition) {
            return Err(BrokerError::InvalidTxnState(format!(
                "{}-{} was not added to the transaction of {transactional_id}",
                partition.0, partition.1
            )));
        }
        Ok(())
    }
}

/// The id's record, after the checks every transactional request makes: the producer id must be the id's, the
/// epoch current, and no completion under way.
fn checked(locked: &mut LockedTxn, producer_id: i64, producer_epoch: i16) -> Result<&mut TxnRecord, BrokerError> {
    let record = locked.as_mut().ok_or(BrokerError::InvalidProducerIdMapping)?;
    if record.producer_id != producer_id {
        return Err(BrokerError::InvalidProducerIdMapping);
    }
    if record.producer_epoch != producer_epoch {
        return Err(BrokerError::ProducerFenced { requested: producer_epoch, current: record.producer_epoch });
    }
    if matches!(record.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
        return Err(BrokerError::ConcurrentTransactions);
    }
    if record.state == TxnState::Dead {
        return Err(BrokerError::InvalidProducerIdMapping);
    }
    Ok(record)
}

/// Starts a transaction if none is open. Returns whether the record changed.
fn begin(record: &mut TxnRecord, now_ms: i64) -> bool {
    if record.state == TxnState::Ongoing {
        return false;
    }
    record.state = TxnState::Ongoing;
    record.start_timestamp = now_ms;
    record.partitions.clear();
    record.groups.clear();
    record.pending_offsets.clear();
    true
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use skein_core::TopicPartition;
    use skein_log::{AppendRequest, Isolation, PartitionLog, append_batches, append_marker};
    use skein_protocol::MarkerType;
    use skein_protocol::validate_client_batch;
    use skein_storage::{MemoryEngine, PartitionState};

    /// One partition "t-0" on a shared in-memory engine, and the one node's offsets: markers go to both.
    struct OnePartition(Arc<PartitionLog>, Arc<dyn Engine>, OffsetStore);

    impl MarkerWriter for OnePartition {
        fn write_markers<'a>(&'a self, markers: &'a TxnMarkers) -> MarkerFuture<'a> {
            Box::pin(async move {
                let marker = if markers.commit { MarkerType::Commit } else { MarkerType::Abort };
                if markers.partitions.contains(&("t".to_string(), 0)) {
                    let (id, epoch) = (markers.producer_id, markers.producer_epoch);
                    append_marker(&self.1, &self.0, id, epoch, marker, Durability::ProcessCrash, 0).await?;
                }
                if !markers.groups.is_empty() {
                    self.2.complete_transaction(None, markers.producer_id, markers.commit).await?;
                }
                Ok(())
            })
        }
    }

    /// A transactional batch of `count` records, built with the codec's encoder.
    fn transactional_batch(count: i64, producer_id: i64, epoch: i16) -> Bytes {
        use kafka_protocol::indexmap::IndexMap;
        use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
        let records: Vec<Record> = (0..count)
            .map(|offset| Record {
                transactional: true,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset,
                sequence: i32::try_from(offset).unwrap_or(0),
                timestamp: 1_000 + offset,
                key: None,
                value: Some(Bytes::from_static(b"v")),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
        buf.freeze()
    }

    async fn setup() -> (Arc<dyn Engine>, OnePartition, OffsetStore, Arc<ProducerIdAllocator>) {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new());
        let mut batch = StoreBatch::default();
        let log = PartitionLog::create_standalone(Arc::clone(&engine), TopicPartition::new("t", 0), 1, 0, &mut batch);
        engine.write(batch, Durability::ProcessCrash).expect("setup");
        let offsets =
            OffsetStore::new(Arc::clone(&engine), Durability::ProcessCrash, Arc::new(skein_group::LocalJournal));
        let ids = Arc::new(ProducerIdAllocator::load(Arc::clone(&engine)).expect("ids"));
        (Arc::clone(&engine), OnePartition(log, engine, offsets.clone()), offsets, ids)
    }

    async fn open(
        engine: &Arc<dyn Engine>,
        offsets: &OffsetStore,
        ids: &Arc<ProducerIdAllocator>,
    ) -> TransactionCoordinator {
        let coordinator = TransactionCoordinator::open(
            Arc::clone(engine),
            Durability::ProcessCrash,
            offsets.clone(),
            Arc::clone(ids),
            TxnSettings::default(),
            Arc::new(LocalTxnJournal),
        );
        coordinator.load(|_| true).await.expect("load");
        coordinator
    }

    #[tokio::test]
    async fn ids_longer_than_a_request_string_keep_no_state() {
        let (engine, partitions, offsets, ids) = setup().await;
        let coordinator = open(&engine, &offsets, &ids).await;
        let too_long = "x".repeat(skein_core::MAX_ID_BYTES + 1);
        let err = coordinator.init_producer_id(&too_long, 60_000, None, &partitions, 0).await.expect_err("too long");
        assert_eq!(skein_core::error_code(&err), 42);
        assert!(coordinator.list().await.is_empty());
        let longest = "x".repeat(skein_core::MAX_ID_BYTES);
        let (producer_id, epoch) =
            coordinator.init_producer_id(&longest, 60_000, None, &partitions, 0).await.expect("init");
        let err = coordinator.add_offsets(&longest, producer_id, epoch, &too_long, 0).await.expect_err("too long");
        assert_eq!(skein_core::error_code(&err), 42);
        assert!(coordinator.describe(&longest).await.expect("described").groups.is_empty());
    }

    #[tokio::test]
    async fn a_commit_decided_before_a_crash_is_completed_by_recovery() {
        let (engine, partitions, offsets, ids) = setup().await;
        let coordinator = open(&engine, &offsets, &ids).await;
        let (producer_id, epoch) =
            coordinator.init_producer_id("app", 60_000, None, &partitions, 0).await.expect("init");
        let tp = ("t".to_string(), 0);
        coordinator.add_partitions("app", producer_id, epoch, std::slice::from_ref(&tp), 0).await.expect("add");
        coordinator.add_offsets("app", producer_id, epoch, "group", 0).await.expect("offsets");
        coordinator.verify_offsets("app", producer_id, epoch, "group").await.expect("group added");
        let pending = CommittedOffset { offset: 42, leader_epoch: -1, metadata: None, commit_timestamp: 0 };
        offsets.add_pending("group", producer_id, vec![("t".into(), 0, pending)]).await.expect("pending");
        assert!(offsets.fetch_all("group").await.expect("offsets").is_empty(), "nothing committed yet");
        let records = transactional_batch(3, producer_id, epoch);
        let header = validate_client_batch(&records).expect("valid");
        let request = AppendRequest { log: Arc::clone(&partitions.0), records, header, log_append_time: None };
        append_batches(&engine, vec![request], Durability::ProcessCrash, 0)
            .await
            .expect("append")
            .remove(0)
            .expect("ok");
        assert_eq!(partitions.0.last_stable_offset(), 0);

        // The crash: the decision is durable, nothing after it happened.
        let mut record = coordinator.describe("app").await.expect("record");
        record.state = TxnState::PrepareCommit;
        coordinator.save("app", &record).await.expect("save");
        drop(coordinator);

        let restarted = open(&engine, &offsets, &ids).await;
        // Reopening the partition from storage, as a restart does.
        let log = PartitionLog::open(Arc::clone(&engine), TopicPartition::new("t", 0), 1).expect("reopen");
        log.assume_standalone();
        let partitions = OnePartition(log, Arc::clone(&engine), offsets.clone());
        assert_eq!(partitions.0.last_stable_offset(), 0, "the open transaction survives the restart");
        assert_eq!(restarted.recover(|_| true, &partitions).await.expect("recover"), 1);
        assert_eq!(restarted.describe("app").await.expect("record").state, TxnState::CompleteCommit);
        assert_eq!(partitions.0.last_stable_offset(), 4, "3 records and the COMMIT marker");
        let read = partitions.0.read(0, 1 << 20, true, Isolation::ReadCommitted).await.expect("read");
        assert_eq!(read.aborted_transactions, Some(Vec::new()));
        let committed = offsets.fetch_all("group").await.expect("offsets");
        assert_eq!(committed.len(), 1);
        assert_eq!(committed[0].2.offset, 42);
        // Recovery is idempotent: nothing left to do, no second marker.
        assert_eq!(restarted.recover(|_| true, &partitions).await.expect("recover"), 0);
        assert_eq!(
            partitions.0.state(),
            PartitionState { log_start_offset: 0, next_offset: 4, leader_epoch: 0, high_watermark: 4 }
        );
    }

    #[tokio::test]
    async fn a_held_id_holds_back_only_its_own_requests() {
        let (engine, partitions, offsets, ids) = setup().await;
        let coordinator = open(&engine, &offsets, &ids).await;
        let tp = [("t".to_string(), 0)];
        let (a_id, a_epoch) = coordinator.init_producer_id("a", 60_000, None, &partitions, 0).await.expect("init a");
        coordinator.add_partitions("a", a_id, a_epoch, &tp, 0).await.expect("add a");
        let (b_id, b_epoch) = coordinator.init_producer_id("b", 60_000, None, &partitions, 0).await.expect("init b");

        // A transactional produce of "a" is between its check and its append.
        let mut verifier = coordinator.produce_verifier("a").await;
        verifier.verify(a_id, a_epoch, &tp[0], false, 0).await.expect("a verified");
        let patience = Duration::from_secs(5);
        let other = tokio::time::timeout(patience, async {
            coordinator.init_producer_id("c", 60_000, None, &partitions, 0).await.expect("init c");
            coordinator.add_partitions("b", b_id, b_epoch, &tp, 0).await.expect("add b");
            coordinator.end_txn("b", b_id, b_epoch, true, false, &partitions).await.expect("commit b")
        })
        .await;
        assert_eq!(other.ok(), Some((b_id, b_epoch)), "other ids are not held");
        let described = tokio::time::timeout(patience, coordinator.describe("b")).await.expect("b is not held");
        assert_eq!(described.map(|record| record.state), Some(TxnState::CompleteCommit));

        // Ending "a" waits for the produce; it ends once the produce lets go.
        let blocked = tokio::time::timeout(
            Duration::from_millis(200),
            coordinator.end_txn("a", a_id, a_epoch, true, false, &partitions),
        )
        .await;
        assert!(blocked.is_err(), "EndTxn of the held id waits for the produce");
        drop(verifier);
        let ended = tokio::time::timeout(patience, coordinator.end_txn("a", a_id, a_epoch, true, false, &partitions))
            .await
            .expect("not held any more");
        assert_eq!(ended, Ok((a_id, a_epoch)));
        assert_eq!(coordinator.list().await.len(), 3);
    }

    #[tokio::test]
    async fn states_and_errors_follow_kafka() {
        let (engine, partitions, offsets, ids) = setup().await;
        let coordinator = open(&engine, &offsets, &ids).await;
        let too_long = coordinator.init_producer_id("x", 900_001, None, &partitions, 0).await;
        assert!(matches!(too_long, Err(BrokerError::InvalidTransactionTimeout { .. })));
        let (producer_id, epoch) = coordinator.init_producer_id("x", 1_000, None, &partitions, 0).await.expect("init");
        let tp = [("t".to_string(), 0)];
        // Ending a transaction that never started is refused; unknown ids and other producer ids are unmapped.
        let empty = coordinator.end_txn("x", producer_id, epoch, true, false, &partitions).await;
        assert!(matches!(empty, Err(BrokerError::InvalidTxnState(_))));
        let unknown = coordinator.add_partitions("nope", producer_id, epoch, &tp, 0).await;
        assert_eq!(unknown, Err(BrokerError::InvalidProducerIdMapping));
        let stale = coordinator.add_partitions("x", producer_id, epoch - 1, &tp, 0).await;
        assert!(matches!(stale, Err(BrokerError::ProducerFenced { .. })));
        // An ongoing transaction past its timeout is aborted and the producer fenced.
        coordinator.add_partitions("x", producer_id, epoch, &tp, 10).await.expect("add");
        assert_eq!(coordinator.ongoing_count().await, 1);
        assert_eq!(coordinator.abort_timed_out(&partitions, 500).await, 0, "not yet");
        assert_eq!(coordinator.abort_timed_out(&partitions, 2_000).await, 1);
        let record = coordinator.describe("x").await.expect("record");
        assert_eq!((record.state, record.producer_epoch), (TxnState::CompleteAbort, epoch + 1));
        let late = coordinator.end_txn("x", producer_id, epoch, true, false, &partitions).await;
        assert!(matches!(late, Err(BrokerError::ProducerFenced { .. })));
    }
}
