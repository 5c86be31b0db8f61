//! DescribeConfigs: topic configs (override or inherited) and the broker's settings, with sources and synonyms.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::config::topic_config_def;
use skein_core::{BrokerError, error_code};

use crate::broker::Broker;
use crate::handlers::message;
use crate::topics::TopicRegistry;

/// Kafka's `ConfigResource.Type` codes.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
pub(crate) const RESOURCE_BROKER_LOGGER: i8 = 8;

/// Kafka's `DescribeConfigsResponse.ConfigSource` codes.
pub(crate) const SOURCE_TOPIC_CONFIG: i8 = 1;
pub(crate) const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
pub(crate) const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// One config entry before encoding.
struct Entry {
    name: &'static str,
    value: String,
    source: i8,
    read_only: bool,
    config_type: i8,
    synonyms: Vec<(&'static str, String, i8)>,
}

pub(crate) fn handle(broker: &Arc<Broker>, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let name = resource.resource_name.as_str();
            let entries = match resource.resource_type {
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
                                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name))
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
    let config = &broker.config;
    Ok(TopicRegistry::describe_configs(&topic, config)
        .into_iter()
        .filter_map(|(config_name, value, is_override)| {
            let def = topic_config_def(config_name)?;
            let mut synonyms = Vec::new();
            if is_override {
                synonyms.push((config_name, value.clone(), SOURCE_TOPIC_CONFIG));
            }
            let mut inherited_source = SOURCE_DEFAULT_CONFIG;
            if let Some(broker_key) = def.broker_key {
                if config.explicitly_set.contains(broker_key) {
                    inherited_source = SOURCE_STATIC_BROKER_CONFIG;
                    synonyms.push((broker_key, config.topic_default(def), SOURCE_STATIC_BROKER_CONFIG));
                } else {
                    synonyms.push((broker_key, config.topic_default(def), SOURCE_DEFAULT_CONFIG));
                }
            }
            Some(Entry {
                name: config_name,
                value,
                source: if is_override { SOURCE_TOPIC_CONFIG } else { inherited_source },
                read_only: false,
                config_type: def.config_type,
                synonyms,
            })
        })
        .collect())
}

fn broker_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, BrokerError> {
    // An empty name asks for cluster-wide dynamic defaults, of which Skein has none yet.
    if name.is_empty() {
        return Ok(Vec::new());
    }
    if name.parse::<i32>().ok() != Some(broker.config.node_id) {
        return Err(BrokerError::InvalidRequest(format!(
            "broker {name} is not this broker ({})",
            broker.config.node_id
        )));
    }
    Ok(broker
        .config
        .describe()
        .into_iter()
        .map(|(config_name, value, set)| {
            let source = if set { SOURCE_STATIC_BROKER_CONFIG } else { SOURCE_DEFAULT_CONFIG };
            Entry {
                name: config_name,
                value: value.clone(),
                source,
                read_only: true,
                config_type: broker_config_type(&value),
                synonyms: vec![(config_name, value, source)],
            }
        })
        .collect())
}

/// Broker settings are ints, longs, booleans or strings; the value tells which.
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
                    .with_name(StrBytes::from_static_str(name))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_source(source)
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(entry.name))
        .with_value(Some(StrBytes::from_string(entry.value)))
        .with_read_only(entry.read_only)
        .with_config_source(entry.source)
        .with_synonyms(synonyms)
        .with_config_type(if version >= 3 { entry.config_type } else { 0 })
}
