//! The typed requests tests send again and again, each at one fixed version, returning the part of the response
//! that answers it (the one topic or partition asked about) whatever its error code: the test checks the code.

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, BrokerId, ConsumerGroupHeartbeatRequest, CreateTopicsRequest,
    DeleteRecordsRequest, FetchRequest, GroupId, ListOffsetsRequest, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::RawClient;

pub const API_VERSIONS_VERSION: i16 = 3;
pub const CREATE_TOPICS_VERSION: i16 = 7;
pub const METADATA_VERSION: i16 = 12;
pub const PRODUCE_VERSION: i16 = 11;
/// The newest Fetch version that names topics (v13+ use topic ids).
pub const FETCH_BY_NAME_VERSION: i16 = 12;
pub const LIST_OFFSETS_VERSION: i16 = 8;

/// Fetch `max_bytes` and per-partition `partition_max_bytes` in [`fetch`]: enough for any test's data.
pub const FETCH_MAX_BYTES: i32 = 64 * 1024 * 1024;

/// Kafka's special ListOffsets timestamps.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;

/// A KIP-848 member's first ConsumerGroupHeartbeat (epoch 0), subscribed to `topic`.
pub fn consumer_join_request(group_id: &str, member_id: &str, topic: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())))
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic_name(topic)]))
        .with_topic_partitions(Some(Vec::new()))
}

/// A KIP-848 member's steady-state ConsumerGroupHeartbeat at `epoch`, reporting the partitions it owns.
pub fn consumer_heartbeat_request(
    group_id: &str,
    member_id: &str,
    epoch: i32,
    owned: &[(uuid::Uuid, Vec<i32>)],
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())))
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(Some(
            owned
                .iter()
                .map(|(id, partitions)| {
                    TopicPartitions::default().with_topic_id(*id).with_partitions(partitions.clone())
                })
                .collect(),
        ))
}

/// A topic name for a request.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// ApiVersions at `version` (v3+ carry a client software name and version).
pub fn api_versions(client: &mut RawClient, version: i16) -> anyhow::Result<ApiVersionsResponse> {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("skein-test-support"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    client.request(version, &request)
}

/// CreateTopics for one topic with `partitions` partitions, the default replication factor and `configs`.
pub fn create_topic(
    client: &mut RawClient,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> anyhow::Result<CreatableTopicResult> {
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(key, value)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string((*key).to_string()))
                        .with_value(Some(StrBytes::from_string((*value).to_string())))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(30_000);
    let response = client.request(CREATE_TOPICS_VERSION, &request)?;
    response.topics.into_iter().next().context("CreateTopics answered no topic")
}

/// Metadata for `topics` (all topics when empty).
pub fn metadata(
    client: &mut RawClient,
    topics: &[&str],
    allow_auto_topic_creation: bool,
) -> anyhow::Result<MetadataResponse> {
    let wanted = if topics.is_empty() {
        None
    } else {
        Some(topics.iter().map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name)))).collect())
    };
    let request =
        MetadataRequest::default().with_topics(wanted).with_allow_auto_topic_creation(allow_auto_topic_creation);
    client.request(METADATA_VERSION, &request)
}

/// A produce request carrying `batch` for one partition.
pub fn produce_request(topic: &str, partition: i32, batch: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(batch))]),
    ])
}

/// Produces `batch` to one partition and returns that partition's answer (acks must not be 0).
pub fn produce(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    batch: Bytes,
    acks: i16,
) -> anyhow::Result<PartitionProduceResponse> {
    let response = client.request(PRODUCE_VERSION, &produce_request(topic, partition, batch, acks))?;
    only_partition(response)
}

/// The one partition's answer of a Produce response for one partition.
pub fn only_partition(response: ProduceResponse) -> anyhow::Result<PartitionProduceResponse> {
    response
        .responses
        .into_iter()
        .next()
        .and_then(|topic| topic.partition_responses.into_iter().next())
        .context("Produce answered no partition")
}

/// A fetch request for one partition of a topic named `topic` (used up to v12).
pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32, min_bytes: i32) -> FetchRequest {
    fetch_request_for(FetchTopic::default().with_topic(topic_name(topic)), partition, offset, max_wait_ms, min_bytes)
}

/// A fetch request for one partition of `fetch_topic` (named, or by topic id from v13).
pub fn fetch_request_for(
    fetch_topic: FetchTopic,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_topic.with_partitions(vec![
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(FETCH_MAX_BYTES),
        ])])
}

/// Fetches one partition at v12 by topic name without waiting and returns that partition's answer.
pub fn fetch(client: &mut RawClient, topic: &str, partition: i32, offset: i64) -> anyhow::Result<PartitionData> {
    let response = client.request(FETCH_BY_NAME_VERSION, &fetch_request(topic, partition, offset, 0, 0))?;
    response
        .responses
        .into_iter()
        .next()
        .and_then(|topic| topic.partitions.into_iter().next())
        .context("Fetch answered no partition")
}

/// ListOffsets for one partition at `timestamp` (or one of the special timestamps).
pub fn list_offset(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> anyhow::Result<ListOffsetsPartitionResponse> {
    let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        ListOffsetsTopic::default().with_name(topic_name(topic)).with_partitions(vec![
            ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp),
        ]),
    ]);
    let response = client.request(LIST_OFFSETS_VERSION, &request)?;
    response
        .topics
        .into_iter()
        .next()
        .and_then(|topic| topic.partitions.into_iter().next())
        .context("ListOffsets answered no partition")
}

/// DeleteRecords (v2, 5 s timeout) of partition 0 below `offset`: (error code, low watermark).
pub fn delete_records(client: &mut RawClient, topic: &str, offset: i64) -> anyhow::Result<(i16, i64)> {
    let request = DeleteRecordsRequest::default().with_timeout_ms(5_000).with_topics(vec![
        DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(offset)]),
    ]);
    let response = client.request(2, &request)?;
    let partition = response
        .topics
        .first()
        .and_then(|topic| topic.partitions.first())
        .context("DeleteRecords answered no partition")?;
    Ok((partition.error_code, partition.low_watermark))
}

/// The topics Metadata lists for all topics, without the internal ones (`__consumer_offsets`, which a broker
/// creates for group state): those a test created.
pub fn user_topics(
    client: &mut RawClient,
) -> anyhow::Result<Vec<kafka_protocol::messages::metadata_response::MetadataResponseTopic>> {
    let response = metadata(client, &[], false)?;
    Ok(response.topics.into_iter().filter(|topic| !topic.is_internal).collect())
}
