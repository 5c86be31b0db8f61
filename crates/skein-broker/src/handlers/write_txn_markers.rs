//! WriteTxnMarkers (v1, between brokers): a transaction coordinator on another broker ends a transaction in the
//! partitions this broker leads — a COMMIT or ABORT marker in data partitions, the commit or drop of the
//! producer's pending offsets in `__consumer_offsets` partitions. Each partition answers its own error
//! (NOT_LEADER_OR_FOLLOWER when this broker does not lead it; the coordinator then asks the new leader).

use std::sync::Arc;

use kafka_protocol::messages::WriteTxnMarkersRequest;
use kafka_protocol::messages::WriteTxnMarkersResponse;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::txn_markers::write_local_partition;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
    _version: i16,
) -> WriteTxnMarkersResponse {
    // Markers come from transaction coordinators, which need CLUSTER_ACTION.
    let authorized = broker.authorized_on_cluster(ctx, AclOperation::ClusterAction);
    let mut results = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let mut topics = Vec::with_capacity(marker.topics.len());
        for topic in marker.topics {
            let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
            for index in topic.partition_indexes {
                let written = if authorized {
                    write_local_partition(
                        broker,
                        marker.producer_id.0,
                        marker.producer_epoch,
                        marker.transaction_result,
                        topic.name.0.as_str(),
                        index,
                    )
                    .await
                } else {
                    Err(BrokerError::ClusterAuthorizationFailed)
                };
                if let Err(err) = &written {
                    tracing::debug!(topic = topic.name.0.as_str(), partition = index, error = %err, "marker refused");
                }
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(written.as_ref().err().map_or(0, error_code)),
                );
            }
            topics.push(WritableTxnMarkerTopicResult::default().with_name(topic.name).with_partitions(partitions));
        }
        results.push(WritableTxnMarkerResult::default().with_producer_id(marker.producer_id).with_topics(topics));
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}
