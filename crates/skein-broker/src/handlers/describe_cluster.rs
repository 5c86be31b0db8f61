//! DescribeCluster: this node is the whole cluster and its controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, error_code};

use crate::broker::Broker;
use crate::handlers::message;

/// `endpoint_type` 1 = brokers (2 = controllers, which a single node does not expose separately).
const BROKERS: i8 = 1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    if version >= 1 && request.endpoint_type != BROKERS {
        let err = BrokerError::UnsupportedEndpointType(request.endpoint_type);
        return DescribeClusterResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message(err.to_string()))
            .with_endpoint_type(request.endpoint_type);
    }
    let node = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.config.node_id))
        .with_host(StrBytes::from_string(broker.advertised_host.clone()))
        .with_port(broker.advertised_port);
    DescribeClusterResponse::default()
        .with_endpoint_type(BROKERS)
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_brokers(vec![node])
}
