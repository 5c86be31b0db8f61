//! What the coordinators' replicated state logs share (`__consumer_offsets` for groups, `__transaction_state` for
//! transactional ids): records of (key, value or tombstone) appended by the partition's leader and acknowledged
//! once its in-sync replicas have them, a replay of a partition's latest value per key, the internal topic's
//! creation through the controller, and which of its partitions this broker leads.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use skein_core::{BrokerError, wall_clock_ms};
use skein_log::{AppendRequest, Isolation, PartitionLog, append_batches};
use skein_protocol::{RecordBatchHeader, decode_batch_records, uncompressed_limit};
use skein_storage::{Durability, Engine};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

/// One state change: a key and its new value, or `None` for a deletion.
pub(crate) type StateRecord = (Vec<u8>, Option<Vec<u8>>);

/// Bytes read per step while replaying a partition.
const REPLAY_READ_BYTES: usize = 4 << 20;

/// Appends `records` to `log` as its leader in one batch and waits until `min_insync` in-sync replicas have them
/// (`timeout`). A lost leadership is NOT_COORDINATOR, a failed replication COORDINATOR_NOT_AVAILABLE, as Kafka's
/// coordinators answer: the client retries, at the new coordinator if it moved.
pub(crate) async fn append_replicated(
    engine: &Arc<dyn Engine>,
    durability: Durability,
    log: &Arc<PartitionLog>,
    min_insync: usize,
    timeout: Duration,
    coordinated_id: &str,
    records: &[StateRecord],
) -> Result<(), BrokerError> {
    let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
    let batch = encode_records(records, wall_clock_ms())?;
    let header = RecordBatchHeader::parse(&batch).map_err(|err| BrokerError::Storage(format!("state batch: {err}")))?;
    let request = AppendRequest { log: Arc::clone(log), records: batch, header, log_append_time: None };
    let appended = append_batches(engine, vec![request], durability, wall_clock_ms())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| BrokerError::Storage("the state append answered nothing".into()))?
        .map_err(|err| match err {
            BrokerError::NotLeaderOrFollower => BrokerError::NotCoordinator(coordinated_id.to_owned()),
            other => other,
        })?;
    let end = appended.base_offset.saturating_add(count);
    log.wait_replicated(end, min_insync, timeout).await.map_err(|err| match err {
        BrokerError::NotLeaderOrFollower => BrokerError::NotCoordinator(coordinated_id.to_owned()),
        other => BrokerError::CoordinatorNotAvailable(other.to_string()),
    })
}

/// One batch (v2, uncompressed, no producer) with a record per change.
pub(crate) fn encode_records(records: &[StateRecord], now_ms: i64) -> Result<Bytes, BrokerError> {
    let records: Vec<Record> = (0i64..)
        .zip(records)
        .map(|(offset, (key, value))| Record {
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
            key: Some(Bytes::from(key.clone())),
            value: value.clone().map(Bytes::from),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .map_err(|err| BrokerError::Storage(format!("cannot encode coordinator state: {err}")))?;
    Ok(buf.freeze())
}

/// The state a partition's log holds: every record from its log start to its log end, the last per key winning
/// (a deletion included, as `None`).
pub(crate) async fn replay(log: &PartitionLog) -> Result<BTreeMap<Vec<u8>, Option<Vec<u8>>>, BrokerError> {
    let corrupt = |err: &dyn std::fmt::Display| BrokerError::Storage(format!("coordinator state log: {err}"));
    let mut latest = BTreeMap::new();
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
            let header = RecordBatchHeader::parse(rest).map_err(|err| corrupt(&err))?;
            let size = header.size_in_bytes();
            let Some(batch) = rest.get(..size) else { break };
            if !header.is_control() {
                let records = decode_batch_records(batch, uncompressed_limit(0)).map_err(|err| corrupt(&err))?;
                for record in records.iter().filter(|r| r.offset >= offset) {
                    if let Some(key) = record.key.as_ref() {
                        latest.insert(key.to_vec(), record.value.as_ref().map(|v| v.to_vec()));
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
    Ok(latest)
}

/// One coordinator's internal topic: its name, partition count, replication factor (before the cap at the
/// number of controller voters) and `min.insync.replicas` (the broker's default when `None`).
pub(crate) struct InternalTopic {
    pub(crate) name: &'static str,
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i16,
    pub(crate) min_insync: Option<i32>,
}

impl InternalTopic {
    /// The replication factor, at most one replica per controller voter (so one node needs no setting).
    pub(crate) fn replication_factor(&self, broker: &Broker) -> i16 {
        let voters = i16::try_from(broker.cluster.layout().voters.len()).unwrap_or(i16::MAX).max(1);
        self.replication_factor.min(voters)
    }

    /// Creates the topic through the controller if it does not exist yet: compacted, with its partitions and
    /// replicas (`min.insync.replicas` at most its replication factor). Fails, as Kafka does, while fewer brokers
    /// are registered than its replication factor.
    pub(crate) async fn ensure(&self, broker: &Broker) -> Result<(), BrokerError> {
        if broker.image().topic(self.name).is_some() {
            return Ok(());
        }
        let replication_factor = self.replication_factor(broker);
        let mut configs = BTreeMap::from([
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            ("compression.type".to_owned(), "producer".to_owned()),
        ]);
        if let Some(min_insync) = self.min_insync {
            let min_insync = min_insync.clamp(1, i32::from(replication_factor));
            configs.insert("min.insync.replicas".to_owned(), min_insync.to_string());
        }
        let topic = crate::topics::NewTopic { name: self.name.to_owned(), num_partitions: self.partitions, configs };
        match broker.create_topic(topic, i32::from(replication_factor), Vec::new()).await {
            Ok(_) | Err(BrokerError::TopicAlreadyExists(_)) => Ok(()),
            Err(err) => Err(BrokerError::CoordinatorNotAvailable(format!("cannot create {}: {err}", self.name))),
        }
    }

    /// Whether the topic can be created now: it does not exist and enough brokers are live for its replicas.
    pub(crate) fn can_create(&self, broker: &Broker) -> bool {
        let image = broker.image();
        image.topic(self.name).is_none()
            && image.live_brokers().count() >= usize::try_from(self.replication_factor(broker)).unwrap_or(usize::MAX)
    }

    /// The partitions whose local log leads now, by index.
    pub(crate) fn led_partitions(&self, broker: &Broker) -> BTreeMap<i32, Arc<PartitionLog>> {
        let image = broker.image();
        let node_id = broker.config.node_id;
        let (Some(topic), Some(local)) = (image.topic(self.name), broker.topics.get(self.name)) else {
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

    /// The partitions the metadata says this broker leads (whether or not their logs have taken the role yet).
    pub(crate) fn assigned_partitions(&self, broker: &Broker) -> Vec<i32> {
        let image = broker.image();
        image.topic(self.name).map_or_else(Vec::new, |topic| {
            topic.partitions.iter().filter(|(_, p)| p.leader == broker.config.node_id).map(|(&i, _)| i).collect()
        })
    }

    /// The leader of partition `partition` if it is live: the coordinator FindCoordinator names.
    pub(crate) fn live_leader(&self, broker: &Broker, partition: i32) -> Result<i32, BrokerError> {
        let image = broker.image();
        image
            .topic(self.name)
            .and_then(|topic| topic.partitions.get(&partition))
            .map(|p| p.leader)
            .filter(|&leader| leader >= 0 && image.is_live(leader))
            .ok_or_else(|| {
                BrokerError::CoordinatorNotAvailable(format!("{} partition {partition} has no leader", self.name))
            })
    }
}

/// Whether this broker coordinates the ids of one partition.
#[derive(Clone)]
enum Ownership {
    /// It leads the partition and is replaying it.
    Loading,
    /// It coordinates the partition's ids; changes go to `log`.
    Loaded { log: Arc<PartitionLog>, min_insync: usize },
}

/// The partitions of an internal topic this broker coordinates, or is loading.
#[derive(Default)]
pub(crate) struct OwnedPartitions(Mutex<HashMap<i32, Ownership>>);

impl OwnedPartitions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Ownership>> {
        // A map of plain values changed by whole inserts and removals.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ok when partition `partition` is loaded; COORDINATOR_LOAD_IN_PROGRESS while loading; else NOT_COORDINATOR.
    pub(crate) fn check(&self, partition: i32, coordinated_id: &str) -> Result<(), BrokerError> {
        self.log_of(partition, coordinated_id).map(|_| ())
    }

    /// The log (and its `min.insync.replicas`) changes of a loaded partition go to.
    pub(crate) fn log_of(
        &self,
        partition: i32,
        coordinated_id: &str,
    ) -> Result<(Arc<PartitionLog>, usize), BrokerError> {
        match self.lock().get(&partition) {
            Some(Ownership::Loaded { log, min_insync }) => Ok((Arc::clone(log), *min_insync)),
            Some(Ownership::Loading) => Err(BrokerError::CoordinatorLoadInProgress(coordinated_id.to_owned())),
            None => Err(BrokerError::NotCoordinator(coordinated_id.to_owned())),
        }
    }

    fn partitions(&self) -> Vec<i32> {
        self.lock().keys().copied().collect()
    }
}

pub(crate) type OwnerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A coordinator whose state lives in an internal topic's partitions: it takes over a partition when this broker
/// becomes its leader and gives it up when it stops leading it ([`follow_leadership`]).
pub(crate) trait StateLogOwner: Send + Sync {
    fn topic(&self, broker: &Broker) -> InternalTopic;
    /// Whether the topic is created as soon as enough brokers are registered, rather than at the first
    /// FindCoordinator that needs it.
    fn creates_topic_eagerly(&self) -> bool;
    fn owned(&self) -> &OwnedPartitions;
    /// Brings local state in line with the partition's log (requests for its ids wait, answered
    /// COORDINATOR_LOAD_IN_PROGRESS, until this is done).
    fn load<'a>(
        &'a self,
        broker: &'a Arc<Broker>,
        partition: i32,
        log: &'a Arc<PartitionLog>,
        min_insync: usize,
    ) -> OwnerFuture<'a, Result<(), BrokerError>>;
    /// Runs once the partition serves requests (e.g. finishing what the previous coordinator left half done).
    fn loaded<'a>(&'a self, _broker: &'a Arc<Broker>, _partition: i32) -> OwnerFuture<'a, ()> {
        Box::pin(async {})
    }
    /// Another broker coordinates the partition's ids now.
    fn unload<'a>(&'a self, broker: &'a Arc<Broker>, partition: i32) -> OwnerFuture<'a, ()>;
}

/// How often leadership is looked at again when no new metadata arrives (a failed load is retried then).
const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Follows the leadership of `owner`'s internal topic until `shutdown`: creates the topic once enough brokers
/// are registered, loads the partitions this broker leads, unloads those it no longer leads.
pub(crate) async fn follow_leadership(broker: Arc<Broker>, owner: Arc<dyn StateLogOwner>, shutdown: CancellationToken) {
    let mut images = broker.cluster.quorum().subscribe();
    loop {
        let topic = owner.topic(&broker);
        if owner.creates_topic_eagerly()
            && topic.can_create(&broker)
            && let Err(err) = topic.ensure(&broker).await
        {
            tracing::debug!(error = %err, "{} not created yet", topic.name);
        }
        let led = topic.led_partitions(&broker);
        for partition in owner.owned().partitions() {
            if !led.contains_key(&partition) {
                owner.owned().lock().remove(&partition);
                tracing::info!(partition, "no longer coordinating the ids of {} partition", topic.name);
                owner.unload(&broker, partition).await;
            }
        }
        for (partition, log) in led {
            if owner.owned().lock().contains_key(&partition) {
                continue;
            }
            owner.owned().lock().insert(partition, Ownership::Loading);
            let min_insync =
                broker.topics.get(topic.name).map_or(1, |t| t.min_insync_replicas(&broker.current_config()));
            let started = std::time::Instant::now();
            match owner.load(&broker, partition, &log, min_insync).await {
                Ok(()) => {
                    owner.owned().lock().insert(partition, Ownership::Loaded { log, min_insync });
                    tracing::debug!(partition, elapsed = ?started.elapsed(), "coordinating {} partition", topic.name);
                    owner.loaded(&broker, partition).await;
                }
                Err(err) => {
                    owner.owned().lock().remove(&partition);
                    tracing::warn!(partition, error = %err, "cannot load {} partition; retrying", topic.name);
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = images.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(RECHECK_INTERVAL) => {}
        }
    }
}

/// Whether `owner` coordinates every partition it should now (part of the broker's readiness): each partition
/// of its topic this broker leads is loaded, and the topic exists unless too few brokers are live to create it.
pub(crate) fn is_caught_up(broker: &Broker, owner: &dyn StateLogOwner) -> bool {
    let topic = owner.topic(broker);
    if owner.creates_topic_eagerly() && topic.can_create(broker) {
        return false;
    }
    let owned = owner.owned().lock();
    topic
        .assigned_partitions(broker)
        .iter()
        .all(|partition| matches!(owned.get(partition), Some(Ownership::Loaded { .. })))
}

/// Runs blocking storage work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, skein_storage::StorageError> + Send + 'static,
) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| BrokerError::Storage(format!("storage task failed: {err}")))?
        .map_err(BrokerError::from)
}
