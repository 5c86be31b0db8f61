//! Shared broker state.

use std::sync::Arc;

use skein_core::BrokerConfig;
use skein_core::config::LogFlush;
use skein_group::{Assignor, ConsumerGroupSettings, CoordinatorTask, GroupCoordinator, GroupSettings, OffsetStore};
use skein_storage::{ColumnFamily, Durability, Engine, StorageError, StoreBatch, keys};

use std::collections::BTreeMap;

use skein_cluster::{ConfigResource, ConfigResourceType, ControllerRequest, ControllerResponse, MetadataImage};
use skein_core::BrokerError;
use uuid::Uuid;

use crate::broker_configs::{self, CurrentConfig, DynamicConfigs, DynamicLevel};
use crate::cluster::{ClusterMember, controller_error};
use crate::group_log::GroupStateLog;
use crate::metrics::Metrics;
use crate::topics::{NewTopic, Topic, TopicRegistry};
use crate::txn_log::TransactionStateLog;
use crate::{client_metrics_configs, group_configs};
use skein_log::PartitionLog;
use skein_log::{CompactionSettings, IoBudget};
use skein_txn::{ProducerIdAllocator, TransactionCoordinator, TxnSettings};

/// How long an admin request waits for its change to arrive in this broker's metadata image.
const METADATA_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

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
    /// The replicated log of group state (`__consumer_offsets`), which the server's task loads and unloads as
    /// leadership moves.
    pub group_log: Arc<GroupStateLog>,
    /// The replicated log of transaction state (`__transaction_state`), loaded and unloaded the same way.
    pub txn_log: Arc<TransactionStateLog>,
    pub metrics: Arc<Metrics>,
    /// Client byte rates measured against their quotas.
    pub quotas: crate::quotas::ClientQuotaManager,
    pub cluster_id: String,
    /// This broker's membership: the metadata image, the controller, registration.
    pub cluster: Arc<ClusterMember>,
    /// How this broker connects to the others' inter-broker listener.
    pub peer_security: crate::peer::PeerSecurity,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("node_id", &self.config.node_id).field("cluster_id", &self.cluster_id).finish()
    }
}

impl Broker {
    /// Opens the broker's state from `engine` (blocking: run before serving), for a node that has joined the
    /// cluster: checks the storage format and that the storage belongs to this cluster, and loads every topic
    /// and partition and the known groups. The group coordinator's task is returned for the caller to run until
    /// shutdown.
    pub fn open(
        config: BrokerConfig,
        engine: Arc<dyn Engine>,
        metrics: Arc<Metrics>,
        cluster: Arc<ClusterMember>,
        producer_ids: Arc<ProducerIdAllocator>,
        peer_security: crate::peer::PeerSecurity,
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
        let cluster_id = cluster.cluster_id();
        match stored_cluster_id(engine.as_ref())? {
            Some(stored) if stored != cluster_id => {
                return Err(StorageError::CorruptValue {
                    key: "cluster_id".into(),
                    reason: format!(
                        "the partition data in {} belongs to cluster {stored}, but this node's metadata quorum is \
                         cluster {cluster_id}; refusing to start",
                        config.data_dir
                    ),
                });
            }
            Some(_) => {}
            None => {
                first_start.put(ColumnFamily::Meta, keys::META_CLUSTER_ID.to_vec(), cluster_id.clone().into_bytes())
            }
        }
        if !first_start.is_empty() {
            engine.write(first_start, Durability::PowerLoss)?;
        }
        let topics = TopicRegistry::load(Arc::clone(&engine), config.node_id)?;
        let dynamic_configs = DynamicConfigs::default();
        dynamic_configs.apply_image(&cluster.image(), config.node_id);
        let group_log = Arc::new(GroupStateLog::new(
            config.offsets_topic_num_partitions,
            Arc::clone(&engine),
            durability(&config),
            millis(config.offsets_commit_timeout_ms),
        ));
        let offsets = OffsetStore::new(Arc::clone(&engine), durability(&config), Arc::clone(&group_log) as _);
        let (groups, group_task) = GroupCoordinator::open(group_settings(&config), offsets.clone())?;
        let txn_settings = TxnSettings {
            max_timeout_ms: config.transaction_max_timeout_ms,
            abort_check_interval: millis(config.transaction_abort_timed_out_transaction_cleanup_interval_ms),
            id_expiration_ms: config.transactional_id_expiration_ms,
            expiration_check_interval: millis(config.transaction_remove_expired_transaction_cleanup_interval_ms),
        };
        let txn_log = Arc::new(TransactionStateLog::new(
            config.transaction_state_log_num_partitions,
            Arc::clone(&engine),
            durability(&config),
            millis(config.offsets_commit_timeout_ms),
        ));
        let transactions = TransactionCoordinator::open(
            Arc::clone(&engine),
            durability(&config),
            offsets.clone(),
            Arc::clone(&producer_ids),
            txn_settings,
            Arc::clone(&txn_log) as _,
        );
        let windows = |num: i32, seconds: i32| crate::quotas::QuotaWindows {
            windows: u32::try_from(num).unwrap_or(11),
            window: std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(1)),
        };
        let quotas = crate::quotas::ClientQuotaManager::new(
            windows(config.quota_window_num, config.quota_window_size_seconds),
            windows(config.controller_quota_window_num, config.controller_quota_window_size_seconds),
        );
        let broker = Broker {
            config,
            quotas,
            dynamic_configs,
            engine,
            topics,
            producer_ids,
            transactions,
            groups,
            offsets,
            group_log,
            txn_log,
            metrics,
            cluster_id,
            cluster,
            peer_security,
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
            if !topic.is_compacted(&current) {
                continue;
            }
            let value = |name: &str| topic.config_value(&current, name).unwrap_or_default();
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

    /// The metadata image every handler reads.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.cluster.image()
    }

    /// The log of partition `index` of `topic` if this broker leads it now; else NOT_LEADER_OR_FOLLOWER (another
    /// broker leads), LEADER_NOT_AVAILABLE (none does) or UNKNOWN_TOPIC_OR_PARTITION.
    pub fn leader_log(&self, topic: &str, index: i32) -> Result<Arc<PartitionLog>, BrokerError> {
        let image = self.image();
        let registered = image.topic(topic).ok_or(BrokerError::UnknownTopicOrPartition)?;
        self.cluster.check_leader(registered, index).map_err(|not_leader| not_leader.error())?;
        let log = self
            .topics
            .get(topic)
            .filter(|local| local.id == registered.topic_id)
            .and_then(|local| local.partition(index).cloned())
            .ok_or(BrokerError::UnknownTopicOrPartition)?;
        // The image names this broker a moment before the log takes the role (the image is applied next).
        if !log.is_leader() {
            return Err(BrokerError::NotLeaderOrFollower);
        }
        Ok(log)
    }

    /// [`Broker::leader_log`] for a topic named by id.
    pub fn leader_log_by_id(&self, topic_id: Uuid, index: i32) -> Result<Arc<PartitionLog>, BrokerError> {
        let name = self.image().topic_by_id(topic_id).map(|t| t.name.clone()).ok_or(BrokerError::UnknownTopicId)?;
        self.leader_log(&name, index)
    }

    /// Waits until this node's image satisfies `ready` (an admin change made through the controller has
    /// arrived here), then brings local storage in line with it, so the answer to the client holds on this
    /// broker at once.
    pub async fn sync_metadata(&self, ready: impl Fn(&MetadataImage) -> bool) -> Result<(), BrokerError> {
        let image = self
            .cluster
            .wait_for(METADATA_WAIT, ready)
            .await
            .ok_or_else(|| BrokerError::RequestTimedOut("the change has not reached this broker yet".into()))?;
        self.topics.apply_image(&image, self.config.node_id).await
    }

    /// Creates a topic through the controller; `assignments` (one replica list per partition) or placement
    /// by the controller with `replication_factor` replicas.
    pub async fn create_topic(
        &self,
        topic: NewTopic,
        replication_factor: i32,
        assignments: Vec<Vec<i32>>,
    ) -> Result<Arc<Topic>, BrokerError> {
        self.topics.validate_new_topic(&topic)?;
        let name = topic.name.clone();
        let request = ControllerRequest::CreateTopic {
            name: topic.name,
            partitions: topic.num_partitions,
            replication_factor,
            configs: topic.configs,
            assignments,
        };
        let topic_id = match self.cluster.controller().submit(request).await.map_err(controller_error)? {
            ControllerResponse::TopicCreated { topic_id, .. } => topic_id,
            other => return Err(BrokerError::Storage(format!("unexpected controller answer {other:?}"))),
        };
        self.sync_metadata(|image| image.topic_by_id(topic_id).is_some()).await?;
        self.topics.get(&name).filter(|t| t.id == topic_id).ok_or(BrokerError::UnknownTopicOrPartition)
    }

    /// Deletes a topic through the controller; answers its id.
    pub async fn delete_topic(&self, name: &str) -> Result<Uuid, BrokerError> {
        let topic_id = self.image().topic(name).map(|t| t.topic_id).ok_or(BrokerError::UnknownTopicOrPartition)?;
        self.cluster.controller().delete_topic(name).await.map_err(controller_error)?;
        self.sync_metadata(|image| image.topic_by_id(topic_id).is_none()).await?;
        Ok(topic_id)
    }

    /// Grows a topic to `count` partitions through the controller (`assignments`: replica lists of the new
    /// partitions, or empty for placement by the controller).
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Vec<Vec<i32>>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        self.topics.validate_partition_count(name, count)?;
        if validate_only {
            return Ok(());
        }
        let request = ControllerRequest::CreatePartitions { name: name.to_string(), count, assignments };
        self.cluster.controller().submit(request).await.map_err(controller_error)?;
        let wanted = usize::try_from(count).unwrap_or(0);
        self.sync_metadata(|image| image.topic(name).is_some_and(|t| t.partitions.len() >= wanted)).await
    }

    /// Replaces one level of the dynamic broker settings through the controller (checked first, as Kafka checks
    /// them); every broker takes them from its image.
    pub async fn replace_dynamic_configs(
        &self,
        level: DynamicLevel,
        settings: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        broker_configs::check(&self.config, &settings)?;
        if validate_only {
            return Ok(());
        }
        let name = broker_configs::level_name(level, self.config.node_id);
        let current = self.dynamic_configs.level(level);
        let changes = config_changes(&current, &settings);
        if changes.is_empty() {
            return Ok(());
        }
        let resource = ConfigResource { resource_type: ConfigResourceType::Broker, name: name.clone() };
        self.cluster.controller().alter_configs(resource, changes).await.map_err(controller_error)?;
        let image = self
            .cluster
            .wait_for(METADATA_WAIT, |image| {
                image.configs(ConfigResourceType::Broker, &name).map_or(settings.is_empty(), |c| *c == settings)
            })
            .await
            .ok_or_else(|| BrokerError::RequestTimedOut("the change has not reached this broker yet".into()))?;
        self.dynamic_configs.apply_image(&image, self.config.node_id);
        Ok(())
    }

    /// Replaces a topic's config overrides through the controller (validated first).
    pub async fn replace_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        let topic = self.topics.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        TopicRegistry::validate_configs(&configs)?;
        if validate_only {
            return Ok(());
        }
        let changes = config_changes(&topic.configs, &configs);
        if changes.is_empty() {
            return Ok(());
        }
        let resource = ConfigResource { resource_type: ConfigResourceType::Topic, name: name.to_string() };
        self.cluster.controller().alter_configs(resource, changes).await.map_err(controller_error)?;
        self.sync_metadata(|image| {
            let current = image.configs(ConfigResourceType::Topic, name);
            current.map_or(configs.is_empty(), |c| *c == configs) || image.topic(name).is_none()
        })
        .await
    }

    /// Replaces the configs of a group or of a client metrics subscription through the controller, checked first
    /// as Kafka checks them.
    pub async fn replace_resource_configs(
        &self,
        resource: ConfigResource,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        match resource.resource_type {
            ConfigResourceType::Group => group_configs::validate(&resource.name, &configs, &self.current_config())?,
            ConfigResourceType::ClientMetrics => client_metrics_configs::validate(&resource.name, &configs)?,
            other => return Err(BrokerError::InvalidResourceType(format!("{other:?}"))),
        }
        if validate_only {
            return Ok(());
        }
        let image = self.image();
        let changes =
            config_changes(image.configs(resource.resource_type, &resource.name).unwrap_or(&BTreeMap::new()), &configs);
        if changes.is_empty() {
            return Ok(());
        }
        let (resource_type, name) = (resource.resource_type, resource.name.clone());
        self.cluster.controller().alter_configs(resource, changes).await.map_err(controller_error)?;
        self.cluster
            .wait_for(METADATA_WAIT, |image| {
                image.configs(resource_type, &name).map_or(configs.is_empty(), |current| *current == configs)
            })
            .await
            .map(|_| ())
            .ok_or_else(|| BrokerError::RequestTimedOut("the change has not reached this broker yet".into()))
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

/// What turns `current` settings into `wanted` ones: keys to delete (`None`) and keys to set.
fn config_changes(
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>)> {
    let mut changes: Vec<(String, Option<String>)> =
        current.keys().filter(|key| !wanted.contains_key(*key)).map(|key| (key.clone(), None)).collect();
    changes.extend(
        wanted
            .iter()
            .filter(|(key, value)| current.get(*key) != Some(value))
            .map(|(key, value)| (key.clone(), Some(value.clone()))),
    );
    changes
}

/// The cluster id the partition data was written under, if any (blocking).
pub fn stored_cluster_id(engine: &dyn Engine) -> Result<Option<String>, StorageError> {
    Ok(engine.get(ColumnFamily::Meta, keys::META_CLUSTER_ID)?.map(|id| String::from_utf8_lossy(&id).into_owned()))
}
