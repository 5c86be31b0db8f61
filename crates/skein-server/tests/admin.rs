//! Admin APIs at the wire level: DeleteRecords, CreatePartitions, AlterConfigs and IncrementalAlterConfigs (topic
//! configs persisted across a restart; broker settings refused), DescribeCluster, DescribeLogDirs,
//! ListPartitionReassignments, ElectLeaders and DescribeProducers.

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::{
    AlterConfigsRequest, CreatePartitionsRequest, DescribeClusterRequest, DescribeConfigsRequest,
    DescribeLogDirsRequest, DescribeProducersRequest, ElectLeadersRequest, IncrementalAlterConfigsRequest,
    ListPartitionReassignmentsRequest,
};
use kafka_protocol::protocol::StrBytes;
use skein_test_support::records::simple_batch;
use skein_test_support::requests::{create_topic, delete_records, fetch, list_offset, metadata, produce, topic_name};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const ELECTION_NOT_NEEDED: i16 = 84;
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn str(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// A topic config's (value, read-only-false) as DescribeConfigs reports it.
fn topic_config(client: &mut RawClient, topic: &str, name: &str) -> String {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(str(topic))
            .with_configuration_keys(Some(vec![str(name)])),
    ]);
    let response = client.request(4, &request).expect("DescribeConfigs");
    response.results[0].configs[0].value.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

#[test]
fn delete_records_moves_the_log_start_and_create_partitions_grows_a_topic() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "t", 1, &[]).expect("create").error_code, NONE);
    for _ in 0..4 {
        let batch = simple_batch(3, 1_700_000_000_000, 10).expect("batch");
        assert_eq!(produce(&mut client, "t", 0, batch, -1).expect("produce").error_code, NONE);
    }
    // Offset 4 is inside the second batch (3..5): the log now starts at 4.
    assert_eq!(delete_records(&mut client, "t", 4).expect("DeleteRecords"), (NONE, 4));
    assert_eq!(list_offset(&mut client, "t", 0, -2).expect("earliest").offset, 4);
    assert_eq!(fetch(&mut client, "t", 0, 2).expect("fetch").error_code, OFFSET_OUT_OF_RANGE);
    let from_start = fetch(&mut client, "t", 0, 4).expect("fetch");
    assert_eq!(from_start.error_code, NONE);
    assert_eq!(from_start.log_start_offset, 4);
    // Earlier offsets change nothing; beyond the high watermark is out of range; -1 means the high watermark.
    assert_eq!(delete_records(&mut client, "t", 1).expect("DeleteRecords"), (NONE, 4));
    assert_eq!(delete_records(&mut client, "t", 99).expect("DeleteRecords").0, OFFSET_OUT_OF_RANGE);
    assert_eq!(delete_records(&mut client, "t", -1).expect("DeleteRecords"), (NONE, 12));
    assert_eq!(delete_records(&mut client, "nope", 0).expect("DeleteRecords").0, UNKNOWN_TOPIC_OR_PARTITION);

    let grow = |count| {
        CreatePartitionsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![CreatePartitionsTopic::default().with_name(topic_name("t")).with_count(count)])
    };
    assert_eq!(client.request(3, &grow(3)).expect("CreatePartitions").results[0].error_code, NONE);
    assert_eq!(client.request(3, &grow(2)).expect("CreatePartitions").results[0].error_code, INVALID_PARTITIONS);
    assert_eq!(metadata(&mut client, &["t"], false).expect("metadata").topics[0].partitions.len(), 3);
    let batch = simple_batch(2, 1_700_000_000_000, 10).expect("batch");
    assert_eq!(produce(&mut client, "t", 2, batch, -1).expect("produce new partition").error_code, NONE);
    // The log start and the new partitions survive a restart.
    drop(client);
    let mut broker = broker;
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    assert_eq!(list_offset(&mut client, "t", 0, -2).expect("earliest").offset, 12);
    assert_eq!(list_offset(&mut client, "t", 2, -1).expect("latest").offset, 2);
}

#[test]
fn topic_configs_are_altered_validated_and_persisted() {
    let mut broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "c", 1, &[("retention.ms", "1000")]).expect("create").error_code, NONE);

    let alter = |op: i8, name: &str, value: Option<&str>| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental::AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(str("c"))
                .with_configs(vec![
                    incremental::AlterableConfig::default()
                        .with_name(str(name))
                        .with_config_operation(op)
                        .with_value(value.map(str)),
                ]),
        ])
    };
    let code = |client: &mut RawClient, request| {
        client.request::<IncrementalAlterConfigsRequest>(1, &request).expect("IncrementalAlterConfigs").responses[0]
            .error_code
    };
    assert_eq!(code(&mut client, alter(0, "max.message.bytes", Some("2048"))), NONE);
    assert_eq!(code(&mut client, alter(2, "cleanup.policy", Some("compact"))), NONE);
    assert_eq!(code(&mut client, alter(1, "retention.ms", None)), NONE);
    assert_eq!(code(&mut client, alter(0, "retention.ms", Some("abc"))), INVALID_CONFIG);
    assert_eq!(code(&mut client, alter(0, "no.such.config", Some("1"))), INVALID_CONFIG);
    assert_eq!(code(&mut client, alter(2, "retention.ms", Some("5"))), INVALID_CONFIG);
    assert_eq!(topic_config(&mut client, "c", "cleanup.policy"), "delete,compact");
    assert_eq!(topic_config(&mut client, "c", "max.message.bytes"), "2048");
    assert_eq!(topic_config(&mut client, "c", "retention.ms"), "604800000", "back to the broker default");
    // The new max.message.bytes applies to produce at once.
    let big = simple_batch(1, 1_700_000_000_000, 4_000).expect("batch");
    assert_eq!(produce(&mut client, "c", 0, big, -1).expect("produce").error_code, 10);

    // AlterConfigs replaces all overrides; a broker setting read only at start-up is refused.
    let replace = AlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default().with_resource_type(TOPIC).with_resource_name(str("c")).with_configs(vec![
            AlterableConfig::default().with_name(str("retention.ms")).with_value(Some(str("60000"))),
        ]),
        AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(str("1"))
            .with_configs(vec![AlterableConfig::default().with_name(str("node.id")).with_value(Some(str("2")))]),
    ]);
    let response = client.request(2, &replace).expect("AlterConfigs");
    assert_eq!((response.responses[0].error_code, response.responses[1].error_code), (NONE, INVALID_REQUEST));
    drop(client);
    broker.restart().expect("restart");
    let mut client = broker.client().expect("reconnect");
    assert_eq!(topic_config(&mut client, "c", "retention.ms"), "60000");
    assert_eq!(topic_config(&mut client, "c", "cleanup.policy"), "delete", "replaced, not merged");
}

#[test]
fn cluster_log_dirs_reassignments_elections_and_producers() {
    let broker = TestBroker::start().expect("start skein");
    let mut client = broker.client().expect("connect");
    assert_eq!(create_topic(&mut client, "d", 2, &[]).expect("create").error_code, NONE);
    let batch = simple_batch(5, 1_700_000_000_000, 100).expect("batch");
    let size = batch.len() as i64;
    assert_eq!(produce(&mut client, "d", 0, batch, -1).expect("produce").error_code, NONE);

    let cluster = client.request(1, &DescribeClusterRequest::default().with_endpoint_type(1)).expect("DescribeCluster");
    assert_eq!((cluster.error_code, cluster.controller_id.0, cluster.brokers.len()), (NONE, 1, 1));
    assert_eq!(cluster.brokers[0].port, i32::from(broker.addr().port()));
    assert!(!cluster.cluster_id.is_empty());

    let dirs = client.request(4, &DescribeLogDirsRequest::default().with_topics(None)).expect("DescribeLogDirs");
    let dir = &dirs.results[0];
    assert_eq!(dir.error_code, NONE);
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes);
    let topic = dir.topics.iter().find(|t| t.name.0.as_str() == "d").expect("topic d");
    let sizes: Vec<(i32, i64)> = topic.partitions.iter().map(|p| (p.partition_index, p.partition_size)).collect();
    assert_eq!(sizes.len(), 2);
    assert_eq!(sizes[0].1, size, "the stored batch's bytes: {sizes:?}");
    assert_eq!(sizes[1].1, 0);

    let reassignments = client
        .request(0, &ListPartitionReassignmentsRequest::default().with_topics(None))
        .expect("ListPartitionReassignments");
    assert_eq!((reassignments.error_code, reassignments.topics.len()), (NONE, 0));

    let elect = ElectLeadersRequest::default().with_topic_partitions(Some(vec![
        TopicPartitions::default().with_topic(topic_name("d")).with_partitions(vec![0, 7]),
    ]));
    let elected = client.request(2, &elect).expect("ElectLeaders");
    let codes: Vec<i16> = elected.replica_election_results[0].partition_result.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, vec![ELECTION_NOT_NEEDED, UNKNOWN_TOPIC_OR_PARTITION]);

    let producers = DescribeProducersRequest::default()
        .with_topics(vec![TopicRequest::default().with_name(topic_name("d")).with_partition_indexes(vec![0])]);
    let described = client.request(0, &producers).expect("DescribeProducers");
    let partition = &described.topics[0].partitions[0];
    assert_eq!(partition.error_code, NONE);
    assert!(partition.active_producers.is_empty(), "a producer without a producer id is not tracked");
}
