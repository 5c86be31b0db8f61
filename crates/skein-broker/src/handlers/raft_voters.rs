//! AddRaftVoter and RemoveRaftVoter (KIP-853). Skein's metadata quorum is static (`controller.quorum.voters`), so
//! both answer as Kafka's controllers answer on a static quorum (kraft.version 0): a request for another cluster
//! INCONSISTENT_CLUSTER_ID, a removal without a directory id INVALID_REQUEST, anything else UNSUPPORTED_VERSION,
//! each with Kafka's message.

use std::sync::Arc;

use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;

fn check_cluster_id(broker: &Broker, cluster_id: Option<&StrBytes>) -> Result<(), BrokerError> {
    match cluster_id {
        Some(given) if given.as_str() != broker.cluster_id => {
            Err(BrokerError::InconsistentClusterId { given: given.to_string(), ours: broker.cluster_id.clone() })
        }
        _ => Ok(()),
    }
}

pub(crate) async fn add(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AddRaftVoterRequest,
    _version: i16,
) -> AddRaftVoterResponse {
    let outcome = if !broker.authorized_on_cluster(ctx, AclOperation::Alter) {
        Err(BrokerError::ClusterAuthorizationFailed)
    } else {
        check_cluster_id(broker, request.cluster_id.as_ref()).and(Err(BrokerError::StaticQuorum("adding")))
    };
    let (code, message) = answer(outcome);
    AddRaftVoterResponse::default().with_error_code(code).with_error_message(message)
}

pub(crate) async fn remove(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: RemoveRaftVoterRequest,
    _version: i16,
) -> RemoveRaftVoterResponse {
    let outcome = if !broker.authorized_on_cluster(ctx, AclOperation::Alter) {
        Err(BrokerError::ClusterAuthorizationFailed)
    } else {
        check_cluster_id(broker, request.cluster_id.as_ref()).and_then(|()| {
            if request.voter_directory_id.is_nil() {
                Err(BrokerError::InvalidRequestMessage("Remove voter request didn't include a valid voter".into()))
            } else {
                Err(BrokerError::StaticQuorum("removing"))
            }
        })
    };
    let (code, message) = answer(outcome);
    RemoveRaftVoterResponse::default().with_error_code(code).with_error_message(message)
}

fn answer(outcome: Result<(), BrokerError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(err) => (error_code(&err), Some(StrBytes::from_string(err.to_string()))),
    }
}
