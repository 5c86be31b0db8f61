//! Thin helpers around the rdkafka crate: client configuration, producing with delivery reports,
//! and reading partitions back through an assigned (never subscribed) consumer.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, FromClientConfigAndContext};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::messages::TestMessage;

/// How long one produce/flush or one read-back may take.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout for single metadata / list-offsets round trips.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Client context that prints librdkafka's errors to stderr (the default drops them unless a
/// logger is installed), so a failing run says why, and keeps their texts: librdkafka reports
/// some broker errors under a local code and names the broker's error only in that text.
#[derive(Default)]
pub struct ErrorLog {
    reasons: Mutex<Vec<String>>,
}

impl ErrorLog {
    pub fn reasons(&self) -> Vec<String> {
        self.reasons.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl ClientContext for ErrorLog {
    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching the end of a partition is an event, not a problem.
        if error == KafkaError::Global(RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        eprintln!("librdkafka error: {error}: {reason}");
        if let Ok(mut reasons) = self.reasons.lock() {
            reasons.push(reason.to_string());
        }
    }
}

impl ConsumerContext for ErrorLog {}

/// Outcome of one produced message as librdkafka's delivery report tells it.
#[derive(Debug)]
pub struct Delivery {
    /// Index of the message in the order it was sent.
    pub index: usize,
    /// (partition, offset) on success.
    pub result: Result<(i32, i64), KafkaError>,
}

/// Producer context that records every delivery report; the delivery opaque is the send index.
pub struct DeliveryRecorder {
    deliveries: Mutex<Vec<Delivery>>,
}

impl ClientContext for DeliveryRecorder {
    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("librdkafka error: {error}: {reason}");
    }
}

impl ProducerContext for DeliveryRecorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, delivery_result: &DeliveryResult<'_>, index: usize) {
        let result = match delivery_result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _message)) => Err(error.clone()),
        };
        if let Ok(mut deliveries) = self.deliveries.lock() {
            deliveries.push(Delivery { index, result });
        }
    }
}

impl DeliveryRecorder {
    /// Takes the delivery reports collected so far.
    pub fn take(&self) -> Vec<Delivery> {
        match self.deliveries.lock() {
            Ok(mut deliveries) => std::mem::take(&mut *deliveries),
            Err(_) => Vec::new(),
        }
    }
}

pub type RecordingProducer = BaseProducer<DeliveryRecorder>;

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

/// A producer with acks=all and the given codec; `extra` adds or overrides settings.
pub fn producer(
    bootstrap: &str,
    compression: &str,
    extra: &[(&str, &str)],
) -> Result<RecordingProducer, String> {
    let mut config = base_config(bootstrap);
    // Plain produce (only idempotent-produce turns idempotence on, through `extra`); without it,
    // one request in flight per connection keeps send order when a request is retried (for example
    // right after topic creation, before the partition leader is known).
    config
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("max.in.flight.requests.per.connection", "1")
        .set("compression.type", compression)
        .set("message.timeout.ms", "60000");
    for (name, value) in extra {
        config.set(*name, *value);
    }
    let context = DeliveryRecorder {
        deliveries: Mutex::new(Vec::new()),
    };
    BaseProducer::from_config_and_context(&config, context)
        .map_err(|e| format!("cannot create producer: {e}"))
}

/// An assign-only consumer. librdkafka's assign() needs a group.id, but this consumer never
/// subscribes and never commits; auto.offset.reset=error so it never silently skips.
/// With `partition_eof`, poll() reports reaching the end of each partition's log.
pub fn consumer(
    bootstrap: &str,
    topic: &str,
    partition_eof: bool,
) -> Result<BaseConsumer<ErrorLog>, String> {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", format!("skein-conformance-rdkafka-{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("enable.partition.eof", partition_eof.to_string());
    BaseConsumer::from_config_and_context(&config, ErrorLog::default())
        .map_err(|e| format!("cannot create consumer: {e}"))
}

/// A subscribing member of the consumer-group scenarios' group (conformance/common/messages.md, "Consumer
/// group scenarios"): the given group.protocol, no auto commit, earliest when the group has no committed
/// offset.
pub fn group_member(
    bootstrap: &str,
    topic: &str,
    group_id: &str,
    protocol: &str,
    classic_heartbeat_interval_ms: u32,
) -> Result<BaseConsumer<ErrorLog>, String> {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", group_id)
        .set("group.protocol", protocol)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    if protocol == "classic" {
        // A classic member learns of a rebalance through its heartbeat. With group.protocol=consumer the
        // broker sets the interval (librdkafka rejects this setting).
        config.set("heartbeat.interval.ms", classic_heartbeat_interval_ms.to_string());
    }
    let consumer = BaseConsumer::from_config_and_context(&config, ErrorLog::default())
        .map_err(|e| format!("cannot create group member: {e}"))?;
    consumer
        .subscribe(&[topic])
        .map_err(|e| format!("subscribe failed: {e}"))?;
    Ok(consumer)
}

fn owned_headers(headers: &[(String, Vec<u8>)]) -> OwnedHeaders {
    let mut owned = OwnedHeaders::new_with_capacity(headers.len());
    for (name, value) in headers {
        owned = owned.insert(Header {
            key: name,
            value: Some(value),
        });
    }
    owned
}

/// Sends `message` with its partition, key, value, headers and timestamp; `index` comes back in
/// the delivery report. Waits (polling delivery reports) while librdkafka's queue is full.
pub fn send(
    producer: &RecordingProducer,
    topic: &str,
    message: &TestMessage,
    index: usize,
) -> Result<(), String> {
    let mut record = BaseRecord::with_opaque_to(topic, index)
        .partition(message.partition)
        .key(&message.key[..])
        .payload(&message.value[..])
        .timestamp(message.timestamp_ms)
        .headers(owned_headers(&message.headers));
    let deadline = Instant::now() + OPERATION_TIMEOUT;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                if Instant::now() > deadline {
                    return Err(format!(
                        "producer queue stayed full for {OPERATION_TIMEOUT:?}"
                    ));
                }
                record = returned;
                producer.poll(Duration::from_millis(50));
            }
            Err((error, _)) => return Err(format!("send of message {index} failed: {error}")),
        }
    }
}

/// Waits until every sent message has a delivery report.
pub fn flush(producer: &RecordingProducer) -> Result<(), String> {
    producer
        .flush(OPERATION_TIMEOUT)
        .map_err(|e| format!("flush did not complete within {OPERATION_TIMEOUT:?}: {e}"))
}

/// Produces `messages` in order (message n gets delivery index n) and checks every delivery
/// report: each message acknowledged exactly once, at partition `message.partition` and at the
/// offset equal to its position among that partition's messages (0, 1, 2, ...).
pub fn produce_in_order(
    producer: &RecordingProducer,
    topic: &str,
    messages: &[TestMessage],
) -> Result<(), String> {
    produce_in_order_from(producer, topic, messages, [0; crate::messages::PARTITIONS as usize])
}

/// `produce_in_order` to partitions that already hold records: partition p's first message must be
/// acknowledged at offset `first_offsets[p]`, the next at the offset after it, and so on.
pub fn produce_in_order_from(
    producer: &RecordingProducer,
    topic: &str,
    messages: &[TestMessage],
    first_offsets: [i64; crate::messages::PARTITIONS as usize],
) -> Result<(), String> {
    for (index, message) in messages.iter().enumerate() {
        send(producer, topic, message, index)?;
        if index % 1000 == 999 {
            producer.poll(Duration::ZERO);
        }
    }
    flush(producer)?;
    let mut deliveries = producer.context().take();
    if deliveries.len() != messages.len() {
        return Err(format!(
            "{} messages sent but {} delivery reports",
            messages.len(),
            deliveries.len()
        ));
    }
    deliveries.sort_by_key(|delivery| delivery.index);
    let mut next_offset = first_offsets;
    for (expected_index, delivery) in deliveries.iter().enumerate() {
        if delivery.index != expected_index {
            return Err(format!(
                "delivery reports are not one per message (index {} where {expected_index} expected)",
                delivery.index
            ));
        }
        let message = &messages[expected_index];
        let expected_partition = message.partition;
        let expected_offset = next_offset[expected_partition as usize];
        next_offset[expected_partition as usize] += 1;
        match &delivery.result {
            Ok((partition, offset)) => {
                if (*partition, *offset) != (expected_partition, expected_offset) {
                    return Err(format!(
                        "message {expected_index} was stored at partition {partition} offset {offset}, \
                         expected partition {expected_partition} offset {expected_offset}"
                    ));
                }
            }
            Err(error) => {
                return Err(format!(
                    "message {expected_index} was not delivered: {error}"
                ));
            }
        }
    }
    Ok(())
}

/// One consumed record, copied out of librdkafka's buffers.
#[derive(Debug)]
pub struct Received {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Timestamp,
}

pub fn received<M: Message>(message: &M) -> Received {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Received {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: message.timestamp(),
    }
}

/// Reads partitions 0..expected_counts.len() of `topic` from the beginning until partition p
/// has yielded expected_counts[p] records. Fails on any consumer error, on a record beyond the
/// expected count, on a partition that ends short, or when the records do not arrive within
/// OPERATION_TIMEOUT.
pub fn read_partitions(
    bootstrap: &str,
    topic: &str,
    expected_counts: &[usize],
) -> Result<Vec<Vec<Received>>, String> {
    let consumer = consumer(bootstrap, topic, true)?;
    // Earliest offset 0 and latest (high watermark) = the expected count: nothing is missing and
    // nothing extra. Asked before assigning, since the broker answers requests on a connection in
    // order and would hold this one behind a waiting fetch.
    for (partition, expected) in expected_counts.iter().enumerate() {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition as i32, REQUEST_TIMEOUT)
            .map_err(|e| format!("cannot fetch watermarks of partition {partition}: {e}"))?;
        if (low, high) != (0, *expected as i64) {
            return Err(format!(
                "partition {partition} earliest/latest offsets are ({low}, {high}), expected (0, {expected})"
            ));
        }
    }
    let mut assignment = TopicPartitionList::new();
    for partition in 0..expected_counts.len() as i32 {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|e| format!("cannot build assignment: {e}"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign failed: {e}"))?;

    let mut by_partition: Vec<Vec<Received>> = expected_counts.iter().map(|_| Vec::new()).collect();
    let deadline = Instant::now() + OPERATION_TIMEOUT;
    let done = |by_partition: &Vec<Vec<Received>>| {
        by_partition
            .iter()
            .zip(expected_counts)
            .all(|(got, expected)| got.len() == *expected)
    };
    while !done(&by_partition) {
        if Instant::now() > deadline {
            let got: Vec<usize> = by_partition.iter().map(Vec::len).collect();
            return Err(format!(
                "read back {got:?} records per partition within {OPERATION_TIMEOUT:?}, expected {expected_counts:?}"
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                // The end of the log (high watermark) is reached: every acknowledged record is
                // below it, so a short partition will not grow any more.
                let got = usize::try_from(partition)
                    .ok()
                    .and_then(|p| by_partition.get(p))
                    .map(Vec::len);
                let expected = usize::try_from(partition)
                    .ok()
                    .and_then(|p| expected_counts.get(p));
                if let (Some(got), Some(expected)) = (got, expected)
                    && got < *expected
                {
                    return Err(format!(
                        "partition {partition} ended after {got} records, expected {expected}"
                    ));
                }
            }
            Some(Err(error)) => return Err(format!("consumer error while reading back: {error}")),
            Some(Ok(message)) => {
                let record = received(&message);
                let partition = record.partition;
                let Some(slot) = usize::try_from(partition)
                    .ok()
                    .and_then(|p| by_partition.get_mut(p))
                else {
                    return Err(format!("record from unassigned partition {partition}"));
                };
                if slot.len() >= expected_counts[partition as usize] {
                    return Err(format!(
                        "partition {partition} has more than the {} expected records (extra at offset {})",
                        expected_counts[partition as usize], record.offset
                    ));
                }
                slot.push(record);
            }
        }
    }

    Ok(by_partition)
}

fn preview(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(24).map(|b| format!("{b:02x}")).collect();
    let ellipsis = if bytes.len() > 24 { "…" } else { "" };
    format!("{} bytes [{}{ellipsis}]", bytes.len(), shown.join(""))
}

/// Compares one record byte for byte with the message that was sent to that offset.
pub fn check_record(
    received: &Received,
    expected: &TestMessage,
    expected_offset: i64,
) -> Result<(), String> {
    let at = format!(
        "partition {} offset {}",
        received.partition, received.offset
    );
    if received.partition != expected.partition || received.offset != expected_offset {
        return Err(format!(
            "{at}: expected partition {} offset {expected_offset}",
            expected.partition
        ));
    }
    if received.key.as_deref() != Some(&expected.key[..]) {
        return Err(format!(
            "{at}: key {:?}, expected {}",
            received.key.as_deref().map(preview),
            preview(&expected.key)
        ));
    }
    if received.value.as_deref() != Some(&expected.value[..]) {
        return Err(format!(
            "{at}: value {:?}, expected {}",
            received.value.as_deref().map(preview),
            preview(&expected.value)
        ));
    }
    let expected_headers: Vec<(String, Option<Vec<u8>>)> = expected
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), Some(value.clone())))
        .collect();
    if received.headers != expected_headers {
        return Err(format!(
            "{at}: headers {:?}, expected {expected_headers:?}",
            received.headers
        ));
    }
    if received.timestamp != Timestamp::CreateTime(expected.timestamp_ms) {
        return Err(format!(
            "{at}: timestamp {:?}, expected CreateTime({})",
            received.timestamp, expected.timestamp_ms
        ));
    }
    Ok(())
}

/// Reads the partitions back and checks that partition p holds exactly `expected[p]`, in order,
/// at offsets 0, 1, 2, ...
pub fn read_and_check(
    bootstrap: &str,
    topic: &str,
    expected: &[Vec<TestMessage>],
) -> Result<(), String> {
    let counts: Vec<usize> = expected.iter().map(Vec::len).collect();
    let received = read_partitions(bootstrap, topic, &counts)?;
    for (records, messages) in received.iter().zip(expected) {
        for (offset, (record, message)) in records.iter().zip(messages).enumerate() {
            check_record(record, message, offset as i64)?;
        }
    }
    Ok(())
}
