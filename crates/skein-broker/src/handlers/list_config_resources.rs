//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources, KIP-714): the resources that have configs.
//! v0 lists client-metrics resources only; v1 lists the resource types asked for (all when none is named): every
//! topic, every broker (BROKER and BROKER_LOGGER), and the groups and client-metrics subscriptions with configs. A
//! type Kafka cannot list is UNSUPPORTED_VERSION, as Kafka answers it.

use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::describe_configs::{
    RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_CLIENT_METRICS, RESOURCE_GROUP, RESOURCE_TOPIC,
    config_only_resource_type,
};
const LISTABLE: [i8; 5] =
    [RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_CLIENT_METRICS, RESOURCE_GROUP];

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListConfigResourcesRequest,
    version: i16,
) -> ListConfigResourcesResponse {
    if !broker.authorized_on_cluster(ctx, AclOperation::DescribeConfigs) {
        return ListConfigResourcesResponse::default()
            .with_error_code(error_code(&BrokerError::ClusterAuthorizationFailed));
    }
    let types: Vec<i8> = match version {
        0 => vec![RESOURCE_CLIENT_METRICS],
        _ if request.resource_types.is_empty() => LISTABLE.to_vec(),
        _ => request.resource_types.clone(),
    };
    if types.iter().any(|resource_type| !LISTABLE.contains(resource_type)) {
        return ListConfigResourcesResponse::default()
            .with_error_code(error_code(&BrokerError::UnsupportedVersion { api_key: 74, version }));
    }
    let image = broker.image();
    let mut resources: Vec<(i8, String)> = Vec::new();
    if types.contains(&RESOURCE_TOPIC) {
        resources.extend(image.topics().map(|topic| (RESOURCE_TOPIC, topic.name.to_string())));
    }
    for resource_type in [RESOURCE_BROKER, RESOURCE_BROKER_LOGGER] {
        if types.contains(&resource_type) {
            resources.extend(image.brokers().keys().map(|node_id| (resource_type, node_id.to_string())));
        }
    }
    for resource_type in [RESOURCE_CLIENT_METRICS, RESOURCE_GROUP] {
        if types.contains(&resource_type) {
            resources.extend(
                image
                    .all_configs()
                    .iter()
                    .filter(|(resource, configs)| {
                        Some(resource.resource_type) == config_only_resource_type(resource_type) && !configs.is_empty()
                    })
                    .map(|(resource, _)| (resource_type, resource.name.clone())),
            );
        }
    }
    resources.sort();
    let config_resources = resources
        .into_iter()
        .map(|(resource_type, name)| {
            ConfigResource::default().with_resource_type(resource_type).with_resource_name(StrBytes::from_string(name))
        })
        .collect();
    ListConfigResourcesResponse::default().with_config_resources(config_resources)
}
