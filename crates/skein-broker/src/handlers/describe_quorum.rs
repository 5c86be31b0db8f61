//! DescribeQuorum (KIP-595, KIP-853 v2): the metadata quorum's leader, epoch, high watermark and every voter's
//! progress, as the quorum leader knows it (asked of it from whichever broker receives the request, as Kafka's
//! brokers forward it to the active controller). `kafka-metadata-quorum describe --status` reads this.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::controller_error;
use crate::handlers::message;

/// The metadata log's name in KRaft.
const METADATA_TOPIC: &str = "__cluster_metadata";

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    if !broker.authorized_on_cluster(ctx, AclOperation::Describe) {
        let err = BrokerError::ClusterAuthorizationFailed;
        return DescribeQuorumResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message(err.to_string()));
    }
    let asks_metadata_log = request.topics.len() == 1
        && request.topics[0].topic_name.0.as_str() == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !asks_metadata_log {
        let err = BrokerError::UnknownTopicOrPartition;
        return DescribeQuorumResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message("DescribeQuorum describes __cluster_metadata partition 0 only"));
    }
    let status = match broker.cluster.controller().describe_quorum().await {
        Ok(status) => status,
        Err(err) => {
            let err = controller_error(err);
            return DescribeQuorumResponse::default()
                .with_error_code(error_code(&err))
                .with_error_message(message(err.to_string()));
        }
    };
    let replica = |v: &skein_cluster::VoterStatus| {
        ReplicaState::default()
            .with_replica_id(BrokerId(v.node_id))
            .with_log_end_offset(v.log_end_offset)
            .with_last_fetch_timestamp(v.last_fetch_timestamp_ms.unwrap_or(-1))
            .with_last_caught_up_timestamp(v.last_caught_up_timestamp_ms.unwrap_or(-1))
    };
    let voters = status.voters.iter().map(replica).collect();
    let observers = status.observers.iter().map(replica).collect();
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(status.leader_id.unwrap_or(-1)))
        .with_leader_epoch(i32::try_from(status.leader_epoch).unwrap_or(i32::MAX))
        .with_high_watermark(status.high_watermark)
        .with_current_voters(voters)
        .with_observers(observers);
    let topic = TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition]);
    let mut response = DescribeQuorumResponse::default().with_topics(vec![topic]);
    if version >= 2 {
        let layout = broker.cluster.layout();
        let listener = layout.controller_listener.name.clone();
        response.nodes = layout
            .voters
            .iter()
            .map(|voter| {
                Node::default().with_node_id(BrokerId(voter.node_id)).with_listeners(vec![
                    Listener::default()
                        .with_name(StrBytes::from_string(listener.clone()))
                        .with_host(StrBytes::from_string(voter.host.clone()))
                        .with_port(voter.port),
                ])
            })
            .collect();
    }
    response
}
