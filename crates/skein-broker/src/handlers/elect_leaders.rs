//! ElectLeaders (KIP-460), run by the quorum leader one partition at a time, as Kafka's controller does:
//! - PREFERRED (election type 0; v0 has no type and means it): the partition's first replica becomes leader
//!   when it is live and in the ISR; ELECTION_NOT_NEEDED when it leads already, PREFERRED_LEADER_NOT_AVAILABLE
//!   when it cannot lead.
//! - UNCLEAN (type 1): a partition without a leader gets one, from outside the ISR if need be;
//!   ELECTION_NOT_NEEDED when it has one, ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live.
//!
//! A null partition list means every partition; the answer then names every topic but only the partitions
//! where an election was attempted (Kafka leaves ELECTION_NOT_NEEDED out). An unknown election type fails
//! the whole request with INVALID_REQUEST. Each successful election is answered once this broker's image
//! shows it.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use skein_cluster::{ControllerRequest, ControllerResponse, MetadataImage, PartitionRegistration};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::controller_error;
use crate::handlers::{message, topic_name};

/// Kafka's `ElectionType.PREFERRED`.
const PREFERRED: i8 = 0;
/// Kafka's `ElectionType.UNCLEAN`.
const UNCLEAN: i8 = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Election {
    Preferred,
    Unclean,
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ElectLeadersRequest,
    _version: i16,
) -> ElectLeadersResponse {
    if !broker.authorized_on_cluster(ctx, AclOperation::Alter) {
        let err = BrokerError::ClusterAuthorizationFailed;
        return failed_request(&request, &err).with_error_code(error_code(&err));
    }
    let election = match request.election_type {
        PREFERRED => Election::Preferred,
        UNCLEAN => Election::Unclean,
        other => {
            let err = BrokerError::InvalidRequest(format!("Unknown election type {other}"));
            return failed_request(&request, &err);
        }
    };
    let Some(wanted) = request.topic_partitions else {
        return ElectLeadersResponse::default().with_replica_election_results(elect_all(broker, election).await);
    };
    let mut results = Vec::with_capacity(wanted.len());
    for topic in wanted {
        let name = topic.topic.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for &partition in &topic.partitions {
            partitions.push(partition_result(partition, elect(broker, name, partition, election).await));
        }
        results.push(ReplicaElectionResult::default().with_topic(topic_name(name)).with_partition_result(partitions));
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// Every partition of every topic (a null partition list). Partitions that need no election by this broker's
/// image are not sent to the controller: Kafka leaves them out of the answer, and an image a moment old gives
/// the answer a request a moment earlier would have got.
async fn elect_all(broker: &Arc<Broker>, election: Election) -> Vec<ReplicaElectionResult> {
    let image = broker.image();
    let mut results = Vec::new();
    for topic in image.topics() {
        let mut partitions = Vec::new();
        for (&partition, p) in &topic.partitions {
            if !election_needed(&image, p, election) {
                continue;
            }
            match elect(broker, &topic.name, partition, election).await {
                Err(BrokerError::ElectionNotNeeded) => {}
                result => partitions.push(partition_result(partition, result)),
            }
        }
        // Kafka's controller names every topic, with an empty list when nothing was attempted.
        results.push(
            ReplicaElectionResult::default().with_topic(topic_name(&topic.name)).with_partition_result(partitions),
        );
    }
    results
}

/// Whether the controller would try an election (the check it starts with).
fn election_needed(image: &MetadataImage, p: &PartitionRegistration, election: Election) -> bool {
    match election {
        Election::Preferred => p.replicas.first() != Some(&p.leader),
        Election::Unclean => !(p.has_leader() && image.is_live(p.leader) && p.isr.contains(&p.leader)),
    }
}

/// One partition's election through the controller, answered once this broker's image shows it.
async fn elect(broker: &Arc<Broker>, topic: &str, partition: i32, election: Election) -> Result<(), BrokerError> {
    let image = broker.image();
    let topic_id = image
        .topic(topic)
        .filter(|t| t.partitions.contains_key(&partition))
        .map(|t| t.topic_id)
        .ok_or(BrokerError::UnknownTopicOrPartition)?;
    let request = match election {
        Election::Preferred => ControllerRequest::ElectPreferredLeader { topic_id, partition },
        Election::Unclean => ControllerRequest::ElectLeader { topic_id, partition },
    };
    let elected = match broker.cluster.controller().submit(request).await.map_err(controller_error) {
        Ok(ControllerResponse::Partition(p)) => p,
        Ok(other) => return Err(BrokerError::Storage(format!("unexpected controller answer {other:?}"))),
        // Deleted meanwhile: Kafka names the topic, not its id.
        Err(BrokerError::UnknownTopicId) => return Err(BrokerError::UnknownTopicOrPartition),
        Err(err) => return Err(err),
    };
    broker
        .sync_metadata(|image| {
            image.partition(topic_id, partition).is_none_or(|p| p.partition_epoch >= elected.partition_epoch)
        })
        .await
}

fn partition_result(partition: i32, result: Result<(), BrokerError>) -> PartitionResult {
    let answer = PartitionResult::default().with_partition_id(partition);
    match result {
        Ok(()) => answer,
        Err(err) => answer.with_error_code(error_code(&err)).with_error_message(message(err.to_string())),
    }
}

/// A request refused as a whole: the top-level error, repeated for every partition named (Kafka's
/// `ElectLeadersRequest.getErrorResponse`).
fn failed_request(request: &ElectLeadersRequest, err: &BrokerError) -> ElectLeadersResponse {
    let code = error_code(err);
    let results = request
        .topic_partitions
        .iter()
        .flatten()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|&partition| {
                    PartitionResult::default()
                        .with_partition_id(partition)
                        .with_error_code(code)
                        .with_error_message(message(err.to_string()))
                })
                .collect();
            ReplicaElectionResult::default().with_topic(topic.topic.clone()).with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_error_code(code).with_replica_election_results(results)
}
