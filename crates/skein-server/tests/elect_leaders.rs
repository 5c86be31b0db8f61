//! ElectLeaders over the wire on a three-node cluster: the preferred replica of a partition is killed, so
//! leadership moves; once it is back in the ISR, a PREFERRED election gives it the partition back (in a new
//! leader epoch, on every broker), and a second one is not needed.

use anyhow::Context;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use skein_test_support::cluster::{create_topic_in_sync, index_of, placement, wait_everywhere};
use skein_test_support::records::simple_batch;
use skein_test_support::requests::{produce_request, topic_name};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;
const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
const ELECTION_NOT_NEEDED: i16 = 84;

/// Kafka's election types.
const PREFERRED: i8 = 0;
/// ElectLeaders v2 is the newest; v0 has no election type (preferred).
const ELECT_LEADERS_VERSION: i16 = 2;
const PRODUCE_VERSION: i16 = 9;

/// Followers leave the ISR after 2 s behind; no automatic rebalance, so only ElectLeaders moves leadership
/// back. `start_cluster` sets a 6 s broker session itself.
const CLUSTER_YAML: &str = "replica.lag.time.max.ms: 2000\nauto.leader.rebalance.enable: false\n";
const TOPIC: &str = "elect";

fn elect(
    client: &mut RawClient,
    version: i16,
    partitions: Option<Vec<(&str, i32)>>,
) -> anyhow::Result<ElectLeadersResponse> {
    let topics = partitions.map(|named| {
        named
            .into_iter()
            .map(|(topic, partition)| {
                TopicPartitions::default().with_topic(topic_name(topic)).with_partitions(vec![partition])
            })
            .collect()
    });
    let request = ElectLeadersRequest::default()
        .with_election_type(PREFERRED)
        .with_topic_partitions(topics)
        .with_timeout_ms(30_000);
    client.request(version, &request)
}

/// The error code of partition 0 of [`TOPIC`] in an ElectLeaders answer.
fn elect_partition_0(client: &mut RawClient) -> anyhow::Result<i16> {
    let response = elect(client, ELECT_LEADERS_VERSION, Some(vec![(TOPIC, 0)]))?;
    anyhow::ensure!(response.error_code == NONE, "ElectLeaders failed: {response:?}");
    let result = response.replica_election_results.first().context("no topic result")?;
    Ok(result.partition_result.first().context("no partition result")?.error_code)
}

#[test]
fn preferred_election_moves_leadership_back_to_the_restarted_first_replica() -> anyhow::Result<()> {
    let mut nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let mut client = nodes[0].client()?;
    let creatable =
        CreatableTopic::default().with_name(topic_name(TOPIC)).with_num_partitions(1).with_replication_factor(3);
    // Waits until every broker shows it led, with its three replicas in sync.
    let start = create_topic_in_sync(&nodes, creatable)?.remove(0);
    let preferred = start.replicas[0];
    assert_eq!(start.leader, preferred, "a new partition is led by its first replica: {start:?}");
    assert_eq!(elect_partition_0(&mut client)?, ELECTION_NOT_NEEDED);

    // The preferred replica dies: after its session runs out another ISR replica leads.
    let preferred_index = index_of(&nodes, preferred);
    nodes[preferred_index].kill9()?;
    let survivors: Vec<&TestBroker> = nodes.iter().filter(|n| n.node_id() != preferred).collect();
    let failed_over = wait_everywhere(&survivors, TOPIC, 0, "a new leader", |p| {
        p.leader > 0 && p.leader != preferred && !p.isr.contains(&preferred)
    })?;
    assert!(failed_over.leader_epoch > start.leader_epoch, "{failed_over:?}");
    let mut survivor = survivors[0].client()?;
    assert_eq!(elect_partition_0(&mut survivor)?, PREFERRED_LEADER_NOT_AVAILABLE, "fenced and out of the ISR");

    // Records written meanwhile, which the preferred replica must fetch before it is in sync again.
    let leader = survivors.iter().find(|n| n.node_id() == failed_over.leader).context("the new leader")?;
    let batch = simple_batch(3, 1_700_000_000_000, 16)?;
    let produced = leader.client()?.request(PRODUCE_VERSION, &produce_request(TOPIC, 0, batch, 1))?;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, NONE, "{produced:?}");

    // It comes back and rejoins the ISR; leadership stays where it is until an election asks.
    nodes[preferred_index].restart()?;
    let all: Vec<&TestBroker> = nodes.iter().collect();
    let rejoined = wait_everywhere(&all, TOPIC, 0, "the preferred replica back in the ISR", |p| {
        p.isr.contains(&preferred) && p.isr.len() == 3
    })?;
    assert_eq!((rejoined.leader, rejoined.leader_epoch), (failed_over.leader, failed_over.leader_epoch));

    // PREFERRED election: answered NONE once this broker's metadata shows it; every broker agrees.
    assert_eq!(elect_partition_0(&mut survivor)?, NONE);
    let here = placement(&mut survivor, TOPIC, 0)?.context("the partition")?;
    assert_eq!(here.leader, preferred, "the answering broker shows the new leader at once: {here:?}");
    let elected =
        wait_everywhere(&all, TOPIC, 0, "the preferred replica leading everywhere", |p| p.leader == preferred)?;
    assert!(elected.leader_epoch > failed_over.leader_epoch, "{elected:?} after {failed_over:?}");
    assert_eq!(elected.isr.len(), 3, "{elected:?}");

    // Done: a second election is not needed, nor is one for "every partition" (left out of that answer).
    assert_eq!(elect_partition_0(&mut survivor)?, ELECTION_NOT_NEEDED);
    let every = elect(&mut survivor, ELECT_LEADERS_VERSION, None)?;
    assert_eq!(every.error_code, NONE);
    let topic = every.replica_election_results.iter().find(|t| t.topic.0.as_str() == TOPIC).context("the topic")?;
    assert!(topic.partition_result.is_empty(), "{every:?}");

    // v0 (no election type: preferred), an unknown partition, an unknown election type.
    let v0 = elect(&mut survivor, 0, Some(vec![(TOPIC, 0), (TOPIC, 5), ("no-such-topic", 0)]))?;
    let codes: Vec<i16> =
        v0.replica_election_results.iter().flat_map(|t| &t.partition_result).map(|p| p.error_code).collect();
    assert_eq!(codes, vec![ELECTION_NOT_NEEDED, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION]);
    let unknown_type = ElectLeadersRequest::default().with_election_type(7).with_topic_partitions(Some(vec![
        TopicPartitions::default().with_topic(topic_name(TOPIC)).with_partitions(vec![0]),
    ]));
    let refused = survivor.request(ELECT_LEADERS_VERSION, &unknown_type)?;
    assert_eq!(refused.error_code, INVALID_REQUEST);
    assert_eq!(refused.replica_election_results[0].partition_result[0].error_code, INVALID_REQUEST);
    Ok(())
}
