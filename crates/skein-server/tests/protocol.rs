//! Every handler at the wire level: requests built with `kafka-protocol`, sent to the real `skein` binary, and the
//! answers checked field by field (error codes, offsets, the exact bytes served).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, FetchRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest,
};
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use kafka_protocol::records::{Compression, RecordBatchDecoder, TimestampType};
use skein_broker::router::SUPPORTED_APIS;
use skein_test_support::requests::{
    EARLIEST_TIMESTAMP, FETCH_BY_NAME_VERSION, FETCH_MAX_BYTES, LATEST_TIMESTAMP, MAX_TIMESTAMP, PRODUCE_VERSION,
    api_versions, create_topic, fetch, fetch_request, fetch_request_for, list_offset, metadata, produce,
    produce_request, topic_name, user_topics,
};
use skein_test_support::{
    RawClient, TestBroker, TestRecord, as_stored, decode_response_frame, raw_request_frame, record_batch,
    record_batch_compressed, simple_batch,
};

// Kafka error codes.
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUIRED_ACKS: i16 = 21;
const UNSUPPORTED_VERSION: i16 = 35;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_CONFIG: i16 = 40;
const INVALID_RECORD: i16 = 87;
const UNKNOWN_TOPIC_ID: i16 = 100;

// DescribeConfigs resource types and config sources.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_TOPIC_CONFIG: i8 = 1;
const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
const SOURCE_DEFAULT_CONFIG: i8 = 5;

const TS: i64 = 1_700_000_000_000;

fn start() -> TestBroker {
    TestBroker::start().expect("start skein")
}

fn start_with(yaml: &str) -> TestBroker {
    TestBroker::start_with_yaml(yaml).expect("start skein")
}

/// Creates a topic and asserts it worked.
fn create(client: &mut RawClient, name: &str, partitions: i32) {
    let result = create_topic(client, name, partitions, &[]).expect("CreateTopics");
    assert_eq!(result.error_code, NONE, "create {name}: {:?}", result.error_message);
}

/// Produces with acks=all, asserts success and returns the base offset.
fn produce_ok(client: &mut RawClient, topic: &str, partition: i32, batch: &Bytes) -> i64 {
    let answer = produce(client, topic, partition, batch.clone(), -1).expect("Produce");
    assert_eq!(answer.error_code, NONE, "produce to {topic}-{partition}: {:?}", answer.error_message);
    answer.base_offset
}

/// The partition's leader epoch as Metadata reports it (the broker stamps it on stored batches).
fn leader_epoch(client: &mut RawClient, topic: &str, partition: i32) -> i32 {
    let response = metadata(client, &[topic], false).expect("Metadata");
    let topic = response.topics.first().expect("topic in metadata");
    let partition = topic.partitions.iter().find(|p| p.partition_index == partition).expect("partition in metadata");
    partition.leader_epoch
}

fn latest_offset(client: &mut RawClient, topic: &str, partition: i32) -> i64 {
    let answer = list_offset(client, topic, partition, LATEST_TIMESTAMP).expect("ListOffsets");
    assert_eq!(answer.error_code, NONE);
    answer.offset
}

fn records(data: &PartitionData) -> Vec<u8> {
    data.records.as_ref().expect("records must not be null").to_vec()
}

fn topic_error(client: &mut RawClient, topic: &str) -> i16 {
    let response = metadata(client, &[topic], false).expect("Metadata");
    response.topics.first().expect("topic in metadata").error_code
}

fn config<'a>(configs: &'a [DescribeConfigsResourceResult], name: &str) -> &'a DescribeConfigsResourceResult {
    configs.iter().find(|c| c.name.as_str() == name).unwrap_or_else(|| panic!("config {name} missing"))
}

// ---- ApiVersions ----

fn expected_ranges() -> Vec<(i16, i16, i16)> {
    SUPPORTED_APIS.iter().map(|(key, min, max)| (*key as i16, *min, *max)).collect()
}

#[test]
fn api_versions_lists_the_supported_ranges_at_every_version() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    for version in 0..=4 {
        let response = api_versions(&mut client, version).expect("ApiVersions");
        assert_eq!(response.error_code, NONE, "v{version}");
        let listed: Vec<(i16, i16, i16)> =
            response.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
        assert_eq!(listed, expected_ranges(), "v{version}");
    }
    // What clients rely on: Produce from v0 (librdkafka) to v13 (topic ids; v12 is Transactions V2), ApiVersions
    // up to v4.
    let listed = expected_ranges();
    assert!(listed.contains(&(0, 0, 13)), "{listed:?}");
    assert!(listed.contains(&(18, 0, 4)), "{listed:?}");
}

#[test]
fn api_versions_from_the_future_gets_a_v0_answer_with_unsupported_version() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    let mut body = BytesMut::new();
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("future-client"))
        .with_client_software_version(StrBytes::from_static_str("9.9"))
        .encode(&mut body, 3)
        .expect("encode");
    let frame = raw_request_frame(ApiVersionsRequest::KEY, 99, 2, 4242, &body).expect("frame");
    client.send_raw(&frame).expect("send");
    let answer = client.read_frame().expect("answer");
    let (correlation_id, response) = decode_response_frame::<ApiVersionsRequest>(answer, 0).expect("decode as v0");
    assert_eq!(correlation_id, 4242);
    assert_eq!(response.error_code, UNSUPPORTED_VERSION);
    let listed: Vec<(i16, i16, i16)> =
        response.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    assert_eq!(listed, expected_ranges());
    // The client retries with a version from the list, on the same connection.
    assert_eq!(api_versions(&mut client, 3).expect("retry").error_code, NONE);
}

// ---- Metadata ----

#[test]
fn metadata_auto_creates_topics_and_advertises_the_broker() {
    let broker = start_with("num.partitions: 3\n");
    let mut client = broker.client().expect("connect");
    let response = metadata(&mut client, &["auto-created"], true).expect("Metadata");

    let brokers: Vec<(i32, String, i32)> =
        response.brokers.iter().map(|b| (b.node_id.0, b.host.to_string(), b.port)).collect();
    assert_eq!(brokers, vec![(1, "127.0.0.1".to_string(), i32::from(broker.addr().port()))]);
    assert_eq!(response.controller_id.0, 1);
    assert!(response.cluster_id.as_ref().is_some_and(|id| !id.is_empty()), "{:?}", response.cluster_id);

    let topic = response.topics.first().expect("topic");
    assert_eq!(topic.error_code, NONE);
    assert_eq!(topic.name.as_ref().map(|n| n.0.to_string()).as_deref(), Some("auto-created"));
    assert!(!topic.topic_id.is_nil(), "v12 carries the topic id");
    assert!(!topic.is_internal);
    // (index, error, leader, replicas, isr) of each partition.
    let partitions: Vec<_> = topic
        .partitions
        .iter()
        .map(|p| {
            let replicas: Vec<i32> = p.replica_nodes.iter().map(|n| n.0).collect();
            let isr: Vec<i32> = p.isr_nodes.iter().map(|n| n.0).collect();
            (p.partition_index, p.error_code, p.leader_id.0, replicas, isr)
        })
        .collect();
    assert_eq!(partitions, (0..3).map(|i| (i, NONE, 1, vec![1], vec![1])).collect::<Vec<_>>());

    // Asking again finds the same topic; the all-topics form lists it.
    let again = metadata(&mut client, &["auto-created"], true).expect("Metadata");
    assert_eq!(again.topics[0].topic_id, topic.topic_id);
    let all = user_topics(&mut client).expect("Metadata");
    let names: Vec<String> = all.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    assert_eq!(names, vec!["auto-created".to_string()]);
}

#[test]
fn metadata_for_an_unknown_topic_without_auto_creation_is_unknown_topic_or_partition() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    assert_eq!(topic_error(&mut client, "not-there"), UNKNOWN_TOPIC_OR_PARTITION);
    let all = user_topics(&mut client).expect("Metadata");
    assert!(all.is_empty(), "nothing was created: {all:?}");

    let no_auto = start_with("auto.create.topics.enable: false\n");
    let mut client = no_auto.client().expect("connect");
    let response = metadata(&mut client, &["not-there"], true).expect("Metadata");
    assert_eq!(response.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn metadata_for_an_invalid_topic_name_is_invalid_topic() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    let too_long = "a".repeat(250);
    for name in ["bad/name", "..", "spaces are bad", too_long.as_str()] {
        let response = metadata(&mut client, &[name], true).expect("Metadata");
        assert_eq!(response.topics[0].error_code, INVALID_TOPIC_EXCEPTION, "{name}");
    }
    assert!(user_topics(&mut client).expect("Metadata").is_empty());
}

#[test]
fn metadata_answers_at_every_supported_version() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "versions", 2);
    for version in 0..=12 {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name("versions")))]))
            // Before v4 the field does not exist (and is true); the topic exists either way.
            .with_allow_auto_topic_creation(version < 4);
        let response = client.request(version, &request).unwrap_or_else(|e| panic!("Metadata v{version}: {e:#}"));
        assert_eq!(response.brokers.len(), 1, "v{version}");
        assert_eq!(response.brokers[0].port, i32::from(broker.addr().port()), "v{version}");
        let topic = response.topics.first().expect("topic");
        assert_eq!(topic.error_code, NONE, "v{version}");
        assert_eq!(topic.partitions.len(), 2, "v{version}");
    }
}

// ---- CreateTopics ----

#[test]
fn create_topics_creates_partitions_with_an_id_and_refuses_duplicates() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    let created = create_topic(&mut client, "orders", 3, &[]).expect("CreateTopics");
    assert_eq!(created.error_code, NONE, "{:?}", created.error_message);
    assert_eq!(created.name.0.as_str(), "orders");
    assert_eq!((created.num_partitions, created.replication_factor), (3, 1));
    assert!(!created.topic_id.is_nil());

    let described = metadata(&mut client, &["orders"], false).expect("Metadata");
    assert_eq!(described.topics[0].topic_id, created.topic_id);
    assert_eq!(described.topics[0].partitions.len(), 3);

    let again = create_topic(&mut client, "orders", 3, &[]).expect("CreateTopics");
    assert_eq!(again.error_code, TOPIC_ALREADY_EXISTS);
    assert_eq!(metadata(&mut client, &["orders"], false).expect("Metadata").topics[0].topic_id, created.topic_id);
}

#[test]
fn create_topics_refuses_invalid_requests_and_creates_nothing() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    // (name, partitions, configs, expected error)
    let cases = [
        ("bad/name", 1, &[][..], INVALID_TOPIC_EXCEPTION),
        ("zero-partitions", 0, &[][..], INVALID_PARTITIONS),
        ("unknown-config", 1, &[("no.such.config", "1")][..], INVALID_CONFIG),
        ("bad-config-value", 1, &[("retention.ms", "forever")][..], INVALID_CONFIG),
    ];
    for (name, partitions, configs, expected) in cases {
        let result = create_topic(&mut client, name, partitions, configs).expect("CreateTopics");
        assert_eq!(result.error_code, expected, "{name}: {:?}", result.error_message);
    }

    let request = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(topic_name("three-replicas"))
            .with_num_partitions(1)
            .with_replication_factor(3),
    ]);
    let response = client.request(7, &request).expect("CreateTopics");
    assert_eq!(response.topics[0].error_code, INVALID_REPLICATION_FACTOR);

    let all = user_topics(&mut client).expect("Metadata");
    assert!(all.is_empty(), "nothing was created: {all:?}");
}

#[test]
fn create_topics_validate_only_creates_nothing() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    let request = CreateTopicsRequest::default().with_timeout_ms(30_000).with_validate_only(true).with_topics(vec![
        CreatableTopic::default().with_name(topic_name("dry-run")).with_num_partitions(4).with_replication_factor(1),
    ]);
    let response = client.request(7, &request).expect("CreateTopics");
    assert_eq!(response.topics[0].error_code, NONE);
    assert_eq!(response.topics[0].num_partitions, 4);
    assert_eq!(topic_error(&mut client, "dry-run"), UNKNOWN_TOPIC_OR_PARTITION);
    // And a real creation afterwards works.
    create(&mut client, "dry-run", 4);
}

// ---- Produce ----

#[test]
fn produce_assigns_consecutive_base_offsets_at_every_version() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "offsets", 1);
    let mut next = 0;
    for (version, count) in (3..=PRODUCE_VERSION).zip([5usize, 3, 1, 2, 4, 1, 7, 2, 3]) {
        let batch = simple_batch(count, TS, 10).expect("batch");
        let response = client.request(version, &produce_request("offsets", 0, batch, -1)).expect("Produce");
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, NONE, "v{version}: {:?}", partition.error_message);
        assert_eq!(partition.base_offset, next, "v{version}");
        assert_eq!(partition.log_append_time_ms, -1, "v{version}: CreateTime topic");
        if version >= 5 {
            assert_eq!(partition.log_start_offset, 0, "v{version}");
        }
        next += i64::try_from(count).expect("small");
    }
    assert_eq!(latest_offset(&mut client, "offsets", 0), next);
}

#[test]
fn produce_with_a_bad_crc_is_corrupt_message_and_appends_nothing() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "crc", 1);
    let batch = simple_batch(3, TS, 20).expect("batch");

    let mut bad_crc_field = batch.to_vec();
    bad_crc_field[17] ^= 0x01;
    let mut bad_payload = batch.to_vec();
    let last = bad_payload.len() - 1;
    bad_payload[last] ^= 0x80;
    for corrupted in [bad_crc_field, bad_payload] {
        let answer = produce(&mut client, "crc", 0, Bytes::from(corrupted), -1).expect("Produce");
        assert_eq!(answer.error_code, CORRUPT_MESSAGE, "{:?}", answer.error_message);
        assert_eq!(answer.base_offset, -1);
    }
    assert_eq!(latest_offset(&mut client, "crc", 0), 0);
    assert_eq!(produce_ok(&mut client, "crc", 0, &batch), 0);
}

#[test]
fn produce_over_max_message_bytes_is_message_too_large_then_the_connection_still_works() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "large", 1);
    let huge = simple_batch(1, TS, 2 * 1024 * 1024).expect("batch");
    let answer = produce(&mut client, "large", 0, huge, -1).expect("Produce");
    assert_eq!(answer.error_code, MESSAGE_TOO_LARGE, "{:?}", answer.error_message);
    assert_eq!(latest_offset(&mut client, "large", 0), 0);

    let small = simple_batch(2, TS, 10).expect("batch");
    assert_eq!(produce_ok(&mut client, "large", 0, &small), 0);
    let epoch = leader_epoch(&mut client, "large", 0);
    assert_eq!(records(&fetch(&mut client, "large", 0, 0).expect("Fetch")), as_stored(&small, 0, epoch));
}

#[test]
fn produce_with_invalid_acks_is_invalid_required_acks() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "acks", 1);
    let batch = simple_batch(1, TS, 5).expect("batch");
    for acks in [2, -2, 5] {
        let answer = produce(&mut client, "acks", 0, batch.clone(), acks).expect("Produce");
        assert_eq!(answer.error_code, INVALID_REQUIRED_ACKS, "acks={acks}");
    }
    assert_eq!(latest_offset(&mut client, "acks", 0), 0);
    // acks=1 is valid.
    assert_eq!(produce(&mut client, "acks", 0, batch, 1).expect("Produce").error_code, NONE);
}

#[test]
fn produce_to_an_unknown_partition_or_topic_is_unknown_topic_or_partition() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "known", 2);
    let batch = simple_batch(1, TS, 5).expect("batch");
    for (topic, partition) in [("known", 2), ("known", -1), ("unknown", 0)] {
        let answer = produce(&mut client, topic, partition, batch.clone(), -1).expect("Produce");
        assert_eq!(answer.error_code, UNKNOWN_TOPIC_OR_PARTITION, "{topic}-{partition}");
    }
    // Produce does not create topics.
    assert_eq!(topic_error(&mut client, "unknown"), UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn produce_of_two_batches_for_one_partition_is_invalid_record() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "two", 1);
    let one = simple_batch(2, TS, 5).expect("batch");
    let two = Bytes::from([one.to_vec(), one.to_vec()].concat());
    let answer = produce(&mut client, "two", 0, two, -1).expect("Produce");
    assert_eq!(answer.error_code, INVALID_RECORD, "{:?}", answer.error_message);
    assert_eq!(latest_offset(&mut client, "two", 0), 0);
}

#[test]
fn produce_v2_is_answered_with_unsupported_version() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "old", 1);
    let request = produce_request("old", 0, simple_batch(1, TS, 5).expect("batch"), -1);
    let mut body = BytesMut::new();
    request.encode(&mut body, 3).expect("encode v3");
    // v3 = v2 preceded by a nullable transactional id (null: -1).
    assert_eq!(&body[..2], &[0xff, 0xff]);
    let frame = raw_request_frame(ProduceRequest::KEY, 2, 1, 77, &body[2..]).expect("frame");
    client.send_raw(&frame).expect("send");
    // The v2 response has v3's layout.
    let (correlation_id, response) =
        decode_response_frame::<ProduceRequest>(client.read_frame().expect("answer"), 3).expect("decode");
    assert_eq!(correlation_id, 77);
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!((partition.index, partition.error_code), (0, UNSUPPORTED_VERSION));
    assert_eq!(latest_offset(&mut client, "old", 0), 0);
}

#[test]
fn produce_with_acks_0_gets_no_response_and_the_next_request_is_answered() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "fire-and-forget", 1);
    let batch = simple_batch(3, TS, 8).expect("batch");
    client.send(PRODUCE_VERSION, &produce_request("fire-and-forget", 0, batch.clone(), 0)).expect("send");
    // The next frame on the connection must be the Metadata answer (its correlation id is checked).
    let response = metadata(&mut client, &["fire-and-forget"], false).expect("Metadata after acks=0");
    assert_eq!(response.topics[0].error_code, NONE);
    assert_eq!(latest_offset(&mut client, "fire-and-forget", 0), 3);
    let epoch = leader_epoch(&mut client, "fire-and-forget", 0);
    assert_eq!(records(&fetch(&mut client, "fire-and-forget", 0, 0).expect("Fetch")), as_stored(&batch, 0, epoch));

    // A failed acks=0 produce cannot be answered: the broker closes the connection, as Kafka does.
    client.send(PRODUCE_VERSION, &produce_request("fire-and-forget", 9, batch, 0)).expect("send");
    client.set_read_timeout(Duration::from_secs(10)).expect("timeout");
    assert!(client.is_closed(), "a failed acks=0 produce must close the connection");
}

// ---- Fetch ----

fn metadata_topic(client: &mut RawClient, name: &str) -> MetadataResponseTopic {
    let response = metadata(client, &[name], false).expect("Metadata");
    let topic = response.topics.into_iter().next().expect("topic in metadata");
    assert_eq!(topic.error_code, NONE, "{name}");
    topic
}

/// A fetch of one partition at `version`, without waiting: the topic by name up to v12, by its id from v13.
fn fetch_at_version(version: i16, topic: &MetadataResponseTopic, partition: i32, offset: i64) -> FetchRequest {
    let fetch_topic = if version >= 13 {
        FetchTopic::default().with_topic_id(topic.topic_id)
    } else {
        FetchTopic::default().with_topic(topic.name.clone().expect("topic name"))
    };
    fetch_request_for(fetch_topic, partition, offset, 0, 0)
}

#[test]
fn fetch_returns_the_stored_batches_with_offsets_rewritten_at_every_version() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "fetched", 2);
    let first = record_batch(&[
        TestRecord::new(b"k0", b"v0", TS),
        TestRecord::new(b"k1", b"", TS + 1),
        TestRecord {
            key: None,
            value: None,
            timestamp: TS + 2,
            headers: vec![("h".to_string(), Some(Bytes::from_static(b"\x00\xff")))],
        },
    ])
    .expect("batch");
    let second = simple_batch(2, TS + 10, 100).expect("batch");
    assert_eq!(produce_ok(&mut client, "fetched", 1, &first), 0);
    assert_eq!(produce_ok(&mut client, "fetched", 1, &second), 3);
    let epoch = leader_epoch(&mut client, "fetched", 1);
    let topic = metadata_topic(&mut client, "fetched");
    let mut both = as_stored(&first, 0, epoch);
    both.extend_from_slice(&as_stored(&second, 3, epoch));

    for version in 4..=17 {
        let response = client
            .request(version, &fetch_at_version(version, &topic, 1, 0))
            .unwrap_or_else(|e| panic!("Fetch v{version}: {e:#}"));
        assert_eq!(response.error_code, NONE, "v{version}");
        let answered = &response.responses[0];
        if version >= 13 {
            assert_eq!(answered.topic_id, topic.topic_id, "v{version}");
        } else {
            assert_eq!(answered.topic.0.as_str(), "fetched", "v{version}");
        }
        let partition = &answered.partitions[0];
        assert_eq!((partition.partition_index, partition.error_code), (1, NONE), "v{version}");
        assert_eq!((partition.high_watermark, partition.last_stable_offset), (5, 5), "v{version}");
        if version >= 5 {
            assert_eq!(partition.log_start_offset, 0, "v{version}");
        }
        assert_eq!(records(partition), both, "v{version}: the stored bytes");
    }

    // From inside the second batch: that whole batch, as Kafka serves it.
    assert_eq!(records(&fetch(&mut client, "fetched", 1, 4).expect("Fetch")), as_stored(&second, 3, epoch));
    // At the end: nothing, no error. Past it: OFFSET_OUT_OF_RANGE.
    let at_end = fetch(&mut client, "fetched", 1, 5).expect("Fetch");
    assert_eq!((at_end.error_code, at_end.high_watermark), (NONE, 5));
    assert!(records(&at_end).is_empty());
    for beyond in [6, 1000] {
        let answer = fetch(&mut client, "fetched", 1, beyond).expect("Fetch");
        assert_eq!(answer.error_code, OFFSET_OUT_OF_RANGE, "offset {beyond}");
        assert_eq!(answer.high_watermark, 5);
    }
    // The other partition is untouched.
    let other = fetch(&mut client, "fetched", 0, 0).expect("Fetch");
    assert_eq!((other.error_code, other.high_watermark), (NONE, 0));
    assert!(records(&other).is_empty());
    // An unknown partition.
    assert_eq!(fetch(&mut client, "fetched", 7, 0).expect("Fetch").error_code, UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn fetch_of_an_empty_partition_encodes_empty_records_not_null() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "empty", 1);
    let topic = metadata_topic(&mut client, "empty");

    // v4: records is the last field: INT32 length 0 (null would be -1, ff ff ff ff).
    let (v4, v4_body) = client.request_with_body(4, &fetch_at_version(4, &topic, 0, 0)).expect("Fetch v4");
    assert_eq!(&v4_body[v4_body.len() - 4..], &[0, 0, 0, 0]);
    // v12: compact bytes, length + 1 = 1 (null would be 0), then the partition, topic and response tagged fields.
    let (v12, v12_body) = client.request_with_body(12, &fetch_at_version(12, &topic, 0, 0)).expect("Fetch v12");
    assert_eq!(&v12_body[v12_body.len() - 4..], &[1, 0, 0, 0]);

    for (version, response, body) in [(4, v4, v4_body), (12, v12, v12_body)] {
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, NONE, "v{version}");
        assert_eq!(partition.records, Some(Bytes::new()), "v{version}");
        // The decoded response re-encodes to exactly the bytes received: the fields checked are the real ones.
        let mut reencoded = BytesMut::new();
        response.encode(&mut reencoded, version).expect("re-encode");
        assert_eq!(reencoded.freeze(), body, "v{version}");
    }
}

#[test]
fn fetch_long_poll_returns_as_soon_as_another_client_produces() {
    let broker = start();
    let mut producer = broker.client().expect("connect");
    create(&mut producer, "poll", 1);
    let epoch = leader_epoch(&mut producer, "poll", 0);
    let mut waiter = broker.client().expect("connect");

    let sent_at = Instant::now();
    let correlation_id = waiter.send(FETCH_BY_NAME_VERSION, &fetch_request("poll", 0, 0, 2000, 1)).expect("send");
    std::thread::sleep(Duration::from_millis(300));
    let batch = simple_batch(4, TS, 16).expect("batch");
    assert_eq!(produce_ok(&mut producer, "poll", 0, &batch), 0);
    let produced_at = Instant::now();
    let response = waiter.receive::<FetchRequest>(FETCH_BY_NAME_VERSION, correlation_id).expect("Fetch answer");
    let received_at = Instant::now();

    let partition = &response.responses[0].partitions[0];
    assert_eq!((partition.error_code, partition.high_watermark), (NONE, 4));
    assert_eq!(records(partition), as_stored(&batch, 0, epoch), "the long poll returns the new batch");
    assert!(received_at - sent_at >= Duration::from_millis(250), "the fetch waited for data");
    let after_produce = received_at.duration_since(produced_at);
    assert!(after_produce < Duration::from_millis(1000), "answered {after_produce:?} after the produce, not at once");
}

#[test]
fn fetch_long_poll_without_data_returns_empty_after_max_wait() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "idle", 1);
    let started = Instant::now();
    let response = client.request(FETCH_BY_NAME_VERSION, &fetch_request("idle", 0, 0, 500, 1)).expect("Fetch");
    let elapsed = started.elapsed();
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, NONE);
    assert!(records(partition).is_empty());
    assert!(elapsed >= Duration::from_millis(450), "returned after {elapsed:?}, before max_wait_ms");
    assert!(elapsed < Duration::from_secs(3), "returned after {elapsed:?}");
}

#[test]
fn fetch_returns_whole_batches_within_the_byte_limits() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "limits", 1);
    let batches: Vec<Bytes> = (0..3).map(|i| simple_batch(4, TS + i, 300).expect("batch")).collect();
    let mut stored = Vec::new();
    for batch in &batches {
        let base = produce_ok(&mut client, "limits", 0, batch);
        stored.push(as_stored(batch, base, leader_epoch(&mut client, "limits", 0)));
    }
    let topic = metadata_topic(&mut client, "limits");
    let fetch_with_limit = |client: &mut RawClient, partition_max_bytes: i32| {
        let mut request = fetch_at_version(FETCH_BY_NAME_VERSION, &topic, 0, 0);
        request.topics[0].partitions[0].partition_max_bytes = partition_max_bytes;
        let response = client.request(FETCH_BY_NAME_VERSION, &request).expect("Fetch");
        records(&response.responses[0].partitions[0])
    };
    // A limit smaller than the first batch still returns that batch whole (KIP-74), and only it.
    assert_eq!(fetch_with_limit(&mut client, 10), stored[0]);
    // A limit of exactly two batches returns those two.
    let two = i32::try_from(stored[0].len() + stored[1].len()).expect("small");
    assert_eq!(fetch_with_limit(&mut client, two), [stored[0].clone(), stored[1].clone()].concat());
    assert_eq!(fetch_with_limit(&mut client, FETCH_MAX_BYTES), stored.concat());
}

#[test]
fn compressed_batches_are_served_as_sent_and_searchable_by_timestamp() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "compressed", 1);
    let codecs = [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    let mut expected = Vec::new();
    for (i, codec) in (0i64..).zip(codecs) {
        // Offsets 10i..10i+9, timestamps TS + 100i + j.
        let records: Vec<TestRecord> =
            (0..10).map(|j| TestRecord::new(format!("key-{j}").as_bytes(), &[b'x'; 200], TS + 100 * i + j)).collect();
        let batch = record_batch_compressed(&records, codec).expect("batch");
        assert_eq!(batch[22] & 0x07, codec as u8, "{codec:?} attribute");
        assert_eq!(produce_ok(&mut client, "compressed", 0, &batch), 10 * i, "{codec:?}");
        expected.extend_from_slice(&as_stored(&batch, 10 * i, leader_epoch(&mut client, "compressed", 0)));
    }
    assert_eq!(records(&fetch(&mut client, "compressed", 0, 0).expect("Fetch")), expected);
    // Inside the zstd batch: offset 30 + 7.
    let found = list_offset(&mut client, "compressed", 0, TS + 307).expect("ListOffsets");
    assert_eq!((found.error_code, found.offset, found.timestamp), (NONE, 37, TS + 307));
    let max = list_offset(&mut client, "compressed", 0, MAX_TIMESTAMP).expect("ListOffsets");
    assert_eq!((max.offset, max.timestamp), (39, TS + 309));
}

#[test]
fn log_append_time_topics_stamp_the_batch_and_keep_its_crc_valid() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    let created =
        create_topic(&mut client, "stamped", 1, &[("message.timestamp.type", "LogAppendTime")]).expect("create");
    assert_eq!(created.error_code, NONE, "{:?}", created.error_message);
    let batch = simple_batch(3, 1000, 10).expect("batch");
    let before = unix_ms();
    let answer = produce(&mut client, "stamped", 0, batch.clone(), -1).expect("Produce");
    let after = unix_ms();
    assert_eq!(answer.error_code, NONE);
    assert!((before..=after).contains(&answer.log_append_time_ms), "append time {}", answer.log_append_time_ms);

    let served = records(&fetch(&mut client, "stamped", 0, 0).expect("Fetch"));
    assert_eq!(served.len(), batch.len());
    let attributes = i16::from_be_bytes([served[21], served[22]]);
    assert_eq!(attributes & 0x08, 0x08, "the timestamp type is LogAppendTime");
    let max_timestamp = i64::from_be_bytes(served[35..43].try_into().expect("8 bytes"));
    assert_eq!(max_timestamp, answer.log_append_time_ms);
    // The base timestamp and the records are the producer's.
    assert_eq!(&served[27..35], &batch[27..35]);
    assert_eq!(&served[43..], &batch[43..]);
    // The decoder checks the CRC.
    let decoded = RecordBatchDecoder::decode(&mut Bytes::from(served)).expect("a valid batch");
    assert!(decoded.records.iter().all(|r| r.timestamp_type == TimestampType::LogAppend));
}

fn unix_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since_epoch.as_millis()).expect("fits")
}

// ---- ListOffsets ----

fn batch_with_timestamps(timestamps: &[i64]) -> Bytes {
    let records: Vec<TestRecord> = timestamps.iter().map(|ts| TestRecord::new(b"k", b"v", *ts)).collect();
    record_batch(&records).expect("batch")
}

#[test]
fn list_offsets_earliest_latest_by_timestamp_and_max_timestamp() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "times", 1);
    // Offsets 0-4 at 1000..1040, 5-9 at 2000..2040, then 10-12 out of order: 3000, 9000, 2500.
    let batches = [
        batch_with_timestamps(&[1000, 1010, 1020, 1030, 1040]),
        batch_with_timestamps(&[2000, 2010, 2020, 2030, 2040]),
        batch_with_timestamps(&[3000, 9000, 2500]),
    ];
    for batch in &batches {
        produce_ok(&mut client, "times", 0, batch);
    }
    // (query, offset, timestamp): by timestamp is the first offset whose timestamp is >= the target.
    let cases = [
        (EARLIEST_TIMESTAMP, 0, -1),
        (LATEST_TIMESTAMP, 13, -1),
        (0, 0, 1000),
        (1000, 0, 1000),
        (1015, 2, 1020),
        (1041, 5, 2000),
        (2040, 9, 2040),
        (2041, 10, 3000),
        (3001, 11, 9000),
        (9000, 11, 9000),
        (MAX_TIMESTAMP, 11, 9000),
        (9001, -1, -1),
    ];
    for (query, offset, timestamp) in cases {
        let answer = list_offset(&mut client, "times", 0, query).expect("ListOffsets");
        assert_eq!(answer.error_code, NONE, "query {query}");
        assert_eq!((answer.offset, answer.timestamp), (offset, timestamp), "query {query}");
    }

    // Earliest and latest at every version.
    for version in 1..=10 {
        for (query, expected) in [(EARLIEST_TIMESTAMP, 0), (LATEST_TIMESTAMP, 13)] {
            let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
                ListOffsetsTopic::default().with_name(topic_name("times")).with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(query),
                ]),
            ]);
            let response =
                client.request(version, &request).unwrap_or_else(|e| panic!("ListOffsets v{version}: {e:#}"));
            let answer = &response.topics[0].partitions[0];
            assert_eq!((answer.error_code, answer.offset), (NONE, expected), "v{version} query {query}");
        }
    }

    assert_eq!(
        list_offset(&mut client, "times", 3, LATEST_TIMESTAMP).expect("ListOffsets").error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        list_offset(&mut client, "no-such", 0, LATEST_TIMESTAMP).expect("ListOffsets").error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

// ---- DescribeConfigs ----

fn describe(
    client: &mut RawClient,
    version: i16,
    resource_type: i8,
    name: &str,
    keys: Option<Vec<&'static str>>,
) -> kafka_protocol::messages::describe_configs_response::DescribeConfigsResult {
    let request = DescribeConfigsRequest::default().with_include_synonyms(true).with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(keys.map(|keys| keys.into_iter().map(StrBytes::from_static_str).collect())),
    ]);
    let response = client.request(version, &request).unwrap_or_else(|e| panic!("DescribeConfigs v{version}: {e:#}"));
    response.results.into_iter().next().expect("one result")
}

#[test]
fn describe_configs_for_a_topic_shows_overrides_and_defaults_with_their_sources() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    let created = create_topic(&mut client, "configured", 1, &[("retention.ms", "3600000")]).expect("CreateTopics");
    assert_eq!(created.error_code, NONE);

    for version in 1..=4 {
        let result = describe(&mut client, version, RESOURCE_TOPIC, "configured", None);
        assert_eq!(result.error_code, NONE, "v{version}");
        assert_eq!(result.resource_name.as_str(), "configured");
        let retention = config(&result.configs, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("3600000"), "v{version}");
        assert_eq!(retention.config_source, SOURCE_TOPIC_CONFIG, "v{version}");
        assert!(!retention.read_only, "v{version}");
        assert!(!retention.is_sensitive, "v{version}");
        let first_synonym = retention.synonyms.first().expect("synonyms");
        assert_eq!(
            (first_synonym.name.as_str(), first_synonym.value.as_deref(), first_synonym.source),
            ("retention.ms", Some("3600000"), SOURCE_TOPIC_CONFIG),
            "v{version}"
        );
        let max_message = config(&result.configs, "max.message.bytes");
        assert_eq!(max_message.value.as_deref(), Some("1048588"), "v{version}");
        assert_eq!(max_message.config_source, SOURCE_DEFAULT_CONFIG, "v{version}");
        if version >= 3 {
            // ConfigType: LONG = 5, INT = 3.
            assert_eq!((retention.config_type, max_message.config_type), (5, 3), "v{version}");
        }
    }

    let only = describe(&mut client, 4, RESOURCE_TOPIC, "configured", Some(vec!["retention.ms"]));
    let names: Vec<&str> = only.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["retention.ms"]);

    assert_eq!(describe(&mut client, 4, RESOURCE_TOPIC, "no-such-topic", None).error_code, UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn describe_configs_for_the_broker_shows_static_and_default_settings() {
    let broker = start_with("num.partitions: 3\n");
    let mut client = broker.client().expect("connect");
    let result = describe(&mut client, 4, RESOURCE_BROKER, "1", None);
    assert_eq!(result.error_code, NONE, "{:?}", result.error_message);
    let partitions = config(&result.configs, "num.partitions");
    assert_eq!((partitions.value.as_deref(), partitions.config_source), (Some("3"), SOURCE_STATIC_BROKER_CONFIG));
    let max_message = config(&result.configs, "message.max.bytes");
    assert_eq!((max_message.value.as_deref(), max_message.config_source), (Some("1048588"), SOURCE_DEFAULT_CONFIG));
    let auto_create = config(&result.configs, "auto.create.topics.enable");
    assert_eq!(auto_create.value.as_deref(), Some("true"));
}

// ---- DeleteTopics ----

#[test]
fn delete_topics_by_name_at_every_version_then_metadata_says_unknown() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    for version in 1..=5 {
        let name = format!("doomed-v{version}");
        create(&mut client, &name, 2);
        let request = DeleteTopicsRequest::default().with_timeout_ms(30_000).with_topic_names(vec![topic_name(&name)]);
        let response = client.request(version, &request).unwrap_or_else(|e| panic!("DeleteTopics v{version}: {e:#}"));
        let result = &response.responses[0];
        assert_eq!(result.error_code, NONE, "v{version}: {:?}", result.error_message);
        assert_eq!(result.name.as_ref().map(|n| n.0.as_str()), Some(name.as_str()), "v{version}");
        assert_eq!(topic_error(&mut client, &name), UNKNOWN_TOPIC_OR_PARTITION, "v{version}");

        let again = client.request(version, &request).expect("DeleteTopics again");
        assert_eq!(again.responses[0].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{version}");
    }
    assert!(user_topics(&mut client).expect("Metadata").is_empty());
}

#[test]
fn delete_topics_v6_by_id_then_the_id_is_unknown() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "by-id", 1);
    let topic = metadata_topic(&mut client, "by-id");
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![DeleteTopicState::default().with_topic_id(topic.topic_id)]);
    let response = client.request(6, &request).expect("DeleteTopics v6");
    let result = &response.responses[0];
    assert_eq!(result.error_code, NONE, "{:?}", result.error_message);
    assert_eq!(result.topic_id, topic.topic_id);
    assert_eq!(result.name.as_ref().map(|n| n.0.as_str()), Some("by-id"));
    assert_eq!(topic_error(&mut client, "by-id"), UNKNOWN_TOPIC_OR_PARTITION);

    let again = client.request(6, &request).expect("DeleteTopics v6 again");
    assert_eq!(again.responses[0].error_code, UNKNOWN_TOPIC_ID);
    let fetched = client.request(13, &fetch_at_version(13, &topic, 0, 0)).expect("Fetch v13");
    assert_eq!(fetched.responses[0].partitions[0].error_code, UNKNOWN_TOPIC_ID);
}

#[test]
fn a_deleted_then_recreated_topic_starts_empty() {
    let broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "phoenix", 1);
    let old = metadata_topic(&mut client, "phoenix");
    for _ in 0..3 {
        produce_ok(&mut client, "phoenix", 0, &simple_batch(4, TS, 32).expect("batch"));
    }
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name("phoenix")))]);
    assert_eq!(client.request(6, &request).expect("DeleteTopics").responses[0].error_code, NONE);

    create(&mut client, "phoenix", 1);
    let new = metadata_topic(&mut client, "phoenix");
    assert_ne!(new.topic_id, old.topic_id);
    let empty = fetch(&mut client, "phoenix", 0, 0).expect("Fetch");
    assert_eq!((empty.error_code, empty.high_watermark), (NONE, 0));
    assert!(records(&empty).is_empty(), "the old topic's data resurfaced");
    assert_eq!(latest_offset(&mut client, "phoenix", 0), 0);

    let batch = simple_batch(2, TS, 8).expect("batch");
    assert_eq!(produce_ok(&mut client, "phoenix", 0, &batch), 0);
    let epoch = leader_epoch(&mut client, "phoenix", 0);
    assert_eq!(records(&fetch(&mut client, "phoenix", 0, 0).expect("Fetch")), as_stored(&batch, 0, epoch));
}

// ---- Persistence ----

#[test]
fn graceful_stop_and_restart_keep_topics_and_bytes() {
    let mut broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "durable", 2);
    let topic = metadata_topic(&mut client, "durable");
    let mut expected: Vec<Vec<u8>> = vec![Vec::new(), Vec::new()];
    let mut next = [0i64, 0];
    for i in 0..10usize {
        let partition = i % 2;
        let batch = simple_batch(1 + i % 4, TS + i64::try_from(i).expect("small"), 50 + i).expect("batch");
        let index = i32::try_from(partition).expect("small");
        assert_eq!(produce_ok(&mut client, "durable", index, &batch), next[partition]);
        let epoch = leader_epoch(&mut client, "durable", index);
        expected[partition].extend_from_slice(&as_stored(&batch, next[partition], epoch));
        next[partition] += i64::try_from(1 + i % 4).expect("small");
    }
    drop(client);

    let status = broker.stop().expect("stop");
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0; log:\n{}", broker.log_tail());
    broker.restart().expect("restart");

    let mut client = broker.client().expect("connect");
    let after = metadata_topic(&mut client, "durable");
    assert_eq!(after.topic_id, topic.topic_id);
    assert_eq!(after.partitions.len(), 2);
    for (index, (stored, end)) in (0i32..).zip(expected.iter().zip(next)) {
        let data = fetch(&mut client, "durable", index, 0).expect("Fetch");
        assert_eq!(data.high_watermark, end, "partition {index}");
        assert_eq!(&records(&data), stored, "partition {index}: the same bytes after restart");
    }
    // Appends continue where they stopped.
    assert_eq!(produce_ok(&mut client, "durable", 0, &simple_batch(1, TS, 1).expect("batch")), next[0]);
}

#[test]
fn kill_9_after_acknowledged_produces_loses_nothing() {
    let mut broker = start();
    let mut client = broker.client().expect("connect");
    create(&mut client, "crash", 3);
    let epochs: Vec<i32> = (0..3).map(|p| leader_epoch(&mut client, "crash", p)).collect();
    let mut expected: Vec<Vec<u8>> = vec![Vec::new(); 3];
    let mut next = [0i64; 3];
    for i in 0..60usize {
        let partition = i % 3;
        let count = 1 + i % 5;
        let batch = simple_batch(count, TS + i64::try_from(i).expect("small"), 10 + 7 * i).expect("batch");
        let index = i32::try_from(partition).expect("small");
        assert_eq!(produce_ok(&mut client, "crash", index, &batch), next[partition]);
        expected[partition].extend_from_slice(&as_stored(&batch, next[partition], epochs[partition]));
        next[partition] += i64::try_from(count).expect("small");
    }

    let status = broker.kill9().expect("kill -9");
    assert!(!status.success());
    broker.restart().expect("restart after kill -9");

    let mut client = broker.client().expect("connect");
    for (index, (stored, end)) in (0i32..).zip(expected.iter().zip(next)) {
        let data = fetch(&mut client, "crash", index, 0).expect("Fetch");
        assert_eq!(data.error_code, NONE);
        assert_eq!(data.high_watermark, end, "partition {index}");
        assert_eq!(&records(&data), stored, "partition {index}: every acknowledged batch");
    }
}
