//! The broker's settings as they stand: the static ones (YAML file, command line) overlaid with the dynamic ones
//! set through AlterConfigs / IncrementalAlterConfigs on the BROKER resource. Dynamic settings are stored in `meta`
//! and survive restarts; only [`DYNAMIC_BROKER_CONFIGS`] affect the running broker (each is read at every use).
//! As in Kafka, a setting this broker does not know is stored and reported (as sensitive, without its value).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use skein_core::config::{ConfigSource, DYNAMIC_BROKER_CONFIGS, TopicConfigDef, validate_dynamic_broker_config};
use skein_core::{BrokerConfig, BrokerError};
use skein_storage::run_blocking;
use skein_storage::{ColumnFamily, Durability, DynamicBrokerConfigsRecord, Engine, StorageError, StoreBatch, keys};

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
    engine: Arc<dyn Engine>,
    current: RwLock<Arc<DynamicBrokerConfigsRecord>>,
}

impl std::fmt::Debug for DynamicConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicConfigs").field("current", &self.snapshot()).finish()
    }
}

impl DynamicConfigs {
    /// Loads the stored dynamic settings (blocking: run before serving).
    pub fn load(engine: Arc<dyn Engine>) -> Result<Self, StorageError> {
        let record = match engine.get(ColumnFamily::Meta, keys::META_DYNAMIC_BROKER_CONFIGS)? {
            Some(value) => DynamicBrokerConfigsRecord::decode(&value)?,
            None => DynamicBrokerConfigsRecord::default(),
        };
        Ok(DynamicConfigs { engine, current: RwLock::new(Arc::new(record)) })
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

    /// Replaces one level's settings after checking them (Kafka's errors: INVALID_REQUEST for a setting that cannot
    /// change at run time or a bad value). Stored before it applies; `validate_only` checks without changing.
    pub async fn replace(
        &self,
        config: &BrokerConfig,
        level: DynamicLevel,
        settings: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), BrokerError> {
        check(config, &settings)?;
        if validate_only {
            return Ok(());
        }
        let mut record = (*self.snapshot()).clone();
        match level {
            DynamicLevel::ClusterDefault => record.cluster_default = settings,
            DynamicLevel::ThisBroker => record.this_broker = settings,
        }
        let value = record.encode()?;
        let mut batch = StoreBatch::default();
        batch.put(ColumnFamily::Meta, keys::META_DYNAMIC_BROKER_CONFIGS.to_vec(), value);
        let engine = Arc::clone(&self.engine);
        run_blocking(move || engine.write(batch, Durability::PowerLoss)).await?;
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(record),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(record),
        }
        Ok(())
    }
}

/// Kafka's checks of dynamic broker settings: a setting this broker reads only at start-up cannot change; a
/// dynamic one must have a valid value; an unknown one is accepted.
fn check(config: &BrokerConfig, settings: &BTreeMap<String, String>) -> Result<(), BrokerError> {
    let known: Vec<&str> = config.describe().into_iter().map(|(name, _, _)| name).collect();
    let static_only: Vec<&str> = settings
        .keys()
        .map(String::as_str)
        .filter(|name| known.contains(name) && !DYNAMIC_BROKER_CONFIGS.contains(name))
        .collect();
    if !static_only.is_empty() {
        return Err(BrokerError::InvalidRequest(format!(
            "Cannot update these configs dynamically: [{}]",
            static_only.join(", ")
        )));
    }
    for (name, value) in settings {
        if DYNAMIC_BROKER_CONFIGS.contains(&name.as_str()) {
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

    /// `log.cleaner.io.max.bytes.per.second`: the cleaner's I/O budget.
    pub fn cleaner_io_max_bytes_per_second(&self) -> f64 {
        let name = "log.cleaner.io.max.bytes.per.second";
        self.dynamic
            .this_broker
            .get(name)
            .or_else(|| self.dynamic.cluster_default.get(name))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(self.config.log_cleaner_io_max_bytes_per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_core::config::topic_config_def;
    use skein_storage::MemoryEngine;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[tokio::test]
    async fn dynamic_settings_override_static_ones_and_survive_a_reload() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
        let mut config = BrokerConfig { log_retention_ms: 1000, ..BrokerConfig::default() };
        config.explicitly_set.insert("log.retention.ms".into());
        let dynamic = DynamicConfigs::load(Arc::clone(&engine)).expect("load");
        let retention = topic_config_def("retention.ms").expect("known");
        let current = || CurrentConfig { config: &config, dynamic: dynamic.snapshot() };
        assert_eq!(current().topic_default(retention), ("1000".to_string(), ConfigSource::StaticBroker));

        dynamic
            .replace(&config, DynamicLevel::ClusterDefault, settings(&[("log.retention.ms", "2000")]), false)
            .await
            .expect("default");
        assert_eq!(current().topic_default(retention), ("2000".to_string(), ConfigSource::DynamicDefaultBroker));
        dynamic
            .replace(&config, DynamicLevel::ThisBroker, settings(&[("log.retention.ms", "3000")]), false)
            .await
            .expect("broker");
        assert_eq!(
            current().topic_default_levels(retention),
            vec![
                ("3000".to_string(), ConfigSource::DynamicBroker),
                ("2000".to_string(), ConfigSource::DynamicDefaultBroker),
                ("1000".to_string(), ConfigSource::StaticBroker),
            ]
        );

        let reloaded = DynamicConfigs::load(engine).expect("reload");
        assert_eq!(reloaded.level(DynamicLevel::ThisBroker), settings(&[("log.retention.ms", "3000")]));
        assert_eq!(reloaded.level(DynamicLevel::ClusterDefault), settings(&[("log.retention.ms", "2000")]));
    }

    #[tokio::test]
    async fn static_settings_and_bad_values_are_refused_and_change_nothing() {
        let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::default());
        let config = BrokerConfig::default();
        let dynamic = DynamicConfigs::load(engine).expect("load");
        let refused = dynamic.replace(&config, DynamicLevel::ThisBroker, settings(&[("node.id", "4")]), false).await;
        assert!(
            matches!(&refused, Err(BrokerError::InvalidRequest(m)) if m.contains("Cannot update these configs dynamically: [node.id]")),
            "{refused:?}"
        );
        let bad =
            dynamic.replace(&config, DynamicLevel::ThisBroker, settings(&[("log.retention.ms", "abc")]), false).await;
        assert!(matches!(&bad, Err(BrokerError::InvalidRequest(m)) if m.contains("log.retention.ms")), "{bad:?}");
        let budget = settings(&[("log.cleaner.io.max.bytes.per.second", "0")]);
        assert!(dynamic.replace(&config, DynamicLevel::ThisBroker, budget, false).await.is_err());
        assert!(dynamic.level(DynamicLevel::ThisBroker).is_empty());

        let unknown = settings(&[("no.such.config", "1")]);
        dynamic.replace(&config, DynamicLevel::ThisBroker, unknown.clone(), true).await.expect("validate only");
        assert!(dynamic.level(DynamicLevel::ThisBroker).is_empty(), "validate_only changes nothing");
        dynamic.replace(&config, DynamicLevel::ThisBroker, unknown.clone(), false).await.expect("unknown accepted");
        assert_eq!(dynamic.level(DynamicLevel::ThisBroker), unknown);
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
