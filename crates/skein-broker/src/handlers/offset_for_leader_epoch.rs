//! OffsetForLeaderEpoch: where a leader epoch ended on the partition's leader, so a consumer (KIP-320) can tell
//! whether the log it read from was truncated after a leader change.
//!
//! As Kafka 4 answers it (`ReplicaManager.lastOffsetForLeaderEpoch`, `Partition.lastOffsetForLeaderEpoch`,
//! `LeaderEpochFileCache.endOffsetFor`):
//! - only the leader answers; any other broker, replica or not, and a partition without a leader are
//!   NOT_LEADER_OR_FOLLOWER (never LEADER_NOT_AVAILABLE); a partition the metadata lacks is
//!   UNKNOWN_TOPIC_OR_PARTITION;
//! - `current_leader_epoch` is checked before leadership on every replica of the partition (FENCED_LEADER_EPOCH
//!   when older than this broker's, UNKNOWN_LEADER_EPOCH when newer); only -1 means "not given";
//! - the answer is the largest epoch at or below the requested one and its end offset: the start of the next epoch,
//!   or the log end offset for the latest epoch. Kafka gives the log end offset, not the high watermark, to
//!   consumers (`replica_id` -1) and followers alike: `replica_id` is not read;
//! - an epoch the leader cannot place is answered with error NONE and leader epoch and end offset -1.

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::{AclOperation, ResourceType};

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;

/// The `current_leader_epoch` of a request that does not fence (Kafka's `NO_PARTITION_LEADER_EPOCH`).
const NO_CURRENT_LEADER_EPOCH: i32 = -1;

pub(crate) fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // As Kafka: a follower (replica id >= 0) needs CLUSTER_ACTION, a consumer DESCRIBE on each topic.
    let authorization = broker.authorization(ctx);
    let follower_refused = request.replica_id.0 >= 0 && !authorization.allows_on_cluster(AclOperation::ClusterAction);
    let topics = request
        .topics
        .iter()
        .map(|wanted_topic| {
            let topic = wanted_topic.topic.0.as_str();
            let refused = follower_refused
                || (request.replica_id.0 < 0
                    && !authorization.allows(AclOperation::Describe, ResourceType::Topic, topic));
            let partitions = wanted_topic
                .partitions
                .iter()
                .map(|wanted| {
                    let answer = EpochEndOffset::default().with_partition(wanted.partition);
                    let found = match refused {
                        true => Err(BrokerError::TopicAuthorizationFailed),
                        false => end_offset(
                            broker,
                            topic,
                            wanted.partition,
                            wanted.current_leader_epoch,
                            wanted.leader_epoch,
                        ),
                    };
                    match found {
                        Ok((leader_epoch, end_offset)) => {
                            answer.with_leader_epoch(leader_epoch).with_end_offset(end_offset)
                        }
                        Err(err) => answer.with_error_code(error_code(&err)),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic_name(topic)).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// (leader epoch, end offset) of `requested_epoch` on this broker as the partition's leader.
fn end_offset(
    broker: &Broker,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    requested_epoch: i32,
) -> Result<(i32, i64), BrokerError> {
    match broker.leader_log(topic, partition) {
        Ok(log) => {
            check_current_leader_epoch(current_leader_epoch, log.leader_epoch())?;
            Ok(log.end_offset_for_epoch(requested_epoch))
        }
        Err(BrokerError::NotLeaderOrFollower | BrokerError::LeaderNotAvailable) => {
            // A replica that does not lead still fences the client's epoch first, as Kafka's Partition.getLocalLog
            // does; a broker without a replica of the partition only says it does not lead.
            let image = broker.image();
            let this_replica = image
                .topic(topic)
                .and_then(|registered| registered.partitions.get(&partition))
                .filter(|registration| registration.replicas.contains(&broker.config.node_id));
            if let Some(registration) = this_replica {
                check_current_leader_epoch(current_leader_epoch, registration.leader_epoch)?;
            }
            Err(BrokerError::NotLeaderOrFollower)
        }
        Err(err) => Err(err),
    }
}

/// Kafka's `Partition.checkCurrentLeaderEpoch`. Unlike Fetch, where any negative epoch is "not given", only -1 is
/// here: a client's -2 is older than every epoch and fenced.
fn check_current_leader_epoch(requested: i32, current: i32) -> Result<(), BrokerError> {
    if requested == NO_CURRENT_LEADER_EPOCH || requested == current {
        Ok(())
    } else if requested < current {
        Err(BrokerError::FencedLeaderEpoch { requested, current })
    } else {
        Err(BrokerError::UnknownLeaderEpoch { requested, current })
    }
}
