//! DescribeConfigs: topic configs (override or inherited) and the broker's settings (static or dynamic), with
//! sources and synonyms.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeSet, HashSet};

use skein_core::config::{BrokerConfig, ConfigSource, DYNAMIC_BROKER_CONFIGS, topic_config_def};
use skein_core::kafka_broker_configs::{KAFKA_BROKER_CONFIGS, kafka_broker_config};
use skein_core::{BrokerError, error_code};

use skein_cluster::ConfigResourceType;
use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::{Authorization, RequestContext};
use crate::broker::Broker;
use crate::broker_configs::CurrentConfig;
use crate::client_metrics_configs;
use crate::group_configs::{self, GROUP_CONFIGS};
use crate::handlers::message;
use crate::topics::TopicRegistry;

/// Kafka's `ConfigResource.Type` codes.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
pub(crate) const RESOURCE_BROKER_LOGGER: i8 = 8;
pub(crate) const RESOURCE_CLIENT_METRICS: i8 = 16;
pub(crate) const RESOURCE_GROUP: i8 = 32;

/// The metadata records' type of a GROUP or CLIENT_METRICS resource, which are only ever configs.
pub(crate) fn config_only_resource_type(resource_type: i8) -> Option<ConfigResourceType> {
    match resource_type {
        RESOURCE_GROUP => Some(ConfigResourceType::Group),
        RESOURCE_CLIENT_METRICS => Some(ConfigResourceType::ClientMetrics),
        _ => None,
    }
}

/// One config entry before encoding. `value` is `None` for a setting reported as sensitive.
struct Entry {
    name: String,
    value: Option<String>,
    source: ConfigSource,
    read_only: bool,
    is_sensitive: bool,
    config_type: i8,
    synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// The ACL refusal of `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config resource, if any: a topic's
/// are checked on the topic, a group's on the group, a broker's and client metrics' on the cluster, as Kafka
/// checks them.
pub(crate) fn refusal(
    authorization: &Authorization<'_>,
    operation: AclOperation,
    resource_type: i8,
    name: &str,
) -> Option<BrokerError> {
    match resource_type {
        RESOURCE_TOPIC if !authorization.allows(operation, ResourceType::Topic, name) => {
            Some(BrokerError::TopicAuthorizationFailed)
        }
        RESOURCE_GROUP if !authorization.allows(operation, ResourceType::Group, name) => {
            Some(BrokerError::GroupAuthorizationFailed)
        }
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER | RESOURCE_CLIENT_METRICS
            if !authorization.allows_on_cluster(operation) =>
        {
            Some(BrokerError::ClusterAuthorizationFailed)
        }
        _ => None,
    }
}

pub(crate) fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let authorization = broker.authorization(ctx);
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let name = resource.resource_name.as_str();
            let refused = refusal(&authorization, AclOperation::DescribeConfigs, resource.resource_type, name);
            let entries = match resource.resource_type {
                _ if refused.is_some() => Err(refused.unwrap_or(BrokerError::ClusterAuthorizationFailed)),
                RESOURCE_TOPIC => topic_entries(broker, name),
                RESOURCE_BROKER => broker_entries(broker, name),
                RESOURCE_BROKER_LOGGER => Ok(Vec::new()),
                RESOURCE_GROUP => group_entries(broker, name),
                RESOURCE_CLIENT_METRICS => client_metrics_entries(broker, name),
                other => Err(BrokerError::InvalidResourceType(format!("resource type {other}"))),
            };
            let base = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match entries {
                Ok(entries) => {
                    let configs = entries
                        .into_iter()
                        .filter(|e| {
                            resource
                                .configuration_keys
                                .as_ref()
                                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name.as_str()))
                        })
                        .map(|e| encode_entry(e, request.include_synonyms, version))
                        .collect();
                    base.with_configs(configs)
                }
                Err(err) => base.with_error_code(error_code(&err)).with_error_message(message(err.to_string())),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn topic_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, BrokerError> {
    let topic = broker.topics.get(name).ok_or(BrokerError::UnknownTopicOrPartition)?;
    let current = broker.current_config();
    Ok(TopicRegistry::describe_configs(&topic, &current)
        .into_iter()
        .filter_map(|(config_name, value, source)| {
            let def = topic_config_def(config_name)?;
            let mut synonyms = Vec::new();
            if source == ConfigSource::DynamicTopic {
                synonyms.push((config_name.to_string(), Some(value.clone()), source));
            }
            // The inherited levels, highest first, under the broker setting's name (Kafka's synonyms).
            let synonym_name = def.broker_key.unwrap_or(config_name);
            for (level_value, level_source) in current.topic_default_levels(def) {
                synonyms.push((synonym_name.to_string(), Some(level_value), level_source));
            }
            Some(Entry {
                name: config_name.to_string(),
                value: Some(value),
                source,
                read_only: false,
                is_sensitive: false,
                config_type: def.config_type,
                synonyms,
            })
        })
        .collect())
}

/// A group's configs: every group config, its override or the broker setting it inherits (as Kafka, whether or
/// not the group exists).
fn group_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, BrokerError> {
    if name.is_empty() {
        return Err(BrokerError::InvalidRequestMessage("Group name must not be empty".into()));
    }
    let image = broker.image();
    let overrides = image.configs(ConfigResourceType::Group, name);
    let current = broker.current_config();
    Ok(GROUP_CONFIGS
        .iter()
        .map(|def| {
            let (value, source, synonyms) = group_configs::describe(def, overrides, &current);
            Entry {
                name: def.name.to_string(),
                value: Some(value),
                source,
                read_only: false,
                is_sensitive: false,
                config_type: def.kind.config_type(),
                synonyms: synonyms.into_iter().map(|(name, value, source)| (name, Some(value), source)).collect(),
            }
        })
        .collect())
}

/// A client metrics subscription: its three settings, as Kafka lists them whether or not the subscription exists
/// (one it does not set has Kafka's default and no synonym).
fn client_metrics_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, BrokerError> {
    if name.is_empty() {
        return Err(BrokerError::InvalidRequestMessage("Client metrics subscription name must not be empty".into()));
    }
    let image = broker.image();
    let configs = image.configs(ConfigResourceType::ClientMetrics, name);
    Ok(client_metrics_configs::CLIENT_METRICS_CONFIGS
        .iter()
        .map(|(config_name, default)| {
            let set = configs.and_then(|configs| configs.get(*config_name));
            let (value, source, synonyms) = match set {
                Some(value) => {
                    let source = ConfigSource::ClientMetrics;
                    (value.clone(), source, vec![(config_name.to_string(), Some(value.clone()), source)])
                }
                None => (default.to_string(), ConfigSource::Default, Vec::new()),
            };
            Entry {
                name: config_name.to_string(),
                value: Some(value),
                source,
                read_only: false,
                is_sensitive: false,
                config_type: client_metrics_configs::config_type(config_name),
                synonyms,
            }
        })
        .collect())
}

/// The broker resource: named by this broker's node id, every setting with its source; named "", the
/// cluster-wide dynamic defaults only (as Kafka lists them).
fn broker_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, BrokerError> {
    let current = broker.current_config();
    if name.is_empty() {
        return Ok(current
            .dynamic
            .cluster_default
            .iter()
            .map(|(config_name, value)| cluster_default_entry(config_name, value))
            .collect());
    }
    if name.parse::<i32>().ok() != Some(broker.config.node_id) {
        return Err(BrokerError::InvalidRequest(format!(
            "broker {name} is not this broker ({})",
            broker.config.node_id
        )));
    }
    let described = broker.config.describe();
    // Skein's own defaults: a setting set in the file also lists its default as a synonym, as Kafka's do.
    let defaults = BrokerConfig::default().describe();
    let mut entries: Vec<Entry> = described
        .iter()
        .map(|(config_name, static_value, explicitly_set)| {
            let kafka = kafka_broker_config(config_name);
            // A setting left unset whose Kafka default is null (advertised.listeners, broker.rack) is null here too.
            let reported =
                |value: String| (!(value.is_empty() && kafka.is_some_and(|k| k.default.is_none()))).then_some(value);
            let mut levels = current.broker_setting(config_name, Some((static_value.clone(), *explicitly_set)));
            if *explicitly_set && let Some((_, default, _)) = defaults.iter().find(|(name, _, _)| name == config_name) {
                levels.push((default.clone(), ConfigSource::Default));
            }
            let (value, source) = levels.first().cloned().unwrap_or((static_value.clone(), ConfigSource::Default));
            Entry {
                name: config_name.to_string(),
                config_type: kafka.map_or_else(|| broker_config_type(static_value), |k| k.config_type),
                value: reported(value),
                source,
                read_only: !DYNAMIC_BROKER_CONFIGS.contains(config_name),
                is_sensitive: false,
                synonyms: levels
                    .into_iter()
                    .filter_map(|(v, s)| reported(v).map(|v| (config_name.to_string(), Some(v), s)))
                    .collect(),
            }
        })
        .collect();
    // Listener security (TLS, SASL): static, and secrets reported without their values, as Kafka reports them.
    for setting in broker.config.describe_security() {
        let source = if setting.explicitly_set { ConfigSource::StaticBroker } else { ConfigSource::Default };
        let value = if setting.sensitive { None } else { setting.value.clone() };
        let kafka_type = kafka_broker_config(setting.name).map(|k| k.config_type);
        entries.push(Entry {
            name: setting.name.to_string(),
            config_type: if setting.sensitive {
                PASSWORD_TYPE
            } else {
                kafka_type.unwrap_or_else(|| value.as_deref().map_or(2, broker_config_type))
            },
            value: value.clone(),
            source,
            read_only: true,
            is_sensitive: setting.sensitive,
            // Kafka lists no synonym for a setting without a value.
            synonyms: if setting.value.is_some() { vec![(setting.name.to_string(), value, source)] } else { vec![] },
        });
    }
    // Every other setting Kafka reports (Skein does not use them: read-only, with Kafka's default), then settings
    // neither knows, stored because an AlterConfigs named them.
    let present: HashSet<String> = entries.iter().map(|entry| entry.name.clone()).collect();
    let mut others: BTreeSet<&str> = KAFKA_BROKER_CONFIGS.iter().map(|config| config.name).collect();
    others.extend(current.dynamic.this_broker.keys().map(String::as_str));
    others.extend(current.dynamic.cluster_default.keys().map(String::as_str));
    for config_name in others.into_iter().filter(|config_name| !present.contains(*config_name)) {
        entries.push(other_entry(&current, config_name));
    }
    Ok(entries)
}

/// A cluster-wide dynamic default, as the broker resource named "" reports it: a setting neither Skein nor Kafka
/// knows may be a secret, and is reported as sensitive, without its value, as Kafka does.
fn cluster_default_entry(config_name: &str, value: &str) -> Entry {
    let kafka = kafka_broker_config(config_name);
    let is_sensitive = kafka.map_or(!DYNAMIC_BROKER_CONFIGS.contains(&config_name), |k| k.sensitive);
    let value = (!is_sensitive).then(|| value.to_string());
    let source = ConfigSource::DynamicDefaultBroker;
    Entry {
        name: config_name.to_string(),
        config_type: kafka.map_or_else(|| value.as_deref().map_or(2, broker_config_type), |k| k.config_type),
        value: value.clone(),
        source,
        read_only: false,
        is_sensitive,
        synonyms: vec![(config_name.to_string(), value, source)],
    }
}

/// A setting Skein does not use: Kafka's, reported read-only with Kafka's default, or one neither knows, which
/// may be a secret and is reported as sensitive, without its value, as Kafka reports it.
fn other_entry(current: &CurrentConfig<'_>, config_name: &str) -> Entry {
    let kafka = kafka_broker_config(config_name);
    let is_sensitive = kafka.is_none_or(|k| k.sensitive);
    let mut levels: Vec<(Option<String>, ConfigSource)> =
        current.broker_setting(config_name, None).into_iter().map(|(v, s)| (Some(v), s)).collect();
    if let Some(default) = kafka.and_then(|k| k.default) {
        levels.push((Some(default.to_string()), ConfigSource::Default));
    }
    let levels: Vec<(Option<String>, ConfigSource)> =
        levels.into_iter().map(|(v, s)| (if is_sensitive { None } else { v }, s)).collect();
    let (value, source) = levels.first().cloned().unwrap_or((None, ConfigSource::Default));
    Entry {
        name: config_name.to_string(),
        config_type: kafka.map_or_else(|| value.as_deref().map_or(2, broker_config_type), |k| k.config_type),
        value,
        source,
        read_only: kafka.is_some(),
        is_sensitive,
        synonyms: levels.into_iter().map(|(v, s)| (config_name.to_string(), v, s)).collect(),
    }
}

/// Broker settings are ints, longs, booleans or strings; the value tells which.
/// Kafka's `ConfigType.PASSWORD`.
const PASSWORD_TYPE: i8 = 9;

fn broker_config_type(value: &str) -> i8 {
    if value == "true" || value == "false" {
        1
    } else if value.parse::<i32>().is_ok() {
        3
    } else if value.parse::<i64>().is_ok() {
        5
    } else {
        2
    }
}

fn encode_entry(entry: Entry, include_synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        entry
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(name))
                    .with_value(value.map(StrBytes::from_string))
                    .with_source(source.code())
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(entry.name))
        .with_value(entry.value.map(StrBytes::from_string))
        .with_read_only(entry.read_only)
        .with_is_sensitive(entry.is_sensitive)
        .with_config_source(entry.source.code())
        .with_synonyms(synonyms)
        .with_config_type(if version >= 3 { entry.config_type } else { 0 })
        // Skein has no documentation to give: null, as Kafka's when not asked for it.
        .with_documentation(None)
}
