//! The log-compaction scenario (conformance/common/messages.md, "Log compaction"; a literal
//! reimplementation of the log-compaction part of conformance/common/messages.py): keyed updates and
//! tombstones to a compacted topic, then re-reads until only each key's latest record is left, every
//! record at the offset its delivery report gave.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{self, OPERATION_TIMEOUT, REQUEST_TIMEOUT, RecordingProducer};
use crate::messages::PARTITIONS;
use crate::scenarios::Context;

pub const DEFAULT_COUNT: u64 = 3_000;
const KEYS: u64 = 100;
/// The roll records go out this long after the last update was acknowledged (Kafka then rolls its segment).
const ROLL_DELAY: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(60);
const REREAD_INTERVAL: Duration = Duration::from_secs(1);

/// One record of the scenario; value None is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Update {
    partition: i32,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// A record at its offset: (offset, key, value).
type Stored = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn update(seed: u64, index: u64) -> Update {
    // Every block of 100 consecutive updates touches each of the 100 keys once.
    let key_index = (index * 37 + (index / 100) * 11 + seed) % KEYS;
    let value = if (index * 13 + seed).is_multiple_of(10) { None } else { Some(format!("value-{index}").into_bytes()) };
    Update { partition: (key_index % PARTITIONS as u64) as i32, key: format!("key-{key_index}").into_bytes(), value }
}

fn roll_records() -> Vec<Update> {
    (0..PARTITIONS)
        .map(|partition| Update {
            partition,
            key: format!("roll-{partition}").into_bytes(),
            value: Some(format!("roll-{partition}").into_bytes()),
        })
        .collect()
}

fn show(bytes: &Option<Vec<u8>>) -> String {
    match bytes {
        None => "null".to_string(),
        Some(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
    }
}

/// Sends the records in order (the delivery opaque is the record's number) and requires each partition's
/// acknowledgements at the offsets after what `produced` already holds; appends them to `produced`.
fn send_all(
    producer: &RecordingProducer,
    topic: &str,
    records: &[Update],
    produced: &mut [Vec<Stored>],
) -> Result<(), String> {
    for (number, record) in records.iter().enumerate() {
        let mut base = BaseRecord::with_opaque_to(topic, number).partition(record.partition).key(&record.key[..]);
        if let Some(value) = &record.value {
            base = base.payload(&value[..]);
        }
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        loop {
            match producer.send(base) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    if Instant::now() > deadline {
                        return Err(format!("producer queue stayed full for {OPERATION_TIMEOUT:?}"));
                    }
                    base = returned;
                    producer.poll(Duration::from_millis(50));
                }
                Err((error, _)) => return Err(format!("send of record {number} failed: {error}")),
            }
        }
    }
    client::flush(producer)?;
    let mut deliveries = producer.context().take();
    deliveries.sort_by_key(|delivery| delivery.index);
    if deliveries.len() != records.len() || deliveries.iter().enumerate().any(|(n, delivery)| delivery.index != n) {
        return Err(format!("{} records sent but {} delivery reports", records.len(), deliveries.len()));
    }
    for (record, delivery) in records.iter().zip(&deliveries) {
        let partition = &mut produced[record.partition as usize];
        let expected = (record.partition, partition.len() as i64);
        match &delivery.result {
            Ok(acknowledged) if *acknowledged == expected => {
                partition.push((expected.1, Some(record.key.clone()), record.value.clone()));
            }
            Ok((p, offset)) => {
                return Err(format!(
                    "record {} (key {}) acknowledged at partition {p} offset {offset}, expected partition {} offset {}",
                    delivery.index,
                    show(&Some(record.key.clone())),
                    expected.0,
                    expected.1
                ));
            }
            Err(error) => return Err(format!("record {} was not delivered: {error}", delivery.index)),
        }
    }
    Ok(())
}

/// Earliest offset 0 and latest = what was produced, then every record of every partition from its
/// beginning up to its high watermark (the last offset is always there: the roll record).
fn read_whole_topic(ctx: &Context, high_watermarks: &[i64]) -> Result<Vec<Vec<Stored>>, String> {
    let consumer = client::consumer(&ctx.bootstrap, &ctx.topic, false)?;
    for (partition, high) in high_watermarks.iter().enumerate() {
        let watermarks = consumer
            .fetch_watermarks(&ctx.topic, partition as i32, REQUEST_TIMEOUT)
            .map_err(|e| format!("cannot fetch watermarks of partition {partition}: {e}"))?;
        if watermarks != (0, *high) {
            return Err(format!(
                "partition {partition} earliest/latest offsets are {watermarks:?}, expected (0, {high})"
            ));
        }
    }
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(&ctx.topic, partition, Offset::Beginning)
            .map_err(|e| format!("cannot build assignment: {e}"))?;
    }
    consumer.assign(&assignment).map_err(|e| format!("assign failed: {e}"))?;
    let mut consumed: Vec<Vec<Stored>> = vec![Vec::new(); PARTITIONS as usize];
    let mut done: Vec<bool> = high_watermarks.iter().map(|high| *high == 0).collect();
    let deadline = Instant::now() + OPERATION_TIMEOUT;
    while !done.iter().all(|d| *d) {
        if Instant::now() > deadline {
            return Err(format!(
                "could not read the topic up to its high watermarks {high_watermarks:?} within {OPERATION_TIMEOUT:?}"
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(error)) => return Err(format!("consumer error while reading back: {error}")),
            Some(Ok(message)) => {
                let record = client::received(&message);
                let Some(partition) = usize::try_from(record.partition).ok().filter(|p| *p < consumed.len()) else {
                    return Err(format!("record from unassigned partition {}", record.partition));
                };
                if record.offset >= high_watermarks[partition] - 1 {
                    done[partition] = true;
                }
                consumed[partition].push((record.offset, record.key, record.value));
            }
        }
    }
    Ok(consumed)
}

/// The table a compacted log stands for: the latest value of each key; a tombstone removes the key.
fn fold(records: &[Stored]) -> HashMap<Option<Vec<u8>>, Vec<u8>> {
    let mut table = HashMap::new();
    for (_offset, key, value) in records {
        match value {
            None => {
                table.remove(key);
            }
            Some(value) => {
                table.insert(key.clone(), value.clone());
            }
        }
    }
    table
}

/// One read of the whole topic against what was produced. Err for what compaction may never do;
/// Ok(None) when the topic is compacted (each key's latest record alone remains, a latest tombstone may
/// remain or be gone, fewer records than produced); Ok(Some(what is left to clean)) otherwise.
fn check(produced: &[Vec<Stored>], consumed: &[Vec<Stored>]) -> Result<Option<String>, String> {
    let mut not_yet = Vec::new();
    for (partition, (sent, records)) in produced.iter().zip(consumed).enumerate() {
        let mut latest_offset: HashMap<&Option<Vec<u8>>, i64> = HashMap::new();
        for (offset, key, _) in sent {
            latest_offset.insert(key, *offset);
        }
        let mut seen = HashSet::new();
        let mut previous = -1;
        for (offset, key, value) in records {
            let place = format!("partition {partition} offset {offset}");
            if *offset <= previous {
                return Err(format!("{place}: returned after offset {previous} (out of order or twice)"));
            }
            previous = *offset;
            let Some((_, sent_key, sent_value)) = usize::try_from(*offset).ok().and_then(|o| sent.get(o)) else {
                return Err(format!("{place}: no record was produced at this offset (produced 0..{})", sent.len() - 1));
            };
            if (key, value) != (sent_key, sent_value) {
                return Err(format!(
                    "{place}: key {} value {}, produced key {} value {}",
                    show(key),
                    show(value),
                    show(sent_key),
                    show(sent_value)
                ));
            }
            seen.insert(*offset);
        }
        for (key, offset) in &latest_offset {
            if sent[*offset as usize].2.is_some() && !seen.contains(offset) {
                return Err(format!(
                    "partition {partition}: the latest record of key {} (offset {offset}) is missing: \
                     compaction removed a live key's latest value",
                    show(key)
                ));
            }
        }
        let stale: Vec<i64> = records
            .iter()
            .filter(|(offset, key, _)| latest_offset[key] != *offset)
            .map(|(offset, _, _)| *offset)
            .collect();
        if !stale.is_empty() {
            not_yet.push(format!(
                "partition {partition}: {} of {} records left, {} superseded (first at offsets {:?})",
                records.len(),
                sent.len(),
                stale.len(),
                &stale[..stale.len().min(5)]
            ));
            continue;
        }
        if fold(records) != fold(sent) {
            return Err(format!("partition {partition}: the records left do not fold to the latest values"));
        }
        if records.len() >= sent.len() {
            return Err(format!(
                "partition {partition}: {} records left of {} produced: nothing was compacted",
                records.len(),
                sent.len()
            ));
        }
    }
    Ok(if not_yet.is_empty() { None } else { Some(not_yet.join("; ")) })
}

pub fn log_compaction(ctx: &Context, count: u64) -> Result<(), String> {
    let updates: Vec<Update> = (0..count).map(|index| update(ctx.seed, index)).collect();
    let mut produced: Vec<Vec<Stored>> = vec![Vec::new(); PARTITIONS as usize];
    let producer = client::producer(&ctx.bootstrap, "none", &[])?;
    send_all(&producer, &ctx.topic, &updates, &mut produced)?;
    std::thread::sleep(ROLL_DELAY);
    send_all(&producer, &ctx.topic, &roll_records(), &mut produced)?;
    let high_watermarks: Vec<i64> = produced.iter().map(|records| records.len() as i64).collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let consumed = read_whole_topic(ctx, &high_watermarks)?;
        match check(&produced, &consumed)? {
            None => return Ok(()),
            Some(left) if Instant::now() > deadline => {
                return Err(format!("not compacted within {WAIT:?}: {left}"));
            }
            Some(left) => eprintln!("not compacted yet: {left}"),
        }
        std::thread::sleep(REREAD_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same sequence as conformance/common/messages.py (seed 1): partition sizes 1020/990/990,
    /// 300 tombstones, 10 keys whose latest update is a tombstone.
    #[test]
    fn matches_the_python_definition() {
        let updates: Vec<Update> = (0..3000).map(|index| update(1, index)).collect();
        let sizes: Vec<usize> = (0..PARTITIONS).map(|p| updates.iter().filter(|u| u.partition == p).count()).collect();
        assert_eq!(sizes, vec![1020, 990, 990]);
        assert_eq!(updates.iter().filter(|u| u.value.is_none()).count(), 300);
        let mut latest = HashMap::new();
        for u in &updates {
            latest.insert(u.key.clone(), u.value.clone());
        }
        assert_eq!(latest.len(), 100);
        assert_eq!(latest.values().filter(|v| v.is_none()).count(), 10);
        assert_eq!(update(1, 0), Update { partition: 1, key: b"key-1".to_vec(), value: Some(b"value-0".to_vec()) });
    }
}
