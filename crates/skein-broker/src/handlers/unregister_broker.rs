//! UnregisterBroker (KIP-500's decommissioning, `kafka-cluster unregister --id N`): removes a broker's registration
//! from the cluster metadata. As Kafka's controller does, the broker first leaves every ISR and leadership (as when
//! fenced), then its registration is gone: Metadata no longer lists it and a partition it alone held has no
//! leader. A broker unregistered while it runs stays out until it restarts (its heartbeats are refused).

use std::sync::Arc;

use kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use kafka_protocol::protocol::StrBytes;
use skein_cluster::acl::AclOperation;
use skein_core::{BrokerError, error_code};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::cluster::controller_error;
use crate::handlers::message;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: UnregisterBrokerRequest,
    _version: i16,
) -> UnregisterBrokerResponse {
    let outcome = if broker.authorized_on_cluster(ctx, AclOperation::Alter) {
        broker.cluster.controller().unregister_broker(request.broker_id.0).await.map_err(controller_error)
    } else {
        Err(BrokerError::ClusterAuthorizationFailed)
    };
    match outcome {
        // Kafka answers success with an empty message, not a null one.
        Ok(()) => UnregisterBrokerResponse::default().with_error_message(Some(StrBytes::from_static_str(""))),
        Err(err) => UnregisterBrokerResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message(err.to_string())),
    }
}
