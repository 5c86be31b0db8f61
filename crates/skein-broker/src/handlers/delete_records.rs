//! DeleteRecords: moves partitions' log start offsets forward (offset -1 = the high watermark); the records before
//! it are no longer served and whole batches before it are deleted. Compacted-only topics refuse it
//! (POLICY_VIOLATION), as in Kafka.
//!
//! As Kafka's leader does, each partition is answered once its low watermark (the lowest log start offset over
//! the in-sync replicas, which learn the leader's from their fetches) reaches the offset, with that low
//! watermark; REQUEST_TIMED_OUT after the request's `timeout_ms`.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;

/// The offset that means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let authorization = broker.authorization(ctx);
    let timeout = std::time::Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted_topic in &request.topics {
        let topic = broker.topics.get(wanted_topic.name.0.as_str());
        let allowed = authorization.allows(AclOperation::Delete, ResourceType::Topic, wanted_topic.name.0.as_str());
        let mut partitions = Vec::with_capacity(wanted_topic.partitions.len());
        for wanted in &wanted_topic.partitions {
            let deletable = topic.as_ref().is_some_and(|t| {
                let policy = t.config_value(&broker.current_config(), "cleanup.policy").unwrap_or_default();
                policy.split(',').any(|p| p.trim() == "delete")
            });
            let log = match allowed {
                true => broker.leader_log(wanted_topic.name.0.as_str(), wanted.partition_index),
                false => Err(BrokerError::TopicAuthorizationFailed),
            };
            let result = match log {
                // As Kafka: records are only deleted from topics whose cleanup policy includes `delete`.
                Ok(_) if !deletable => {
                    Err(BrokerError::PolicyViolation("DeleteRecords needs cleanup.policy to include delete".into()))
                }
                Ok(log) => {
                    let offset = if wanted.offset == HIGH_WATERMARK { log.high_watermark() } else { wanted.offset };
                    match log.advance_log_start(offset).await {
                        Ok(log_start) => log.wait_low_watermark(log_start, timeout).await,
                        Err(err) => Err(err),
                    }
                }
                Err(err) => Err(err),
            };
            let answer = DeleteRecordsPartitionResult::default().with_partition_index(wanted.partition_index);
            partitions.push(match result {
                Ok(low_watermark) => answer.with_low_watermark(low_watermark),
                Err(err) => answer.with_low_watermark(-1).with_error_code(error_code(&err)),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic_name(wanted_topic.name.0.as_str()))
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
