//! ListPartitionReassignments (KIP-455): the reassignments under way, from the metadata image — each
//! partition's full replica list (target replicas first, then those leaving), the replicas being added and
//! those being removed. A null topic list means every topic; topics and partitions named that do not exist,
//! or have no reassignment under way, are left out, as Kafka's controller does.

use std::sync::Arc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse};
use skein_cluster::{PartitionRegistration, TopicImage};

use skein_cluster::acl::AclOperation;

use skein_core::{BrokerError, error_code};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::message;
use crate::handlers::topic_name;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListPartitionReassignmentsRequest,
    _version: i16,
) -> ListPartitionReassignmentsResponse {
    if !broker.authorized_on_cluster(ctx, AclOperation::Describe) {
        let err = BrokerError::ClusterAuthorizationFailed;
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message(err.to_string()));
    }
    let image = broker.image();
    let mut topics = Vec::new();
    match request.topics {
        None => {
            for topic in image.topics() {
                push_ongoing(&mut topics, topic, topic.partitions.keys().copied());
            }
        }
        Some(wanted) => {
            for wanted in wanted {
                if let Some(topic) = image.topic(wanted.name.0.as_str()) {
                    push_ongoing(&mut topics, topic, wanted.partition_indexes.into_iter());
                }
            }
        }
    }
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}

/// Adds `topic`'s partitions among `indexes` that are being reassigned (nothing when none is).
fn push_ongoing(out: &mut Vec<OngoingTopicReassignment>, topic: &TopicImage, indexes: impl Iterator<Item = i32>) {
    let partitions: Vec<OngoingPartitionReassignment> = indexes
        .filter_map(|index| topic.partitions.get(&index).filter(|p| p.is_reassigning()).map(|p| ongoing(index, p)))
        .collect();
    if !partitions.is_empty() {
        out.push(OngoingTopicReassignment::default().with_name(topic_name(&topic.name)).with_partitions(partitions));
    }
}

fn ongoing(index: i32, p: &PartitionRegistration) -> OngoingPartitionReassignment {
    let ids = |list: &[i32]| list.iter().copied().map(BrokerId).collect::<Vec<_>>();
    OngoingPartitionReassignment::default()
        .with_partition_index(index)
        .with_replicas(ids(&p.replicas))
        .with_adding_replicas(ids(&p.adding_replicas))
        .with_removing_replicas(ids(&p.removing_replicas))
}
