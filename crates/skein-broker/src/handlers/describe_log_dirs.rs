//! DescribeLogDirs: the one data directory, with the bytes stored per partition this broker holds a replica of
//! (as the metadata assigns them) and the disk's total and usable bytes. It is never cordoned (v5, KIP-1066):
//! Skein has one data directory, which always takes new replicas.

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol::protocol::StrBytes;
use skein_core::{BrokerError, error_code};

use skein_cluster::acl::AclOperation;

use crate::authorizer::RequestContext;
use crate::broker::Broker;
use crate::handlers::topic_name;

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
    _version: i16,
) -> DescribeLogDirsResponse {
    if !broker.authorized_on_cluster(ctx, AclOperation::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(error_code(&BrokerError::ClusterAuthorizationFailed));
    }
    // Every topic (null), or the partitions asked for that exist here.
    let wanted: Vec<(Arc<crate::topics::Topic>, Vec<i32>)> = match &request.topics {
        None => broker
            .topics
            .all()
            .into_iter()
            .map(|topic| {
                let partitions = (0..topic.partitions.len()).filter_map(|p| i32::try_from(p).ok()).collect();
                (topic, partitions)
            })
            .collect(),
        Some(topics) => topics
            .iter()
            .filter_map(|t| {
                let topic = broker.topics.get(t.topic.0.as_str())?;
                let partitions = t.partitions.iter().copied().filter(|p| topic.partition(*p).is_some()).collect();
                Some((topic, partitions))
            })
            .collect(),
    };
    let image = broker.image();
    let node_id = broker.config.node_id;
    let replica_here = |topic: &crate::topics::Topic, index: i32| {
        image
            .topic(&topic.name)
            .filter(|t| t.topic_id == topic.id)
            .and_then(|t| t.partitions.get(&index))
            .is_some_and(|p| p.replicas.contains(&node_id))
    };
    let mut topics = Vec::with_capacity(wanted.len());
    for (topic, indexes) in wanted {
        let mut partitions = Vec::with_capacity(indexes.len());
        for index in indexes.into_iter().filter(|&index| replica_here(&topic, index)) {
            let Some(log) = topic.partition(index) else { continue };
            let size = match log.size_in_bytes().await {
                Ok(size) => i64::try_from(size).unwrap_or(i64::MAX),
                Err(err) => return DescribeLogDirsResponse::default().with_error_code(error_code(&err)),
            };
            partitions.push(DescribeLogDirsPartition::default().with_partition_index(index).with_partition_size(size));
        }
        topics.push(DescribeLogDirsTopic::default().with_name(topic_name(&topic.name)).with_partitions(partitions));
    }
    let (total, usable) = disk_space(&broker.config.data_dir);
    let dir = broker.config.log_dir_path();
    DescribeLogDirsResponse::default().with_results(vec![
        DescribeLogDirsResult::default()
            .with_log_dir(StrBytes::from_string(dir))
            .with_topics(topics)
            .with_total_bytes(total)
            .with_usable_bytes(usable)
            .with_is_cordoned(false),
    ])
}

/// The file system's total and available bytes under `path`, or -1 when unknown (as Kafka reports).
fn disk_space(path: &str) -> (i64, i64) {
    match rustix::fs::statvfs(path) {
        Ok(stats) => {
            let bytes = |blocks: u64| i64::try_from(blocks.saturating_mul(stats.f_frsize)).unwrap_or(i64::MAX);
            (bytes(stats.f_blocks), bytes(stats.f_bavail))
        }
        Err(_) => (-1, -1),
    }
}
