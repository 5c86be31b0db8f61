//! Shared broker state.

use std::sync::Arc;

use skein_core::BrokerConfig;
use skein_core::config::LogFlush;
use skein_group::{Assignor, ConsumerGroupSettings, CoordinatorTask, GroupCoordinator, GroupSettings, OffsetStore};
use skein_storage::{ColumnFamily, Durability, Engine, StorageError, StoreBatch, keys};

use crate::broker_configs::{CurrentConfig, DynamicConfigs};
use crate::metrics::Metrics;
use crate::topics::TopicRegistry;
use skein_log::{CompactionSettings, IoBudget};
use skein_txn::{ProducerIdAllocator, TransactionCoordinator, TxnSettings};

/// The storage format this build writes; a database with another version is refused at start-up.
pub const STORAGE_FORMAT_VERSION: u8 = 1;

/// Everything request handlers share.
pub struct Broker {
    /// The static settings (YAML file, command line); [`Broker::current_config`] adds the dynamic ones.
    pub config: BrokerConfig,
    /// Settings changed at run time through AlterConfigs on the BROKER resource.
    pub dynamic_configs: DynamicConfigs,
    pub engine: Arc<dyn Engine>,
    pub topics: TopicRegistry,
    pub producer_ids: Arc<ProducerIdAllocator>,
    /// The transaction coordinator.
    pub transactions: TransactionCoordinator,
    /// The group coordinator (its task is run by the server).
    pub groups: GroupCoordinator,
    /// Committed offsets.
    pub offsets: OffsetStore,
    pub metrics: Arc<Metrics>,
    pub cluster_id: String,
    /// Host and port given to clients in Metadata.
    pub advertised_host: String,
    pub advertised_port: i32,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("node_id", &self.config.node_id).field("cluster_id", &self.cluster_id).finish()
    }
}

/// Splits `host:port` (IPv6 hosts in brackets).
pub fn split_host_port(address: &str) -> Option<(String, i32)> {
    let (host, port) = address.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), i32::from(port)))
}

impl Broker {
    /// Opens the broker's state from `engine` (blocking: run before serving). Creates the cluster id on first start
    /// and loads every topic and partition and the known groups. The group coordinator's task is returned for the
    /// caller to run until shutdown.
    pub fn open(
        config: BrokerConfig,
        engine: Arc<dyn Engine>,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, CoordinatorTask), StorageError> {
        let mut first_start = StoreBatch::default();
        match engine.get(ColumnFamily::Meta, keys::META_FORMAT_VERSION)? {
            Some(version) if version.as_slice() == [STORAGE_FORMAT_VERSION] => {}
            Some(version) => {
                return Err(StorageError::CorruptValue {
                    key: "format_version".into(),
                    reason: format!("storage format {version:?} is not {STORAGE_FORMAT_VERSION}; refusing to open"),
                });
            }
            None => {
                first_start.put(ColumnFamily::Meta, keys::META_FORMAT_VERSION.to_vec(), vec![STORAGE_FORMAT_VERSION])
            }
        }
        let cluster_id = match engine.get(ColumnFamily::Meta, keys::META_CLUSTER_ID)? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None => {
                let id = new_cluster_id();
                first_start.put(ColumnFamily::Meta, keys::META_CLUSTER_ID.to_vec(), id.clone().into_bytes());
                id
            }
        };
        if !first_start.is_empty() {
            engine.write(first_start, Durability::PowerLoss)?;
        }
        let topics = TopicRegistry::load(Arc::clone(&engine), config.node_id)?;
        let dynamic_configs = DynamicConfigs::load(Arc::clone(&engine))?;
        let producer_ids = Arc::new(ProducerIdAllocator::load(Arc::clone(&engine))?);
        let (advertised_host, advertised_port) =
            split_host_port(config.advertised()).unwrap_or_else(|| ("127.0.0.1".to_string(), 9092));
        let offsets = OffsetStore::new(Arc::clone(&engine), durability(&config));
        let (groups, group_task) = GroupCoordinator::open(group_settings(&config), offsets.clone())?;
        let txn_settings = TxnSettings {
            max_timeout_ms: config.transaction_max_timeout_ms,
            abort_check_interval: millis(config.transaction_abort_timed_out_transaction_cleanup_interval_ms),
        };
        let transactions = TransactionCoordinator::open(
            Arc::clone(&engine),
            durability(&config),
            offsets.clone(),
            Arc::clone(&producer_ids),
            txn_settings,
        )?;
        let broker = Broker {
            config,
            dynamic_configs,
            engine,
            topics,
            producer_ids,
            transactions,
            groups,
            offsets,
            metrics,
            cluster_id,
            advertised_host,
            advertised_port,
        };
        Ok((broker, group_task))
    }

    /// The settings in effect now: the static config with the dynamic settings as they stand.
    pub fn current_config(&self) -> CurrentConfig<'_> {
        CurrentConfig { config: &self.config, dynamic: self.dynamic_configs.snapshot() }
    }

    /// Forgets idempotent producers idle for longer than `producer.id.expiration.ms` in every partition.
    pub async fn expire_producers(&self, now_ms: i64) -> usize {
        let mut expired = 0;
        for topic in self.topics.all() {
            for partition in &topic.partitions {
                match partition.expire_producers(now_ms, self.config.producer_id_expiration_ms).await {
                    Ok(count) => expired += count,
                    Err(err) => {
                        tracing::warn!(partition = %partition.topic_partition, error = %err, "producer expiry failed")
                    }
                }
            }
        }
        expired
    }

    /// Applies each `cleanup.policy=delete` topic's `retention.ms` and `retention.bytes`: moves partitions' log
    /// start offsets forward, deletes the batches before them and gives their space back. Returns how many
    /// partitions moved.
    pub async fn enforce_retention(&self, now_ms: i64) -> usize {
        let mut moved = 0;
        for topic in self.topics.all() {
            let current = self.current_config();
            let policy = topic.config_value(&current, "cleanup.policy").unwrap_or_default();
            if !policy.split(',').any(|p| p.trim() == "delete") {
                continue;
            }
            let number = |name: &str| {
                topic.config_value(&current, name).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(-1)
            };
            let (retention_ms, retention_bytes) = (number("retention.ms"), number("retention.bytes"));
            for partition in &topic.partitions {
                let result = async {
                    let Some(start) = partition.retention_point(retention_ms, retention_bytes, now_ms).await? else {
                        return Ok::<bool, skein_core::BrokerError>(false);
                    };
                    partition.advance_log_start(start).await?;
                    partition.reclaim_space().await?;
                    Ok(true)
                }
                .await;
                match result {
                    Ok(true) => {
                        moved += 1;
                        tracing::info!(
                            partition = %partition.topic_partition,
                            log_start_offset = partition.log_start_offset(),
                            "retention moved the log start"
                        );
                    }
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(partition = %partition.topic_partition, error = %err, "retention failed")
                    }
                }
            }
        }
        moved
    }

    /// Compacts every partition of the topics whose `cleanup.policy` includes `compact`, with each topic's
    /// settings. Returns the records removed.
    pub async fn compact_topics(&self, now_ms: i64) -> u64 {
        let mut removed = 0;
        // One budget for the whole round, re-read each round so a dynamic change applies at the next one.
        let budget = IoBudget::new(self.current_config().cleaner_io_max_bytes_per_second());
        self.metrics.record_cleaner_run();
        for topic in self.topics.all() {
            let current = self.current_config();
            let value = |name: &str| topic.config_value(&current, name).unwrap_or_default();
            if !value("cleanup.policy").split(',').any(|p| p.trim() == "compact") {
                continue;
            }
            let number = |name: &str| value(name).trim().parse::<i64>().unwrap_or(0);
            let settings = CompactionSettings {
                delete_retention_ms: number("delete.retention.ms"),
                min_compaction_lag_ms: number("min.compaction.lag.ms"),
                max_compaction_lag_ms: number("max.compaction.lag.ms"),
                min_cleanable_dirty_ratio: value("min.cleanable.dirty.ratio").trim().parse::<f64>().unwrap_or(0.5),
                dedupe_buffer_bytes: usize::try_from(self.config.log_cleaner_dedupe_buffer_size).unwrap_or(usize::MAX),
            };
            for partition in &topic.partitions {
                match partition.compact(settings, &budget, self.durability(), now_ms).await {
                    Ok(outcome) if outcome.records_removed > 0 => {
                        removed += outcome.records_removed;
                        tracing::info!(
                            partition = %partition.topic_partition,
                            records_removed = outcome.records_removed,
                            bytes_reclaimed = outcome.bytes_reclaimed,
                            "compacted"
                        );
                        self.metrics.record_compaction(outcome.records_removed, outcome.bytes_reclaimed);
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(partition = %partition.topic_partition, error = %err, "compaction failed")
                    }
                }
            }
        }
        removed
    }

    /// How durable an acknowledged write is, from `log.flush`.
    pub fn durability(&self) -> Durability {
        durability(&self.config)
    }
}

fn durability(config: &BrokerConfig) -> Durability {
    match config.log_flush {
        LogFlush::Os => Durability::ProcessCrash,
        LogFlush::Always => Durability::PowerLoss,
    }
}

fn millis(ms: i64) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The coordinator's settings from `group.*` (validated at start-up).
fn group_settings(config: &BrokerConfig) -> GroupSettings {
    GroupSettings {
        initial_rebalance_delay: millis(config.group_initial_rebalance_delay_ms),
        min_session_timeout: millis(config.group_min_session_timeout_ms),
        max_session_timeout: millis(config.group_max_session_timeout_ms),
        consumer: ConsumerGroupSettings {
            session_timeout: millis(config.group_consumer_session_timeout_ms),
            heartbeat_interval: millis(config.group_consumer_heartbeat_interval_ms),
            // Validated at start-up: every name is a known assignor.
            assignors: config.consumer_assignors().into_iter().filter_map(Assignor::from_name).collect(),
        },
        offsets_retention: millis(config.offsets_retention_minutes.saturating_mul(60_000)),
        offsets_retention_check_interval: millis(config.offsets_retention_check_interval_ms),
    }
}

/// A cluster id in Kafka's form: 16 random bytes, URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22).map(|i| char::from(ALPHABET[((bits >> (i * 6)) & 0x3f) as usize])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_parsing() {
        assert_eq!(split_host_port("127.0.0.1:9092"), Some(("127.0.0.1".into(), 9092)));
        assert_eq!(split_host_port("[::1]:19092"), Some(("::1".into(), 19092)));
        assert_eq!(split_host_port("localhost"), None);
        assert_eq!(split_host_port(":9092"), None);
        assert_eq!(split_host_port("host:99999"), None);
    }

    #[test]
    fn cluster_id_is_kafka_shaped() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
