//! AlterPartitionReassignments (KIP-455), run by the controller one partition at a time: a partition with a
//! replica list gets a reassignment to it (replacing one under way); one with a null list has its reassignment
//! cancelled (NO_REASSIGNMENT_IN_PROGRESS when there is none). Per partition, as Kafka answers:
//! UNKNOWN_TOPIC_OR_PARTITION for a topic or partition that does not exist, INVALID_REPLICA_ASSIGNMENT for an
//! empty list, a broker named twice or a broker not registered, and INVALID_REPLICATION_FACTOR when v1's
//! `allow_replication_factor_change` is false and the replica count would change (KIP-860).
//!
//! A partition is answered once this broker's image shows the change; the data then moves in the background
//! (new replicas fetch from the leader, and the reassignment completes when they are in sync).

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::controller_error;
use crate::handlers::{message, topic_name};

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
    _version: i16,
) -> AlterPartitionReassignmentsResponse {
    if !broker.authorized_on_cluster(ctx, AclOperation::Alter) {
        let err = BrokerError::ClusterAuthorizationFailed;
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message(err.to_string()));
    }
    let allow_rf_change = request.allow_replication_factor_change;
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in topic.partitions {
            let target = wanted.replicas.map(|replicas| replicas.into_iter().map(|id| id.0).collect());
            let result = reassign(broker, name, wanted.partition_index, target, allow_rf_change).await;
            let answer = ReassignablePartitionResponse::default().with_partition_index(wanted.partition_index);
            partitions.push(match result {
                Ok(()) => answer,
                Err(err) => answer.with_error_code(error_code(&err)).with_error_message(message(err.to_string())),
            });
        }
        responses.push(ReassignableTopicResponse::default().with_name(topic_name(name)).with_partitions(partitions));
    }
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_rf_change)
        .with_responses(responses)
}

/// One partition's reassignment (or cancellation) through the controller, answered once this broker's image
/// shows it.
async fn reassign(
    broker: &Arc<Broker>,
    topic: &str,
    partition: i32,
    target: Option<Vec<i32>>,
    allow_rf_change: bool,
) -> Result<(), BrokerError> {
    let topic_id = broker
        .image()
        .topic(topic)
        .filter(|t| t.partitions.contains_key(&partition))
        .map(|t| t.topic_id)
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    let controller = broker.cluster.controller();
    let changed = match controller.reassign_partition(topic_id, partition, target, allow_rf_change).await {
        Ok(changed) => changed,
        Err(err) => {
            return Err(match controller_error(err) {
                // Deleted meanwhile: Kafka names the topic, not its id.
                BrokerError::UnknownTopicId => BrokerError::UnknownTopicOrPartition,
                other => other,
            });
        }
    };
    broker
        .sync_metadata(|image| {
            image.partition(topic_id, partition).is_none_or(|p| p.partition_epoch >= changed.partition_epoch)
        })
        .await
}
