//! Transaction coordination in a cluster, Kafka's way: the state of every transactional id lives in the internal
//! topic `__transaction_state` (`transaction.state.log.num.partitions` partitions, compacted,
//! `transaction.state.log.replication.factor` replicas, `transaction.state.log.min.isr`), and the coordinator of
//! an id is the leader of the partition its id hashes to.
//!
//! - [`TransactionStateLog`] is the transaction coordinator's [`TxnJournal`]: each state change is appended to
//!   the id's partition (key: the id, value: its record) and acknowledged once the in-sync replicas have it.
//! - [`run`] follows leadership: a new leader replays the partition into local storage and takes over its ids
//!   (COORDINATOR_LOAD_IN_PROGRESS meanwhile), then finishes the transactions the previous coordinator left
//!   between decision and completion (their markers); the old leader answers NOT_COORDINATOR.

use std::sync::Arc;
use std::time::Duration;

use skein_core::BrokerError;
use skein_group::journal::partition_for_key;
use skein_log::PartitionLog;
use skein_storage::{Durability, Engine, keys};
use skein_txn::{MarkerFuture, TxnJournal};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::state_log::{
    InternalTopic, OwnedPartitions, OwnerFuture, StateLogOwner, append_replicated, follow_leadership, replay,
};

pub use skein_core::types::TRANSACTION_STATE_TOPIC;

/// The transaction coordinator's journal over `__transaction_state` (see the module documentation).
pub struct TransactionStateLog {
    partitions: i32,
    engine: Arc<dyn Engine>,
    durability: Durability,
    timeout: Duration,
    owned: OwnedPartitions,
}

impl std::fmt::Debug for TransactionStateLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionStateLog").field("partitions", &self.partitions).finish_non_exhaustive()
    }
}

impl TransactionStateLog {
    /// `timeout`: how long a state change waits for the partition's in-sync replicas.
    pub fn new(partitions: i32, engine: Arc<dyn Engine>, durability: Durability, timeout: Duration) -> Self {
        TransactionStateLog {
            partitions: partitions.max(1),
            engine,
            durability,
            timeout,
            owned: OwnedPartitions::default(),
        }
    }

    /// The `__transaction_state` partition of a transactional id (Kafka's `abs(hashCode) % partitions`).
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for_key(transactional_id, self.partitions)
    }

    /// Whether this broker coordinates every transactional id it should now (its readiness).
    pub fn is_caught_up(&self, broker: &Broker) -> bool {
        crate::state_log::is_caught_up(broker, self)
    }

    async fn append_to(
        &self,
        log: &Arc<PartitionLog>,
        min_insync: usize,
        transactional_id: &str,
        record: Option<Vec<u8>>,
    ) -> Result<(), BrokerError> {
        let records = [(keys::transaction_key(transactional_id), record)];
        append_replicated(&self.engine, self.durability, log, min_insync, self.timeout, transactional_id, &records)
            .await
    }
}

impl TxnJournal for TransactionStateLog {
    fn check_coordinator(&self, transactional_id: &str) -> Result<(), BrokerError> {
        self.owned.check(self.partition_for(transactional_id), transactional_id)
    }

    fn append<'a>(&'a self, transactional_id: &'a str, record: Option<Vec<u8>>) -> MarkerFuture<'a> {
        Box::pin(async move {
            let (log, min_insync) = self.owned.log_of(self.partition_for(transactional_id), transactional_id)?;
            self.append_to(&log, min_insync, transactional_id, record).await
        })
    }
}

/// `__transaction_state` as the transaction coordinator's internal topic.
fn internal_topic(broker: &Broker) -> InternalTopic {
    InternalTopic {
        name: TRANSACTION_STATE_TOPIC,
        partitions: broker.config.transaction_state_log_num_partitions,
        replication_factor: broker.config.transaction_state_log_replication_factor,
        min_insync: Some(broker.config.transaction_state_log_min_isr),
    }
}

/// The leader of a transactional id's `__transaction_state` partition (creating the topic first if it can): its
/// coordinator.
pub async fn coordinator_of(broker: &Broker, transactional_id: &str) -> Result<i32, BrokerError> {
    let topic = internal_topic(broker);
    topic.ensure(broker).await?;
    topic.live_leader(broker, broker.txn_log.partition_for(transactional_id))
}

/// The live leader of a transactional id's `__transaction_state` partition.
pub fn leader_of(broker: &Broker, transactional_id: &str) -> Result<i32, BrokerError> {
    internal_topic(broker).live_leader(broker, broker.txn_log.partition_for(transactional_id))
}

impl StateLogOwner for TransactionStateLog {
    fn topic(&self, broker: &Broker) -> InternalTopic {
        internal_topic(broker)
    }

    /// As Kafka: at the first transactional id's FindCoordinator, so brokers never used for transactions
    /// carry none of its partitions.
    fn creates_topic_eagerly(&self) -> bool {
        false
    }

    fn owned(&self) -> &OwnedPartitions {
        &self.owned
    }

    /// Replays the partition into local storage (or, for a log that has never held anything, journals what local
    /// storage holds for it, written before the journal existed), then hands its ids to the coordinator.
    fn load<'a>(
        &'a self,
        broker: &'a Arc<Broker>,
        partition: i32,
        log: &'a Arc<PartitionLog>,
        min_insync: usize,
    ) -> OwnerFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            let of_partition = |id: &str| self.partition_for(id) == partition;
            if log.log_end_offset() == 0 {
                for (transactional_id, record) in broker.transactions.stored(of_partition)? {
                    self.append_to(log, min_insync, &transactional_id, Some(record.encode()?)).await?;
                }
            } else {
                let latest = replay(log).await?;
                let records = latest
                    .into_iter()
                    .map(|(key, record)| (String::from_utf8_lossy(&key).into_owned(), record))
                    .collect();
                broker.transactions.replace_stored(of_partition, records)?;
            }
            let ids = broker.transactions.load(of_partition).await?;
            if ids > 0 {
                tracing::info!(
                    partition,
                    ids,
                    "coordinating the transactional ids of {TRANSACTION_STATE_TOPIC} partition"
                );
            }
            Ok(())
        })
    }

    /// Finishes the transactions the previous coordinator decided but did not complete.
    fn loaded<'a>(&'a self, broker: &'a Arc<Broker>, partition: i32) -> OwnerFuture<'a, ()> {
        Box::pin(async move {
            let of_partition = |id: &str| self.partition_for(id) == partition;
            if let Err(err) = broker.transactions.recover(of_partition, broker.as_ref()).await {
                // The periodic check completes them later.
                tracing::warn!(partition, error = %err, "cannot complete the prepared transactions yet");
            }
        })
    }

    fn unload<'a>(&'a self, broker: &'a Arc<Broker>, partition: i32) -> OwnerFuture<'a, ()> {
        Box::pin(async move {
            broker.transactions.unload(|id| self.partition_for(id) == partition).await;
        })
    }
}

/// Follows the leadership of `__transaction_state` partitions until `shutdown`.
pub async fn run(broker: Arc<Broker>, journal: Arc<TransactionStateLog>, shutdown: CancellationToken) {
    follow_leadership(broker, journal, shutdown).await
}
