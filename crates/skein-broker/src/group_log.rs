//! Group coordination in a cluster, Kafka's way: group state lives in the internal topic `__consumer_offsets`
//! (`offsets.topic.num.partitions` partitions, compacted, `offsets.topic.replication.factor` replicas), and the
//! coordinator of a group is the leader of the partition its id hashes to.
//!
//! - [`GroupStateLog`] is the group coordinator's [`StateJournal`]: each change is appended to the group's
//!   partition as a record (key: the state key, value: the new state or null for a deletion) and acknowledged
//!   once the in-sync replicas have it (`offsets.commit.timeout.ms`).
//! - [`run`] follows leadership: when this broker becomes a partition's leader it replays the partition into
//!   local storage and hands its groups to the coordinator (COORDINATOR_LOAD_IN_PROGRESS meanwhile); when it
//!   stops leading one, the coordinator drops those groups and requests for them get NOT_COORDINATOR.
//! - The topic is created through the controller once enough brokers are registered for its replication
//!   factor (Kafka waits for the first coordinator lookup; creating it up front spares the first group that
//!   wait), or at a coordinator lookup ([`ensure_topic`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use skein_core::{BrokerError, wall_clock_ms};
use skein_group::journal::{AppendFuture, partition_for_key};
use skein_group::{StateEntry, StateJournal};
use skein_log::{AppendRequest, Isolation, PartitionLog, append_batches};
use skein_protocol::{RecordBatchHeader, decode_batch_records, uncompressed_limit};
use skein_storage::{Durability, Engine};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

pub use skein_core::types::GROUP_STATE_TOPIC;

/// Bytes read per step while replaying a partition.
const REPLAY_READ_BYTES: usize = 4 << 20;

/// How often leadership is looked at again when no new metadata arrives (a failed load is retried then).
const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Whether this broker coordinates the groups of one partition.
#[derive(Clone)]
enum Ownership {
    /// It leads the partition and is replaying it.
    Loading,
    /// It coordinates the partition's groups; changes go to `log`.
    Loaded { log: Arc<PartitionLog>, min_insync: usize },
}

/// The group coordinator's journal over `__consumer_offsets` (see the module documentation).
pub struct GroupStateLog {
    partitions: i32,
    engine: Arc<dyn Engine>,
    durability: Durability,
    commit_timeout: Duration,
    owned: Mutex<HashMap<i32, Ownership>>,
}

impl std::fmt::Debug for GroupStateLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupStateLog").field("partitions", &self.partitions).finish_non_exhaustive()
    }
}

impl GroupStateLog {
    pub fn new(partitions: i32, engine: Arc<dyn Engine>, durability: Durability, commit_timeout: Duration) -> Self {
        GroupStateLog {
            partitions: partitions.max(1),
            engine,
            durability,
            commit_timeout,
            owned: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Ownership>> {
        // A map of plain values changed by whole inserts and removals.
        self.owned.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The partitions this broker coordinates or is loading.
    fn owned_partitions(&self) -> Vec<i32> {
        self.lock().keys().copied().collect()
    }
}

impl StateJournal for GroupStateLog {
    fn partition_for(&self, group_id: &str) -> i32 {
        partition_for_key(group_id, self.partitions)
    }

    fn check_coordinator(&self, group_id: &str) -> Result<(), BrokerError> {
        match self.lock().get(&self.partition_for(group_id)) {
            Some(Ownership::Loaded { .. }) => Ok(()),
            Some(Ownership::Loading) => Err(BrokerError::CoordinatorLoadInProgress(group_id.to_owned())),
            None => Err(BrokerError::NotCoordinator(group_id.to_owned())),
        }
    }

    fn append<'a>(&'a self, group_id: &'a str, entries: Vec<StateEntry>) -> AppendFuture<'a> {
        Box::pin(async move {
            let (log, min_insync) = match self.lock().get(&self.partition_for(group_id)) {
                Some(Ownership::Loaded { log, min_insync }) => (Arc::clone(log), *min_insync),
                Some(Ownership::Loading) => return Err(BrokerError::CoordinatorLoadInProgress(group_id.to_owned())),
                None => return Err(BrokerError::NotCoordinator(group_id.to_owned())),
            };
            self.append_to(&log, min_insync, group_id, &entries).await
        })
    }
}

impl GroupStateLog {
    /// Appends `entries` of `group_id` to `log` as its leader and waits until `min_insync` in-sync replicas have
    /// them (`offsets.commit.timeout.ms`).
    async fn append_to(
        &self,
        log: &Arc<PartitionLog>,
        min_insync: usize,
        group_id: &str,
        entries: &[StateEntry],
    ) -> Result<(), BrokerError> {
        let count = i64::try_from(entries.len()).unwrap_or(i64::MAX);
        let records = encode_entries(entries, wall_clock_ms())?;
        let header = RecordBatchHeader::parse(&records)
            .map_err(|err| BrokerError::Storage(format!("group state batch: {err}")))?;
        let request = AppendRequest { log: Arc::clone(log), records, header, log_append_time: None };
        let appended = append_batches(&self.engine, vec![request], self.durability, wall_clock_ms())
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| BrokerError::Storage("the group state append answered nothing".into()))??;
        let end = appended.base_offset.saturating_add(count);
        log.wait_replicated(end, min_insync, self.commit_timeout).await.map_err(|err| match err {
            // Kafka's coordinator answers a lost leadership NOT_COORDINATOR, a failed replication
            // COORDINATOR_NOT_AVAILABLE: the client retries, at the new coordinator if it moved.
            BrokerError::NotLeaderOrFollower => BrokerError::NotCoordinator(group_id.to_owned()),
            other => BrokerError::CoordinatorNotAvailable(other.to_string()),
        })
    }
}

/// One batch (v2, uncompressed, no producer) with a record per entry.
fn encode_entries(entries: &[StateEntry], now_ms: i64) -> Result<Bytes, BrokerError> {
    let records: Vec<Record> = (0i64..)
        .zip(entries)
        .map(|(offset, entry)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder keeps records whose offset minus sequence is the same in one batch; the first one's
            // -1 is the batch's base sequence, Kafka's "no sequence".
            sequence: i32::try_from(offset).unwrap_or(i32::MAX).wrapping_sub(1),
            timestamp: now_ms,
            key: Some(Bytes::from(entry.record_key())),
            value: entry.value.clone().map(Bytes::from),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .map_err(|err| BrokerError::Storage(format!("cannot encode group state: {err}")))?;
    Ok(buf.freeze())
}

/// The state a partition's log holds: every entry from its log start to its log end, the last per key winning.
async fn replay(log: &PartitionLog) -> Result<Vec<StateEntry>, BrokerError> {
    let mut latest: BTreeMap<Vec<u8>, StateEntry> = BTreeMap::new();
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < end {
        let read = log.read(offset, REPLAY_READ_BYTES, true, Isolation::LogEnd).await?;
        if read.records.is_empty() {
            break;
        }
        let mut rest = read.records.as_ref();
        let mut next = offset;
        while !rest.is_empty() {
            let header = RecordBatchHeader::parse(rest)
                .map_err(|err| BrokerError::Storage(format!("group state log: {err}")))?;
            let size = header.size_in_bytes();
            let Some(batch) = rest.get(..size) else { break };
            if !header.is_control() {
                let records = decode_batch_records(batch, uncompressed_limit(0))
                    .map_err(|err| BrokerError::Storage(format!("group state log: {err}")))?;
                for record in records.iter().filter(|r| r.offset >= offset) {
                    let Some(key) = record.key.as_ref() else { continue };
                    if let Some(entry) = StateEntry::from_record(key, record.value.as_deref()) {
                        latest.insert(key.to_vec(), entry);
                    }
                }
            }
            next = header.last_offset().saturating_add(1);
            rest = &rest[size..];
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(latest.into_values().collect())
}

/// Creates `__consumer_offsets` through the controller if it does not exist yet: `offsets.topic.num.partitions`
/// partitions, compacted, with `offsets.topic.replication.factor` replicas (at most one per controller voter,
/// so a single node needs no setting). Fails, as Kafka does, while fewer brokers are registered than that.
pub async fn ensure_topic(broker: &Broker) -> Result<(), BrokerError> {
    if broker.image().topic(GROUP_STATE_TOPIC).is_some() {
        return Ok(());
    }
    let replication_factor = replication_factor(broker);
    let topic = crate::topics::NewTopic {
        name: GROUP_STATE_TOPIC.to_owned(),
        num_partitions: broker.config.offsets_topic_num_partitions,
        configs: BTreeMap::from([
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            ("compression.type".to_owned(), "producer".to_owned()),
        ]),
    };
    match broker.create_topic(topic, i32::from(replication_factor), Vec::new()).await {
        Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
        Err(err) => Err(BrokerError::CoordinatorNotAvailable(format!("cannot create {GROUP_STATE_TOPIC}: {err}"))),
    }
}

/// `offsets.topic.replication.factor`, at most one replica per controller voter (so one node needs no setting).
fn replication_factor(broker: &Broker) -> i16 {
    let voters = i16::try_from(broker.cluster.layout().voters.len()).unwrap_or(i16::MAX).max(1);
    broker.config.offsets_topic_replication_factor.min(voters)
}

/// Whether the topic can be created now: it does not exist and enough brokers are live for its replicas.
fn can_create_topic(broker: &Broker) -> bool {
    let image = broker.image();
    image.topic(GROUP_STATE_TOPIC).is_none()
        && image.live_brokers().count() >= usize::try_from(replication_factor(broker)).unwrap_or(usize::MAX)
}

impl GroupStateLog {
    /// Whether this broker coordinates every group it should now (its readiness): each `__consumer_offsets`
    /// partition it leads is loaded, and the topic exists unless too few brokers are live to create it.
    pub fn is_caught_up(&self, broker: &Broker) -> bool {
        if can_create_topic(broker) {
            return false;
        }
        let image = broker.image();
        let Some(topic) = image.topic(GROUP_STATE_TOPIC) else { return true };
        let owned = self.lock();
        topic
            .partitions
            .iter()
            .filter(|(_, p)| p.leader == broker.config.node_id)
            .all(|(index, _)| matches!(owned.get(index), Some(Ownership::Loaded { .. })))
    }
}

/// Follows the leadership of `__consumer_offsets` partitions until `shutdown`: loads the groups of partitions
/// this broker leads, unloads those it no longer leads.
pub async fn run(broker: Arc<Broker>, journal: Arc<GroupStateLog>, shutdown: CancellationToken) {
    let mut images = broker.cluster.quorum().subscribe();
    loop {
        if can_create_topic(&broker)
            && let Err(err) = ensure_topic(&broker).await
        {
            tracing::debug!(error = %err, "{GROUP_STATE_TOPIC} not created yet");
        }
        let led = led_partitions(&broker);
        for partition in journal.owned_partitions() {
            if !led.contains_key(&partition) {
                journal.lock().remove(&partition);
                tracing::info!(partition, "no longer coordinating the groups of {GROUP_STATE_TOPIC} partition");
                if let Err(err) = broker.groups.unload_partition(partition).await {
                    tracing::warn!(partition, error = %err, "cannot unload a group coordinator partition");
                }
            }
        }
        for (partition, log) in led {
            if journal.lock().contains_key(&partition) {
                continue;
            }
            if let Err(err) = load(&broker, &journal, partition, log).await {
                journal.lock().remove(&partition);
                tracing::warn!(partition, error = %err, "cannot load a group coordinator partition; retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = images.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(RECHECK_INTERVAL) => {}
        }
    }
}

/// The `__consumer_offsets` partitions whose local log leads now, by index.
fn led_partitions(broker: &Broker) -> BTreeMap<i32, Arc<PartitionLog>> {
    let image = broker.image();
    let node_id = broker.config.node_id;
    let (Some(topic), Some(local)) = (image.topic(GROUP_STATE_TOPIC), broker.topics.get(GROUP_STATE_TOPIC)) else {
        return BTreeMap::new();
    };
    if local.id != topic.topic_id {
        return BTreeMap::new();
    }
    topic
        .partitions
        .iter()
        .filter(|(_, p)| p.leader == node_id)
        .filter_map(|(&index, _)| {
            local.partition(index).filter(|log| log.is_leader()).map(|log| (index, Arc::clone(log)))
        })
        .collect()
}

/// Takes over one partition's groups: replays its log into local storage (or, for a log that has never held
/// anything, journals what local storage holds for it, written before the journal existed), then hands its
/// groups to the coordinator.
async fn load(
    broker: &Arc<Broker>,
    journal: &Arc<GroupStateLog>,
    partition: i32,
    log: Arc<PartitionLog>,
) -> Result<(), BrokerError> {
    journal.lock().insert(partition, Ownership::Loading);
    let started = std::time::Instant::now();
    let min_insync =
        broker.topics.get(GROUP_STATE_TOPIC).map_or(1, |t| t.min_insync_replicas(&broker.current_config()));
    let store = broker.offsets.clone();
    if log.log_end_offset() == 0 {
        let existing = tokio::task::spawn_blocking(move || store.entries_of_partition(partition))
            .await
            .map_err(|err| BrokerError::Storage(format!("storage task failed: {err}")))?
            .map_err(BrokerError::from)?;
        let mut by_group: BTreeMap<String, Vec<StateEntry>> = BTreeMap::new();
        for (group_id, entry) in existing {
            by_group.entry(group_id).or_default().push(entry);
        }
        for (group_id, entries) in by_group {
            journal.append_to(&log, min_insync, &group_id, &entries).await?;
        }
    } else {
        let entries = replay(&log).await?;
        tokio::task::spawn_blocking(move || store.replace_partition(partition, entries))
            .await
            .map_err(|err| BrokerError::Storage(format!("storage task failed: {err}")))?
            .map_err(BrokerError::from)?;
    }
    let groups = broker.groups.load_partition(partition).await?;
    journal.lock().insert(partition, Ownership::Loaded { log, min_insync });
    if groups > 0 {
        tracing::info!(partition, groups, elapsed = ?started.elapsed(), "coordinating the groups of {GROUP_STATE_TOPIC} partition");
    } else {
        tracing::debug!(partition, elapsed = ?started.elapsed(), "coordinating {GROUP_STATE_TOPIC} partition (no groups yet)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use skein_group::StateSpace;

    use super::*;

    #[test]
    fn entries_become_one_batch_with_a_record_each() {
        let entries: Vec<StateEntry> = (0u8..3)
            .map(|i| StateEntry { space: StateSpace::Offsets, key: vec![i], value: (i != 1).then(|| vec![i; 4]) })
            .collect();
        let batch = encode_entries(&entries, 1_000).expect("encode");
        let header = RecordBatchHeader::parse(&batch).expect("header");
        assert_eq!((header.records_count, header.last_offset_delta, header.size_in_bytes()), (3, 2, batch.len()));
        let records = decode_batch_records(&batch, uncompressed_limit(0)).expect("decode");
        let decoded: Vec<Option<StateEntry>> = records
            .iter()
            .map(|r| StateEntry::from_record(r.key.as_deref().unwrap_or(&[]), r.value.as_deref()))
            .collect();
        assert_eq!(decoded, entries.into_iter().map(Some).collect::<Vec<_>>());
    }
}
