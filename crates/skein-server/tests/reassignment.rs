//! Partition reassignment (KIP-455) over the wire, with KRaft's semantics: AlterPartitionReassignments answers
//! each partition on its own (unknown partitions, invalid targets, a cancel with nothing to cancel, a
//! replication factor change v1 does not allow); a reassignment moving a partition off its leader copies the
//! records to the new replica, completes once it is in sync, hands the leadership over and deletes the old
//! replica's copy; a reorder completes at once; one whose new replica cannot catch up (its process is stopped
//! with SIGSTOP) is listed by ListPartitionReassignments until it is cancelled or replaced, and a replacement
//! completes only once every target replica is in sync.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId, DescribeLogDirsRequest,
    ListPartitionReassignmentsRequest,
};
use kafka_protocol::records::RecordBatchDecoder;
use skein_test_support::cluster::{
    Placement, assigned_topic, create_topic_in_sync, index_of, placement, produce_at_leader, wait_everywhere,
};
use skein_test_support::records::{as_stored, simple_batch};
use skein_test_support::requests::{api_versions, fetch, metadata, produce, topic_name};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

/// AlterPartitionReassignments v1 adds `allow_replication_factor_change` (KIP-860); v0 always allows it.
const ALTER_VERSION: i16 = 1;
const LIST_VERSION: i16 = 0;
const DESCRIBE_LOG_DIRS_VERSION: i16 = 4;
const ACKS_ALL: i16 = -1;
const TS: i64 = 1_700_000_000_000;

/// Followers leave the ISR after 2 s behind; no automatic leader rebalance, so only a reassignment moves
/// leadership. `start_cluster` sets a 6 s broker session itself.
const CLUSTER_YAML: &str = "replica.lag.time.max.ms: 2000\nauto.leader.rebalance.enable: false\n";
/// Bound on every wait for the cluster to reach a state.
const WAIT: Duration = Duration::from_secs(30);

/// Polls `check` every 100 ms until it returns `Some` (bounded by [`WAIT`]).
fn wait_for<T>(what: &str, check: impl FnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
    skein_test_support::wait_for(what, WAIT, check)
}

fn sorted(ids: &[i32]) -> Vec<i32> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

fn node(nodes: &[TestBroker], node_id: i32) -> &TestBroker {
    &nodes[index_of(nodes, node_id)]
}

/// One partition's entry in an AlterPartitionReassignments request: a target, or `None` to cancel.
type Target<'a> = (&'a str, i32, Option<&'a [i32]>);

/// AlterPartitionReassignments at `version` for `partitions` (consecutive entries of one topic are one topic
/// of the request). The top-level error must be NONE.
fn alter(
    client: &mut RawClient,
    version: i16,
    allow_replication_factor_change: bool,
    partitions: &[Target<'_>],
) -> anyhow::Result<AlterPartitionReassignmentsResponse> {
    let mut topics: Vec<ReassignableTopic> = Vec::new();
    for &(topic, index, target) in partitions {
        let partition = ReassignablePartition::default()
            .with_partition_index(index)
            .with_replicas(target.map(|ids| ids.iter().copied().map(BrokerId).collect()));
        match topics.last_mut() {
            Some(last) if last.name.0.as_str() == topic => last.partitions.push(partition),
            _ => {
                topics.push(ReassignableTopic::default().with_name(topic_name(topic)).with_partitions(vec![partition]))
            }
        }
    }
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_allow_replication_factor_change(allow_replication_factor_change)
        .with_topics(topics);
    let response = client.request(version, &request)?;
    anyhow::ensure!(response.error_code == NONE, "AlterPartitionReassignments failed: {response:?}");
    Ok(response)
}

/// (topic, partition, error code) of every partition answered, in the answer's order.
fn codes(response: &AlterPartitionReassignmentsResponse) -> Vec<(String, i32, i16)> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), p.partition_index, p.error_code)))
        .collect()
}

/// Reassigns (or with `None` cancels) one partition at v1; its error code.
fn reassign(client: &mut RawClient, topic: &str, partition: i32, target: Option<&[i32]>) -> anyhow::Result<i16> {
    let response = alter(client, ALTER_VERSION, true, &[(topic, partition, target)])?;
    match codes(&response).as_slice() {
        [(name, index, code)] if name == topic && *index == partition => Ok(*code),
        other => anyhow::bail!("AlterPartitionReassignments answered {other:?}"),
    }
}

/// A reassignment under way as ListPartitionReassignments shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ongoing {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
}

impl Ongoing {
    fn new(topic: &str, partition: i32, replicas: &[i32], adding: &[i32], removing: &[i32]) -> Self {
        Ongoing {
            topic: topic.to_string(),
            partition,
            replicas: replicas.to_vec(),
            adding: adding.to_vec(),
            removing: removing.to_vec(),
        }
    }
}

/// ListPartitionReassignments for `topics` (every topic when `None`).
fn list(client: &mut RawClient, topics: Option<&[(&str, &[i32])]>) -> anyhow::Result<Vec<Ongoing>> {
    let wanted = topics.map(|named| {
        named
            .iter()
            .map(|(name, indexes)| {
                ListPartitionReassignmentsTopics::default()
                    .with_name(topic_name(name))
                    .with_partition_indexes(indexes.to_vec())
            })
            .collect()
    });
    let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(30_000).with_topics(wanted);
    let response = client.request(LIST_VERSION, &request)?;
    anyhow::ensure!(response.error_code == NONE, "ListPartitionReassignments failed: {response:?}");
    let ids = |list: &[BrokerId]| list.iter().map(|id| id.0).collect::<Vec<_>>();
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Ongoing {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                replicas: ids(&p.replicas),
                adding: ids(&p.adding_replicas),
                removing: ids(&p.removing_replicas),
            })
        })
        .collect())
}

/// The bytes `node` stores for `topic`-`partition` by DescribeLogDirs (`None` when it lists no such partition).
fn stored_bytes(node: &TestBroker, topic: &str, partition: i32) -> anyhow::Result<Option<i64>> {
    let response =
        node.client()?.request(DESCRIBE_LOG_DIRS_VERSION, &DescribeLogDirsRequest::default().with_topics(None))?;
    anyhow::ensure!(response.error_code == NONE, "DescribeLogDirs failed: {response:?}");
    Ok(response
        .results
        .iter()
        .flat_map(|dir| &dir.topics)
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .map(|p| p.partition_size))
}

/// Each node's view of partition 0 of `topic` and the tail of its log, for a failure message.
fn cluster_state(nodes: &[TestBroker], topic: &str) -> String {
    nodes
        .iter()
        .map(|n| {
            let seen = n.client().and_then(|mut c| placement(&mut c, topic, 0));
            format!("node {} shows {seen:?}; log tail:\n{}", n.node_id(), n.log_tail())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// For the SIGSTOP tests: a node that is not the metadata quorum's leader (stopping the leader would stall every
/// controller write until a new one is elected), and the two others, in id order.
fn pick_pausable(nodes: &[TestBroker]) -> anyhow::Result<(i32, [i32; 2])> {
    let controller = metadata(&mut nodes[0].client()?, &[], false)?.controller_id.0;
    let paused = nodes.iter().map(TestBroker::node_id).filter(|&id| id != controller).max().context("a node")?;
    let others: Vec<i32> = nodes.iter().map(TestBroker::node_id).filter(|&id| id != paused).collect();
    let others: [i32; 2] = others.try_into().map_err(|o| anyhow::anyhow!("not three nodes: {o:?}"))?;
    Ok((paused, others))
}

/// Every refusal, per partition of one request and across versions: unknown topics and partitions, an empty
/// target, a broker named twice, a broker never registered, a cancel with nothing to cancel, and (v1 with
/// `allow_replication_factor_change=false`) a change of the replica count; the valid entries of the same
/// request are applied. v0 allows a replica count change.
#[test]
fn invalid_reassignments_are_refused_per_partition() -> anyhow::Result<()> {
    let started = Instant::now();
    let nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let topic = "refusals";
    create_topic_in_sync(&nodes, assigned_topic(topic, &[&[1, 2], &[2, 1]]))?;
    let mut client = nodes[0].client()?;

    let advertised = api_versions(&mut client, 3)?;
    let range = |key: ApiKey| {
        advertised.api_keys.iter().find(|k| k.api_key == key as i16).map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::AlterPartitionReassignments), Some((0, 1)));
    assert_eq!(range(ApiKey::ListPartitionReassignments), Some((0, 0)));

    let response = alter(
        &mut client,
        ALTER_VERSION,
        true,
        &[
            ("no-such-topic", 0, Some(&[1, 2])),
            (topic, 2, Some(&[1, 2])),
            (topic, -1, Some(&[1, 2])),
            (topic, 0, Some(&[])),
            (topic, 0, Some(&[1, 1])),
            (topic, 0, Some(&[1, 99])),
            (topic, 0, None),
            // Valid: partition 1 reordered (completes at once).
            (topic, 1, Some(&[1, 2])),
        ],
    )?;
    assert!(response.allow_replication_factor_change, "echoed: {response:?}");
    let expected: Vec<(String, i32, i16)> = [
        ("no-such-topic", 0, UNKNOWN_TOPIC_OR_PARTITION),
        (topic, 2, UNKNOWN_TOPIC_OR_PARTITION),
        (topic, -1, UNKNOWN_TOPIC_OR_PARTITION),
        (topic, 0, INVALID_REPLICA_ASSIGNMENT),
        (topic, 0, INVALID_REPLICA_ASSIGNMENT),
        (topic, 0, INVALID_REPLICA_ASSIGNMENT),
        (topic, 0, NO_REASSIGNMENT_IN_PROGRESS),
        (topic, 1, NONE),
    ]
    .iter()
    .map(|&(t, p, c)| (t.to_string(), p, c))
    .collect();
    assert_eq!(codes(&response), expected, "{response:?}");
    for partition in response.responses.iter().flat_map(|t| &t.partitions).filter(|p| p.error_code != NONE) {
        assert!(partition.error_message.is_some(), "a refusal says why: {partition:?}");
    }
    let here = placement(&mut client, topic, 1)?.context("partition 1")?;
    assert_eq!((here.replicas.as_slice(), here.leader), ([1, 2].as_slice(), 2), "reordered, leader kept: {here:?}");
    let untouched = placement(&mut client, topic, 0)?.context("partition 0")?;
    assert_eq!((untouched.replicas.as_slice(), untouched.leader), ([1, 2].as_slice(), 1), "{untouched:?}");

    // v1 without a replication factor change allowed: a count change is refused, a same-count target is not;
    // the flag is echoed.
    let strict = alter(&mut client, ALTER_VERSION, false, &[(topic, 0, Some(&[1])), (topic, 0, Some(&[2, 1]))])?;
    assert!(!strict.allow_replication_factor_change, "echoed: {strict:?}");
    let strict_codes: Vec<i16> = codes(&strict).iter().map(|c| c.2).collect();
    assert_eq!(strict_codes, vec![INVALID_REPLICATION_FACTOR, NONE], "{strict:?}");
    assert_eq!(placement(&mut client, topic, 0)?.context("partition 0")?.replicas, vec![2, 1]);

    // v0 always allows it: partition 1 drops to one replica (a pure removal completes at once), and nothing is
    // left under way.
    let v0 = alter(&mut client, 0, true, &[(topic, 1, Some(&[2]))])?;
    assert_eq!(codes(&v0), vec![(topic.to_string(), 1, NONE)], "{v0:?}");
    let shrunk = placement(&mut client, topic, 1)?.context("partition 1")?;
    assert_eq!((shrunk.replicas.as_slice(), shrunk.isr.as_slice(), shrunk.leader), ([2].as_slice(), [2].as_slice(), 2));
    assert_eq!(list(&mut client, None)?, Vec::new());
    assert_eq!(reassign(&mut client, topic, 1, None)?, NO_REASSIGNMENT_IN_PROGRESS);
    eprintln!("invalid_reassignments_are_refused_per_partition took {:?}", started.elapsed());
    Ok(())
}

/// A partition on [1, 2] led by 1, with acks=all records, is moved to [3, 2]: 3 copies the records, the
/// reassignment completes, 3 leads (the first target replica in sync) in a new leader epoch, every record is
/// served by it at its offset, and broker 1 neither serves the partition nor keeps its data.
#[test]
fn moving_a_partition_off_its_leader_copies_the_records_and_hands_leadership_over() -> anyhow::Result<()> {
    let started = Instant::now();
    let nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let topic = "moving";
    let placed = create_topic_in_sync(&nodes, assigned_topic(topic, &[&[1, 2]]))?.remove(0);
    let mut at_1 = node(&nodes, 1).client()?;
    let batches = [simple_batch(3, TS, 16)?, simple_batch(1, TS + 10, 300)?, simple_batch(5, TS + 20, 40)?];
    let mut base_offsets = Vec::new();
    for batch in &batches {
        let answer = produce_at_leader(&mut at_1, topic, 0, batch, ACKS_ALL)?;
        assert_eq!(answer.error_code, NONE, "acks=all produce: {answer:?}");
        base_offsets.push(answer.base_offset);
    }
    assert_eq!(base_offsets, [0, 3, 4]);
    let log_end = 9;
    let expected: Vec<u8> = batches
        .iter()
        .zip(&base_offsets)
        .flat_map(|(batch, &offset)| as_stored(batch, offset, placed.leader_epoch))
        .collect();

    let mut at_2 = node(&nodes, 2).client()?;
    assert_eq!(reassign(&mut at_2, topic, 0, Some(&[3, 2]))?, NONE);
    let all: Vec<&TestBroker> = nodes.iter().collect();
    let moved = wait_everywhere(&all, topic, 0, "the reassignment to complete everywhere", |p| {
        p.replicas == [3, 2] && p.isr == [2, 3]
    })?;
    assert_eq!(moved.leader, 3, "the first target replica in sync leads: {moved:?}");
    assert!(moved.leader_epoch > placed.leader_epoch, "{moved:?} after {placed:?}");
    for n in &nodes {
        assert_eq!(list(&mut n.client()?, None)?, Vec::new(), "nothing under way on node {}", n.node_id());
    }

    // The new leader serves every record at its offset, byte for byte, once its high watermark is there.
    let mut at_3 = node(&nodes, 3).client()?;
    let mut last = None;
    let served = wait_for("the new leader's high watermark to cover every record", || {
        let data = fetch(&mut at_3, topic, 0, 0)?;
        let done = data.error_code == NONE && data.high_watermark == log_end;
        last = Some((data.error_code, data.high_watermark, data.log_start_offset));
        Ok(done.then_some(data))
    })
    .with_context(|| format!("last (error, high watermark, log start) {last:?}; {}", cluster_state(&nodes, topic)))?;
    let records = served.records.clone().unwrap_or_default();
    assert_eq!(records.as_ref(), expected.as_slice(), "the new leader serves the batches as produced");
    let decoded: Vec<(i64, Option<Bytes>)> = RecordBatchDecoder::decode_all(&mut records.clone())?
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| (r.offset, r.value))
        .collect();
    let produced: Vec<Option<Bytes>> = batches
        .iter()
        .map(|b| RecordBatchDecoder::decode(&mut b.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| r.value)
        .collect();
    assert_eq!(decoded, (0..log_end).zip(produced).collect::<Vec<_>>());
    let next = produce_at_leader(&mut at_3, topic, 0, &simple_batch(2, TS + 30, 8)?, ACKS_ALL)?;
    assert_eq!((next.error_code, next.base_offset), (NONE, log_end), "acks=all with ISR {{2, 3}}: {next:?}");

    // Broker 1 is no longer a replica: it serves nothing and its copy is deleted, while 3 holds the data.
    assert_eq!(fetch(&mut at_1, topic, 0, 0)?.error_code, NOT_LEADER_OR_FOLLOWER);
    let refused = produce(&mut at_1, topic, 0, simple_batch(1, TS + 40, 8)?, ACKS_ALL)?;
    assert_eq!(refused.error_code, NOT_LEADER_OR_FOLLOWER, "{refused:?}");
    let expected_len = i64::try_from(expected.len())?;
    let at_3_bytes = stored_bytes(node(&nodes, 3), topic, 0)?;
    assert!(at_3_bytes.is_some_and(|b| b > expected_len), "11 records on broker 3: {at_3_bytes:?}");
    wait_for("broker 1 to delete its copy", || {
        Ok(stored_bytes(node(&nodes, 1), topic, 0)?.is_none_or(|b| b == 0).then_some(()))
    })?;
    eprintln!(
        "moving_a_partition_off_its_leader_copies_the_records_and_hands_leadership_over took {:?}",
        started.elapsed()
    );
    Ok(())
}

/// A target that only reorders the replicas needs no new replica: it completes at once, with the leader and
/// its epoch unchanged.
#[test]
fn a_reorder_completes_at_once() -> anyhow::Result<()> {
    let started = Instant::now();
    let nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let topic = "reordered";
    let placed = create_topic_in_sync(&nodes, assigned_topic(topic, &[&[2, 3]]))?.remove(0);
    let mut client = node(&nodes, 1).client()?;
    assert_eq!(reassign(&mut client, topic, 0, Some(&[3, 2]))?, NONE);
    assert_eq!(list(&mut client, None)?, Vec::new(), "nothing under way right after the answer");
    let here = placement(&mut client, topic, 0)?.context("the partition")?;
    assert_eq!(here, Placement { replicas: vec![3, 2], ..placed.clone() }, "reordered, leader and epoch kept");
    let all: Vec<&TestBroker> = nodes.iter().collect();
    wait_everywhere(&all, topic, 0, "the reorder everywhere", |p| p == &here)?;
    assert_eq!(reassign(&mut client, topic, 0, None)?, NO_REASSIGNMENT_IN_PROGRESS);
    eprintln!("a_reorder_completes_at_once took {:?}", started.elapsed());
    Ok(())
}

/// A replica added on a stopped broker cannot catch up: the reassignment is listed (replicas, adding, removing;
/// unknown topics and partitions left out) until it is cancelled, which restores the original replicas.
#[test]
fn an_ongoing_reassignment_is_listed_until_cancelled() -> anyhow::Result<()> {
    let started = Instant::now();
    let nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let (stopped, [a, b]) = pick_pausable(&nodes)?;
    let topic = "pending";
    let placed = create_topic_in_sync(&nodes, assigned_topic(topic, &[&[a, b]]))?.remove(0);
    let mut at_a = node(&nodes, a).client()?;
    let answer = produce_at_leader(&mut at_a, topic, 0, &simple_batch(3, TS, 16)?, ACKS_ALL)?;
    assert_eq!((answer.error_code, answer.base_offset), (NONE, 0), "{answer:?}");

    let paused = node(&nodes, stopped).pause()?;
    assert_eq!(reassign(&mut at_a, topic, 0, Some(&[a, b, stopped]))?, NONE);
    let ongoing = Ongoing::new(topic, 0, &[a, b, stopped], &[stopped], &[]);
    assert_eq!(list(&mut at_a, None)?, vec![ongoing.clone()]);
    let named: &[(&str, &[i32])] = &[(topic, &[0, 7]), ("no-such-topic", &[0])];
    assert_eq!(list(&mut at_a, Some(named))?, vec![ongoing.clone()], "unknown ones left out");
    assert_eq!(list(&mut at_a, Some(&[(topic, &[7])]))?, Vec::new());
    let mut at_b = node(&nodes, b).client()?;
    wait_for("the other broker to list it", || Ok((list(&mut at_b, None)? == [ongoing.clone()]).then_some(())))?;
    let during = placement(&mut at_a, topic, 0)?.context("the partition")?;
    assert_eq!(during, Placement { replicas: vec![a, b, stopped], ..placed.clone() }, "not in sync: not done");

    assert_eq!(reassign(&mut at_a, topic, 0, None)?, NONE);
    assert_eq!(list(&mut at_a, None)?, Vec::new());
    let reverted = placement(&mut at_a, topic, 0)?.context("the partition")?;
    assert_eq!(
        (reverted.replicas.as_slice(), reverted.isr.as_slice(), reverted.leader),
        ([a, b].as_slice(), sorted(&[a, b]).as_slice(), a)
    );
    assert_eq!(reassign(&mut at_a, topic, 0, None)?, NO_REASSIGNMENT_IN_PROGRESS);
    paused.resume()?;

    let all: Vec<&TestBroker> = nodes.iter().collect();
    wait_everywhere(&all, topic, 0, "the cancelled reassignment everywhere", |p| {
        p.replicas == [a, b] && p.isr == sorted(&[a, b]) && p.leader == a
    })?;
    eprintln!("an_ongoing_reassignment_is_listed_until_cancelled took {:?}", started.elapsed());
    Ok(())
}

/// A new target replaces the reassignment under way (KIP-455; KRaft's `PartitionReassignmentReplicas`): [a, b]
/// being reassigned to [a, b, s], with s stopped, is given the target [s, b]. s is still being added and a is
/// now being removed, so nothing completes while s is not in sync: replicas [s, b, a], adding [s], removing [a],
/// leader a. Once s runs again and catches up, the reassignment completes: replicas [s, b], and s, the first
/// target replica in sync, leads with every record.
#[test]
fn a_replacing_target_completes_only_once_its_new_replica_is_in_sync() -> anyhow::Result<()> {
    let started = Instant::now();
    let nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let (s, [a, b]) = pick_pausable(&nodes)?;
    let topic = "replaced";
    let placed = create_topic_in_sync(&nodes, assigned_topic(topic, &[&[a, b]]))?.remove(0);
    let mut at_a = node(&nodes, a).client()?;
    let batch = simple_batch(4, TS, 32)?;
    let answer = produce_at_leader(&mut at_a, topic, 0, &batch, ACKS_ALL)?;
    assert_eq!((answer.error_code, answer.base_offset), (NONE, 0), "{answer:?}");

    let paused = node(&nodes, s).pause()?;
    assert_eq!(reassign(&mut at_a, topic, 0, Some(&[a, b, s]))?, NONE);
    assert_eq!(list(&mut at_a, None)?, vec![Ongoing::new(topic, 0, &[a, b, s], &[s], &[])]);
    // The same target again changes nothing: s is still being added.
    assert_eq!(reassign(&mut at_a, topic, 0, Some(&[a, b, s]))?, NONE);
    let resubmitted = placement(&mut at_a, topic, 0)?.context("the partition")?;
    assert_eq!(list(&mut at_a, None)?, vec![Ongoing::new(topic, 0, &[a, b, s], &[s], &[])], "{resubmitted:?}");

    assert_eq!(reassign(&mut at_a, topic, 0, Some(&[s, b]))?, NONE);
    let during = placement(&mut at_a, topic, 0)?.context("the partition")?;
    assert_eq!(list(&mut at_a, None)?, vec![Ongoing::new(topic, 0, &[s, b, a], &[s], &[a])], "{during:?}");
    assert_eq!(during, Placement { replicas: vec![s, b, a], ..placed.clone() }, "a still leads; ISR unchanged");

    paused.resume()?;
    let all: Vec<&TestBroker> = nodes.iter().collect();
    let done = wait_everywhere(&all, topic, 0, "the replacing reassignment to complete", |p| {
        p.replicas == [s, b] && p.isr == sorted(&[s, b])
    })?;
    assert_eq!(done.leader, s, "{done:?}");
    assert!(done.leader_epoch > placed.leader_epoch, "{done:?}");
    assert_eq!(list(&mut at_a, None)?, Vec::new());
    let mut at_s = node(&nodes, s).client()?;
    let served = wait_for("the new leader to serve the records", || {
        let data = fetch(&mut at_s, topic, 0, 0)?;
        Ok((data.error_code == NONE && data.high_watermark == 4).then_some(data))
    })?;
    assert_eq!(served.records.unwrap_or_default().as_ref(), as_stored(&batch, 0, placed.leader_epoch).as_slice());
    eprintln!("a_replacing_target_completes_only_once_its_new_replica_is_in_sync took {:?}", started.elapsed());
    Ok(())
}

/// KRaft completes a reassignment only when every target replica is in the ISR
/// (`PartitionReassignmentReplicas.maybeCompleteReassignment`), not merely every added one: removing the in-sync
/// replica a from [a, b, s] while s is stopped and out of the ISR leaves it under way (replicas [b, s, a],
/// adding [], removing [a], ISR {a, b}) until s is back in sync; then replicas [b, s] and b (the first target
/// replica in sync) leads.
#[test]
fn a_removal_waits_for_the_remaining_target_replicas_to_be_in_sync() -> anyhow::Result<()> {
    let started = Instant::now();
    let nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let (s, [a, b]) = pick_pausable(&nodes)?;
    let topic = "shrinking";
    create_topic_in_sync(&nodes, assigned_topic(topic, &[&[a, b, s]]))?;
    let mut at_a = node(&nodes, a).client()?;
    let answer = produce_at_leader(&mut at_a, topic, 0, &simple_batch(2, TS, 16)?, ACKS_ALL)?;
    assert_eq!(answer.error_code, NONE, "{answer:?}");

    let paused = node(&nodes, s).pause()?;
    let running = [node(&nodes, a), node(&nodes, b)];
    let shrunk = wait_everywhere(&running, topic, 0, "the stopped replica to leave the ISR", |p| {
        p.isr == sorted(&[a, b]) && p.leader == a
    })?;
    assert_eq!(reassign(&mut at_a, topic, 0, Some(&[b, s]))?, NONE);
    let during = placement(&mut at_a, topic, 0)?.context("the partition")?;
    assert_eq!(list(&mut at_a, None)?, vec![Ongoing::new(topic, 0, &[b, s, a], &[], &[a])], "{during:?}");
    assert_eq!(during, Placement { replicas: vec![b, s, a], ..shrunk.clone() }, "a still leads; ISR unchanged");

    paused.resume()?;
    let all: Vec<&TestBroker> = nodes.iter().collect();
    let done = wait_everywhere(&all, topic, 0, "the removal to complete", |p| {
        p.replicas == [b, s] && p.isr == sorted(&[b, s])
    })?;
    assert_eq!(done.leader, b, "{done:?}");
    assert!(done.leader_epoch > shrunk.leader_epoch, "{done:?}");
    assert_eq!(list(&mut at_a, None)?, Vec::new());
    eprintln!("a_removal_waits_for_the_remaining_target_replicas_to_be_in_sync took {:?}", started.elapsed());
    Ok(())
}
