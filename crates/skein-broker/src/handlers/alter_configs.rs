//! AlterConfigs (replace a resource's overrides) and IncrementalAlterConfigs (set, delete, append, subtract one
//! config at a time), for topics, groups, client metrics subscriptions, and the broker (its dynamic settings,
//! cluster-wide under the name "" or for this broker under its node id). Values are validated and persisted before they apply; a broker setting Skein
//! reads only at start-up is refused with INVALID_REQUEST, as Kafka refuses one it cannot change at run time.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use skein_core::config::{is_list_broker_config, topic_config_def};
use skein_core::{BrokerError, error_code};

use skein_cluster::ConfigResource;
use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::broker_configs::DynamicLevel;
use crate::handlers::describe_configs::{
    RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC, config_only_resource_type, refusal,
};
use crate::handlers::message;

/// IncrementalAlterConfigs operations.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;
/// DescribeConfigs' `config_type` of list configs.
const LIST_CONFIG_TYPE: i8 = 7;

/// One resource's outcome: (error code, error message).
fn outcome(result: Result<(), BrokerError>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(err) => (error_code(&err), message(err.to_string())),
    }
}

fn refuse_other_resources(resource_type: i8) -> BrokerError {
    match resource_type {
        RESOURCE_BROKER_LOGGER => BrokerError::InvalidRequest("Skein's log levels are set with RUST_LOG".into()),
        other => BrokerError::InvalidResourceType(format!("resource type {other}")),
    }
}

/// Which dynamic level a BROKER resource name means: "" for the cluster-wide default, or this broker's id.
fn broker_level(broker: &Broker, name: &str) -> Result<DynamicLevel, BrokerError> {
    if name.is_empty() {
        Ok(DynamicLevel::ClusterDefault)
    } else if name.parse::<i32>().ok() == Some(broker.config.node_id) {
        Ok(DynamicLevel::ThisBroker)
    } else {
        Err(BrokerError::InvalidRequest(format!("broker {name} is not this broker ({})", broker.config.node_id)))
    }
}

pub(crate) async fn handle_alter(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let authorization = broker.authorization(ctx);
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let configs: BTreeMap<String, String> = resource
            .configs
            .iter()
            .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
            .collect();
        let name = resource.resource_name.as_str();
        let refused = refusal(&authorization, AclOperation::AlterConfigs, resource.resource_type, name);
        let result = match (resource.resource_type, refused) {
            (_, Some(refused)) => Err(refused),
            (resource_type, None) => match resource_type {
                RESOURCE_TOPIC => broker.replace_topic_configs(name, configs, request.validate_only).await,
                RESOURCE_BROKER => match broker_level(broker, name) {
                    Ok(level) => broker.replace_dynamic_configs(level, configs, request.validate_only).await,
                    Err(err) => Err(err),
                },
                other => match config_only_resource_type(other) {
                    Some(resource_type) => {
                        let resource = ConfigResource { resource_type, name: name.to_string() };
                        broker.replace_resource_configs(resource, configs, request.validate_only).await
                    }
                    None => Err(refuse_other_resources(other)),
                },
            },
        };
        let (code, text) = outcome(result);
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(text)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

pub(crate) async fn handle_incremental(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let authorization = broker.authorization(ctx);
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let current = broker.current_config();
        let refused = refusal(&authorization, AclOperation::AlterConfigs, resource.resource_type, name);
        let result = match resource.resource_type {
            _ if refused.is_some() => Err(refused.unwrap_or(BrokerError::ClusterAuthorizationFailed)),
            RESOURCE_TOPIC => match broker.topics.get(name) {
                None => Err(BrokerError::UnknownTopicOrPartition),
                Some(topic) => {
                    let mut configs = topic.configs.clone();
                    let applied = resource.configs.iter().try_for_each(|change| {
                        let name = change.name.as_str();
                        let def = topic_config_def(name)
                            .ok_or_else(|| BrokerError::InvalidConfig(format!("unknown topic config name: {name}")))?;
                        let effective = topic.config_value(&current, name);
                        let value = change.value.as_ref().map(|v| v.as_str());
                        let is_list = def.config_type == LIST_CONFIG_TYPE;
                        apply(&mut configs, name, change.config_operation, value, effective.as_deref(), is_list)
                    });
                    match applied {
                        Ok(()) => broker.replace_topic_configs(name, configs, request.validate_only).await,
                        Err(err) => Err(err),
                    }
                }
            },
            RESOURCE_BROKER => match broker_level(broker, name) {
                Ok(level) => {
                    let mut settings = broker.dynamic_configs.level(level);
                    let described = broker.config.describe();
                    let applied = resource.configs.iter().try_for_each(|change| {
                        let name = change.name.as_str();
                        let static_value =
                            described.iter().find(|(known, _, _)| *known == name).map(|(_, v, set)| (v.clone(), *set));
                        let effective = settings
                            .get(name)
                            .cloned()
                            .or_else(|| current.broker_setting(name, static_value).into_iter().next().map(|(v, _)| v));
                        let value = change.value.as_ref().map(|v| v.as_str());
                        let is_list = is_list_broker_config(name);
                        apply(&mut settings, name, change.config_operation, value, effective.as_deref(), is_list)
                    });
                    match applied {
                        Ok(()) => broker.replace_dynamic_configs(level, settings, request.validate_only).await,
                        Err(err) => Err(err),
                    }
                }
                Err(err) => Err(err),
            },
            other => match config_only_resource_type(other) {
                Some(resource_type) => {
                    let mut configs = broker.image().configs(resource_type, name).cloned().unwrap_or_default();
                    let applied = resource.configs.iter().try_for_each(|change| {
                        let name = change.name.as_str();
                        let value = change.value.as_ref().map(|v| v.as_str());
                        // No group config is a list; Kafka refuses APPEND and SUBTRACT on a subscription's lists too.
                        let effective = configs.get(name).cloned();
                        apply(&mut configs, name, change.config_operation, value, effective.as_deref(), false)
                    });
                    match applied {
                        Ok(()) => {
                            let resource = ConfigResource { resource_type, name: name.to_string() };
                            broker.replace_resource_configs(resource, configs, request.validate_only).await
                        }
                        Err(err) => Err(err),
                    }
                }
                None => Err(refuse_other_resources(other)),
            },
        };
        let (code, text) = outcome(result);
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(text)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Applies one incremental change to a resource's settings. APPEND and SUBTRACT work on list configs (comma
/// separated, e.g. `cleanup.policy`), starting from the effective value.
fn apply(
    configs: &mut BTreeMap<String, String>,
    name: &str,
    operation: i8,
    value: Option<&str>,
    effective: Option<&str>,
    is_list: bool,
) -> Result<(), BrokerError> {
    let list =
        |text: &str| text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>();
    // Kafka's checks and messages, for every resource type.
    let value = match (operation, value) {
        (DELETE, _) => "",
        (_, Some(value)) => value,
        (_, None) => return Err(BrokerError::InvalidRequestMessage(format!("Null value not supported for : {name}"))),
    };
    match operation {
        SET => {
            configs.insert(name.to_string(), value.to_string());
        }
        DELETE => {
            configs.remove(name);
        }
        APPEND | SUBTRACT if is_list => {
            let mut items = list(effective.unwrap_or(""));
            for item in list(value) {
                if operation == APPEND && !items.contains(&item) {
                    items.push(item);
                } else if operation == SUBTRACT {
                    items.retain(|existing| *existing != item);
                }
            }
            configs.insert(name.to_string(), items.join(","));
        }
        APPEND | SUBTRACT => {
            let operation = if operation == APPEND { "APPEND" } else { "SUBTRACT" };
            return Err(BrokerError::InvalidConfigMessage(format!(
                "Can't {operation} to key {name} because its type is not LIST."
            )));
        }
        other => return Err(BrokerError::InvalidRequest(format!("unknown config operation {other}"))),
    }
    Ok(())
}
