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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use skein_core::BrokerError;
use skein_group::journal::{AppendFuture, partition_for_key};
use skein_group::{StateEntry, StateJournal};
use skein_log::PartitionLog;
use skein_storage::{Durability, Engine};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::state_log::{
    InternalTopic, OwnedPartitions, OwnerFuture, StateLogOwner, append_replicated, blocking, follow_leadership, replay,
};

pub use skein_core::types::GROUP_STATE_TOPIC;

/// The group coordinator's journal over `__consumer_offsets` (see the module documentation).
pub struct GroupStateLog {
    partitions: i32,
    engine: Arc<dyn Engine>,
    durability: Durability,
    commit_timeout: Duration,
    owned: OwnedPartitions,
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
            owned: OwnedPartitions::default(),
        }
    }

    /// Appends `entries` of `group_id` to `log` as its leader and waits until `min_insync` in-sync replicas have
    /// them (`offsets.commit.timeout.ms`).
    async fn append_to(
        &self,
        log: &Arc<PartitionLog>,
        min_insync: usize,
        group_id: &str,
        entries: &[StateEntry],
    ) -> Result<(), BrokerError> {
        let records: Vec<_> = entries.iter().map(|entry| (entry.record_key(), entry.value.clone())).collect();
        append_replicated(&self.engine, self.durability, log, min_insync, self.commit_timeout, group_id, &records).await
    }

    /// Ok when this broker coordinates the groups of `__consumer_offsets` partition `partition` (loaded);
    /// COORDINATOR_LOAD_IN_PROGRESS while it loads them; else NOT_COORDINATOR.
    pub fn check_partition(&self, partition: i32) -> Result<(), BrokerError> {
        self.owned.check(partition, &format!("{GROUP_STATE_TOPIC}-{partition}"))
    }

    /// Whether this broker coordinates every group it should now (its readiness).
    pub fn is_caught_up(&self, broker: &Broker) -> bool {
        crate::state_log::is_caught_up(broker, self)
    }
}

impl StateJournal for GroupStateLog {
    fn partition_for(&self, group_id: &str) -> i32 {
        partition_for_key(group_id, self.partitions)
    }

    fn check_coordinator(&self, group_id: &str) -> Result<(), BrokerError> {
        self.owned.check(self.partition_for(group_id), group_id)
    }

    fn append<'a>(&'a self, group_id: &'a str, entries: Vec<StateEntry>) -> AppendFuture<'a> {
        Box::pin(async move {
            let (log, min_insync) = self.owned.log_of(self.partition_for(group_id), group_id)?;
            self.append_to(&log, min_insync, group_id, &entries).await
        })
    }
}

/// `__consumer_offsets` as the group coordinator's internal topic.
fn internal_topic(broker: &Broker) -> InternalTopic {
    InternalTopic {
        name: GROUP_STATE_TOPIC,
        partitions: broker.config.offsets_topic_num_partitions,
        replication_factor: broker.config.offsets_topic_replication_factor,
        min_insync: None,
    }
}

/// Creates `__consumer_offsets` through the controller if it does not exist yet: `offsets.topic.num.partitions`
/// partitions, compacted, with `offsets.topic.replication.factor` replicas (at most one per controller voter,
/// so a single node needs no setting). Fails, as Kafka does, while fewer brokers are registered than that.
pub async fn ensure_topic(broker: &Broker) -> Result<(), BrokerError> {
    internal_topic(broker).ensure(broker).await
}

/// The leader of a group's `__consumer_offsets` partition: its coordinator.
pub fn coordinator_of(broker: &Broker, group_id: &str) -> Result<i32, BrokerError> {
    internal_topic(broker).live_leader(broker, broker.group_log.partition_for(group_id))
}

impl StateLogOwner for GroupStateLog {
    fn topic(&self, broker: &Broker) -> InternalTopic {
        internal_topic(broker)
    }

    /// Kafka creates it at the first group lookup; creating it up front spares the first group that wait.
    fn creates_topic_eagerly(&self) -> bool {
        true
    }

    fn owned(&self) -> &OwnedPartitions {
        &self.owned
    }

    /// Takes over one partition's groups: replays its log into local storage (or, for a log that has never held
    /// anything, journals what local storage holds for it, written before the journal existed), then hands its
    /// groups to the coordinator.
    fn load<'a>(
        &'a self,
        broker: &'a Arc<Broker>,
        partition: i32,
        log: &'a Arc<PartitionLog>,
        min_insync: usize,
    ) -> OwnerFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            let store = broker.offsets.clone();
            if log.log_end_offset() == 0 {
                let existing = blocking(move || store.entries_of_partition(partition)).await?;
                let mut by_group: BTreeMap<String, Vec<StateEntry>> = BTreeMap::new();
                for (group_id, entry) in existing {
                    by_group.entry(group_id).or_default().push(entry);
                }
                for (group_id, entries) in by_group {
                    self.append_to(log, min_insync, &group_id, &entries).await?;
                }
            } else {
                let latest = replay(log).await?;
                let entries =
                    latest.iter().filter_map(|(key, value)| StateEntry::from_record(key, value.as_deref())).collect();
                blocking(move || store.replace_partition(partition, entries)).await?;
            }
            let groups = broker.groups.load_partition(partition).await?;
            if groups > 0 {
                tracing::info!(partition, groups, "coordinating the groups of {GROUP_STATE_TOPIC} partition");
            }
            Ok(())
        })
    }

    fn unload<'a>(&'a self, broker: &'a Arc<Broker>, partition: i32) -> OwnerFuture<'a, ()> {
        Box::pin(async move {
            if let Err(err) = broker.groups.unload_partition(partition).await {
                tracing::warn!(partition, error = %err, "cannot unload a group coordinator partition");
            }
        })
    }
}

/// Follows the leadership of `__consumer_offsets` partitions until `shutdown`: loads the groups of partitions
/// this broker leads, unloads those it no longer leads.
pub async fn run(broker: Arc<Broker>, journal: Arc<GroupStateLog>, shutdown: CancellationToken) {
    follow_leadership(broker, journal, shutdown).await
}
