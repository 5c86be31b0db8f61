//! OffsetForLeaderEpoch (KIP-320) against the real `skein` binary, checked against what Kafka 4 answers
//! (`Partition.lastOffsetForLeaderEpoch`, `LeaderEpochFileCache.endOffsetFor`): the leader gives the end of the
//! requested epoch (the start of the next one, or its log end offset for the latest, also to consumers while the
//! high watermark is behind), -1/-1 for an epoch it cannot place, FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for a
//! stale or future current leader epoch, and NOT_LEADER_OR_FOLLOWER from any other broker.

use std::time::Duration;

use anyhow::Context;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use kafka_protocol::messages::offset_for_leader_epoch_response::EpochEndOffset;
use kafka_protocol::messages::{ApiKey, BrokerId, CreateTopicsRequest, OffsetForLeaderEpochRequest};
use skein_test_support::cluster::{index_of, placement, wait_everywhere};
use skein_test_support::records::simple_batch;
use skein_test_support::requests::{
    CREATE_TOPICS_VERSION, api_versions, create_topic, list_offset, produce, topic_name,
};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

/// The versions Kafka 4 serves (v0 and v1 were removed in 4.0).
const VERSIONS: std::ops::RangeInclusive<i16> = 2..=4;
/// The version of the single-partition asks (the newest).
const VERSION: i16 = 4;
/// `replica_id` of a consumer; a follower sends its broker id.
const CONSUMER: i32 = -1;
/// `current_leader_epoch` when the client does not fence.
const NO_CURRENT_EPOCH: i32 = -1;
/// `leader_epoch` of a client that has none (Kafka's UNDEFINED_EPOCH): older than every epoch a log has.
const UNDEFINED_EPOCH: i32 = -1;

const TS: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

/// One partition of a request: (topic, partition, current leader epoch, requested leader epoch).
type Ask<'a> = (&'a str, i32, i32, i32);

/// OffsetForLeaderEpoch for `asks` (each its own topic entry, in order) and the answers in the same order.
fn offsets_for_epochs(
    client: &mut RawClient,
    version: i16,
    replica_id: i32,
    asks: &[Ask<'_>],
) -> anyhow::Result<Vec<EpochEndOffset>> {
    let topics = asks
        .iter()
        .map(|&(topic, partition, current_leader_epoch, leader_epoch)| {
            OffsetForLeaderTopic::default().with_topic(topic_name(topic)).with_partitions(vec![
                OffsetForLeaderPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(current_leader_epoch)
                    .with_leader_epoch(leader_epoch),
            ])
        })
        .collect();
    let request = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(replica_id)).with_topics(topics);
    let response = client.request(version, &request)?;
    anyhow::ensure!(response.throttle_time_ms == 0, "throttled: {response:?}");
    let mut answers = Vec::new();
    for (ask, topic) in asks.iter().zip(&response.topics) {
        anyhow::ensure!(topic.topic.0.as_str() == ask.0, "answer for {:?} instead of {}", topic.topic, ask.0);
        let partition = topic.partitions.first().context("a topic answered without its partition")?;
        anyhow::ensure!(
            partition.partition == ask.1,
            "answer for partition {} instead of {}",
            partition.partition,
            ask.1
        );
        answers.push(partition.clone());
    }
    anyhow::ensure!(answers.len() == asks.len(), "{} answers for {} partitions", answers.len(), asks.len());
    Ok(answers)
}

/// Answers as (error code, leader epoch, end offset).
fn triples(answers: &[EpochEndOffset]) -> Vec<(i16, i32, i64)> {
    answers.iter().map(|a| (a.error_code, a.leader_epoch, a.end_offset)).collect()
}

/// A consumer's answers at `version` as (error code, leader epoch, end offset).
fn answers(client: &mut RawClient, version: i16, asks: &[Ask<'_>]) -> anyhow::Result<Vec<(i16, i32, i64)>> {
    Ok(triples(&offsets_for_epochs(client, version, CONSUMER, asks)?))
}

/// One partition's answer to a consumer at the newest version.
fn offset_for_epoch(client: &mut RawClient, ask: Ask<'_>) -> anyhow::Result<(i16, i32, i64)> {
    answers(client, VERSION, &[ask])?.pop().context("no answer")
}

/// Polls `check` every 100 ms until it returns `Some` (bounded by [`WAIT`]).
fn wait_for<T>(what: &str, check: impl FnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
    skein_test_support::wait_for(what, WAIT, check)
}

fn produce_records(client: &mut RawClient, topic: &str, count: usize, acks: i16) -> anyhow::Result<i64> {
    let answer = produce(client, topic, 0, simple_batch(count, TS, 16)?, acks)?;
    anyhow::ensure!(answer.error_code == NONE, "produce to {topic}: {answer:?}");
    Ok(answer.base_offset)
}

#[test]
fn the_leader_answers_the_end_of_each_epoch_and_checks_the_current_epoch() -> anyhow::Result<()> {
    let broker = TestBroker::start()?;
    let mut client = broker.client()?;
    let advertised = api_versions(&mut client, 3)?;
    let range = advertised.api_keys.iter().find(|k| k.api_key == ApiKey::OffsetForLeaderEpoch as i16);
    assert_eq!(range.map(|k| (k.min_version, k.max_version)), Some((2, 4)));

    let topic = "epochs";
    assert_eq!(create_topic(&mut client, topic, 1, &[])?.error_code, NONE);
    assert_eq!(produce_records(&mut client, topic, 3, -1)?, 0);
    assert_eq!(produce_records(&mut client, topic, 2, -1)?, 3);
    let epoch = placement(&mut client, topic, 0)?.context("the topic in Metadata")?.leader_epoch;
    let log_end = 5;

    let asks = [
        // The current epoch ends at the log end.
        (topic, 0, NO_CURRENT_EPOCH, epoch),
        (topic, 0, epoch, epoch),
        // An epoch older than any the log has, and one newer: Kafka answers both -1/-1 with no error.
        (topic, 0, NO_CURRENT_EPOCH, UNDEFINED_EPOCH),
        (topic, 0, epoch, epoch + 1),
        // A client that knows a newer leader epoch than this broker.
        (topic, 0, epoch + 1, epoch),
        // Only -1 means "no current epoch": anything below this broker's epoch is stale.
        (topic, 0, -2, epoch),
        ("no-such-topic", 0, NO_CURRENT_EPOCH, epoch),
        (topic, 7, NO_CURRENT_EPOCH, epoch),
    ];
    let expected = [
        (NONE, epoch, log_end),
        (NONE, epoch, log_end),
        (NONE, -1, -1),
        (NONE, -1, -1),
        (UNKNOWN_LEADER_EPOCH, -1, -1),
        (FENCED_LEADER_EPOCH, -1, -1),
        (UNKNOWN_TOPIC_OR_PARTITION, -1, -1),
        (UNKNOWN_TOPIC_OR_PARTITION, -1, -1),
    ];
    for version in VERSIONS {
        // A consumer (-1) and a follower (a broker id, v3+) get the same answers: Kafka does not read replica_id.
        for replica_id in [CONSUMER, broker.node_id()] {
            let answers = offsets_for_epochs(&mut client, version, replica_id, &asks)?;
            assert_eq!(triples(&answers), expected, "v{version}, replica_id {replica_id}");
        }
    }
    Ok(())
}

/// Leader and leader epoch of partition 0 of `topic` once every broker has applied it with `replicas` replicas in
/// sync (CreateTopics answers once the quorum committed the topic; each broker applies it a moment later).
fn wait_until_placed(nodes: &[TestBroker], topic: &str, replicas: usize) -> anyhow::Result<(i32, i32)> {
    let all: Vec<&TestBroker> = nodes.iter().collect();
    let placed = wait_everywhere(&all, topic, 0, &format!("{topic} on every broker"), |p| {
        p.leader > 0 && p.isr.len() == replicas
    })?;
    Ok((placed.leader, placed.leader_epoch))
}

/// Three nodes: followers refuse (fencing the client's epoch first, as Kafka's replicas do) and so does a broker
/// without a replica; after a leader change the new leader answers where the old epoch ended; a consumer is given
/// the log end offset while the high watermark waits for a dead follower.
#[test]
fn epochs_across_a_leader_change_and_brokers_that_do_not_lead() -> anyhow::Result<()> {
    let mut nodes = TestBroker::start_cluster(3, "default.replication.factor: 3")?;
    let topic = "epochs-replicated";
    let unreplicated = "epochs-one-replica";
    let mut first = nodes[0].client()?;
    assert_eq!(create_topic(&mut first, topic, 1, &[])?.error_code, NONE);
    let one_replica =
        CreatableTopic::default().with_name(topic_name(unreplicated)).with_num_partitions(1).with_replication_factor(1);
    let request = CreateTopicsRequest::default().with_topics(vec![one_replica]).with_timeout_ms(30_000);
    assert_eq!(first.request(CREATE_TOPICS_VERSION, &request)?.topics[0].error_code, NONE);
    let (leader, epoch) = wait_until_placed(&nodes, topic, 3)?;
    let (unreplicated_leader, unreplicated_epoch) = wait_until_placed(&nodes, unreplicated, 1)?;

    let mut at_leader = nodes[index_of(&nodes, leader)].client()?;
    assert_eq!(produce_records(&mut at_leader, topic, 4, -1)?, 0);
    assert_eq!(offset_for_epoch(&mut at_leader, (topic, 0, epoch, epoch))?, (NONE, epoch, 4));

    let refused = (NOT_LEADER_OR_FOLLOWER, -1, -1);
    for version in VERSIONS {
        for follower in nodes.iter().filter(|n| n.node_id() != leader) {
            let asks = [(topic, 0, NO_CURRENT_EPOCH, epoch), (topic, 0, epoch, epoch), (topic, 0, epoch + 1, epoch)];
            let got = answers(&mut follower.client()?, version, &asks)?;
            assert_eq!(got, [refused, refused, (UNKNOWN_LEADER_EPOCH, -1, -1)], "v{version} at {}", follower.node_id());
        }
        // A broker with no replica of the partition does not check the client's epoch.
        for other in nodes.iter().filter(|n| n.node_id() != unreplicated_leader) {
            let asks = [(unreplicated, 0, NO_CURRENT_EPOCH, 0), (unreplicated, 0, unreplicated_epoch + 1, 0)];
            assert_eq!(answers(&mut other.client()?, version, &asks)?, [refused, refused], "v{version}");
        }
    }

    // The leader shuts down: another replica leads in a new epoch, which starts at offset 4.
    let leader_index = index_of(&nodes, leader);
    nodes[leader_index].stop()?;
    let survivors: Vec<i32> = nodes.iter().map(TestBroker::node_id).filter(|&id| id != leader).collect();
    let mut at_survivor = nodes[index_of(&nodes, survivors[0])].client()?;
    let (new_leader, new_epoch) = wait_for("a new leader", || {
        Ok(placement(&mut at_survivor, topic, 0)?
            .filter(|p| survivors.contains(&p.leader) && p.leader_epoch > epoch)
            .map(|p| (p.leader, p.leader_epoch)))
    })?;
    let mut at_new_leader = nodes[index_of(&nodes, new_leader)].client()?;
    wait_for("the new leader to take its epoch", || {
        Ok((offset_for_epoch(&mut at_new_leader, (topic, 0, new_epoch, new_epoch))?.0 == NONE).then_some(()))
    })?;
    assert_eq!(produce_records(&mut at_new_leader, topic, 2, -1)?, 4);
    let asks = [
        // The old epoch ended where the new one started; the new one ends at the log end.
        (topic, 0, new_epoch, epoch),
        (topic, 0, new_epoch, new_epoch),
        (topic, 0, new_epoch, new_epoch + 1),
        // A client still on the old leader's epoch, and one ahead of this broker.
        (topic, 0, epoch, epoch),
        (topic, 0, new_epoch + 1, epoch),
    ];
    let expected = [
        (NONE, epoch, 4),
        (NONE, new_epoch, 6),
        (NONE, -1, -1),
        (FENCED_LEADER_EPOCH, -1, -1),
        (UNKNOWN_LEADER_EPOCH, -1, -1),
    ];
    for version in VERSIONS {
        assert_eq!(answers(&mut at_new_leader, version, &asks)?, expected, "v{version}");
    }

    // The old leader returns (so the metadata voters keep a quorum), then the other follower dies. Until its
    // session expires it stays in the ISR and the high watermark cannot pass what it has, while acks=1 records
    // land on the leader: a consumer is given the log end offset, as Kafka gives it, not the high watermark.
    nodes[leader_index].restart()?;
    let other = *survivors.iter().find(|&&id| id != new_leader).expect("the other follower");
    assert_eq!(list_offset(&mut at_new_leader, topic, 0, -1)?.offset, 6);
    let other_index = index_of(&nodes, other);
    nodes[other_index].kill9()?;
    assert_eq!(produce_records(&mut at_new_leader, topic, 2, 1)?, 6);
    let high_watermark = list_offset(&mut at_new_leader, topic, 0, -1)?.offset;
    let answer = offset_for_epoch(&mut at_new_leader, (topic, 0, new_epoch, new_epoch))?;
    assert_eq!(high_watermark, 6, "the high watermark waits for the dead follower");
    assert_eq!(answer, (NONE, new_epoch, 8));
    Ok(())
}
