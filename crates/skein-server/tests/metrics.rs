//! `/metrics` after real traffic: request, error and per-topic counters move by exactly what was sent; partition,
//! group and storage gauges show the broker's state; `metrics.partition.level: false` drops the per-partition
//! series. Also `/health`, `/ready` and an unknown path.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::{DeleteTopicsRequest, DescribeConfigsRequest, GroupId, OffsetCommitRequest};
use kafka_protocol::protocol::StrBytes;
use skein_test_support::requests::{create_topic, fetch, produce, topic_name};
use skein_test_support::{RawClient, TestBroker, simple_batch};

/// `__consumer_offsets` partitions (`offsets.topic.num.partitions`'s default): counted with the topics' own.
const GROUP_STATE_PARTITIONS: f64 = 50.0;

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// The versions the request helpers of `skein-test-support` send.
const PRODUCE_VERSION: &str = "11";
const FETCH_VERSION: &str = "12";
const OFFSET_COMMIT_VERSION: i16 = 9;
const RESOURCE_BROKER: i8 = 4;

/// One scrape of `/metrics`: every sample as (metric name, labels, value).
struct Scrape {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    fn take(broker: &TestBroker) -> Scrape {
        let (status, text) = broker.http_get("/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "{text}");
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("malformed sample {line:?}"));
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("malformed value in {line:?}"));
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
                    None => (series, BTreeMap::new()),
                };
                (name.to_string(), labels, value)
            })
            .collect();
        Scrape { text, samples }
    }

    /// The value of the series `name{labels}`, if the scrape has it.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.iter().find(|(n, l, _)| n == name && *l == wanted).map(|(_, _, value)| *value)
    }

    /// Like [`get`](Self::get), for a series that must be there.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{}", self.text))
    }

    /// How much a series grew since `before` (a series not there before counts from 0).
    fn growth(&self, before: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels) - before.get(name, labels).unwrap_or(0.0)
    }

    /// Whether any series of the metric is there.
    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }

    /// Whether any sample of `name` carries the label `topic="<topic>"`.
    fn has_for_topic(&self, name: &str, topic: &str) -> bool {
        self.samples.iter().any(|(n, labels, _)| n == name && labels.get("topic").is_some_and(|t| t == topic))
    }
}

/// `a="x",b="y"` (label values in these tests hold no commas or quotes).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("malformed label {pair:?}"));
            (key.to_string(), value.trim_matches('"').to_string())
        })
        .collect()
}

/// Commits `offset` for partition 0 of `topic` as a group outside the group protocol (generation -1).
fn commit(client: &mut RawClient, group_id: &str, topic: &str, offset: i64) {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group_id.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(vec![
            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset),
        ])]);
    let response = client.request(OFFSET_COMMIT_VERSION, &request).expect("OffsetCommit");
    assert_eq!(response.topics[0].partitions[0].error_code, NONE);
}

/// Produces batches of `counts` records to partition 0 of `topic`; returns the batches' total size.
fn produce_batches(client: &mut RawClient, topic: &str, counts: &[usize]) -> usize {
    let mut bytes = 0;
    for (i, count) in counts.iter().enumerate() {
        let batch: Bytes =
            simple_batch(*count, 1_700_000_000_000 + i64::try_from(i).expect("small"), 40).expect("batch");
        bytes += batch.len();
        let answer = produce(client, topic, 0, batch, -1).expect("Produce");
        assert_eq!(answer.error_code, NONE, "{:?}", answer.error_message);
    }
    bytes
}

#[test]
fn counters_and_gauges_follow_real_traffic() {
    let broker = TestBroker::start().expect("start skein");
    let topic = "metered";
    let topic_label = [("topic", topic)];
    let mut client = broker.client().expect("connect");
    let before = Scrape::take(&broker);

    assert_eq!(create_topic(&mut client, topic, 2, &[]).expect("CreateTopics").error_code, NONE);
    // 3 + 5 + 7 = 15 records in three Produce requests, then one to a partition that does not exist.
    let bytes_in = produce_batches(&mut client, topic, &[3, 5, 7]);
    let refused = produce(&mut client, topic, 9, simple_batch(2, 0, 10).expect("batch"), -1).expect("Produce");
    assert_eq!(refused.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    // One fetch returns every batch (stored batches are as long as the ones sent); one is out of range.
    let fetched = fetch(&mut client, topic, 0, 0).expect("Fetch");
    assert_eq!(fetched.error_code, NONE);
    assert_eq!(fetched.records.as_ref().map(Bytes::len), Some(bytes_in));
    assert_eq!(fetch(&mut client, topic, 0, 100).expect("Fetch").error_code, OFFSET_OUT_OF_RANGE);
    commit(&mut client, "billing", topic, 10);

    let after = Scrape::take(&broker);
    let produce_v11 = [("api", "Produce"), ("version", PRODUCE_VERSION)];
    assert_eq!(after.growth(&before, "skein_requests_total", &produce_v11), 4.0);
    assert_eq!(after.growth(&before, "skein_requests_total", &[("api", "Fetch"), ("version", FETCH_VERSION)]), 2.0);
    assert_eq!(after.growth(&before, "skein_requests_total", &[("api", "OffsetCommit"), ("version", "9")]), 1.0);
    assert_eq!(after.growth(&before, "skein_request_duration_seconds_count", &[("api", "Produce")]), 4.0);
    let errors =
        |api: &str, error: &str| after.growth(&before, "skein_request_errors_total", &[("api", api), ("error", error)]);
    assert_eq!(errors("Produce", "UNKNOWN_TOPIC_OR_PARTITION"), 1.0);
    assert_eq!(errors("Fetch", "OFFSET_OUT_OF_RANGE"), 1.0);
    assert_eq!(after.get("skein_request_errors_total", &[("api", "OffsetCommit"), ("error", "NONE")]), None);

    assert_eq!(after.value("skein_topic_messages_in_total", &topic_label), 15.0);
    assert_eq!(after.value("skein_topic_bytes_in_total", &topic_label), bytes_in as f64);
    assert_eq!(after.value("skein_topic_bytes_out_total", &topic_label), bytes_in as f64);

    let partition = |index: &'static str| [("topic", topic), ("partition", index)];
    assert_eq!(after.value("skein_partition_high_watermark", &partition("0")), 15.0);
    assert_eq!(after.value("skein_partition_high_watermark", &partition("1")), 0.0);
    assert_eq!(after.value("skein_partition_log_start_offset", &partition("0")), 0.0);
    let group_partition = [("group", "billing"), ("topic", topic), ("partition", "0")];
    assert_eq!(after.value("skein_group_committed_offset", &group_partition), 10.0);
    assert_eq!(after.value("skein_group_lag", &group_partition), 5.0);
    assert_eq!(after.value("skein_groups", &[("type", "classic"), ("state", "Empty")]), 1.0);
    assert_eq!(after.value("skein_group_members", &[("type", "classic")]), 0.0);

    // With the internal topic holding group state, `__consumer_offsets`, and its partitions.
    assert_eq!(after.value("skein_topics", &[]), 2.0);
    assert_eq!(after.value("skein_partitions", &[]), 2.0 + GROUP_STATE_PARTITIONS);
    assert_eq!(after.value("skein_producer_states", &[]), 0.0);
    assert_eq!(after.value("skein_transactions_ongoing", &[]), 0.0);
    assert_eq!(after.value("skein_connections_active", &[]), 1.0);
    assert!(after.value("skein_storage_memtable_bytes", &[]) > 0.0);
    assert_eq!(after.value("skein_storage_write_stopped", &[]), 0.0);
    for name in [
        "skein_storage_live_sst_files_bytes",
        "skein_storage_sst_files_bytes",
        "skein_storage_live_blob_files_bytes",
        "skein_storage_blob_files_bytes",
        "skein_storage_pending_compaction_bytes",
        "skein_storage_delayed_write_rate_bytes_per_second",
        "skein_storage_block_cache_usage_bytes",
    ] {
        assert!(after.has(name), "no {name} in\n{}", after.text);
    }
    for line in ["# TYPE skein_requests_total counter", "# TYPE skein_request_duration_seconds histogram"] {
        assert!(after.text.lines().any(|l| l == line), "no {line:?} in\n{}", after.text);
    }

    // A deleted topic leaves no series behind (its committed offsets go with it).
    let delete = DeleteTopicsRequest::default().with_topic_names(vec![topic_name(topic)]).with_timeout_ms(30_000);
    assert_eq!(client.request(5, &delete).expect("DeleteTopics").responses[0].error_code, NONE);
    let deleted = Scrape::take(&broker);
    for name in ["skein_topic_bytes_in_total", "skein_partition_high_watermark", "skein_group_committed_offset"] {
        assert!(!deleted.has_for_topic(name, topic), "{name} outlived the topic:\n{}", deleted.text);
    }
    assert_eq!(deleted.value("skein_topics", &[]), 1.0, "only __consumer_offsets is left");
}

#[test]
fn partition_level_off_keeps_only_topic_and_broker_series() {
    let broker = TestBroker::start_with_yaml("metrics.partition.level: false\n").expect("start skein");
    let topic = "coarse";
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, topic, 3, &[]).expect("CreateTopics").error_code, NONE);
    produce_batches(&mut client, topic, &[4]);
    commit(&mut client, "reporting", topic, 2);

    let scrape = Scrape::take(&broker);
    for name in [
        "skein_partition_high_watermark",
        "skein_partition_log_start_offset",
        "skein_group_committed_offset",
        "skein_group_lag",
    ] {
        assert!(!scrape.has(name), "{name} is there with metrics.partition.level: false:\n{}", scrape.text);
    }
    assert_eq!(scrape.value("skein_topic_messages_in_total", &[("topic", topic)]), 4.0);
    assert_eq!(scrape.value("skein_partitions", &[]), 3.0 + GROUP_STATE_PARTITIONS);
    assert_eq!(scrape.value("skein_groups", &[("type", "classic"), ("state", "Empty")]), 1.0);

    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_BROKER)
            .with_resource_name(StrBytes::from_static_str("1"))
            .with_configuration_keys(Some(vec![StrBytes::from_static_str("metrics.partition.level")])),
    ]);
    let described = client.request(4, &request).expect("DescribeConfigs");
    let setting = &described.results[0].configs[0];
    assert_eq!((setting.name.as_str(), setting.value.as_deref()), ("metrics.partition.level", Some("false")));
}

#[test]
fn health_and_readiness_answer_and_unknown_paths_are_not_found() {
    let broker = TestBroker::start().expect("start skein");
    for path in ["/health", "/ready"] {
        assert_eq!(broker.http_get(path).expect("GET"), (200, "ok\n".to_string()), "{path}");
    }
    assert_eq!(broker.http_get("/nope").expect("GET").0, 404);
}
