//! DescribeTopicPartitions (KIP-966): topics' partitions from the metadata image, paged by a partition limit and
//! a cursor; every topic (by name order) when none is named. Kafka 4's `kafka-topics --describe` uses it.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse};
use skein_cluster::{MetadataImage, TopicImage};
use skein_core::{BrokerError, error_code};
use uuid::Uuid;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;

/// Kafka's `max.request.partition.size.limit` default: the most partitions one response carries.
const MAX_PARTITIONS_PER_RESPONSE: usize = 2000;

/// The authorized operations field when they were not computed.
const OPERATIONS_OMITTED: i32 = i32::MIN;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeTopicPartitionsRequest,
    _version: i16,
) -> DescribeTopicPartitionsResponse {
    let image = broker.image();
    let authorization = broker.authorization(ctx);
    let limit = usize::try_from(request.response_partition_limit)
        .ok()
        .filter(|l| *l > 0)
        .map_or(MAX_PARTITIONS_PER_RESPONSE, |l| l.min(MAX_PARTITIONS_PER_RESPONSE));
    // Named topics are answered in name order too, as Kafka does, so the cursor means the same either way.
    let mut names: Vec<String> = if request.topics.is_empty() {
        // As Kafka: a listing leaves out the topics the principal may not describe.
        image
            .topics()
            .filter(|t| authorization.permits(AclOperation::Describe, ResourceType::Topic, &t.name))
            .map(|t| t.name.clone())
            .collect()
    } else {
        request.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &request.cursor {
        Some(cursor) => (Some(cursor.topic_name.0.to_string()), cursor.partition_index.max(0)),
        None => (None, 0),
    };
    let mut topics = Vec::new();
    let mut remaining = limit;
    let mut next_cursor = None;
    for name in names.iter().filter(|n| start_topic.as_ref().is_none_or(|start| *n >= start)) {
        let first = if start_topic.as_deref() == Some(name.as_str()) { start_partition } else { 0 };
        if !authorization.allows(AclOperation::Describe, ResourceType::Topic, name) {
            topics.push(unknown_topic(name).with_error_code(error_code(&BrokerError::TopicAuthorizationFailed)));
            continue;
        }
        let Some(topic) = image.topic(name) else {
            topics.push(unknown_topic(name));
            continue;
        };
        if remaining == 0 {
            next_cursor = Some(Cursor::default().with_topic_name(topic_name(name)).with_partition_index(first));
            break;
        }
        let (answer, stopped_at) = describe(&image, topic, first, &mut remaining);
        topics.push(answer);
        if let Some(partition) = stopped_at {
            next_cursor = Some(Cursor::default().with_topic_name(topic_name(name)).with_partition_index(partition));
            break;
        }
    }
    DescribeTopicPartitionsResponse::default().with_topics(topics).with_next_cursor(next_cursor)
}

/// A topic's partitions from `first` on, at most `remaining` of them; answers where it stopped, if it did.
fn describe(
    image: &MetadataImage,
    topic: &TopicImage,
    first: i32,
    remaining: &mut usize,
) -> (DescribeTopicPartitionsResponseTopic, Option<i32>) {
    let ids = |nodes: &[i32]| nodes.iter().map(|&n| BrokerId(n)).collect::<Vec<_>>();
    let mut partitions = Vec::new();
    let mut stopped_at = None;
    for (&index, p) in topic.partitions.range(first..) {
        if *remaining == 0 {
            stopped_at = Some(index);
            break;
        }
        *remaining -= 1;
        let offline: Vec<i32> = p.replicas.iter().copied().filter(|&r| !image.is_live(r)).collect();
        partitions.push(
            DescribeTopicPartitionsResponsePartition::default()
                .with_error_code(if p.has_leader() { 0 } else { error_code(&BrokerError::LeaderNotAvailable) })
                .with_partition_index(index)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
                .with_offline_replicas(ids(&offline)),
        );
    }
    let answer = DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.topic_id)
        .with_is_internal(skein_core::types::is_internal_topic(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED);
    (answer, stopped_at)
}

fn unknown_topic(name: &str) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(error_code(&BrokerError::UnknownTopicOrPartition))
        .with_name(Some(topic_name(name)))
        .with_topic_id(Uuid::nil())
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}
