//! consumer-group and consumer-group-kip848 (conformance/common/messages.md, "Consumer group scenarios"):
//! two members of a new group share the topic, committing after every batch; a third member that joins
//! after both closed receives exactly the messages produced since. GroupTally reimplements
//! conformance/common/groups.py.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{self, ErrorLog, check_record, produce_in_order, produce_in_order_from, received};
use crate::messages::{self, PARTITIONS, TestMessage};
use crate::scenarios::Context;

/// Messages produced after the first two members closed; the third member must receive exactly these.
const RESUME_COUNT: u64 = 10;
/// A classic member learns of a rebalance through its heartbeat; a short interval makes that quick.
const CLASSIC_HEARTBEAT_INTERVAL_MS: u32 = 500;
const GROUP_CONSUME_TIME_LIMIT: Duration = Duration::from_secs(60);
const RESUME_CONSUME_TIME_LIMIT: Duration = Duration::from_secs(30);
/// After the third member received its messages it keeps polling this long: nothing more may arrive.
const STRAY_WAIT: Duration = Duration::from_secs(1);
/// Most records one member takes from librdkafka before it commits them.
const BATCH_LIMIT: usize = 500;

type Member = (&'static str, BaseConsumer<ErrorLog>);

/// The scenario's group: new for every topic, so no earlier run left offsets in it.
fn group_id(topic: &str) -> String {
    format!("{topic}-group")
}

/// Roundtrip message at `offset` of `partition` in a topic holding messages 0, 1, 2, ... in order.
fn message_index(partition: i32, offset: i64) -> u64 {
    partition as u64 + PARTITIONS as u64 * offset as u64
}

fn message_position(index: u64) -> (i32, i64) {
    (messages::partition(index), (index / PARTITIONS as u64) as i64)
}

/// Which member received each (partition, offset) of messages first..first+count-1, and which
/// partitions each member holds.
struct GroupTally {
    members: Vec<&'static str>,
    first: u64,
    count: u64,
    expected: HashSet<(i32, i64)>,
    receiver: HashMap<(i32, i64), &'static str>,
    assignment: HashMap<&'static str, BTreeSet<i32>>,
    ever_assigned: HashSet<&'static str>,
}

impl GroupTally {
    fn new(members: Vec<&'static str>, first: u64, count: u64) -> Self {
        let assignment = members.iter().map(|member| (*member, BTreeSet::new())).collect();
        GroupTally {
            members,
            first,
            count,
            expected: (first..first + count).map(message_position).collect(),
            receiver: HashMap::new(),
            assignment,
            ever_assigned: HashSet::new(),
        }
    }

    fn record(&mut self, member: &'static str, partition: i32, offset: i64) -> Result<(), String> {
        if let Some(earlier) = self.receiver.get(&(partition, offset)) {
            return Err(format!(
                "partition {partition} offset {offset} was delivered twice: to {earlier} and to {member}"
            ));
        }
        if !self.expected.contains(&(partition, offset)) {
            return Err(format!(
                "{member} received partition {partition} offset {offset} (message {}); only messages {}..{} \
                 were to be consumed now",
                message_index(partition, offset),
                self.first,
                self.first + self.count - 1
            ));
        }
        self.receiver.insert((partition, offset), member);
        Ok(())
    }

    fn note_assignment(&mut self, member: &'static str, partitions: BTreeSet<i32>) {
        if !partitions.is_empty() {
            self.ever_assigned.insert(member);
        }
        self.assignment.insert(member, partitions);
    }

    fn all_received(&self) -> bool {
        self.receiver.len() == self.expected.len()
    }

    /// Every member holds a partition, none is held twice, and together they hold partitions 0..2.
    fn settled(&self) -> bool {
        let held: Vec<&BTreeSet<i32>> = self.assignment.values().collect();
        let union: BTreeSet<i32> = held.iter().flat_map(|partitions| partitions.iter().copied()).collect();
        let total: usize = held.iter().map(|partitions| partitions.len()).sum();
        held.iter().all(|partitions| !partitions.is_empty())
            && total == union.len()
            && union == (0..PARTITIONS).collect()
    }

    fn progress(&self) -> String {
        let members: Vec<String> = self
            .members
            .iter()
            .map(|member| {
                let got = self.receiver.values().filter(|receiver| *receiver == member).count();
                let never = if self.ever_assigned.contains(member) { "" } else { " (never assigned any partition)" };
                format!("{member}: {got} records, assignment {:?}{never}", self.assignment[member])
            })
            .collect();
        format!("{} of {} records received ({})", self.receiver.len(), self.expected.len(), members.join(", "))
    }
}

/// Takes up to BATCH_LIMIT records from one member: waits up to 100 ms for the first, then takes what
/// is already there.
fn poll_batch(ctx: &Context, name: &str, consumer: &BaseConsumer<ErrorLog>) -> Result<Vec<client::Received>, String> {
    let mut batch = Vec::new();
    let mut wait = Duration::from_millis(100);
    while batch.len() < BATCH_LIMIT {
        match consumer.poll(wait) {
            None => break,
            Some(Ok(message)) => batch.push(received(&message)),
            Some(Err(error)) => return Err(format!("{name}: consumer error on {}: {error}", ctx.topic)),
        }
        wait = Duration::ZERO;
    }
    Ok(batch)
}

/// Polls the members in turn until every expected record arrived and their assignments have settled,
/// then (stray_wait) a little longer. Each record is checked byte for byte and counted once; after each
/// non-empty batch the member commits, synchronously, the offset after the batch's last record of each
/// partition.
fn consume_in_group(
    ctx: &Context,
    members: &[Member],
    tally: &mut GroupTally,
    limit: Duration,
    stray_wait: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut strays_until: Option<Instant> = None;
    loop {
        for (name, consumer) in members {
            let mut next_offsets: HashMap<i32, i64> = HashMap::new();
            for record in poll_batch(ctx, name, consumer)? {
                tally.record(name, record.partition, record.offset)?;
                let index = message_index(record.partition, record.offset);
                check_record(&record, &messages::roundtrip_message(ctx.seed, index), record.offset)?;
                next_offsets.insert(record.partition, record.offset + 1);
            }
            if !next_offsets.is_empty() {
                let mut offsets = TopicPartitionList::new();
                for (partition, offset) in &next_offsets {
                    offsets
                        .add_partition_offset(&ctx.topic, *partition, Offset::Offset(*offset))
                        .map_err(|e| format!("cannot build commit list: {e}"))?;
                }
                consumer
                    .commit(&offsets, CommitMode::Sync)
                    .map_err(|e| format!("{name}: commit of {next_offsets:?} failed: {e}"))?;
            }
            let assignment = consumer.assignment().map_err(|e| format!("{name}: cannot read the assignment: {e}"))?;
            tally.note_assignment(name, assignment.elements().iter().map(|element| element.partition()).collect());
        }
        if strays_until.is_none() && tally.all_received() && tally.settled() {
            if stray_wait.is_zero() {
                break;
            }
            strays_until = Some(Instant::now() + stray_wait);
        }
        if strays_until.is_some_and(|until| Instant::now() > until) {
            break;
        }
        if strays_until.is_none() && Instant::now() > deadline {
            return Err(format!("not done within {limit:?}: {}", tally.progress()));
        }
    }
    eprintln!("group: {}", tally.progress());
    Ok(())
}

fn new_member(ctx: &Context, name: &'static str, protocol: &str) -> Result<Member, String> {
    let consumer = client::group_member(
        &ctx.bootstrap,
        &ctx.topic,
        &group_id(&ctx.topic),
        protocol,
        CLASSIC_HEARTBEAT_INTERVAL_MS,
    )?;
    Ok((name, consumer))
}

/// consumer-group (`protocol` "classic") and consumer-group-kip848 ("consumer").
pub fn consumer_group(ctx: &Context, count: u64, protocol: &str) -> Result<(), String> {
    let producer = client::producer(&ctx.bootstrap, "none", &[])?;
    let first: Vec<TestMessage> = (0..count).map(|i| messages::roundtrip_message(ctx.seed, i)).collect();
    produce_in_order(&producer, &ctx.topic, &first)?;

    let members = vec![new_member(ctx, "member-1", protocol)?, new_member(ctx, "member-2", protocol)?];
    let mut tally = GroupTally::new(vec!["member-1", "member-2"], 0, count);
    consume_in_group(ctx, &members, &mut tally, GROUP_CONSUME_TIME_LIMIT, Duration::ZERO)?;
    // Dropping a member closes it: it leaves the group.
    drop(members);

    let resume: Vec<TestMessage> =
        (count..count + RESUME_COUNT).map(|i| messages::roundtrip_message(ctx.seed, i)).collect();
    let mut first_offsets = [0i64; PARTITIONS as usize];
    for (partition, slot) in first_offsets.iter_mut().enumerate() {
        // Partition p holds the messages i < count with i % 3 == p.
        *slot = ((count + PARTITIONS as u64 - 1 - partition as u64) / PARTITIONS as u64) as i64;
    }
    produce_in_order_from(&producer, &ctx.topic, &resume, first_offsets)?;

    let third = vec![new_member(ctx, "member-3", protocol)?];
    let mut tally = GroupTally::new(vec!["member-3"], count, RESUME_COUNT);
    consume_in_group(ctx, &third, &mut tally, RESUME_CONSUME_TIME_LIMIT, STRAY_WAIT)?;
    drop(third);
    Ok(())
}
