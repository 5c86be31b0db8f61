//! The conformance scenarios (semantics shared by every client driver).

use std::time::{Duration, Instant};

use futures_executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication, TopicResult};
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{
    self, ErrorLog, OPERATION_TIMEOUT, REQUEST_TIMEOUT, flush, produce_in_order, read_and_check,
    send,
};
use crate::messages::{self, BASE_TIMESTAMP_MS, TestMessage};

pub struct Context {
    pub bootstrap: String,
    pub topic: String,
    pub seed: u64,
}

fn roundtrip_messages(ctx: &Context, count: u64) -> Vec<TestMessage> {
    (0..count)
        .map(|i| messages::roundtrip_message(ctx.seed, i))
        .collect()
}

/// roundtrip and compression-*: produce `count` messages with `compression`, read all three
/// partitions back and compare every record byte for byte.
pub fn roundtrip(ctx: &Context, count: u64, compression: &str) -> Result<(), String> {
    produce_with(ctx, count, compression).map_err(|e| format!("produce ({compression}): {e}"))?;
    verify(ctx, count)
}

/// idempotent-produce: the roundtrip with an idempotent producer (producer id + per-partition
/// sequence numbers) and up to 5 requests in flight per connection, the most idempotence allows.
pub fn idempotent_produce(ctx: &Context, count: u64) -> Result<(), String> {
    let idempotent = [
        ("enable.idempotence", "true"),
        ("max.in.flight.requests.per.connection", "5"),
    ];
    let producer = client::producer(&ctx.bootstrap, "none", &idempotent)?;
    produce_in_order(&producer, &ctx.topic, &roundtrip_messages(ctx, count))
        .map_err(|e| format!("idempotent produce: {e}"))?;
    verify(ctx, count)
}

/// produce phase: the roundtrip messages with acks=all, all acknowledged at the expected offsets.
pub fn produce(ctx: &Context, count: u64) -> Result<(), String> {
    produce_with(ctx, count, "none")
}

fn produce_with(ctx: &Context, count: u64, compression: &str) -> Result<(), String> {
    let producer = client::producer(&ctx.bootstrap, compression, &[])?;
    produce_in_order(&producer, &ctx.topic, &roundtrip_messages(ctx, count))
}

/// verify phase: exactly the `count` roundtrip messages, once each, in order.
pub fn verify(ctx: &Context, count: u64) -> Result<(), String> {
    let expected = messages::roundtrip_messages_by_partition(ctx.seed, count);
    read_and_check(&ctx.bootstrap, &ctx.topic, &expected)
}

/// Message i of the single-partition scenarios: the roundtrip message, sent to partition 0.
fn partition0_message(ctx: &Context, i: u64, timestamp_ms: i64) -> TestMessage {
    TestMessage {
        partition: 0,
        timestamp_ms,
        ..messages::roundtrip_message(ctx.seed, i)
    }
}

/// message-too-large: the broker (not the client) rejects a 2 MiB record with MESSAGE_TOO_LARGE;
/// the same producer then delivers a small record that reads back.
pub fn message_too_large(ctx: &Context) -> Result<(), String> {
    // Raise librdkafka's own limit so the record reaches the broker.
    let producer = client::producer(&ctx.bootstrap, "none", &[("message.max.bytes", "16777216")])?;
    let large = TestMessage {
        partition: 0,
        key: b"large".to_vec(),
        value: messages::large_value(),
        headers: Vec::new(),
        timestamp_ms: BASE_TIMESTAMP_MS,
    };
    send(&producer, &ctx.topic, &large, 0)?;
    flush(&producer)?;
    let deliveries = producer.context().take();
    match deliveries.as_slice() {
        [delivery] => match &delivery.result {
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)) => {}
            Err(other) => {
                return Err(format!(
                    "2 MiB record failed with {other}, expected MESSAGE_TOO_LARGE (10)"
                ));
            }
            Ok((partition, offset)) => {
                return Err(format!(
                    "2 MiB record was accepted at partition {partition} offset {offset}, expected MESSAGE_TOO_LARGE"
                ));
            }
        },
        other => {
            return Err(format!(
                "expected 1 delivery report for the 2 MiB record, got {other:?}"
            ));
        }
    }

    // Roundtrip message 1, sent to partition 0.
    let small = partition0_message(ctx, 1, messages::timestamp_ms(1));
    produce_in_order(&producer, &ctx.topic, std::slice::from_ref(&small))
        .map_err(|e| format!("small record after the rejected one: {e}"))?;
    read_and_check(
        &ctx.bootstrap,
        &ctx.topic,
        &[vec![small], Vec::new(), Vec::new()],
    )
}

/// offset-out-of-range: fetching partition 0 from offset 1000 (of 10) with auto.offset.reset=error.
/// librdkafka turns the broker's OFFSET_OUT_OF_RANGE (1) into its consumer error
/// _AUTO_OFFSET_RESET ("no offset to automatically reset to"), raised only for that broker error.
pub fn offset_out_of_range(ctx: &Context) -> Result<(), String> {
    let messages: Vec<TestMessage> = (0..10)
        .map(|i| partition0_message(ctx, i, messages::timestamp_ms(i)))
        .collect();
    let producer = client::producer(&ctx.bootstrap, "none", &[])?;
    produce_in_order(&producer, &ctx.topic, &messages)?;

    let consumer = client::consumer(&ctx.bootstrap, &ctx.topic, false)?;
    let watermarks = consumer
        .fetch_watermarks(&ctx.topic, 0, REQUEST_TIMEOUT)
        .map_err(|e| format!("cannot fetch watermarks: {e}"))?;
    if watermarks != (0, 10) {
        return Err(format!(
            "partition 0 watermarks are {watermarks:?}, expected (0, 10)"
        ));
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&ctx.topic, 0, Offset::Offset(1000))
        .map_err(|e| format!("cannot build assignment: {e}"))?;
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign failed: {e}"))?;

    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                use rdkafka::Message;
                return Err(format!(
                    "got a record at offset {} instead of an out-of-range error",
                    message.offset()
                ));
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                // The error's text (seen by the context just before poll returned) carries the
                // broker's error: librdkafka's name for code 1 is "Broker: Offset out of range".
                let reasons = consumer.context().reasons();
                if reasons
                    .iter()
                    .any(|r| r.contains("Broker: Offset out of range"))
                {
                    return Ok(());
                }
                return Err(format!(
                    "_AUTO_OFFSET_RESET without the broker's OFFSET_OUT_OF_RANGE in its text: {reasons:?}"
                ));
            }
            Some(Err(other)) => {
                return Err(format!(
                    "consumer error {other}, expected offset out of range"
                ));
            }
        }
    }
    Err("no offset-out-of-range error within 30 s".to_string())
}

/// list-offsets: 100 records in partition 0 with timestamps BASE + 10*i.
pub fn list_offsets(ctx: &Context) -> Result<(), String> {
    let messages: Vec<TestMessage> = (0..100)
        .map(|i| partition0_message(ctx, i, BASE_TIMESTAMP_MS + 10 * i as i64))
        .collect();
    let producer = client::producer(&ctx.bootstrap, "none", &[])?;
    produce_in_order(&producer, &ctx.topic, &messages)?;

    let consumer = client::consumer(&ctx.bootstrap, &ctx.topic, false)?;
    // librdkafka's watermark query is ListOffsets with EARLIEST (-2) and LATEST (-1).
    let watermarks = consumer
        .fetch_watermarks(&ctx.topic, 0, REQUEST_TIMEOUT)
        .map_err(|e| format!("cannot fetch watermarks: {e}"))?;
    if watermarks != (0, 100) {
        return Err(format!(
            "earliest/latest offsets are {watermarks:?}, expected (0, 100)"
        ));
    }

    // Partitions 1 and 2 got nothing.
    for partition in [1, 2] {
        let watermarks = consumer
            .fetch_watermarks(&ctx.topic, partition, REQUEST_TIMEOUT)
            .map_err(|e| format!("cannot fetch watermarks of partition {partition}: {e}"))?;
        if watermarks != (0, 0) {
            return Err(format!(
                "partition {partition} earliest/latest offsets are {watermarks:?}, expected (0, 0)"
            ));
        }
    }

    let far_future_ms = BASE_TIMESTAMP_MS + 1_000_000_000_000;
    let cases = [
        (BASE_TIMESTAMP_MS + 505, Offset::Offset(51)),
        (BASE_TIMESTAMP_MS + 500, Offset::Offset(50)),
        (BASE_TIMESTAMP_MS, Offset::Offset(0)),
        (far_future_ms, Offset::End),
    ];
    for (timestamp_ms, expected) in cases {
        let mut query = TopicPartitionList::new();
        query
            .add_partition_offset(&ctx.topic, 0, Offset::Offset(timestamp_ms))
            .map_err(|e| format!("cannot build query: {e}"))?;
        let answer = consumer
            .offsets_for_times(query, REQUEST_TIMEOUT)
            .map_err(|e| format!("offsets_for_times({timestamp_ms}) failed: {e}"))?;
        let Some(element) = answer.find_partition(&ctx.topic, 0) else {
            return Err(format!(
                "offsets_for_times({timestamp_ms}) returned no partition 0"
            ));
        };
        element
            .error()
            .map_err(|e| format!("offsets_for_times({timestamp_ms}) partition error: {e}"))?;
        if element.offset() != expected {
            return Err(format!(
                "offsets_for_times({timestamp_ms}) = {:?}, expected {expected:?}",
                element.offset()
            ));
        }
    }
    Ok(())
}

/// Polls the cluster metadata until `condition` holds for `topic`'s partition count
/// (None when the topic is absent), or fails after 30 s.
fn wait_for_metadata(
    admin: &AdminClient<ErrorLog>,
    topic: &str,
    what: &str,
    condition: impl Fn(Option<usize>) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        let metadata = admin
            .inner()
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(|e| format!("metadata request failed: {e}"))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len());
        if condition(partitions) {
            return Ok(());
        }
        last = Some(partitions);
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "metadata never showed {what} (last partition count seen: {last:?})"
    ))
}

fn single_result(
    results: Result<Vec<TopicResult>, KafkaError>,
    what: &str,
) -> Result<TopicResult, String> {
    let mut results = results.map_err(|e| format!("{what}: request failed: {e}"))?;
    if results.len() != 1 {
        return Err(format!("{what}: expected 1 result, got {results:?}"));
    }
    Ok(results.remove(0))
}

/// admin-topics: create (3 partitions) / create again / invalid name / delete.
pub fn admin_topics(ctx: &Context) -> Result<(), String> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &ctx.bootstrap);
    let admin = AdminClient::from_config_and_context(&config, ErrorLog::default())
        .map_err(|e| format!("cannot create admin client: {e}"))?;
    let options = AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(OPERATION_TIMEOUT / 2));
    let topic = ctx.topic.as_str();
    let new_topic = NewTopic::new(topic, 3, TopicReplication::Fixed(1));

    let created = single_result(
        block_on(admin.create_topics([&new_topic], &options)),
        "create",
    )?;
    if created != Ok(topic.to_string()) {
        return Err(format!("create {topic}: {created:?}, expected success"));
    }
    wait_for_metadata(&admin, topic, "3 partitions", |partitions| {
        partitions == Some(3)
    })?;

    let again = single_result(
        block_on(admin.create_topics([&new_topic], &options)),
        "create again",
    )?;
    if again != Err((topic.to_string(), RDKafkaErrorCode::TopicAlreadyExists)) {
        return Err(format!(
            "create {topic} again: {again:?}, expected TOPIC_ALREADY_EXISTS (36)"
        ));
    }

    let bad_name = "bad/name";
    let bad_topic = NewTopic::new(bad_name, 3, TopicReplication::Fixed(1));
    let bad = single_result(
        block_on(admin.create_topics([&bad_topic], &options)),
        "create bad/name",
    )?;
    if bad != Err((bad_name.to_string(), RDKafkaErrorCode::InvalidTopic)) {
        return Err(format!(
            "create {bad_name}: {bad:?}, expected INVALID_TOPIC_EXCEPTION (17)"
        ));
    }

    let deleted = single_result(block_on(admin.delete_topics(&[topic], &options)), "delete")?;
    if deleted != Ok(topic.to_string()) {
        return Err(format!("delete {topic}: {deleted:?}, expected success"));
    }
    wait_for_metadata(&admin, topic, "the topic gone", |partitions| {
        partitions.is_none()
    })
}
