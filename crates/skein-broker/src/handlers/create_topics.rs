//! CreateTopics: validated by Kafka's rules, persisted, with the resulting configs in the response (v5+).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, MAX_PARTITIONS_PER_REQUEST, error_code};

use crate::broker::Broker;
use crate::handlers::{message, topic_name};
use crate::topics::{NewTopic, TopicRegistry};

pub(crate) async fn handle(broker: &Arc<Broker>, request: CreateTopicsRequest, _version: i16) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> =
        request.topics.iter().filter(|t| !seen.insert(t.name.0.to_string())).map(|t| t.name.0.to_string()).collect();
    let mut results = Vec::with_capacity(request.topics.len());
    let mut partitions_in_request = 0i64;
    for creatable in &request.topics {
        let name = creatable.name.0.as_str();
        partitions_in_request += requested_partitions(broker, creatable);
        let outcome = if duplicates.contains(name) {
            Err(BrokerError::InvalidRequest(format!("topic '{name}' appears more than once in the request")))
        } else if partitions_in_request > MAX_PARTITIONS_PER_REQUEST {
            Err(BrokerError::PolicyViolation("Excessively large number of partitions per request.".into()))
        } else {
            create_one(broker, creatable, request.validate_only).await
        };
        results.push(match outcome {
            Ok(result) => result,
            Err(err) => CreatableTopicResult::default()
                .with_name(topic_name(name))
                .with_error_code(error_code(&err))
                .with_error_message(message(err.to_string()))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// The partitions a topic of the request asks for, as counted against [`MAX_PARTITIONS_PER_REQUEST`].
fn requested_partitions(broker: &Broker, creatable: &CreatableTopic) -> i64 {
    if !creatable.assignments.is_empty() {
        i64::try_from(creatable.assignments.len()).unwrap_or(i64::MAX)
    } else if creatable.num_partitions == -1 {
        i64::from(broker.config.num_partitions)
    } else {
        i64::from(creatable.num_partitions).max(0)
    }
}

async fn create_one(
    broker: &Arc<Broker>,
    creatable: &CreatableTopic,
    validate_only: bool,
) -> Result<CreatableTopicResult, BrokerError> {
    let name = creatable.name.0.to_string();
    let num_partitions = if !creatable.assignments.is_empty() {
        if creatable.num_partitions != -1 || creatable.replication_factor != -1 {
            return Err(BrokerError::InvalidRequest(
                "both a replica assignment and partitions/replication factor were given".into(),
            ));
        }
        for (expected, assignment) in creatable.assignments.iter().enumerate() {
            let on_this_node = assignment.broker_ids.len() == 1 && assignment.broker_ids[0].0 == broker.config.node_id;
            if usize::try_from(assignment.partition_index).ok() != Some(expected) || !on_this_node {
                return Err(BrokerError::InvalidReplicaAssignment(format!(
                    "partition {} must be assigned to broker {} only, partitions numbered from 0",
                    assignment.partition_index, broker.config.node_id
                )));
            }
        }
        i32::try_from(creatable.assignments.len()).unwrap_or(i32::MAX)
    } else {
        match creatable.num_partitions {
            -1 => broker.config.num_partitions,
            n => n,
        }
    };
    let replication_factor = match creatable.replication_factor {
        -1 => broker.config.default_replication_factor,
        n => n,
    };
    if replication_factor <= 0 {
        return Err(BrokerError::InvalidReplicationFactor("replication factor must be larger than 0".into()));
    }
    if replication_factor > 1 {
        return Err(BrokerError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {replication_factor} time(s): The target replication factor of \
             {replication_factor} cannot be reached because only 1 broker(s) are registered."
        )));
    }
    let mut configs = BTreeMap::new();
    for config in &creatable.configs {
        if let Some(value) = &config.value {
            configs.insert(config.name.to_string(), value.to_string());
        }
    }
    let new_topic = NewTopic { name: name.clone(), num_partitions, configs };
    broker.topics.validate_new_topic(&new_topic)?;
    let (topic_id, overrides) = if validate_only {
        (uuid::Uuid::nil(), new_topic.configs.clone())
    } else {
        let topic = broker.topics.create(new_topic).await?;
        tracing::info!(topic = %name, partitions = num_partitions, "created topic");
        (topic.id, topic.configs.clone())
    };
    let probe =
        crate::topics::Topic { name: name.as_str().into(), id: topic_id, partitions: Vec::new(), configs: overrides };
    let configs = TopicRegistry::describe_configs(&probe, &broker.current_config())
        .into_iter()
        .map(|(config_name, value, source)| {
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(config_name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_config_source(source.code())
        })
        .collect();
    Ok(CreatableTopicResult::default()
        .with_name(topic_name(&name))
        .with_topic_id(topic_id)
        .with_num_partitions(num_partitions)
        .with_replication_factor(replication_factor)
        .with_configs(Some(configs)))
}
