//! Two things Kafka 4 does that clients rely on, checked on the wire against the real binary:
//! - the ACL APIs without an authorizer: DescribeAcls, CreateAcls and DeleteAcls are served and answered
//!   SECURITY_DISABLED (54), at the top level or per creation / per filter, with Kafka's message;
//! - a compacted topic refuses a batch holding a record without a key: INVALID_RECORD (87) for the partition, a
//!   KIP-467 record error per keyless record (its index in the batch), Kafka's messages, and nothing written;
//! - a CreateTime topic refuses a batch holding a record whose timestamp is out of the topic's bounds
//!   (`message.timestamp.before.max.ms`, `message.timestamp.after.max.ms`): INVALID_TIMESTAMP (32) with a record
//!   error per such record.

use bytes::Bytes;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use skein_test_support::records::{TestRecord, record_batch, record_batch_compressed};
use skein_test_support::requests::{api_versions, create_topic, fetch, produce};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const SECURITY_DISABLED: i16 = 54;
const INVALID_RECORD: i16 = 87;
/// Kafka 4.3's messages: DescribeAcls words it differently from CreateAcls and DeleteAcls.
const NO_AUTHORIZER_DESCRIBE: &str = "No Authorizer is configured on the broker";
const NO_AUTHORIZER: &str = "No Authorizer is configured.";
/// The ACL API versions Kafka 4 serves (v0 was removed in 4.0), which Skein serves too.
const ACL_VERSIONS: std::ops::RangeInclusive<i16> = 1..=3;

/// ACL enum codes (Kafka's `ResourceType`, `PatternType`, `AclOperation`, `AclPermissionType`).
const ANY: i8 = 1;
const TOPIC: i8 = 2;
const LITERAL: i8 = 3;
const READ: i8 = 3;
const ALLOW: i8 = 3;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn acl_creation(topic: &str) -> AclCreation {
    AclCreation::default()
        .with_resource_type(TOPIC)
        .with_resource_name(text(topic))
        .with_resource_pattern_type(LITERAL)
        .with_principal(text("User:alice"))
        .with_host(text("*"))
        .with_operation(READ)
        .with_permission_type(ALLOW)
}

fn match_any_filter() -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(ANY)
        .with_pattern_type_filter(ANY)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

#[test]
fn acl_apis_are_served_and_answer_security_disabled_without_an_authorizer() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");

    let listed = api_versions(&mut client, 3).expect("api versions");
    for key in [ApiKey::DescribeAcls, ApiKey::CreateAcls, ApiKey::DeleteAcls] {
        let range = listed.api_keys.iter().find(|k| k.api_key == key as i16);
        let range = range.map(|k| (k.min_version, k.max_version));
        assert_eq!(range, Some((*ACL_VERSIONS.start(), *ACL_VERSIONS.end())), "{key:?} in ApiVersions");
    }

    for version in ACL_VERSIONS {
        let describe = DescribeAclsRequest::default()
            .with_resource_type_filter(ANY)
            .with_pattern_type_filter(ANY)
            .with_operation(ANY)
            .with_permission_type(ANY);
        let response = client.request(version, &describe).expect("describe acls");
        assert_eq!(response.error_code, SECURITY_DISABLED, "DescribeAcls v{version}");
        assert_eq!(response.error_message.as_deref(), Some(NO_AUTHORIZER_DESCRIBE), "DescribeAcls v{version}");
        assert!(response.resources.is_empty(), "DescribeAcls v{version}");

        // One result per creation, each refused; none for a request with no creations.
        for count in [0, 1, 3] {
            let creations = (0..count).map(|i| acl_creation(&format!("topic-{i}"))).collect();
            let response =
                client.request(version, &CreateAclsRequest::default().with_creations(creations)).expect("create acls");
            assert_eq!(response.results.len(), count, "CreateAcls v{version}");
            for result in &response.results {
                assert_eq!(result.error_code, SECURITY_DISABLED, "CreateAcls v{version}");
                assert_eq!(result.error_message.as_deref(), Some(NO_AUTHORIZER), "CreateAcls v{version}");
            }
        }

        // One result per filter, each refused, matching nothing.
        let filters = vec![match_any_filter(), match_any_filter().with_resource_name_filter(Some(text("orders")))];
        let response =
            client.request(version, &DeleteAclsRequest::default().with_filters(filters)).expect("delete acls");
        assert_eq!(response.filter_results.len(), 2, "DeleteAcls v{version}");
        for result in &response.filter_results {
            assert_eq!(result.error_code, SECURITY_DISABLED, "DeleteAcls v{version}");
            assert_eq!(result.error_message.as_deref(), Some(NO_AUTHORIZER), "DeleteAcls v{version}");
            assert!(result.matching_acls.is_empty(), "DeleteAcls v{version}");
        }
    }

    // The connection is still served after them.
    assert_eq!(api_versions(&mut client, 3).expect("api versions").error_code, NONE);
}

const TIMESTAMP: i64 = 1_700_000_000_000;

fn keyed(key: &str, value: &str) -> TestRecord {
    TestRecord::new(key.as_bytes(), value.as_bytes(), TIMESTAMP)
}

fn keyless(value: &str) -> TestRecord {
    TestRecord {
        key: None,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        timestamp: TIMESTAMP,
        headers: vec![],
    }
}

/// (high watermark, offsets of the records stored) of partition 0.
fn stored(client: &mut RawClient, topic: &str) -> (i64, Vec<i64>) {
    let partition = fetch(client, topic, 0, 0).expect("fetch");
    assert_eq!(partition.error_code, NONE);
    let mut records = partition.records.unwrap_or_default();
    let mut offsets = Vec::new();
    while !records.is_empty() {
        let set = RecordBatchDecoder::decode(&mut records).expect("decode");
        offsets.extend(set.records.iter().map(|record| record.offset));
    }
    (partition.high_watermark, offsets)
}

/// Asserts a produce answer is Kafka's refusal of the keyless records at `indexes` of a batch to `topic`-0.
fn assert_refused_keyless(response: &PartitionProduceResponse, topic: &str, indexes: &[i32]) {
    let message = format!("Compacted topic cannot accept message without key in topic partition {topic}-0");
    assert_eq!(response.error_code, INVALID_RECORD, "{response:?}");
    assert_eq!(response.base_offset, -1, "{response:?}");
    assert_eq!(response.log_append_time_ms, -1, "{response:?}");
    assert_eq!(response.log_start_offset, 0, "{response:?}");
    let record_errors: Vec<(i32, Option<&str>)> =
        response.record_errors.iter().map(|e| (e.batch_index, e.batch_index_error_message.as_deref())).collect();
    let expected: Vec<(i32, Option<&str>)> = indexes.iter().map(|index| (*index, Some(message.as_str()))).collect();
    assert_eq!(record_errors, expected);
    let shown: Vec<String> =
        indexes.iter().take(3).map(|index| format!("RecordError(batchIndex={index}, message='{message}')")).collect();
    let error_message = format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three \
         errors at most: [{}]",
        indexes.len(),
        shown.join(", ")
    );
    assert_eq!(response.error_message.as_deref(), Some(error_message.as_str()));
}

#[test]
fn a_compacted_topic_refuses_a_batch_with_records_without_a_key() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    for (topic, policy) in [("compacted", "compact"), ("compacted-and-deleted", "compact,delete")] {
        let created = create_topic(&mut client, topic, 1, &[("cleanup.policy", policy)]).expect("create");
        assert_eq!(created.error_code, NONE, "{topic}");

        let first = record_batch(&[keyed("k0", "v0"), keyed("k1", "v1")]).expect("batch");
        let answer = produce(&mut client, topic, 0, first, -1).expect("produce");
        assert_eq!((answer.error_code, answer.base_offset), (NONE, 0), "{topic}: {answer:?}");
        assert_eq!(stored(&mut client, topic), (2, vec![0, 1]));

        // Records 0 and 2 have no key: both are reported, and the keyed record 1 is not written either.
        let mixed = record_batch(&[keyless("a"), keyed("k2", "b"), keyless("c")]).expect("batch");
        let answer = produce(&mut client, topic, 0, mixed, -1).expect("produce");
        assert_refused_keyless(&answer, topic, &[0, 2]);
        // A compressed batch is read record by record all the same; five keyless records, three named.
        let records: Vec<TestRecord> =
            (0..6).map(|i| if i == 3 { keyed("k3", "v") } else { keyless(&format!("value-{i}")) }).collect();
        let compressed = record_batch_compressed(&records, Compression::Gzip).expect("batch");
        let answer = produce(&mut client, topic, 0, compressed, 1).expect("produce");
        assert_refused_keyless(&answer, topic, &[0, 1, 2, 4, 5]);
        assert_eq!(stored(&mut client, topic), (2, vec![0, 1]), "{topic}: nothing of the refused batches written");

        // Keyed records (a null value, a tombstone, included) still go in, right after the first batch.
        let tombstone = TestRecord { value: None, ..keyed("k0", "") };
        let keyed_batch = record_batch(&[keyed("k2", "v2"), tombstone]).expect("batch");
        let answer = produce(&mut client, topic, 0, keyed_batch, -1).expect("produce");
        assert_eq!((answer.error_code, answer.base_offset), (NONE, 2), "{topic}: {answer:?}");
        assert!(answer.record_errors.is_empty() && answer.error_message.is_none(), "{answer:?}");
        assert_eq!(stored(&mut client, topic), (4, vec![0, 1, 2, 3]));
    }
}

#[test]
fn a_topic_that_is_not_compacted_takes_records_without_a_key() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "deleted", 1, &[]).expect("create").error_code, NONE);
    let batch = record_batch(&[keyless("a"), keyed("k", "b"), keyless("c")]).expect("batch");
    let answer = produce(&mut client, "deleted", 0, batch, -1).expect("produce");
    assert_eq!((answer.error_code, answer.base_offset), (NONE, 0), "{answer:?}");
    assert!(answer.record_errors.is_empty(), "{answer:?}");
    assert_eq!(stored(&mut client, "deleted"), (3, vec![0, 1, 2]));
}

const INVALID_TIMESTAMP: i16 = 32;

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since_epoch.as_millis()).expect("milliseconds fit")
}

/// The (index, timestamp) of each record error of an INVALID_TIMESTAMP refusal, checking Kafka's messages.
fn refused_timestamps(response: &PartitionProduceResponse) -> Vec<(i32, i64)> {
    assert_eq!(response.error_code, INVALID_TIMESTAMP, "{response:?}");
    assert_eq!(response.base_offset, -1, "{response:?}");
    assert_eq!(
        response.error_message.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp"),
        "{response:?}"
    );
    response
        .record_errors
        .iter()
        .map(|error| {
            let message = error.batch_index_error_message.as_deref().unwrap_or_default();
            let timestamp = message
                .strip_prefix("Timestamp ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|text| text.parse::<i64>().ok())
                .unwrap_or_else(|| panic!("unexpected record error message {message:?}"));
            let offset = format!(
                " of message with offset {} is out of range. The timestamp should be within [",
                error.batch_index
            );
            assert!(message.contains(&offset), "{message:?}");
            (error.batch_index, timestamp)
        })
        .collect()
}

#[test]
fn records_with_timestamps_out_of_the_topics_bounds_are_refused_with_their_batch() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    let now = now_ms();
    let hour = 3_600_000;
    let at = |timestamp: i64, key: &str| TestRecord::new(key.as_bytes(), b"v", timestamp);

    // The defaults: any past timestamp, at most one hour ahead.
    assert_eq!(create_topic(&mut client, "defaults", 1, &[]).expect("create").error_code, NONE);
    let batch = record_batch(&[at(now, "a"), at(now + 2 * hour, "b"), at(1_000, "c"), at(now + 3 * hour, "d")]);
    let answer = produce(&mut client, "defaults", 0, batch.expect("batch"), -1).expect("produce");
    assert_eq!(refused_timestamps(&answer), vec![(1, now + 2 * hour), (3, now + 3 * hour)]);
    // The bounds are Kafka's: [now - Long.MAX_VALUE, now + one hour] from the broker's clock, in Java's arithmetic.
    let message = answer.record_errors[0].batch_index_error_message.as_deref().unwrap_or_default();
    let bounds: Vec<i64> = message
        .rsplit_once('[')
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .map(|range| range.split(", ").filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    assert_eq!(bounds.len(), 2, "{message}");
    let broker_now = bounds[1] - hour;
    assert_eq!(bounds[0], broker_now.wrapping_sub(i64::MAX), "{message}");
    assert!((broker_now - now).abs() < 60_000, "{message}");
    assert_eq!(stored(&mut client, "defaults"), (0, vec![]), "nothing of the refused batch written");
    let batch = record_batch(&[at(now, "a"), at(1_000, "c"), at(now + hour / 2, "d")]).expect("batch");
    let answer = produce(&mut client, "defaults", 0, batch, -1).expect("produce");
    assert_eq!((answer.error_code, answer.base_offset), (NONE, 0), "{answer:?}");

    // A topic's own bounds, compressed batches too.
    let configs = [("message.timestamp.before.max.ms", "60000"), ("message.timestamp.after.max.ms", "0")];
    assert_eq!(create_topic(&mut client, "strict", 1, &configs).expect("create").error_code, NONE);
    let records = [at(now - hour, "old"), at(now - 1_000, "fine"), at(now + 60_000, "ahead")];
    let batch = record_batch_compressed(&records, Compression::Lz4).expect("batch");
    let answer = produce(&mut client, "strict", 0, batch, -1).expect("produce");
    assert_eq!(refused_timestamps(&answer), vec![(0, now - hour), (2, now + 60_000)]);

    // LogAppendTime: the broker stamps the batch, its timestamps are not checked.
    let configs = [("message.timestamp.type", "LogAppendTime")];
    assert_eq!(create_topic(&mut client, "appended", 1, &configs).expect("create").error_code, NONE);
    let batch = record_batch(&[at(now + 100 * hour, "far")]).expect("batch");
    let answer = produce(&mut client, "appended", 0, batch, -1).expect("produce");
    assert_eq!((answer.error_code, answer.base_offset), (NONE, 0), "{answer:?}");

    // On a compacted topic, a keyless record is reported for its key, the others for their timestamps, and one
    // timestamp error makes the batch's error INVALID_TIMESTAMP, as in Kafka.
    let configs = [("cleanup.policy", "compact")];
    assert_eq!(create_topic(&mut client, "compacted-times", 1, &configs).expect("create").error_code, NONE);
    let mut no_key = at(now + 5 * hour, "x");
    no_key.key = None;
    let batch = record_batch(&[no_key, at(now + 5 * hour, "late")]).expect("batch");
    let answer = produce(&mut client, "compacted-times", 0, batch, -1).expect("produce");
    assert_eq!(answer.error_code, INVALID_TIMESTAMP, "{answer:?}");
    let indexes: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, vec![0, 1]);
    assert!(
        answer.record_errors[0]
            .batch_index_error_message
            .as_deref()
            .is_some_and(|m| m.starts_with("Compacted topic cannot accept message without key")),
        "{answer:?}"
    );
}
