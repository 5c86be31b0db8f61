//! Loading the broker configuration: defaults, then the YAML file, then command-line flags.

use std::collections::BTreeMap;
use std::path::Path;

use skein_core::BrokerConfig;
use skein_core::security::parse_listener_override;

/// Settings given on the command line; each overrides the YAML file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub advertised_listener: Option<String>,
    pub data_dir: Option<String>,
    pub metrics_listen: Option<String>,
    pub node_id: Option<i32>,
    /// `--override key=value`: any setting by its YAML name (as kafka-server-start's `--override`).
    pub settings: Vec<String>,
}

/// Parses YAML text into a configuration; unknown keys and wrongly typed values are errors naming the key.
pub fn parse_yaml(text: &str) -> Result<BrokerConfig, String> {
    from_mapping(yaml_mapping(text)?)
}

fn yaml_mapping(text: &str) -> Result<serde_yaml_ng::Mapping, String> {
    if text.trim().is_empty() {
        return Ok(serde_yaml_ng::Mapping::new());
    }
    serde_yaml_ng::from_str(text).map_err(|err| err.to_string())
}

fn from_mapping(mut keys: serde_yaml_ng::Mapping) -> Result<BrokerConfig, String> {
    let explicitly_set = keys.keys().filter_map(|k| k.as_str().map(str::to_string)).collect();
    // Per-listener settings have the listener's name inside the key: taken out before the fixed keys are read.
    let per_listener: Vec<String> = keys
        .keys()
        .filter_map(|k| k.as_str())
        .filter(|k| k.starts_with("listener.name."))
        .map(str::to_string)
        .collect();
    let mut listener_overrides = BTreeMap::new();
    for key in per_listener {
        let (listener, setting) = parse_listener_override(&key)?;
        let value = match keys.remove(key.as_str()) {
            Some(serde_yaml_ng::Value::String(text)) => text,
            Some(serde_yaml_ng::Value::Number(number)) => number.to_string(),
            Some(serde_yaml_ng::Value::Bool(flag)) => flag.to_string(),
            _ => return Err(format!("{key}: expected a string")),
        };
        listener_overrides.insert(format!("{listener}.{setting}"), value);
    }
    // Through text, so an error names the key (a value's errors carry no path).
    let text = serde_yaml_ng::to_string(&serde_yaml_ng::Value::Mapping(keys)).map_err(|err| err.to_string())?;
    let mut config: BrokerConfig = serde_yaml_ng::from_str(&text).map_err(|err| err.to_string())?;
    config.explicitly_set = explicitly_set;
    config.listener_overrides = listener_overrides;
    Ok(config)
}

/// Adds `key=value` settings to a YAML mapping; the value is read as YAML (numbers, booleans, strings).
fn add_settings(keys: &mut serde_yaml_ng::Mapping, settings: &[String]) -> Result<(), String> {
    for setting in settings {
        let (key, value) =
            setting.split_once('=').ok_or_else(|| format!("--override '{setting}' is not of the form key=value"))?;
        let parsed: serde_yaml_ng::Value = match serde_yaml_ng::from_str(value) {
            Ok(serde_yaml_ng::Value::Null) | Err(_) => serde_yaml_ng::Value::String(value.to_string()),
            Ok(parsed @ (serde_yaml_ng::Value::Bool(_) | serde_yaml_ng::Value::Number(_))) => parsed,
            Ok(_) => serde_yaml_ng::Value::String(value.to_string()),
        };
        keys.insert(serde_yaml_ng::Value::String(key.trim().to_string()), parsed);
    }
    Ok(())
}

/// Builds the effective configuration and validates it, reporting every problem at once.
pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<BrokerConfig, String> {
    let (mut keys, source) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            let keys =
                yaml_mapping(&text).map_err(|err| format!("invalid configuration in {}: {err}", path.display()))?;
            (keys, path.display().to_string())
        }
        None => (serde_yaml_ng::Mapping::new(), "the command line".to_string()),
    };
    add_settings(&mut keys, &overrides.settings)?;
    let mut config = from_mapping(keys).map_err(|err| format!("invalid configuration in {source}: {err}"))?;
    let mut set = |key: &str| {
        config.explicitly_set.insert(key.to_string());
    };
    if overrides.listen.is_some() {
        set("listen");
    }
    if overrides.advertised_listener.is_some() {
        set("advertised.listener");
    }
    if overrides.data_dir.is_some() {
        set("data.dir");
    }
    if overrides.metrics_listen.is_some() {
        set("metrics.listen");
    }
    if overrides.node_id.is_some() {
        set("node.id");
    }
    if let Some(listen) = overrides.listen {
        config.listen = listen;
    }
    if let Some(advertised) = overrides.advertised_listener {
        config.advertised_listener = Some(advertised);
    }
    if let Some(dir) = overrides.data_dir {
        config.data_dir = dir;
    }
    if let Some(metrics) = overrides.metrics_listen {
        config.metrics_listen = metrics;
    }
    if let Some(node_id) = overrides.node_id {
        config.node_id = node_id;
    }
    config.validate().map_err(|problems| format!("invalid configuration:\n  {}", problems.join("\n  ")))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_uses_kafka_names_and_tracks_what_was_set() {
        let config = parse_yaml("num.partitions: 3\nmessage.max.bytes: 2000\nlog.flush: always\n").expect("parse");
        assert_eq!(config.num_partitions, 3);
        assert_eq!(config.message_max_bytes, 2000);
        assert_eq!(config.log_flush, skein_core::config::LogFlush::Always);
        assert!(config.explicitly_set.contains("num.partitions"));
        assert!(!config.explicitly_set.contains("log.retention.ms"));
    }

    #[test]
    fn partition_level_metrics_are_on_unless_turned_off() {
        assert!(parse_yaml("").expect("parse").metrics_partition_level);
        assert!(!parse_yaml("metrics.partition.level: false\n").expect("parse").metrics_partition_level);
        let err = parse_yaml("metrics.partition.level: sometimes\n").expect_err("not a boolean");
        assert!(err.contains("metrics.partition.level"), "{err}");
    }

    #[test]
    fn per_listener_ssl_settings_are_read() {
        let config =
            parse_yaml("ssl.keystore.location: /keys/a.pem\nlistener.name.external.ssl.client.auth: required\n")
                .expect("parse");
        assert_eq!(config.listener_setting("EXTERNAL", "ssl.client.auth").as_deref(), Some("required"));
        assert_eq!(config.listener_setting("SSL", "ssl.client.auth").as_deref(), Some("none"));
        assert_eq!(config.listener_setting("EXTERNAL", "ssl.keystore.location").as_deref(), Some("/keys/a.pem"));
        let err = parse_yaml("listener.name.external.ssl.key.store: x\n").expect_err("unknown key");
        assert!(err.contains("listener.name.external.ssl.key.store"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = parse_yaml("num.partitions: 3\nnum.partition: 4\n").expect_err("unknown key");
        assert!(err.contains("num.partition"), "{err}");
    }

    #[test]
    fn command_line_overrides_file_and_validation_reports_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("skein.yaml");
        std::fs::write(&path, "listen: 127.0.0.1:1\nnode.id: 5\n").expect("write");
        let config =
            load(Some(&path), Overrides { listen: Some("127.0.0.1:2".into()), ..Default::default() }).expect("load");
        assert_eq!((config.listen.as_str(), config.node_id), ("127.0.0.1:2", 5));

        let settings = vec!["controller.quorum.voters=5@127.0.0.1:9093".to_string(), "num.partitions=7".to_string()];
        let config = load(Some(&path), Overrides { settings, ..Default::default() }).expect("load");
        assert_eq!(config.controller_quorum_voters.as_deref(), Some("5@127.0.0.1:9093"));
        assert_eq!(config.num_partitions, 7);
        assert!(config.explicitly_set.contains("num.partitions"));

        std::fs::write(&path, "num.partitions: 0\nmax.connections: 0\n").expect("write");
        let err = load(Some(&path), Overrides::default()).expect_err("invalid");
        assert!(err.contains("num.partitions") && err.contains("max.connections"), "{err}");
    }
}
