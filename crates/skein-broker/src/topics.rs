//! The topic registry: names, ids, partitions and config overrides, persisted in `meta`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use skein_cluster::{ConfigResourceType, MetadataImage, MetadataOffset};
use skein_core::config::{ConfigSource, TOPIC_CONFIGS, topic_config_def};
use skein_core::types::validate_topic_name;
use skein_core::{BrokerError, TopicPartition};
use skein_log::PartitionLog;
use skein_storage::keys::{self, PartitionId};
use skein_storage::{ColumnFamily, Durability, Engine, StorageError, StoreBatch, TopicRecord, run_blocking};
use uuid::Uuid;

use crate::broker_configs::CurrentConfig;

/// A topic and its partitions' logs.
#[derive(Debug)]
pub struct Topic {
    pub name: Arc<str>,
    pub id: Uuid,
    pub partitions: Vec<Arc<PartitionLog>>,
    /// Config overrides by Kafka name; everything else inherits from the broker.
    pub configs: BTreeMap<String, String>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<PartitionLog>> {
        usize::try_from(index).ok().and_then(|i| self.partitions.get(i))
    }

    /// The effective value of a topic config: the override, or the broker's default for it.
    pub fn config_value(&self, current: &CurrentConfig, name: &str) -> Option<String> {
        let def = topic_config_def(name)?;
        Some(self.configs.get(name).cloned().unwrap_or_else(|| current.topic_default(def).0))
    }

    /// `min.insync.replicas`: how many replicas an acks=all produce needs in sync.
    pub fn min_insync_replicas(&self, current: &CurrentConfig) -> usize {
        self.config_value(current, "min.insync.replicas").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1)
    }

    /// `max.message.bytes`: the largest batch the topic accepts.
    pub fn max_message_bytes(&self, current: &CurrentConfig) -> usize {
        self.config_value(current, "max.message.bytes")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(usize::try_from(current.config.message_max_bytes).unwrap_or(0))
    }

    /// Whether `cleanup.policy` includes `compact`: the log keeps the latest record of each key, so compaction
    /// works on it and every record produced to it needs a key.
    pub fn is_compacted(&self, current: &CurrentConfig) -> bool {
        self.config_value(current, "cleanup.policy")
            .is_some_and(|policy| policy.split(',').any(|p| p.trim() == "compact"))
    }

    /// The stored form of this topic.
    fn record(&self) -> TopicRecord {
        TopicRecord {
            name: self.name.to_string(),
            topic_id: *self.id.as_bytes(),
            partitions: self.partitions.iter().map(|p| p.partition_id).collect(),
            configs: self.configs.clone(),
        }
    }

    /// Whether `message.timestamp.type=LogAppendTime`.
    pub fn uses_log_append_time(&self, current: &CurrentConfig) -> bool {
        self.config_value(current, "message.timestamp.type").as_deref() == Some("LogAppendTime")
    }

    /// With CreateTime, how far before and after the broker's clock a record's timestamp may be
    /// (`message.timestamp.before.max.ms`, `message.timestamp.after.max.ms`); `None` with LogAppendTime, where the
    /// broker sets the timestamps itself.
    pub fn timestamp_bounds(&self, current: &CurrentConfig) -> Option<TimestampBounds> {
        if self.uses_log_append_time(current) {
            return None;
        }
        let millis = |name: &str| self.config_value(current, name).and_then(|v| v.trim().parse::<i64>().ok());
        Some(TimestampBounds {
            before_max_ms: millis("message.timestamp.before.max.ms").unwrap_or(i64::MAX),
            after_max_ms: millis("message.timestamp.after.max.ms").unwrap_or(i64::MAX),
        })
    }
}

/// The timestamps a CreateTime topic accepts, relative to the broker's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampBounds {
    pub before_max_ms: i64,
    pub after_max_ms: i64,
}

#[derive(Debug, Default)]
struct Maps {
    by_name: HashMap<Arc<str>, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
    next_partition_id: PartitionId,
}

/// All topics, by name and by id. Reads are lock-light; creation and deletion are serialised.
pub struct TopicRegistry {
    engine: Arc<dyn Engine>,
    maps: RwLock<Maps>,
    /// Serialises applying metadata images; holds the position of the last image applied.
    admin: tokio::sync::Mutex<Option<MetadataOffset>>,
}

impl std::fmt::Debug for TopicRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicRegistry").field("topics", &self.read().by_name.len()).finish()
    }
}

/// A validated topic creation.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub num_partitions: i32,
    pub configs: BTreeMap<String, String>,
}

impl TopicRegistry {
    /// Loads every topic and its partitions from `meta` (blocking).
    pub(crate) fn load(engine: Arc<dyn Engine>, _node_id: i32) -> Result<Self, StorageError> {
        let mut records = Vec::new();
        let mut decode_error = None;
        engine.scan(ColumnFamily::Meta, keys::META_TOPIC_PREFIX, keys::META_TOPIC_END, &mut |_, value| {
            match TopicRecord::decode(value) {
                Ok(record) => records.push(record),
                Err(err) => decode_error = Some(err),
            }
            decode_error.is_none()
        })?;
        if let Some(err) = decode_error {
            return Err(err);
        }
        let next_partition_id = match engine.get(ColumnFamily::Meta, keys::META_NEXT_PARTITION_ID)? {
            Some(value) => {
                let bytes: [u8; 4] = value.as_slice().try_into().map_err(|_| StorageError::CorruptValue {
                    key: "next_partition_id".into(),
                    reason: "not 4 bytes".into(),
                })?;
                u32::from_be_bytes(bytes)
            }
            None => 0,
        };
        let mut maps = Maps { next_partition_id, ..Maps::default() };
        for record in records {
            let name: Arc<str> = Arc::from(record.name.as_str());
            let mut partitions = Vec::with_capacity(record.partitions.len());
            for (index, partition_id) in record.partitions.iter().enumerate() {
                let index = i32::try_from(index).map_err(|_| StorageError::CorruptValue {
                    key: format!("topic/{name}"),
                    reason: "too many partitions".into(),
                })?;
                let tp = TopicPartition::new(Arc::clone(&name), index);
                partitions.push(PartitionLog::open(Arc::clone(&engine), tp, *partition_id)?);
            }
            let topic = Arc::new(Topic {
                name: Arc::clone(&name),
                id: Uuid::from_bytes(record.topic_id),
                partitions,
                configs: record.configs,
            });
            maps.by_id.insert(topic.id, Arc::clone(&topic));
            maps.by_name.insert(name, topic);
        }
        Ok(TopicRegistry { engine, maps: RwLock::new(maps), admin: tokio::sync::Mutex::new(None) })
    }

    fn read(&self) -> RwLockReadGuard<'_, Maps> {
        // Maps are only replaced whole under the write lock; a poisoned lock still holds consistent maps.
        self.maps.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().by_name.get(name).cloned()
    }

    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.read().by_id.get(id).cloned()
    }

    /// Every topic, sorted by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = self.read().by_name.values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Checks a creation against Kafka's rules without creating anything.
    pub fn validate_new_topic(&self, topic: &NewTopic) -> Result<(), BrokerError> {
        validate_topic_name(&topic.name).map_err(BrokerError::InvalidTopic)?;
        let maps = self.read();
        if maps.by_name.contains_key(topic.name.as_str()) {
            return Err(BrokerError::TopicAlreadyExists(topic.name.clone()));
        }
        // Kafka refuses names that differ only by '.' versus '_' (they collide in metric names).
        let normalized = topic.name.replace('.', "_");
        if let Some(existing) = maps.by_name.keys().find(|name| name.replace('.', "_") == normalized) {
            return Err(BrokerError::InvalidTopic(format!(
                "topic '{}' collides with existing topic '{existing}'",
                topic.name
            )));
        }
        if topic.num_partitions < 1 {
            return Err(BrokerError::InvalidPartitions(format!(
                "number of partitions must be larger than 0, got {}",
                topic.num_partitions
            )));
        }
        Self::validate_configs(&topic.configs)
    }

    /// Checks a new partition count against the topic's current one (Kafka never shrinks a topic).
    pub fn validate_partition_count(&self, name: &str, count: i32) -> Result<(), BrokerError> {
        let topic = self.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        let current = topic.partitions.len();
        if usize::try_from(count).unwrap_or(0) <= current {
            return Err(BrokerError::InvalidPartitions(format!(
                "topic currently has {current} partitions, which is higher than the requested {count}"
            )));
        }
        Ok(())
    }

    /// Checks topic config overrides: known names, valid values.
    pub fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), BrokerError> {
        for (key, value) in configs {
            let def = topic_config_def(key)
                .ok_or_else(|| BrokerError::InvalidConfig(format!("unknown topic config name: {key}")))?;
            (def.validate)(value)
                .map_err(|msg| BrokerError::InvalidConfig(format!("invalid value for {key}: {msg}")))?;
        }
        Ok(())
    }

    /// Brings local storage in line with the metadata image: creates the logs of new topics and partitions,
    /// deletes the data of removed topics (or of a name now used by another topic id), takes config overrides,
    /// and gives each partition this node replicates its role: leader (with the leader epoch, replicas and ISR)
    /// or follower; the data of a partition this node no longer replicates is deleted. Idempotent; serialised.
    pub async fn apply_image(&self, image: &MetadataImage, node_id: i32) -> Result<(), BrokerError> {
        let mut applied = self.admin.lock().await;
        // Images are applied by several tasks: never go back to an older one (it would delete a newer topic).
        if image.last_applied().is_some() && image.last_applied() <= *applied {
            return Ok(());
        }
        for local in self.all() {
            if image.topic(&local.name).map(|t| t.topic_id) != Some(local.id) {
                tracing::info!(topic = %local.name, topic_id = %local.id, "deleting a topic removed from the metadata");
                self.delete_local(&local).await?;
            }
        }
        for topic in image.topics() {
            let configs = image.configs(ConfigResourceType::Topic, &topic.name).cloned().unwrap_or_default();
            let count = topic.partitions.len();
            match self.get(&topic.name) {
                None => self.create_local(&topic.name, topic.topic_id, count, configs).await?,
                Some(local) => {
                    if local.partitions.len() < count {
                        self.grow_local(&local, count).await?;
                    }
                    if local.configs != configs {
                        self.set_configs_local(&topic.name, configs).await?;
                    }
                }
            }
            let Some(local) = self.get(&topic.name) else { continue };
            for (&index, partition) in &topic.partitions {
                let Some(log) = local.partition(index) else { continue };
                if partition.leader == node_id {
                    let (replicas, isr) = (partition.replicas.clone(), partition.isr.clone());
                    log.become_leader(node_id, partition.leader_epoch, replicas, isr, skein_core::wall_clock_ms())
                        .await?;
                } else if partition.replicas.contains(&node_id) {
                    log.become_follower(partition.leader_epoch).await?;
                } else {
                    // Not (or no longer, after a reassignment) a replica here: nothing of it is kept.
                    log.become_unassigned().await?;
                }
            }
        }
        *applied = image.last_applied();
        Ok(())
    }

    /// Creates a topic's local logs durably.
    async fn create_local(
        &self,
        name: &str,
        id: Uuid,
        count: usize,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerError> {
        let name: Arc<str> = Arc::from(name);
        let first_id = self.read().next_partition_id;
        let next_id = u32::try_from(count)
            .ok()
            .and_then(|n| first_id.checked_add(n))
            .ok_or_else(|| BrokerError::InvalidPartitions("partition id space exhausted".into()))?;
        let mut batch = StoreBatch::default();
        let mut partitions = Vec::with_capacity(count);
        for (index, partition_id) in (first_id..next_id).enumerate() {
            let tp = TopicPartition::new(Arc::clone(&name), i32::try_from(index).unwrap_or(i32::MAX));
            partitions.push(PartitionLog::create(Arc::clone(&self.engine), tp, partition_id, 0, &mut batch));
        }
        let created = Topic { name: Arc::clone(&name), id, partitions, configs };
        batch.put(ColumnFamily::Meta, keys::topic_key(&name), created.record().encode()?);
        batch.put(ColumnFamily::Meta, keys::META_NEXT_PARTITION_ID.to_vec(), next_id.to_be_bytes().to_vec());
        let engine = Arc::clone(&self.engine);
        run_blocking(move || engine.write(batch, Durability::PowerLoss)).await?;
        tracing::info!(topic = %name, topic_id = %id, partitions = count, "topic created");
        let mut maps = self.write();
        maps.next_partition_id = next_id;
        self.replace(&mut maps, created);
        Ok(())
    }

    /// Deletes a topic and all its data durably.
    async fn delete_local(&self, topic: &Topic) -> Result<(), BrokerError> {
        let mut batch = StoreBatch::default();
        for partition in &topic.partitions {
            partition.delete_into(&mut batch);
        }
        batch.delete(ColumnFamily::Meta, keys::topic_key(&topic.name));
        let engine = Arc::clone(&self.engine);
        run_blocking(move || engine.write(batch, Durability::PowerLoss)).await?;
        let mut maps = self.write();
        if maps.by_id.contains_key(&topic.id) {
            maps.by_id.remove(&topic.id);
            maps.by_name.remove(&*topic.name);
        }
        Ok(())
    }

    /// Adds local logs up to `count` partitions.
    async fn grow_local(&self, topic: &Topic, count: usize) -> Result<(), BrokerError> {
        let current = topic.partitions.len();
        let first_id = self.read().next_partition_id;
        let added = u32::try_from(count - current).map_err(|_| BrokerError::InvalidPartitions("too many".into()))?;
        let next_id = first_id
            .checked_add(added)
            .ok_or_else(|| BrokerError::InvalidPartitions("partition id space exhausted".into()))?;
        let mut batch = StoreBatch::default();
        let mut partitions = topic.partitions.clone();
        for (index, partition_id) in (current..count).zip(first_id..next_id) {
            let tp = TopicPartition::new(Arc::clone(&topic.name), i32::try_from(index).unwrap_or(i32::MAX));
            partitions.push(PartitionLog::create(Arc::clone(&self.engine), tp, partition_id, 0, &mut batch));
        }
        let grown = Topic { name: Arc::clone(&topic.name), id: topic.id, partitions, configs: topic.configs.clone() };
        batch.put(ColumnFamily::Meta, keys::topic_key(&topic.name), grown.record().encode()?);
        batch.put(ColumnFamily::Meta, keys::META_NEXT_PARTITION_ID.to_vec(), next_id.to_be_bytes().to_vec());
        let engine = Arc::clone(&self.engine);
        run_blocking(move || engine.write(batch, Durability::PowerLoss)).await?;
        let mut maps = self.write();
        maps.next_partition_id = next_id;
        self.replace(&mut maps, grown);
        Ok(())
    }

    /// Replaces a topic's config overrides durably.
    async fn set_configs_local(&self, name: &str, configs: BTreeMap<String, String>) -> Result<(), BrokerError> {
        let topic = self.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
        let changed =
            Topic { name: Arc::clone(&topic.name), id: topic.id, partitions: topic.partitions.clone(), configs };
        let mut batch = StoreBatch::default();
        batch.put(ColumnFamily::Meta, keys::topic_key(name), changed.record().encode()?);
        let engine = Arc::clone(&self.engine);
        run_blocking(move || engine.write(batch, Durability::PowerLoss)).await?;
        let mut maps = self.write();
        self.replace(&mut maps, changed);
        Ok(())
    }

    /// Swaps in a new version of a topic; requests holding the old one finish with it.
    fn replace(&self, maps: &mut Maps, topic: Topic) {
        let topic = Arc::new(topic);
        maps.by_id.insert(topic.id, Arc::clone(&topic));
        maps.by_name.insert(Arc::clone(&topic.name), topic);
    }

    /// The configs a topic reports, in [`TOPIC_CONFIGS`] order: (name, value, where the value comes from).
    pub fn describe_configs(topic: &Topic, current: &CurrentConfig) -> Vec<(&'static str, String, ConfigSource)> {
        TOPIC_CONFIGS
            .iter()
            .map(|def| match topic.configs.get(def.name) {
                Some(value) => (def.name, value.clone(), ConfigSource::DynamicTopic),
                None => {
                    let (value, source) = current.topic_default(def);
                    (def.name, value, source)
                }
            })
            .collect()
    }
}
