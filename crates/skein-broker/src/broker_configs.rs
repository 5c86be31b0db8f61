//! The broker's settings as they stand: the static ones (YAML file, command line) overlaid with the dynamic ones
//! set through AlterConfigs / IncrementalAlterConfigs on the BROKER resource. Dynamic settings live in the metadata
//! log (the cluster default under the name "", one broker's under its node id), so they apply cluster-wide and
//! survive restarts; only [`DYNAMIC_BROKER_CONFIGS`] affect the running broker (each is read at every use). Before
//! the metadata quorum they were stored in `meta`: [`DynamicConfigs::stored`] reads them for the upgrade.
//! As in Kafka, a setting this broker does not know is stored and reported (as sensitive, without its value).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use skein_cluster::{ConfigResourceType, MetadataImage, MetadataOffset};
use skein_core::config::{
    ConfigSource, DYNAMIC_BROKER_CONFIGS, TopicConfigDef, listener_connection_creation_rate_key,
    validate_dynamic_broker_config,
};
use skein_core::kafka_broker_configs::kafka_broker_config;
use skein_core::{BrokerConfig, BrokerError};
use skein_storage::{ColumnFamily, DynamicBrokerConfigsRecord, Engine, StorageError, keys};

/// Which dynamic level an AlterConfigs request on the BROKER resource changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicLevel {
    /// The resource named "": the default for every broker of the cluster.
    ClusterDefault,
    /// The resource named by this broker's node id.
    ThisBroker,
}

/// The dynamic settings, swapped whole on every change so readers take a consistent snapshot without locking.
pub struct DynamicConfigs {
    current: RwLock<Arc<DynamicBrokerConfigsRecord>>,
    /// The image the settings come from: an older one is never applied over a newer one.
    applied: std::sync::Mutex<Option<MetadataOffset>>,
}

impl std::fmt::Debug for DynamicConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicConfigs").field("current", &self.snapshot()).finish()
    }
}

impl Default for DynamicConfigs {
    fn default() -> Self {
        DynamicConfigs {
            current: RwLock::new(Arc::new(DynamicBrokerConfigsRecord::default())),
            applied: std::sync::Mutex::new(None),
        }
    }
}

impl DynamicConfigs {
    /// The settings a data directory from before the metadata quorum stored (blocking).
    pub fn stored(engine: &dyn Engine) -> Result<DynamicBrokerConfigsRecord, StorageError> {
        match engine.get(ColumnFamily::Meta, keys::META_DYNAMIC_BROKER_CONFIGS)? {
            Some(value) => DynamicBrokerConfigsRecord::decode(&value),
            None => Ok(DynamicBrokerConfigsRecord::default()),
        }
    }

    pub fn snapshot(&self) -> Arc<DynamicBrokerConfigsRecord> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// One level's settings, by name.
    pub fn level(&self, level: DynamicLevel) -> BTreeMap<String, String> {
        let snapshot = self.snapshot();
        match level {
            DynamicLevel::ClusterDefault => snapshot.cluster_default.clone(),
            DynamicLevel::ThisBroker => snapshot.this_broker.clone(),
        }
    }

    /// Takes the settings of the metadata image: the cluster default and this broker's.
    pub fn apply_image(&self, image: &MetadataImage, node_id: i32) {
        let mut applied = self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if image.last_applied().is_some() && image.last_applied() <= *applied {
            return;
        }
        *applied = image.last_applied();
        let read = |name: &str| image.configs(ConfigResourceType::Broker, name).cloned().unwrap_or_default();
        let record = DynamicBrokerConfigsRecord { cluster_default: read(""), this_broker: read(&node_id.to_string()) };
        if *self.snapshot() == record {
            return;
        }
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(record),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(record),
        }
    }
}

/// The resource name of a level in the metadata log.
pub fn level_name(level: DynamicLevel, node_id: i32) -> String {
    match level {
        DynamicLevel::ClusterDefault => String::new(),
        DynamicLevel::ThisBroker => node_id.to_string(),
    }
}

/// Kafka's checks of dynamic broker settings: a setting this broker (or Kafka) reads only at start-up cannot
/// change; a dynamic one must have a valid value; one Skein does not use but Kafka can change (stored, without
/// effect) or one neither knows is accepted.
pub fn check(config: &BrokerConfig, settings: &BTreeMap<String, String>) -> Result<(), BrokerError> {
    let known: Vec<&str> = config.describe().into_iter().map(|(name, _, _)| name).collect();
    let static_only: Vec<&str> = settings
        .keys()
        .map(String::as_str)
        .filter(|name| {
            let read_at_start = known.contains(name) || kafka_broker_config(name).is_some_and(|k| !k.dynamic);
            read_at_start && !DYNAMIC_BROKER_CONFIGS.contains(name)
        })
        .collect();
    if !static_only.is_empty() {
        return Err(BrokerError::InvalidRequest(format!(
            "Cannot update these configs dynamically: [{}]",
            static_only.join(", ")
        )));
    }
    for (name, value) in settings {
        if DYNAMIC_BROKER_CONFIGS.contains(&name.as_str()) || listener_connection_creation_rate_key(name).is_some() {
            validate_dynamic_broker_config(name, value).map_err(|reason| {
                BrokerError::InvalidRequest(format!("Invalid value {value} for configuration {name}: {reason}"))
            })?;
        }
    }
    Ok(())
}

/// The settings in effect at one moment: the static config with a snapshot of the dynamic settings.
#[derive(Debug, Clone)]
pub struct CurrentConfig<'a> {
    pub config: &'a BrokerConfig,
    pub dynamic: Arc<DynamicBrokerConfigsRecord>,
}

impl CurrentConfig<'_> {
    /// The value of a broker setting and where it comes from, with every level that sets it (highest first).
    pub fn broker_setting(&self, name: &str, static_value: Option<(String, bool)>) -> Vec<(String, ConfigSource)> {
        let mut levels = Vec::new();
        if let Some(value) = self.dynamic.this_broker.get(name) {
            levels.push((value.clone(), ConfigSource::DynamicBroker));
        }
        if let Some(value) = self.dynamic.cluster_default.get(name) {
            levels.push((value.clone(), ConfigSource::DynamicDefaultBroker));
        }
        if let Some((value, explicitly_set)) = static_value {
            if explicitly_set {
                levels.push((value, ConfigSource::StaticBroker));
            } else {
                levels.push((value, ConfigSource::Default));
            }
        }
        levels
    }

    /// Every level any broker setting Skein or Kafka knows is set at, highest first, down to its default: Skein's
    /// own for a setting Skein has (one set in the file also lists Skein's default, as Kafka lists its default),
    /// Kafka's for one Skein does not use.
    pub fn broker_setting_levels(&self, name: &str) -> Vec<(String, ConfigSource)> {
        let described = self.config.describe();
        match described.iter().find(|(known, _, _)| *known == name) {
            Some((_, value, explicitly_set)) => {
                let mut levels = self.broker_setting(name, Some((value.clone(), *explicitly_set)));
                if *explicitly_set
                    && let Some((_, default, _)) =
                        BrokerConfig::default().describe().into_iter().find(|(known, _, _)| *known == name)
                {
                    levels.push((default, ConfigSource::Default));
                }
                levels
            }
            None => {
                let mut levels = self.broker_setting(name, None);
                if let Some(default) = kafka_broker_config(name).and_then(|config| config.default) {
                    levels.push((default.to_string(), ConfigSource::Default));
                }
                levels
            }
        }
    }

    /// The value a topic inherits for `def` when it has no override, and where it comes from.
    pub fn topic_default(&self, def: &TopicConfigDef) -> (String, ConfigSource) {
        self.topic_default_levels(def)
            .into_iter()
            .next()
            .unwrap_or_else(|| (self.config.topic_default(def), ConfigSource::Default))
    }

    /// Every level `def`'s inherited value is set at, highest first, with the broker setting's name.
    pub fn topic_default_levels(&self, def: &TopicConfigDef) -> Vec<(String, ConfigSource)> {
        match def.broker_key {
            Some(key) => {
                let static_value = (self.config.topic_default(def), self.config.explicitly_set.contains(key));
                self.broker_setting(key, Some(static_value))
            }
            None => vec![(def.default.to_string(), ConfigSource::Default)],
        }
    }

    /// A dynamic setting's value: this broker's, else the cluster default; `None` when neither is set (or valid).
    fn dynamic_value<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.dynamic
            .this_broker
            .get(name)
            .or_else(|| self.dynamic.cluster_default.get(name))
            .and_then(|value| value.trim().parse::<T>().ok())
    }

    /// `log.cleaner.io.max.bytes.per.second`: the cleaner's I/O budget.
    pub fn cleaner_io_max_bytes_per_second(&self) -> f64 {
        self.dynamic_value("log.cleaner.io.max.bytes.per.second")
            .unwrap_or(self.config.log_cleaner_io_max_bytes_per_second)
    }

    /// `max.connection.creation.rate`: new connections per second over the listeners but the inter-broker one.
    pub fn max_connection_creation_rate(&self) -> i32 {
        self.dynamic_value("max.connection.creation.rate").unwrap_or(self.config.max_connection_creation_rate)
    }

    /// `listener.name.<listener>.max.connection.creation.rate`: new connections per second on that listener (the
    /// inter-broker one too); dynamic, else from the configuration file; `i32::MAX` (Kafka's default): no limit.
    pub fn listener_connection_creation_rate(&self, listener: &str) -> i32 {
        let key = format!("listener.name.{}.max.connection.creation.rate", listener.to_ascii_lowercase());
        self.dynamic_value(&key)
            .or_else(|| {
                self.config
                    .listener_setting(listener, "max.connection.creation.rate")
                    .and_then(|value| value.trim().parse().ok())
            })
            .unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_core::config::topic_config_def;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn dynamic_settings_override_static_ones() {
        let mut config = BrokerConfig { log_retention_ms: 1000, ..BrokerConfig::default() };
        config.explicitly_set.insert("log.retention.ms".into());
        let retention = topic_config_def("retention.ms").expect("known");
        let mut record = DynamicBrokerConfigsRecord::default();
        let current =
            |record: &DynamicBrokerConfigsRecord| CurrentConfig { config: &config, dynamic: Arc::new(record.clone()) };
        assert_eq!(current(&record).topic_default(retention), ("1000".to_string(), ConfigSource::StaticBroker));
        record.cluster_default = settings(&[("log.retention.ms", "2000")]);
        assert_eq!(current(&record).topic_default(retention), ("2000".to_string(), ConfigSource::DynamicDefaultBroker));
        record.this_broker = settings(&[("log.retention.ms", "3000")]);
        assert_eq!(
            current(&record).topic_default_levels(retention),
            vec![
                ("3000".to_string(), ConfigSource::DynamicBroker),
                ("2000".to_string(), ConfigSource::DynamicDefaultBroker),
                ("1000".to_string(), ConfigSource::StaticBroker),
            ]
        );
    }

    #[test]
    fn static_settings_and_bad_values_are_refused() {
        let config = BrokerConfig::default();
        let refused = check(&config, &settings(&[("node.id", "4")]));
        assert!(
            matches!(&refused, Err(BrokerError::InvalidRequest(m)) if m.contains("Cannot update these configs dynamically: [node.id]")),
            "{refused:?}"
        );
        let bad = check(&config, &settings(&[("log.retention.ms", "abc")]));
        assert!(matches!(&bad, Err(BrokerError::InvalidRequest(m)) if m.contains("log.retention.ms")), "{bad:?}");
        assert!(check(&config, &settings(&[("log.cleaner.io.max.bytes.per.second", "0")])).is_err());
        check(&config, &settings(&[("no.such.config", "1")])).expect("unknown accepted");
    }

    #[test]
    fn the_cleaner_budget_comes_from_the_highest_level_that_sets_it() {
        let config = BrokerConfig { log_cleaner_io_max_bytes_per_second: 5e6, ..BrokerConfig::default() };
        let mut record = DynamicBrokerConfigsRecord::default();
        let current = |record: &DynamicBrokerConfigsRecord| {
            CurrentConfig { config: &config, dynamic: Arc::new(record.clone()) }.cleaner_io_max_bytes_per_second()
        };
        assert_eq!(current(&record), 5e6);
        record.cluster_default.insert("log.cleaner.io.max.bytes.per.second".into(), "2000000".into());
        assert_eq!(current(&record), 2e6);
        record.this_broker.insert("log.cleaner.io.max.bytes.per.second".into(), "1000000".into());
        assert_eq!(current(&record), 1e6);
    }
}
