//! Metadata: the single broker, and each topic's partitions led by it. Auto-creates topics when allowed.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, error_code};
use uuid::Uuid;

use crate::broker::Broker;
use crate::handlers::topic_name;
use crate::topics::{NewTopic, Topic};

pub(crate) async fn handle(broker: &Arc<Broker>, request: MetadataRequest, version: i16) -> MetadataResponse {
    let node_id = BrokerId(broker.config.node_id);
    let mut topics = Vec::new();
    // v0 asks for all topics with an empty list; v1+ with a null list.
    let requested = match request.topics {
        Some(list) if !(version == 0 && list.is_empty()) => Some(list),
        _ => None,
    };
    match requested {
        None => topics.extend(broker.topics.all().iter().map(|t| describe_topic(broker, t))),
        Some(list) => {
            // Before v4 clients cannot opt out of auto-creation.
            let may_create =
                broker.config.auto_create_topics_enable && (version < 4 || request.allow_auto_topic_creation);
            for wanted in list {
                topics.push(match wanted.name {
                    Some(name) => lookup_or_create(broker, name.0.as_str(), may_create).await,
                    None => match broker.topics.get_by_id(&wanted.topic_id) {
                        Some(topic) => describe_topic(broker, &topic),
                        None => error_topic(None, wanted.topic_id, &BrokerError::UnknownTopicId),
                    },
                });
            }
        }
    }
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(node_id)
                .with_host(StrBytes::from_string(broker.advertised_host.clone()))
                .with_port(broker.advertised_port),
        ])
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(node_id)
        .with_topics(topics)
}

async fn lookup_or_create(broker: &Arc<Broker>, name: &str, may_create: bool) -> MetadataResponseTopic {
    if let Some(topic) = broker.topics.get(name) {
        return describe_topic(broker, &topic);
    }
    if let Err(reason) = skein_core::types::validate_topic_name(name) {
        return error_topic(Some(name), Uuid::nil(), &BrokerError::InvalidTopic(reason));
    }
    if !may_create {
        return error_topic(Some(name), Uuid::nil(), &BrokerError::UnknownTopicOrPartition);
    }
    let new_topic =
        NewTopic { name: name.to_string(), num_partitions: broker.config.num_partitions, configs: Default::default() };
    match broker.topics.create(new_topic).await {
        Ok(topic) => {
            tracing::info!(topic = name, partitions = topic.partitions.len(), "auto-created topic");
            describe_topic(broker, &topic)
        }
        // Another request created it meanwhile.
        Err(BrokerError::TopicAlreadyExists(_)) => match broker.topics.get(name) {
            Some(topic) => describe_topic(broker, &topic),
            None => error_topic(Some(name), Uuid::nil(), &BrokerError::UnknownTopicOrPartition),
        },
        Err(err) => error_topic(Some(name), Uuid::nil(), &err),
    }
}

fn describe_topic(broker: &Broker, topic: &Topic) -> MetadataResponseTopic {
    let node_id = BrokerId(broker.config.node_id);
    let partitions = topic
        .partitions
        .iter()
        .map(|log| {
            MetadataResponsePartition::default()
                .with_partition_index(log.topic_partition.partition)
                .with_leader_id(node_id)
                .with_leader_epoch(log.leader_epoch())
                .with_replica_nodes(vec![node_id])
                .with_isr_nodes(vec![node_id])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}

fn error_topic(name: Option<&str>, id: Uuid, error: &BrokerError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(topic_name))
        .with_topic_id(id)
        .with_error_code(error_code(error))
}
