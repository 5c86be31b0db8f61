//! AlterConfigs (replace a resource's overrides) and IncrementalAlterConfigs (set, delete, append, subtract one
//! config at a time). Topic configs are validated and persisted before they apply. Broker settings are static:
//! they come from the YAML file and flags, so altering them is refused with INVALID_REQUEST, as Kafka refuses a
//! setting it cannot change at run time.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use skein_core::config::topic_config_def;
use skein_core::{BrokerError, error_code};

use crate::broker::Broker;
use crate::handlers::describe_configs::{RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC};
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
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => BrokerError::InvalidRequest(
            "broker settings are static in Skein: set them in the YAML file or on the command line".into(),
        ),
        other => BrokerError::InvalidResourceType(format!("resource type {other}")),
    }
}

pub(crate) async fn handle_alter(
    broker: &Arc<Broker>,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let result = if resource.resource_type == RESOURCE_TOPIC {
            let configs: BTreeMap<String, String> = resource
                .configs
                .iter()
                .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                .collect();
            broker.topics.set_configs(resource.resource_name.as_str(), configs, request.validate_only).await
        } else {
            Err(refuse_other_resources(resource.resource_type))
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
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let result = if resource.resource_type == RESOURCE_TOPIC {
            let name = resource.resource_name.as_str();
            match broker.topics.get(name) {
                None => Err(BrokerError::UnknownTopicOrPartition),
                Some(topic) => {
                    let mut configs = topic.configs.clone();
                    let applied = resource.configs.iter().try_for_each(|change| {
                        apply(
                            &mut configs,
                            change.name.as_str(),
                            change.config_operation,
                            change.value.as_ref().map(|v| v.as_str()),
                            &topic.config_value(&broker.config, change.name.as_str()),
                        )
                    });
                    match applied {
                        Ok(()) => broker.topics.set_configs(name, configs, request.validate_only).await,
                        Err(err) => Err(err),
                    }
                }
            }
        } else {
            Err(refuse_other_resources(resource.resource_type))
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

/// Applies one incremental change to a topic's overrides. APPEND and SUBTRACT work on list configs (comma
/// separated, e.g. `cleanup.policy`), starting from the effective value.
fn apply(
    configs: &mut BTreeMap<String, String>,
    name: &str,
    operation: i8,
    value: Option<&str>,
    effective: &Option<String>,
) -> Result<(), BrokerError> {
    let def = topic_config_def(name)
        .ok_or_else(|| BrokerError::InvalidConfig(format!("unknown topic config name: {name}")))?;
    let list =
        |text: &str| text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>();
    match operation {
        SET => {
            let value = value.ok_or_else(|| BrokerError::InvalidRequest(format!("SET {name} needs a value")))?;
            configs.insert(name.to_string(), value.to_string());
        }
        DELETE => {
            configs.remove(name);
        }
        APPEND | SUBTRACT if def.config_type == LIST_CONFIG_TYPE => {
            let mut items = list(effective.as_deref().unwrap_or(""));
            for item in list(value.unwrap_or("")) {
                if operation == APPEND && !items.contains(&item) {
                    items.push(item);
                } else if operation == SUBTRACT {
                    items.retain(|existing| *existing != item);
                }
            }
            configs.insert(name.to_string(), items.join(","));
        }
        APPEND | SUBTRACT => {
            return Err(BrokerError::InvalidConfig(format!(
                "{name} is not a list config: APPEND/SUBTRACT do not apply"
            )));
        }
        other => return Err(BrokerError::InvalidRequest(format!("unknown config operation {other}"))),
    }
    Ok(())
}
