//! DescribeCluster: the live brokers of the metadata image (fenced ones too when asked, v2+), the
//! controller id clients may use, and the cluster id.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{CLUSTER_NAME, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::endpoint;
use crate::handlers::message;

/// `endpoint_type` 1 = brokers. 2 (controllers) is answered by controller listeners only, as in Kafka.
const BROKERS: i8 = 1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let listener: &str = &ctx.listener;
    if version >= 1 && request.endpoint_type != BROKERS {
        let err = BrokerError::UnsupportedEndpointType(request.endpoint_type);
        return DescribeClusterResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message(err.to_string()))
            .with_endpoint_type(request.endpoint_type);
    }
    let image = broker.image();
    let include_fenced = version >= 2 && request.include_fenced_brokers;
    let brokers = image
        .brokers()
        .values()
        .filter(|b| include_fenced || !b.fenced)
        .filter_map(|b| {
            let endpoint = endpoint(b, listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.node_id))
                    .with_host(StrBytes::from_string(endpoint.host.clone()))
                    .with_port(i32::from(endpoint.port))
                    .with_rack(b.rack.clone().map(StrBytes::from_string))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    let cluster_operations = if request.include_cluster_authorized_operations {
        broker.authorization(ctx).operations(ResourceType::Cluster, CLUSTER_NAME)
    } else {
        i32::MIN
    };
    DescribeClusterResponse::default()
        .with_cluster_authorized_operations(cluster_operations)
        .with_endpoint_type(BROKERS)
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.cluster.controller_id_for_clients(&image)))
        .with_brokers(brokers)
}
