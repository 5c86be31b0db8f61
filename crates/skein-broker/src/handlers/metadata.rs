//! Metadata: the live brokers and each topic's partitions (leader, leader epoch, replicas, ISR, offline
//! replicas) from the metadata image, with the endpoints of the listener the request came in on.
//! Auto-creates topics when allowed.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;
use skein_cluster::{MetadataImage, TopicImage};
use skein_core::{BrokerError, error_code};
use uuid::Uuid;

use skein_cluster::acl::{AclOperation, CLUSTER_NAME, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::endpoint;
use crate::handlers::topic_name;
use crate::topics::NewTopic;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let listener: &str = &ctx.listener;
    let authorization = broker.authorization(ctx);
    let mut topics = Vec::new();
    // v0 asks for all topics with an empty list; v1+ with a null list.
    let requested = match request.topics {
        Some(list) if !(version == 0 && list.is_empty()) => Some(list),
        _ => None,
    };
    match requested {
        None => {
            // As Kafka: a listing leaves out the topics the principal may not describe, without a word.
            let image = broker.image();
            topics.extend(
                image
                    .topics()
                    .filter(|t| authorization.permits(AclOperation::Describe, ResourceType::Topic, &t.name))
                    .map(|t| describe_topic(&image, t)),
            );
        }
        Some(list) => {
            // Before v4 clients cannot opt out of auto-creation.
            let may_create =
                broker.config.auto_create_topics_enable && (version < 4 || request.allow_auto_topic_creation);
            for wanted in list {
                topics.push(match wanted.name {
                    // Refused before its existence is looked at, so that is not disclosed.
                    Some(name)
                        if !authorization.allows(AclOperation::Describe, ResourceType::Topic, name.0.as_str()) =>
                    {
                        error_topic(Some(name.0.as_str()), Uuid::nil(), &BrokerError::TopicAuthorizationFailed)
                    }
                    Some(name) => {
                        let name = name.0.as_str();
                        // Auto-creation needs CREATE on the cluster or on the topic (asked only for a missing topic).
                        let creation = || match may_create {
                            false => Creation::NotAsked,
                            true if authorization.permits(
                                AclOperation::Create,
                                ResourceType::Cluster,
                                CLUSTER_NAME,
                            ) || authorization.allows(AclOperation::Create, ResourceType::Topic, name) =>
                            {
                                Creation::Allowed
                            }
                            true => Creation::Refused,
                        };
                        lookup_or_create(broker, name, creation).await
                    }
                    None => {
                        let image = broker.image();
                        match image.topic_by_id(wanted.topic_id) {
                            Some(topic)
                                if !authorization.allows(AclOperation::Describe, ResourceType::Topic, &topic.name) =>
                            {
                                error_topic(None, wanted.topic_id, &BrokerError::TopicAuthorizationFailed)
                            }
                            Some(topic) => describe_topic(&image, topic),
                            None => error_topic(None, wanted.topic_id, &BrokerError::UnknownTopicId),
                        }
                    }
                });
            }
        }
    }
    // Brokers last: an auto-creation above may have waited for a newer image.
    let image = broker.image();
    let brokers = image
        .live_brokers()
        .filter_map(|b| {
            let endpoint = endpoint(b, listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.node_id))
                    .with_host(StrBytes::from_string(endpoint.host.clone()))
                    .with_port(i32::from(endpoint.port))
                    .with_rack(b.rack.clone().map(StrBytes::from_string)),
            )
        })
        .collect();
    // v8+: the operations the principal may do on each topic and (v8-v10) the cluster, when asked.
    if version >= 8 && request.include_topic_authorized_operations {
        for topic in topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = &topic.name {
                topic.topic_authorized_operations = authorization.operations(ResourceType::Topic, name.0.as_str());
            }
        }
    }
    let cluster_operations = if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        authorization.operations(ResourceType::Cluster, CLUSTER_NAME)
    } else {
        i32::MIN
    };
    MetadataResponse::default()
        .with_cluster_authorized_operations(cluster_operations)
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(broker.cluster.controller_id_for_clients(&image)))
        .with_topics(topics)
}

/// Whether a missing topic of the request is auto-created.
enum Creation {
    /// Auto-creation is off, or the request opted out.
    NotAsked,
    Allowed,
    /// The principal may not create it: TOPIC_AUTHORIZATION_FAILED, as Kafka answers.
    Refused,
}

async fn lookup_or_create(
    broker: &Arc<Broker>,
    name: &str,
    creation: impl FnOnce() -> Creation,
) -> MetadataResponseTopic {
    {
        let image = broker.image();
        if let Some(topic) = image.topic(name) {
            return describe_topic(&image, topic);
        }
    }
    if let Err(reason) = skein_core::types::validate_topic_name(name) {
        return error_topic(Some(name), Uuid::nil(), &BrokerError::InvalidTopic(reason));
    }
    match creation() {
        Creation::NotAsked => return error_topic(Some(name), Uuid::nil(), &BrokerError::UnknownTopicOrPartition),
        Creation::Refused => return error_topic(Some(name), Uuid::nil(), &BrokerError::TopicAuthorizationFailed),
        Creation::Allowed => {}
    }
    let new_topic =
        NewTopic { name: name.to_string(), num_partitions: broker.config.num_partitions, configs: Default::default() };
    let replication_factor = i32::from(broker.config.default_replication_factor);
    match broker.create_topic(new_topic, replication_factor, Vec::new()).await {
        Ok(topic) => tracing::info!(topic = name, partitions = topic.partitions.len(), "auto-created topic"),
        // Another request created it meanwhile: answered from the image below.
        Err(BrokerError::TopicAlreadyExists(_)) => {}
        Err(err) => return error_topic(Some(name), Uuid::nil(), &err),
    }
    let image = broker.image();
    match image.topic(name) {
        Some(topic) => describe_topic(&image, topic),
        // Kafka answers a topic being created with LEADER_NOT_AVAILABLE; the client asks again.
        None => error_topic(Some(name), Uuid::nil(), &BrokerError::LeaderNotAvailable),
    }
}

fn describe_topic(image: &MetadataImage, topic: &TopicImage) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, p)| {
            let offline: Vec<BrokerId> =
                p.replicas.iter().filter(|&&r| !image.is_live(r)).map(|&r| BrokerId(r)).collect();
            let error = if p.has_leader() { 0 } else { error_code(&BrokerError::LeaderNotAvailable) };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|&r| BrokerId(r)).collect())
                .with_isr_nodes(p.isr.iter().map(|&r| BrokerId(r)).collect())
                .with_offline_replicas(offline)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.topic_id)
        .with_is_internal(skein_core::types::is_internal_topic(&topic.name))
        .with_partitions(partitions)
}

fn error_topic(name: Option<&str>, id: Uuid, error: &BrokerError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(topic_name))
        .with_topic_id(id)
        .with_error_code(error_code(error))
}
