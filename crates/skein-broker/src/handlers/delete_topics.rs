//! DeleteTopics: by name (all versions) or by topic id (v6+).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use skein_core::{BrokerError, error_code};
use uuid::Uuid;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;
use crate::quotas::mutation_error_message;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let authorization = broker.authorization(ctx);
    let strict = version >= crate::quotas::STRICT_DELETE_TOPICS_VERSION;
    let mut quota = broker.quotas.mutation_quota(&broker.image(), ctx.quota_user(), &ctx.client_id, strict);
    // Before v6 the request carries names only; from v6 each entry has a name or an id.
    let wanted: Vec<(Option<String>, Uuid)> = if version < 6 {
        request.topic_names.iter().map(|n| (Some(n.0.to_string()), Uuid::nil())).collect()
    } else {
        request.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let resolved = match &name {
            Some(name) => Ok(name.clone()),
            None => broker.image().topic_by_id(id).map(|t| t.name.clone()).ok_or(BrokerError::UnknownTopicId),
        };
        let result = match resolved {
            // As Kafka: DELETE on the topic, checked before its existence.
            Ok(resolved_name) if !authorization.allows(AclOperation::Delete, ResourceType::Topic, &resolved_name) => {
                Err(BrokerError::TopicAuthorizationFailed)
            }
            Ok(resolved_name) => {
                // As Kafka: an existing topic's partitions count against the controller mutation quota.
                let partitions = broker.image().topic(&resolved_name).map(|topic| topic.partitions.len());
                match partitions.map_or(Ok(()), |count| quota.record(i64::try_from(count).unwrap_or(i64::MAX))) {
                    Ok(()) => broker.delete_topic(&resolved_name).await.map(|topic_id| (resolved_name, topic_id)),
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        };
        responses.push(match result {
            Ok((deleted, topic_id)) => {
                tracing::info!(topic = %deleted, "deleted topic");
                broker.metrics.forget_topic(&deleted);
                // The topic is gone either way; stale offsets would only be inherited by a topic of the same name.
                if let Err(err) = broker.offsets.delete_topic(&deleted).await {
                    tracing::warn!(topic = %deleted, error = %err, "could not delete the topic's committed offsets");
                }
                DeletableTopicResult::default().with_name(Some(topic_name(&deleted))).with_topic_id(topic_id)
            }
            Err(err) => DeletableTopicResult::default()
                .with_name(name.as_deref().map(topic_name))
                .with_topic_id(id)
                .with_error_code(error_code(&err))
                .with_error_message(mutation_error_message(&err)),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses).with_throttle_time_ms(quota.finish(broker, ctx))
}
