//! DescribeProducers: the idempotent and transactional producers a partition tracks, with their last sequence and
//! the start of their open transaction.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use skein_core::error_code;

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::{message, topic_name};

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
    _version: i16,
) -> DescribeProducersResponse {
    let authorization = broker.authorization(ctx);
    let topics = request
        .topics
        .iter()
        .map(|wanted| {
            // As Kafka: READ on the topic.
            let allowed = authorization.allows(AclOperation::Read, ResourceType::Topic, wanted.name.0.as_str());
            let partitions = wanted
                .partition_indexes
                .iter()
                .map(|index| {
                    let answer = PartitionResponse::default().with_partition_index(*index);
                    let log = match allowed {
                        true => broker.leader_log(wanted.name.0.as_str(), *index),
                        false => Err(skein_core::BrokerError::TopicAuthorizationFailed),
                    };
                    match log {
                        Ok(log) => answer.with_active_producers(
                            log.producers()
                                .into_iter()
                                .map(|(producer_id, state)| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(producer_id))
                                        .with_producer_epoch(i32::from(state.producer_epoch))
                                        .with_last_sequence(state.batches.last().map_or(-1, |b| b.last_sequence))
                                        .with_last_timestamp(state.last_batch_timestamp)
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(state.txn_first_offset)
                                })
                                .collect(),
                        ),
                        Err(err) => {
                            answer.with_error_code(error_code(&err)).with_error_message(message(err.to_string()))
                        }
                    }
                })
                .collect();
            TopicResponse::default().with_name(topic_name(wanted.name.0.as_str())).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
