//! UpdateFeatures (KIP-584, `kafka-features upgrade|downgrade`): each update is checked as Kafka's controller
//! checks it ([`crate::features::check_update`]). One failed update fails the whole request with a top-level
//! INVALID_UPDATE_VERSION and no per-feature results; a request that passes answers NONE, and v0/v1 then list each
//! feature as NONE (v2 lists none). Skein's levels are fixed, so a request that passes changes nothing.

use std::sync::Arc;

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use skein_cluster::acl::AclOperation;
use skein_core::{BrokerError, error_code};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::features::check_update;
use crate::handlers::message;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: UpdateFeaturesRequest,
    version: i16,
) -> UpdateFeaturesResponse {
    if !broker.authorized_on_cluster(ctx, AclOperation::Alter) {
        let err = BrokerError::ClusterAuthorizationFailed;
        return UpdateFeaturesResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message(err.to_string()));
    }
    // Kafka names the controller that ran the checks.
    let controller_id = broker.cluster.quorum_leader_id().unwrap_or(broker.config.node_id);
    let failed = request
        .feature_updates
        .iter()
        .find_map(|u| check_update(controller_id, u.feature.as_str(), u.max_version_level, u.upgrade_type).err());
    if let Some(reason) = failed {
        let err = BrokerError::InvalidUpdateVersion(format!(
            "The update failed for all features since the following feature had an error: {reason}"
        ));
        return UpdateFeaturesResponse::default()
            .with_error_code(error_code(&err))
            .with_error_message(message(err.to_string()));
    }
    let results = if version <= 1 {
        let none = message("NONE");
        let results = request
            .feature_updates
            .into_iter()
            .map(|u| UpdatableFeatureResult::default().with_feature(u.feature).with_error_message(none.clone()));
        results.collect()
    } else {
        Vec::new()
    };
    UpdateFeaturesResponse::default().with_error_message(None).with_results(results)
}
