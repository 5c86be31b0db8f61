//! AlterReplicaLogDirs: moving a replica between a broker's log directories. Skein has one data directory, so
//! every replica here is already in the only directory there is: as Kafka answers a move to the directory a replica
//! is in, that succeeds and changes nothing. As Kafka answers: any other directory is LOG_DIR_NOT_FOUND (checked
//! first), a partition the cluster does not have UNKNOWN_TOPIC_OR_PARTITION, and one this broker holds no replica of
//! REPLICA_NOT_AVAILABLE.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;

/// Kafka names a replica being moved `<topic>-<partition>.<32 hex digits>-future`, which must fit a file name
/// (255 bytes); a longer one is refused with INVALID_TOPIC_EXCEPTION (KAFKA-4893).
const MAX_FILE_NAME_BYTES: usize = 255;
const FUTURE_DIR_SUFFIX_BYTES: usize = 1 + 32 + "-future".len();

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: AlterReplicaLogDirsRequest,
    _version: i16,
) -> AlterReplicaLogDirsResponse {
    let authorized = broker.authorized_on_cluster(ctx, AclOperation::Alter);
    let log_dir = broker.config.log_dir_path();
    let image = broker.image();
    let node_id = broker.config.node_id;
    // Kafka answers each partition once, grouped by topic; a partition named twice keeps its last directory.
    let mut moves: BTreeMap<String, BTreeMap<i32, String>> = BTreeMap::new();
    for dir in &request.dirs {
        for topic in &dir.topics {
            let partitions = moves.entry(topic.name.0.to_string()).or_default();
            for &partition in &topic.partitions {
                partitions.insert(partition, dir.path.to_string());
            }
        }
    }
    let results = moves
        .into_iter()
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(partition, path)| {
                    let outcome = if !authorized {
                        Err(BrokerError::ClusterAuthorizationFailed)
                    } else if topic.len() + 1 + partition.to_string().len() + FUTURE_DIR_SUFFIX_BYTES
                        > MAX_FILE_NAME_BYTES
                    {
                        Err(BrokerError::InvalidTopic("The topic name is too long.".into()))
                    } else if path != log_dir {
                        Err(BrokerError::LogDirNotFound(path))
                    } else {
                        match image.topic(&topic).and_then(|t| t.partitions.get(&partition)) {
                            None => Err(BrokerError::UnknownTopicOrPartition),
                            Some(assignment)
                                if assignment.replicas.contains(&node_id)
                                    && broker.topics.get(&topic).is_some_and(|t| t.partition(partition).is_some()) =>
                            {
                                Ok(())
                            }
                            Some(_) => Err(BrokerError::ReplicaNotAvailable),
                        }
                    };
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(partition)
                        .with_error_code(outcome.err().map_or(0, |err| error_code(&err)))
                })
                .collect();
            AlterReplicaLogDirTopicResult::default().with_topic_name(topic_name(&topic)).with_partitions(partitions)
        })
        .collect();
    AlterReplicaLogDirsResponse::default().with_results(results)
}
