//! ListOffsets: earliest, latest, by timestamp, max timestamp, and the tiered-storage ones (none: Skein has no
//! tiered storage).

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use skein_core::{BrokerError, error_code};
use skein_log::{Isolation, PartitionLog};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// KIP-1023 (v11): the earliest offset not yet uploaded to tiered storage.
const EARLIEST_PENDING_UPLOAD: i64 = -6;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let authorization = broker.authorization(ctx);
    let isolation = Isolation::from_level(request.isolation_level);
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted_topic in &request.topics {
        let allowed = authorization.allows(AclOperation::Describe, ResourceType::Topic, wanted_topic.name.0.as_str());
        let mut partitions = Vec::with_capacity(wanted_topic.partitions.len());
        for wanted in &wanted_topic.partitions {
            let base = ListOffsetsPartitionResponse::default().with_partition_index(wanted.partition_index);
            let log = match allowed {
                true => broker.leader_log(wanted_topic.name.0.as_str(), wanted.partition_index),
                false => Err(BrokerError::TopicAuthorizationFailed),
            };
            let result = match log {
                Ok(log) => lookup(&log, wanted.timestamp, wanted.current_leader_epoch, isolation).await,
                Err(err) => Err(err),
            };
            partitions.push(match result {
                Ok((offset, timestamp, leader_epoch)) => {
                    // The leader epoch exists from v4 on; older versions must leave it at its default.
                    let leader_epoch = if version >= 4 { leader_epoch } else { -1 };
                    base.with_offset(offset).with_timestamp(timestamp).with_leader_epoch(leader_epoch)
                }
                Err(err) => base.with_error_code(error_code(&err)).with_offset(-1).with_timestamp(-1),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic_name(wanted_topic.name.0.as_str()))
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// Returns (offset, timestamp, leader epoch) for one partition.
async fn lookup(
    log: &PartitionLog,
    timestamp: i64,
    current_leader_epoch: i32,
    isolation: Isolation,
) -> Result<(i64, i64, i32), BrokerError> {
    let epoch = log.leader_epoch();
    if current_leader_epoch >= 0 && current_leader_epoch != epoch {
        return Err(if current_leader_epoch < epoch {
            BrokerError::FencedLeaderEpoch { requested: current_leader_epoch, current: epoch }
        } else {
            BrokerError::UnknownLeaderEpoch { requested: current_leader_epoch, current: epoch }
        });
    }
    match timestamp {
        // read_committed consumers start from the last stable offset: nothing of an open transaction.
        LATEST if isolation == Isolation::ReadCommitted => Ok((log.last_stable_offset(), -1, epoch)),
        LATEST => Ok((log.high_watermark(), -1, epoch)),
        EARLIEST | EARLIEST_LOCAL => Ok((log.log_start_offset(), -1, epoch)),
        // No tiered storage: nothing is tiered, nothing waits for an upload (Kafka's answers without it).
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok((-1, -1, -1)),
        MAX_TIMESTAMP => Ok(match log.offset_of_max_timestamp().await? {
            Some(found) => (found.offset, found.timestamp, epoch),
            None => (-1, -1, -1),
        }),
        ts if ts >= 0 => Ok(match log.offset_for_timestamp(ts).await? {
            Some(found) => (found.offset, found.timestamp, epoch),
            None => (-1, -1, -1),
        }),
        other => Err(BrokerError::InvalidRequest(format!("unknown special timestamp {other}"))),
    }
}
