//! CreatePartitions: grows topics through the controller (placed by it, or by manual replica assignments).

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use skein_core::{BrokerError, MAX_PARTITIONS_PER_REQUEST, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;
use crate::quotas::mutation_error_message;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
    version: i16,
) -> CreatePartitionsResponse {
    let strict = version >= crate::quotas::STRICT_CREATE_PARTITIONS_VERSION;
    let mut quota = broker.quotas.mutation_quota(&broker.image(), ctx.quota_user(), &ctx.client_id, strict);
    let authorization = broker.authorization(ctx);
    let mut results = Vec::with_capacity(request.topics.len());
    let mut named = HashMap::new();
    for topic in &request.topics {
        *named.entry(topic.name.0.as_str()).or_insert(0usize) += 1;
    }
    let mut partitions_in_request = 0i64;
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let duplicate = named.get(name).is_some_and(|count| *count > 1);
        let current = broker.topics.get(name).map_or(0, |t| t.partitions.len());
        partitions_in_request += (i64::from(topic.count) - i64::try_from(current).unwrap_or(i64::MAX)).max(0);
        let result = if duplicate {
            Err(BrokerError::InvalidRequest(format!("duplicate topic {name} in the request")))
        } else if !authorization.allows(AclOperation::Alter, ResourceType::Topic, name) {
            Err(BrokerError::TopicAuthorizationFailed)
        } else if partitions_in_request > MAX_PARTITIONS_PER_REQUEST {
            Err(BrokerError::TooManyRecordsInOperation(format!(
                "a request may create at most {MAX_PARTITIONS_PER_REQUEST} partitions"
            )))
        } else {
            let assignments: Vec<Vec<i32>> =
                topic.assignments.iter().flatten().map(|a| a.broker_ids.iter().map(|id| id.0).collect()).collect();
            // As Kafka: the new partitions of a valid change count against the controller mutation quota.
            let added = i64::from(topic.count) - i64::try_from(current).unwrap_or(i64::MAX);
            match broker.topics.validate_partition_count(name, topic.count).and_then(|()| quota.record(added)) {
                Ok(()) => broker.create_partitions(name, topic.count, assignments, request.validate_only).await,
                Err(err) => Err(err),
            }
        };
        let answer = CreatePartitionsTopicResult::default().with_name(topic_name(name));
        results.push(match result {
            Ok(()) => answer,
            Err(err) => answer.with_error_code(error_code(&err)).with_error_message(mutation_error_message(&err)),
        });
    }
    CreatePartitionsResponse::default().with_results(results).with_throttle_time_ms(quota.finish(broker, ctx))
}
