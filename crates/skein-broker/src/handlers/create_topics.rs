//! CreateTopics: validated by Kafka's rules, persisted, with the resulting configs in the response (v5+).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, MAX_PARTITIONS_PER_REQUEST, error_code};

use skein_cluster::acl::{AclOperation, CLUSTER_NAME, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;
use crate::quotas::MutationQuota;
use crate::quotas::mutation_error_message;
use crate::topics::{NewTopic, TopicRegistry};

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let strict = version >= crate::quotas::STRICT_CREATE_TOPICS_VERSION;
    let mut quota = broker.quotas.mutation_quota(&broker.image(), ctx.quota_user(), &ctx.client_id, strict);
    // As Kafka: CREATE on the cluster, or on each topic.
    let authorization = broker.authorization(ctx);
    let cluster_create = authorization.permits(AclOperation::Create, ResourceType::Cluster, CLUSTER_NAME);
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
        } else if !cluster_create && !authorization.allows(AclOperation::Create, ResourceType::Topic, name) {
            Err(BrokerError::TopicAuthorizationFailed)
        } else if partitions_in_request > MAX_PARTITIONS_PER_REQUEST {
            Err(BrokerError::PolicyViolation("Excessively large number of partitions per request.".into()))
        } else {
            create_one(broker, creatable, request.validate_only, &mut quota).await
        };
        results.push(match outcome {
            Ok(result) => result,
            Err(err) => CreatableTopicResult::default()
                .with_name(topic_name(name))
                .with_error_code(error_code(&err))
                .with_error_message(mutation_error_message(&err))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(results).with_throttle_time_ms(quota.finish(broker, ctx))
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
    quota: &mut MutationQuota<'_>,
) -> Result<CreatableTopicResult, BrokerError> {
    let name = creatable.name.0.to_string();
    let mut assignments = Vec::with_capacity(creatable.assignments.len());
    let (num_partitions, replication_factor) = if !creatable.assignments.is_empty() {
        if creatable.num_partitions != -1 || creatable.replication_factor != -1 {
            return Err(BrokerError::InvalidRequest(
                "both a replica assignment and partitions/replication factor were given".into(),
            ));
        }
        for (expected, assignment) in creatable.assignments.iter().enumerate() {
            if usize::try_from(assignment.partition_index).ok() != Some(expected) {
                return Err(BrokerError::InvalidReplicaAssignment(format!(
                    "partition {} is out of order: partitions must be numbered from 0",
                    assignment.partition_index
                )));
            }
            assignments.push(assignment.broker_ids.iter().map(|id| id.0).collect::<Vec<i32>>());
        }
        let rf = assignments.first().map_or(0, Vec::len);
        (i32::try_from(assignments.len()).unwrap_or(i32::MAX), i32::try_from(rf).unwrap_or(i32::MAX))
    } else {
        let partitions = match creatable.num_partitions {
            -1 => broker.config.num_partitions,
            n => n,
        };
        let rf = match creatable.replication_factor {
            -1 => i32::from(broker.config.default_replication_factor),
            n => i32::from(n),
        };
        (partitions, rf)
    };
    if replication_factor <= 0 {
        return Err(BrokerError::InvalidReplicationFactor(
            "Replication factor must be larger than 0, or -1 to use the default value.".into(),
        ));
    }
    let mut configs = BTreeMap::new();
    for config in &creatable.configs {
        if let Some(value) = &config.value {
            configs.insert(config.name.to_string(), value.to_string());
        }
    }
    let new_topic = NewTopic { name: name.clone(), num_partitions, configs };
    broker.topics.validate_new_topic(&new_topic)?;
    // As Kafka: a valid topic's partitions count against the controller mutation quota, validate-only too.
    quota.record(i64::from(num_partitions))?;
    let (topic_id, overrides) = if validate_only {
        let registered = broker.image().brokers().len();
        if assignments.is_empty() && usize::try_from(replication_factor).unwrap_or(usize::MAX) > registered {
            return Err(crate::cluster::controller_error(skein_cluster::ControllerError::InvalidReplicationFactor {
                requested: replication_factor,
                available: registered,
            }));
        }
        (uuid::Uuid::nil(), new_topic.configs.clone())
    } else {
        let topic = broker.create_topic(new_topic, replication_factor, assignments).await?;
        tracing::info!(topic = %name, partitions = num_partitions, replication_factor, "created topic");
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
    // Kafka answers a created topic with a null error message (the codec's default is "").
    Ok(CreatableTopicResult::default()
        .with_name(topic_name(&name))
        .with_error_message(None)
        .with_topic_id(topic_id)
        .with_num_partitions(num_partitions)
        .with_replication_factor(i16::try_from(replication_factor).unwrap_or(i16::MAX))
        .with_configs(Some(configs)))
}
