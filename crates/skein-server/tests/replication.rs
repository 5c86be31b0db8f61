//! Partition replication between real `skein` processes, driven over the wire: acks=all records are on every
//! in-sync replica byte for byte and survive the leader's SIGKILL; a leader whose followers died shrinks its ISR
//! through the controller, then refuses acks=all below `min.insync.replicas` (after a timeout, or after the
//! append when the ISR shrank while the produce waited) and takes the followers back once they caught up; a
//! follower's fetch past the end of its last fetched epoch on the leader is told where the logs diverge, and one
//! naming an epoch newer than any the leader has is out of range; DeleteRecords is answered once every in-sync
//! replica moved its log start, so a new leader starts its log there too.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use skein_test_support::cluster::{Placement, create_topic_in_sync, index_of, placement, produce_at_leader};
use skein_test_support::records::{as_stored, simple_batch};
use skein_test_support::requests::{
    EARLIEST_TIMESTAMP, FETCH_MAX_BYTES, LATEST_TIMESTAMP, PRODUCE_VERSION, delete_records, fetch, list_offset,
    only_partition, produce_request, topic_name,
};
use skein_test_support::{RawClient, TestBroker};

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const REQUEST_TIMED_OUT: i16 = 7;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;

/// Produce `acks`: wait for every in-sync replica, or for the leader only.
const ACKS_ALL: i16 = -1;
const ACKS_LEADER: i16 = 1;

/// Every node of these clusters: a follower that has not caught up for 2 s leaves the ISR. `start_cluster` sets
/// `broker.session.timeout.ms: 6000` and `broker.heartbeat.interval.ms: 500` itself.
const CLUSTER_YAML: &str = "replica.lag.time.max.ms: 2000\n";
const REPLICATION_FACTOR: i16 = 3;
const MIN_INSYNC_REPLICAS: &str = "2";
/// Fetch versions with the replica state (v15 is what followers send; 17 is the newest Skein serves).
const REPLICA_FETCH_VERSIONS: [i16; 3] = [15, 16, 17];
/// Fetch `replica_state.replica_epoch` when the broker epoch is not known (Kafka skips the check for -1).
const UNKNOWN_BROKER_EPOCH: i64 = -1;

const TS: i64 = 1_700_000_000_000;
/// Bound on every wait for the cluster to reach a state (a leader change takes the 6 s broker session).
const WAIT: Duration = Duration::from_secs(30);
/// Produce timeout when the produce is expected to be answered before it.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

/// Polls `check` every 100 ms until it returns `Some` (bounded by [`WAIT`]).
fn wait_for<T>(what: &str, check: impl FnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
    skein_test_support::wait_for(what, WAIT, check)
}

/// Creates `topic` (one partition, three replicas, `min.insync.replicas=2`) and waits until every node has
/// applied it with its whole replica set in sync; returns that placement.
fn create_replicated_topic(nodes: &[TestBroker], topic: &str) -> anyhow::Result<Placement> {
    let min_insync = CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("min.insync.replicas"))
        .with_value(Some(StrBytes::from_static_str(MIN_INSYNC_REPLICAS)));
    let creatable = CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(1)
        .with_replication_factor(REPLICATION_FACTOR)
        .with_configs(vec![min_insync]);
    Ok(create_topic_in_sync(nodes, creatable)?.remove(0))
}

/// Produces `batch` to partition 0 with `acks` and `timeout_ms`.
fn produce_with(
    client: &mut RawClient,
    topic: &str,
    batch: Bytes,
    acks: i16,
    timeout_ms: i32,
) -> anyhow::Result<PartitionProduceResponse> {
    let request: ProduceRequest = produce_request(topic, 0, batch, acks).with_timeout_ms(timeout_ms);
    let response = client.request(PRODUCE_VERSION, &request)?;
    only_partition(response)
}

/// The value of the first sample of metric `name` whose labels include all of `labels`, from a Prometheus text
/// page.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, label_text) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        if metric != name {
            return None;
        }
        let pairs: Vec<(&str, &str)> = label_text
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key, value.trim_matches('"')))
            .collect();
        if !labels.iter().all(|wanted| pairs.contains(wanted)) {
            return None;
        }
        value.parse::<f64>().ok()
    })
}

/// The `/metrics` page of `node`.
fn metrics_page(node: &TestBroker) -> anyhow::Result<String> {
    let (status, body) = node.http_get("/metrics")?;
    anyhow::ensure!(status == 200, "/metrics answered {status}: {body}");
    Ok(body)
}

/// A broker-level metric of `node` (0 when the page does not carry it).
fn metric(node: &TestBroker, name: &str) -> anyhow::Result<f64> {
    Ok(sample(&metrics_page(node)?, name, &[]).unwrap_or(0.0))
}

/// Polls `node`'s metrics until `name` satisfies `holds`; returns its value.
fn wait_for_metric(node: &TestBroker, name: &str, holds: impl Fn(f64) -> bool) -> anyhow::Result<f64> {
    wait_for(&format!("{name} on node {}", node.node_id()), || {
        let value = metric(node, name)?;
        Ok(holds(value).then_some(value))
    })
}

/// Everything partition 0 serves a consumer from offset 0.
fn fetch_from_start(client: &mut RawClient, topic: &str) -> anyhow::Result<PartitionData> {
    fetch(client, topic, 0, 0)
}

/// The records bytes of a fetch answer (absent and empty are the same: nothing).
fn records_of(data: &PartitionData) -> Bytes {
    data.records.clone().unwrap_or_default()
}

/// SIGKILLs the leader of partition 0 (as `placed` shows it) and waits until another of its replicas leads in a
/// newer epoch; returns that placement.
fn kill_the_leader(nodes: &mut [TestBroker], topic: &str, placed: &Placement) -> anyhow::Result<Placement> {
    nodes[index_of(nodes, placed.leader)].kill9()?;
    let survivors: Vec<i32> = placed.replicas.iter().copied().filter(|&id| id != placed.leader).collect();
    let mut at_survivor = nodes[index_of(nodes, survivors[0])].client()?;
    wait_for("a new leader", || {
        Ok(placement(&mut at_survivor, topic, 0)?
            .filter(|p| survivors.contains(&p.leader) && p.leader_epoch > placed.leader_epoch))
    })
}

/// acks=all with min.insync.replicas=2 is acknowledged once the followers have the batches; after the leader
/// is SIGKILLed, the new leader serves the same bytes at the same offsets, with the high watermark at its log end.
#[test]
fn acks_all_records_survive_the_leaders_sigkill_byte_for_byte() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let topic = "replicated";
    let placed = create_replicated_topic(&nodes, topic)?;
    let leader_index = index_of(&nodes, placed.leader);
    let mut at_leader = nodes[leader_index].client()?;

    // Three batches of different shapes: offsets 0-2, 3, 4-8.
    let batches = [simple_batch(3, TS, 16)?, simple_batch(1, TS + 10, 300)?, simple_batch(5, TS + 20, 40)?];
    let mut base_offsets = Vec::new();
    for batch in &batches {
        let answer = produce_at_leader(&mut at_leader, topic, 0, batch, ACKS_ALL)?;
        assert_eq!(answer.error_code, NONE, "acks=all produce to the leader: {answer:?}");
        base_offsets.push(answer.base_offset);
    }
    assert_eq!(base_offsets, [0, 3, 4]);
    let log_end = 9;

    // What the leader serves: the producer's batches, stamped with their offsets and the leader epoch.
    let before = fetch_from_start(&mut at_leader, topic)?;
    assert_eq!((before.error_code, before.high_watermark), (NONE, log_end), "{before:?}");
    let expected: Vec<u8> = batches
        .iter()
        .zip(&base_offsets)
        .flat_map(|(batch, &offset)| as_stored(batch, offset, placed.leader_epoch))
        .collect();
    let served = records_of(&before);
    assert_eq!(served.as_ref(), expected.as_slice(), "the leader serves the batches as produced");

    let killed_at = Instant::now();
    let moved = kill_the_leader(&mut nodes, topic, &placed)?;
    eprintln!("new leader {} in epoch {} after {:?}", moved.leader, moved.leader_epoch, killed_at.elapsed());
    assert!(!moved.isr.contains(&placed.leader), "the dead leader left the ISR: {moved:?}");

    // The new leader's high watermark reaches its log end once the other follower fetched from it.
    let mut at_new_leader = nodes[index_of(&nodes, moved.leader)].client()?;
    let after = wait_for("the new leader's high watermark to cover every record", || {
        let data = fetch_from_start(&mut at_new_leader, topic)?;
        Ok((data.error_code == NONE && data.high_watermark == log_end).then_some(data))
    })?;
    assert_eq!(records_of(&after), served, "the new leader serves the old leader's bytes at the same offsets");
    assert_eq!(after.last_stable_offset, log_end);
    assert_eq!(after.log_start_offset, 0);
    assert_eq!(list_offset(&mut at_new_leader, topic, 0, LATEST_TIMESTAMP)?.offset, log_end);

    // Its log ends there too (the next record goes to offset 9), and the two remaining replicas still make
    // min.insync.replicas: acks=all is acknowledged.
    let next = produce_at_leader(&mut at_new_leader, topic, 0, &simple_batch(2, TS + 30, 8)?, ACKS_ALL)?;
    assert_eq!((next.error_code, next.base_offset), (NONE, log_end), "{next:?}");
    eprintln!("acks_all_records_survive_the_leaders_sigkill_byte_for_byte took {:?}", started.elapsed());
    Ok(())
}

/// DeleteRecords on a replicated partition answers the low watermark once the in-sync followers have moved their
/// log start too: after the leader's SIGKILL, the new leader's log starts there and serves the rest unchanged.
#[test]
fn delete_records_reaches_every_in_sync_replica() -> anyhow::Result<()> {
    let mut nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let topic = "trimmed";
    let placed = create_replicated_topic(&nodes, topic)?;
    let leader_index = index_of(&nodes, placed.leader);
    let mut at_leader = nodes[leader_index].client()?;
    for (i, count) in [4, 3, 2].into_iter().enumerate() {
        let timestamp = TS + i64::try_from(i)?;
        let answer = produce_at_leader(&mut at_leader, topic, 0, &simple_batch(count, timestamp, 20)?, ACKS_ALL)?;
        assert_eq!(answer.error_code, NONE, "{answer:?}");
    }
    // Offset 5 is inside the second batch (offsets 4-6): the log starts there, the batch stays.
    assert_eq!(delete_records(&mut at_leader, topic, 5)?, (NONE, 5));
    let kept = fetch(&mut at_leader, topic, 0, 5)?;
    assert_eq!((kept.error_code, kept.log_start_offset, kept.high_watermark), (NONE, 5, 9), "{kept:?}");

    let moved = kill_the_leader(&mut nodes, topic, &placed)?;
    let mut at_new_leader = nodes[index_of(&nodes, moved.leader)].client()?;
    let earliest = wait_for("the new leader to answer ListOffsets", || {
        let answer = list_offset(&mut at_new_leader, topic, 0, EARLIEST_TIMESTAMP)?;
        Ok((answer.error_code == NONE).then_some(answer.offset))
    })?;
    assert_eq!(earliest, 5, "the new leader's log starts where DeleteRecords put the old leader's");
    let served = wait_for("the new leader's high watermark", || {
        let data = fetch(&mut at_new_leader, topic, 0, 5)?;
        Ok((data.error_code == NONE && data.high_watermark == 9).then_some(data))
    })?;
    assert_eq!(records_of(&served), records_of(&kept), "the records from offset 5 on are the same bytes");
    let below = fetch(&mut at_new_leader, topic, 0, 0)?;
    assert_eq!(below.error_code, OFFSET_OUT_OF_RANGE, "nothing below the log start is served: {below:?}");
    Ok(())
}

/// Both followers of a partition die (five nodes, so that the metadata quorum survives two deaths): an
/// acks=all produce in flight times out or, when the ISR shrinks under it, is refused after the append; once the
/// ISR is the leader alone acks=all is refused before anything is written while acks=1 is taken; the metrics
/// show it; restarted followers rejoin the ISR and acks=all is acknowledged again.
#[test]
fn acks_all_is_refused_below_min_insync_replicas_until_the_followers_rejoin() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut nodes = TestBroker::start_cluster(5, CLUSTER_YAML)?;
    let topic = "shrinking";
    let placed = create_replicated_topic(&nodes, topic)?;
    let leader_index = index_of(&nodes, placed.leader);
    let followers: Vec<i32> = placed.replicas.iter().copied().filter(|&id| id != placed.leader).collect();
    let mut at_leader = nodes[leader_index].client()?;
    let first = produce_at_leader(&mut at_leader, topic, 0, &simple_batch(3, TS, 16)?, ACKS_ALL)?;
    assert_eq!((first.error_code, first.base_offset), (NONE, 0), "{first:?}");

    for &follower in &followers {
        let index = index_of(&nodes, follower);
        nodes[index].kill9()?;
    }
    let killed_at = Instant::now();

    // Right after the kill both followers still count as in sync (for replica.lag.time.max.ms): acks=all
    // produces are appended and wait. One with a short timeout times out; one with a long timeout is still
    // waiting when the ISR shrinks to the leader alone, so it is refused after its append.
    let mut waiting = nodes[leader_index].client()?;
    let long = produce_request(topic, 0, simple_batch(1, TS + 10, 16)?, ACKS_ALL).with_timeout_ms(PRODUCE_TIMEOUT_MS);
    let long_correlation = waiting.send(PRODUCE_VERSION, &long)?;
    let timed_out = produce_with(&mut at_leader, topic, simple_batch(1, TS + 20, 16)?, ACKS_ALL, 300)?;
    assert_eq!(timed_out.error_code, REQUEST_TIMED_OUT, "{timed_out:?}");
    let shrunk_under = only_partition(waiting.receive::<ProduceRequest>(PRODUCE_VERSION, long_correlation)?)?;
    assert_eq!(shrunk_under.error_code, NOT_ENOUGH_REPLICAS_AFTER_APPEND, "{shrunk_under:?}");
    eprintln!("the in-flight acks=all produce was refused {:?} after the kill", killed_at.elapsed());

    let shrunk = wait_for("the ISR to shrink to the leader", || {
        Ok(placement(&mut at_leader, topic, 0)?.filter(|p| p.isr == [placed.leader]))
    })?;
    assert_eq!(shrunk.leader_epoch, placed.leader_epoch, "an ISR change keeps the leader epoch");
    let leader = &nodes[leader_index];
    wait_for_metric(leader, "skein_under_min_isr_partitions", |v| v >= 1.0)?;

    // The two refused records were appended: with the leader alone in the ISR they are committed now.
    let latest = list_offset(&mut at_leader, topic, 0, LATEST_TIMESTAMP)?;
    assert_eq!((latest.error_code, latest.offset), (NONE, 5), "{latest:?}");

    let refused = produce_with(&mut at_leader, topic, simple_batch(2, TS + 30, 16)?, ACKS_ALL, PRODUCE_TIMEOUT_MS)?;
    assert_eq!(refused.error_code, NOT_ENOUGH_REPLICAS, "{refused:?}");
    assert_eq!(refused.base_offset, -1);
    assert_eq!(list_offset(&mut at_leader, topic, 0, LATEST_TIMESTAMP)?.offset, 5, "nothing was written");
    let fetched = fetch(&mut at_leader, topic, 0, 5)?;
    assert!(records_of(&fetched).is_empty(), "nothing was written: {fetched:?}");

    let taken = produce_with(&mut at_leader, topic, simple_batch(2, TS + 40, 16)?, ACKS_LEADER, PRODUCE_TIMEOUT_MS)?;
    assert_eq!((taken.error_code, taken.base_offset), (NONE, 5), "acks=1 is taken: {taken:?}");
    assert_eq!(list_offset(&mut at_leader, topic, 0, LATEST_TIMESTAMP)?.offset, 7);

    let page = metrics_page(leader)?;
    let value = |name: &str| sample(&page, name, &[]).unwrap_or(0.0);
    assert!(value("skein_leader_partitions") >= 1.0, "{page}");
    assert!(value("skein_under_replicated_partitions") >= 1.0, "{page}");
    assert!(value("skein_under_min_isr_partitions") >= 1.0, "{page}");
    assert!(value("skein_isr_shrinks_total") >= 1.0, "{page}");
    // The dead followers have the first 3 records of 7.
    assert!(value("skein_replica_max_lag") >= 4.0, "{page}");
    for follower in &followers {
        let replica = follower.to_string();
        let lag = sample(
            &page,
            "skein_partition_follower_lag",
            &[("topic", topic), ("partition", "0"), ("replica", &replica)],
        );
        assert_eq!(lag, Some(4.0), "follower {follower} lag: {page}");
    }

    for &follower in &followers {
        let index = index_of(&nodes, follower);
        nodes[index].restart()?;
    }
    let restarted_at = Instant::now();
    let rejoined = wait_for("the restarted followers to rejoin the ISR", || {
        Ok(placement(&mut at_leader, topic, 0)?.filter(|p| p.isr.len() == placed.replicas.len()))
    })?;
    eprintln!("ISR {:?} {:?} after the restart", rejoined.isr, restarted_at.elapsed());
    assert_eq!(rejoined.leader, placed.leader);
    let leader = &nodes[leader_index];
    wait_for_metric(leader, "skein_under_min_isr_partitions", |v| v == 0.0)?;
    wait_for_metric(leader, "skein_under_replicated_partitions", |v| v == 0.0)?;
    assert!(metric(leader, "skein_isr_expands_total")? >= 1.0);

    let accepted = produce_with(&mut at_leader, topic, simple_batch(1, TS + 50, 16)?, ACKS_ALL, PRODUCE_TIMEOUT_MS)?;
    assert_eq!((accepted.error_code, accepted.base_offset), (NONE, 7), "{accepted:?}");
    wait_for_metric(leader, "skein_replica_max_lag", |v| v == 0.0)?;
    eprintln!("acks_all_is_refused_below_min_insync_replicas_until_the_followers_rejoin took {:?}", started.elapsed());
    Ok(())
}

/// A follower's fetch (replica state naming `replica`) of partition 0 at `fetch_offset` after records of
/// `last_fetched_epoch`, in the current leader epoch `leader_epoch`.
fn replica_fetch(
    topic_id: uuid::Uuid,
    replica: i32,
    leader_epoch: i32,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_state(
            ReplicaState::default().with_replica_id(BrokerId(replica)).with_replica_epoch(UNKNOWN_BROKER_EPOCH),
        )
        // As a follower waits: a divergence must be answered at once all the same.
        .with_max_wait_ms(5_000)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic_id(topic_id).with_partitions(vec![
            FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(leader_epoch)
                .with_fetch_offset(fetch_offset)
                .with_last_fetched_epoch(last_fetched_epoch)
                .with_log_start_offset(0)
                .with_partition_max_bytes(FETCH_MAX_BYTES),
        ])])
}

fn only_fetched(response: FetchResponse) -> anyhow::Result<PartitionData> {
    anyhow::ensure!(response.error_code == NONE, "fetch answered {}", response.error_code);
    response
        .responses
        .into_iter()
        .next()
        .and_then(|topic| topic.partitions.into_iter().next())
        .context("Fetch answered no partition")
}

/// A follower's fetch whose offset is past where its last fetched epoch ends on the leader is told where that
/// epoch ends (`diverging_epoch`) and given no records, at once: a deposed leader with records the new leader never
/// got (its old epoch ended earlier here), and a follower ahead of the log end in the latest epoch. From the epoch
/// boundary, or from the log end, it is simply served.
#[test]
fn a_replica_fetch_past_the_end_of_its_epoch_is_told_where_the_logs_diverge() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let topic = "diverging";
    let placed = create_replicated_topic(&nodes, topic)?;
    let leader_index = index_of(&nodes, placed.leader);
    let mut at_leader = nodes[leader_index].client()?;
    for (count, base) in [(3, 0), (2, 3)] {
        let answer = produce_at_leader(&mut at_leader, topic, 0, &simple_batch(count, TS, 16)?, ACKS_ALL)?;
        assert_eq!((answer.error_code, answer.base_offset), (NONE, base), "{answer:?}");
    }
    let old_epoch = placed.leader_epoch;
    let old_epoch_end = 5;

    // A graceful stop hands the leadership over at once (controlled shutdown); the new epoch starts at offset 5.
    nodes[leader_index].stop()?;
    let survivors: Vec<i32> = placed.replicas.iter().copied().filter(|&id| id != placed.leader).collect();
    let mut at_survivor = nodes[index_of(&nodes, survivors[0])].client()?;
    let moved = wait_for("a new leader", || {
        Ok(placement(&mut at_survivor, topic, 0)?
            .filter(|p| survivors.contains(&p.leader) && p.leader_epoch > old_epoch))
    })?;
    let epoch = moved.leader_epoch;
    let follower = *survivors.iter().find(|&&id| id != moved.leader).expect("the other survivor");
    let mut at_new_leader = nodes[index_of(&nodes, moved.leader)].client()?;
    let batch = simple_batch(2, TS + 10, 16)?;
    let answer = produce_at_leader(&mut at_new_leader, topic, 0, &batch, ACKS_ALL)?;
    assert_eq!((answer.error_code, answer.base_offset), (NONE, old_epoch_end), "{answer:?}");
    let log_end = 7;

    for version in REPLICA_FETCH_VERSIONS {
        for (fetch_offset, last_fetched_epoch, diverging) in
            [(old_epoch_end + 3, old_epoch, (old_epoch, old_epoch_end)), (log_end + 3, epoch, (epoch, log_end))]
        {
            let request = replica_fetch(moved.topic_id, follower, epoch, fetch_offset, last_fetched_epoch);
            let sent = Instant::now();
            let data = only_fetched(at_new_leader.request(version, &request)?)?;
            let case = format!("v{version}, offset {fetch_offset}, last fetched epoch {last_fetched_epoch}");
            assert!(sent.elapsed() < Duration::from_secs(3), "{case}: answered after {:?}", sent.elapsed());
            assert_eq!(data.error_code, NONE, "{case}: {data:?}");
            assert_eq!((data.diverging_epoch.epoch, data.diverging_epoch.end_offset), diverging, "{case}: {data:?}");
            assert!(records_of(&data).is_empty(), "{case}: no records with a divergence: {data:?}");
            assert_eq!(data.high_watermark, log_end, "{case}");
        }
        // From the end of the old epoch the follower gets the new epoch's batch; from the log end, nothing.
        for (fetch_offset, last_fetched_epoch, records) in [
            (old_epoch_end, old_epoch, Bytes::from(as_stored(&batch, old_epoch_end, epoch))),
            (log_end, epoch, Bytes::new()),
        ] {
            let request =
                replica_fetch(moved.topic_id, follower, epoch, fetch_offset, last_fetched_epoch).with_max_wait_ms(0);
            let data = only_fetched(at_new_leader.request(version, &request)?)?;
            let case = format!("v{version}, offset {fetch_offset}, last fetched epoch {last_fetched_epoch}");
            assert_eq!(
                (data.error_code, data.diverging_epoch.epoch, data.diverging_epoch.end_offset),
                (NONE, -1, -1),
                "{case}: {data:?}"
            );
            assert_eq!(records_of(&data), records, "{case}");
        }
    }
    eprintln!("a_replica_fetch_past_the_end_of_its_epoch_is_told_where_the_logs_diverge took {:?}", started.elapsed());
    Ok(())
}

/// A follower's fetch naming a last fetched epoch newer than every epoch the leader has (five past the leader
/// epoch), from the leader's log end: the leader cannot place that epoch (Kafka's `LeaderEpochFileCache.endOffsetFor`
/// answers -1/-1 for it) so, as Kafka's `Partition.fetchRecords` does, it answers OFFSET_OUT_OF_RANGE ("Could not
/// determine the end offset of the last fetched epoch"), with no records; the follower then truncates to the high
/// watermark and fetches again. An answer with no error, no records and no divergence would leave the follower
/// asking the same forever.
#[test]
fn a_replica_fetch_from_an_epoch_newer_than_the_leaders_is_out_of_range() -> anyhow::Result<()> {
    let started = Instant::now();
    let nodes = TestBroker::start_cluster(3, CLUSTER_YAML)?;
    let topic = "from-the-future";
    let placed = create_replicated_topic(&nodes, topic)?;
    let follower = *placed.replicas.iter().find(|&&id| id != placed.leader).expect("a follower");
    let mut at_leader = nodes[index_of(&nodes, placed.leader)].client()?;
    for (count, base) in [(3, 0), (2, 3)] {
        let answer = produce_at_leader(&mut at_leader, topic, 0, &simple_batch(count, TS, 16)?, ACKS_ALL)?;
        assert_eq!((answer.error_code, answer.base_offset), (NONE, base), "{answer:?}");
    }
    let log_end = 5;
    let epoch = placed.leader_epoch;

    for version in REPLICA_FETCH_VERSIONS {
        let request = replica_fetch(placed.topic_id, follower, epoch, log_end, epoch + 5);
        let sent = Instant::now();
        let data = only_fetched(at_leader.request(version, &request)?)?;
        assert!(sent.elapsed() < Duration::from_secs(3), "v{version}: answered after {:?}", sent.elapsed());
        assert_eq!(data.error_code, OFFSET_OUT_OF_RANGE, "v{version}: {data:?}");
        assert!(records_of(&data).is_empty(), "v{version}: {data:?}");
    }
    eprintln!("a_replica_fetch_from_an_epoch_newer_than_the_leaders_is_out_of_range took {:?}", started.elapsed());
    Ok(())
}
