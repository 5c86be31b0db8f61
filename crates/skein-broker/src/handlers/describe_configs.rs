//! DescribeConfigs: topic configs (override or inherited) and the broker's settings (static or dynamic), with
//! sources and synonyms.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::config::{ConfigSource, DYNAMIC_BROKER_CONFIGS, topic_config_def};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::{Authorization, RequestContext};
use crate::broker::Broker;
use crate::handlers::message;
use crate::topics::TopicRegistry;

/// Kafka's `ConfigResource.Type` codes.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
pub(crate) const RESOURCE_BROKER_LOGGER: i8 = 8;

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
/// are checked on the topic, a broker's on the cluster, as Kafka checks them.
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
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER if !authorization.allows_on_cluster(operation) => {
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

/// The broker resource: named by this broker's node id, every setting with its source; named "", the
/// cluster-wide dynamic defaults only (as Kafka lists them).
fn broker_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, BrokerError> {
    let current = broker.current_config();
    if name.is_empty() {
        return Ok(current
            .dynamic
            .cluster_default
            .iter()
            .map(|(config_name, value)| dynamic_entry(config_name, value, ConfigSource::DynamicDefaultBroker))
            .collect());
    }
    if name.parse::<i32>().ok() != Some(broker.config.node_id) {
        return Err(BrokerError::InvalidRequest(format!(
            "broker {name} is not this broker ({})",
            broker.config.node_id
        )));
    }
    let described = broker.config.describe();
    let mut entries: Vec<Entry> = described
        .iter()
        .map(|(config_name, static_value, explicitly_set)| {
            let levels = current.broker_setting(config_name, Some((static_value.clone(), *explicitly_set)));
            let (value, source) = levels.first().cloned().unwrap_or((static_value.clone(), ConfigSource::Default));
            Entry {
                name: config_name.to_string(),
                config_type: broker_config_type(static_value),
                value: Some(value),
                source,
                read_only: !DYNAMIC_BROKER_CONFIGS.contains(config_name),
                is_sensitive: false,
                synonyms: levels.into_iter().map(|(v, s)| (config_name.to_string(), Some(v), s)).collect(),
            }
        })
        .collect();
    // Listener security (TLS, SASL): static, and secrets reported without their values, as Kafka reports them.
    for setting in broker.config.describe_security() {
        let source = if setting.explicitly_set { ConfigSource::StaticBroker } else { ConfigSource::Default };
        let value = if setting.sensitive { None } else { setting.value.clone() };
        entries.push(Entry {
            name: setting.name.to_string(),
            config_type: if setting.sensitive { PASSWORD_TYPE } else { value.as_deref().map_or(2, broker_config_type) },
            value: value.clone(),
            source,
            read_only: true,
            is_sensitive: setting.sensitive,
            synonyms: vec![(setting.name.to_string(), value, source)],
        });
    }
    // Settings this broker does not know, stored because an AlterConfigs named them.
    let known = |config_name: &str| described.iter().any(|(known, _, _)| *known == config_name);
    for (config_name, value) in &current.dynamic.this_broker {
        if !known(config_name) {
            entries.push(dynamic_entry(config_name, value, ConfigSource::DynamicBroker));
        }
    }
    for (config_name, value) in &current.dynamic.cluster_default {
        if !known(config_name) && !current.dynamic.this_broker.contains_key(config_name) {
            entries.push(dynamic_entry(config_name, value, ConfigSource::DynamicDefaultBroker));
        }
    }
    Ok(entries)
}

/// A dynamic setting as the broker resource reports it. As Kafka does, a setting the broker does not know may be
/// a secret: it is reported as sensitive, without its value.
fn dynamic_entry(config_name: &str, value: &str, source: ConfigSource) -> Entry {
    let known = DYNAMIC_BROKER_CONFIGS.contains(&config_name);
    let value = known.then(|| value.to_string());
    Entry {
        name: config_name.to_string(),
        value: value.clone(),
        source,
        read_only: false,
        is_sensitive: !known,
        config_type: value.as_deref().map_or(2, broker_config_type),
        synonyms: vec![(config_name.to_string(), value, source)],
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
}
