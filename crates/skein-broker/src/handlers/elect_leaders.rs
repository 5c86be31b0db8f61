//! ElectLeaders: on a single node every partition's leader is already its preferred leader, so each partition
//! named gets ELECTION_NOT_NEEDED (as Kafka answers for such partitions); unknown ones UNKNOWN_TOPIC_OR_PARTITION.
//! A request for all partitions (null) has nothing to elect.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use skein_core::{BrokerError, error_code};

use crate::broker::Broker;
use crate::handlers::{message, topic_name};

pub(crate) async fn handle(broker: &Arc<Broker>, request: ElectLeadersRequest, _version: i16) -> ElectLeadersResponse {
    let results = request
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|wanted| {
            let topic = broker.topics.get(wanted.topic.0.as_str());
            let partitions = wanted
                .partitions
                .iter()
                .map(|index| {
                    let err = if topic.as_ref().and_then(|t| t.partition(*index)).is_some() {
                        BrokerError::ElectionNotNeeded
                    } else {
                        BrokerError::UnknownTopicOrPartition
                    };
                    PartitionResult::default()
                        .with_partition_id(*index)
                        .with_error_code(error_code(&err))
                        .with_error_message(message(err.to_string()))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(topic_name(wanted.topic.0.as_str()))
                .with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}
