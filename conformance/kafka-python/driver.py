"""Conformance driver for kafka-python (pure Python): KafkaProducer, KafkaConsumer and KafkaAdminClient only."""

from __future__ import annotations

import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import kafka
import kafka.codec
import kafka.errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from common.driver import CALL_TIMEOUT_SECONDS, Deadline, ScenarioArgs, main
from common.messages import (BASE_TIMESTAMP_MS, LIST_OFFSETS_COUNT, LIST_OFFSETS_EXPECTED_OFFSET,
                             LIST_OFFSETS_FAR_FUTURE_MS, LIST_OFFSETS_QUERY_TIMESTAMP_MS,
                             LIST_OFFSETS_TIMESTAMP_STEP_MS, OFFSET_OUT_OF_RANGE_COUNT,
                             OFFSET_OUT_OF_RANGE_FETCH_OFFSET, PARTITIONS, ConsumedRecord, Message,
                             ScenarioFailed, ScenarioNotSupported, check_delivery_offsets, check_records_match,
                             expected_counts_by_partition, large_value, message_too_large_small_message,
                             roundtrip_messages, single_partition_messages)

CLIENT_NAME = "kafka-python"
CONSUME_TIMEOUT_SECONDS = 60.0
CALL_TIMEOUT_MS = int(CALL_TIMEOUT_SECONDS * 1000)
MESSAGE_TOO_LARGE = 10
OFFSET_OUT_OF_RANGE = 1
TOPIC_ALREADY_EXISTS = 36
INVALID_TOPIC_EXCEPTION = 17
# ConsumerRecord.timestamp_type: 0 = CreateTime, 1 = LogAppendTime.
CREATE_TIME = 0
# Delivery (including retries) must be reported well inside the driver's overall timeout.
DELIVERY_TIMEOUT_MS = 60_000
CODEC_AVAILABLE = {
    "gzip": kafka.codec.has_gzip,
    "snappy": kafka.codec.has_snappy,
    "lz4": kafka.codec.has_lz4,
    "zstd": kafka.codec.has_zstd,
}


def common_config(args: ScenarioArgs) -> dict:
    return {
        "bootstrap_servers": args.bootstrap,
        "client_id": f"conformance-{CLIENT_NAME}",
        "request_timeout_ms": CALL_TIMEOUT_MS,
    }


def new_producer(args: ScenarioArgs, **extra) -> KafkaProducer:
    config = {
        **common_config(args),
        "acks": "all",
        "max_block_ms": CALL_TIMEOUT_MS,
        "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
    }
    config.update(extra)
    return KafkaProducer(**config)


def new_consumer(args: ScenarioArgs) -> KafkaConsumer:
    # No group: partitions are assigned directly and nothing is committed.
    return KafkaConsumer(
        **common_config(args),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
    )


def new_admin(args: ScenarioArgs) -> KafkaAdminClient:
    return KafkaAdminClient(**common_config(args))


def send_messages(producer: KafkaProducer, topic: str, messages: list[Message]) -> dict[int, tuple[int, int]]:
    """Sends every message and waits for all acknowledgements; returns index -> (partition, offset)."""
    futures = [
        (message.index, producer.send(topic, value=message.value, key=message.key, headers=message.headers,
                                      partition=message.partition, timestamp_ms=message.timestamp_ms))
        for message in messages
    ]
    producer.flush(timeout=DELIVERY_TIMEOUT_MS / 1000 + 10)
    delivered: dict[int, tuple[int, int]] = {}
    for index, future in futures:
        try:
            metadata = future.get(timeout=CALL_TIMEOUT_SECONDS)
        except kafka.errors.KafkaError as exc:
            raise ScenarioFailed(f"message {index} was not acknowledged: {exc!r}")
        delivered[index] = (metadata.partition, metadata.offset)
    return delivered


def to_record(record) -> ConsumedRecord:
    return ConsumedRecord(
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers or []),
        timestamp_ms=record.timestamp,
        timestamp_is_create_time=record.timestamp_type == CREATE_TIME,
    )


def check_watermarks(consumer: KafkaConsumer, topic: str, expected_counts: dict[int, int]) -> None:
    partitions = [TopicPartition(topic, partition) for partition in expected_counts]
    low = consumer.beginning_offsets(partitions, timeout_ms=CALL_TIMEOUT_MS)
    high = consumer.end_offsets(partitions, timeout_ms=CALL_TIMEOUT_MS)
    for tp in partitions:
        expected = expected_counts[tp.partition]
        if (low.get(tp), high.get(tp)) != (0, expected):
            raise ScenarioFailed(f"partition {tp.partition}: (beginning, end) offsets = ({low.get(tp)}, "
                                 f"{high.get(tp)}), expected (0, {expected})")


def consume_from_beginning(args: ScenarioArgs, expected_counts: dict[int, int]) -> dict[int, list[ConsumedRecord]]:
    """Assigns the partitions (no group), reads each from its beginning up to its end offset,
    which must equal the expected count."""
    consumer = new_consumer(args)
    try:
        check_watermarks(consumer, args.topic, expected_counts)
        records: dict[int, list[ConsumedRecord]] = {partition: [] for partition in expected_counts}
        wanted = [TopicPartition(args.topic, partition) for partition, count in expected_counts.items() if count > 0]
        if not wanted:
            return records
        consumer.assign(wanted)
        consumer.seek_to_beginning(*wanted)
        deadline = Deadline(CONSUME_TIMEOUT_SECONDS)
        while any(len(records[tp.partition]) < expected_counts[tp.partition] for tp in wanted):
            if deadline.expired():
                progress = {tp.partition: len(records[tp.partition]) for tp in wanted}
                raise ScenarioFailed(f"timed out consuming: got {progress}, expected {expected_counts}")
            batch = consumer.poll(timeout_ms=int(min(1.0, deadline.remaining()) * 1000))
            for tp, tp_records in batch.items():
                records[tp.partition].extend(to_record(record) for record in tp_records)
        return records
    finally:
        consumer.close(autocommit=False)


def roundtrip(args: ScenarioArgs, compression: str | None = None) -> None:
    if compression is not None and not CODEC_AVAILABLE[compression]():
        raise ScenarioNotSupported(f"the {compression} codec library is not installed")
    messages = roundtrip_messages(args.seed, args.count)
    producer = new_producer(args, compression_type=compression)
    try:
        check_delivery_offsets(messages, send_messages(producer, args.topic, messages))
    finally:
        producer.close(timeout=CALL_TIMEOUT_SECONDS)
    verify(args)


def idempotent_produce(args: ScenarioArgs) -> None:
    """The roundtrip with idempotence requested explicitly (kafka-python then raises instead of silently
    falling back to a plain producer) and up to 5 requests in flight per connection."""
    messages = roundtrip_messages(args.seed, args.count)
    producer = new_producer(args, enable_idempotence=True, max_in_flight_requests_per_connection=5)
    try:
        check_delivery_offsets(messages, send_messages(producer, args.topic, messages))
    finally:
        producer.close(timeout=CALL_TIMEOUT_SECONDS)
    verify(args)


def produce_phase(args: ScenarioArgs) -> None:
    messages = roundtrip_messages(args.seed, args.count)
    producer = new_producer(args)
    try:
        check_delivery_offsets(messages, send_messages(producer, args.topic, messages))
    finally:
        producer.close(timeout=CALL_TIMEOUT_SECONDS)


def verify(args: ScenarioArgs) -> None:
    messages = roundtrip_messages(args.seed, args.count)
    records = consume_from_beginning(args, expected_counts_by_partition(messages))
    check_records_match(messages, records)


def compression_scenario(codec: str):
    return lambda args: roundtrip(args, compression=codec)


def message_too_large(args: ScenarioArgs) -> None:
    # The producer's own limit is raised so that the broker, not the client, rejects the message.
    # (kafka-python raises the same MessageSizeTooLargeError class from send() for its own limit;
    # only an error delivered through the future is the broker's.)
    # Idempotence is off: kafka-python 3.0.12's idempotent producer classifies any non-retriable
    # batch error as fatal (TransactionManager.classify_batch_error), so after MESSAGE_TOO_LARGE it
    # aborts every later send, against Apache Kafka too. The plain producer stays usable, as required.
    producer = new_producer(args, max_request_size=10 * 1024 * 1024, enable_idempotence=False)
    try:
        future = producer.send(args.topic, value=large_value(), key=b"large", partition=0)
        producer.flush(timeout=DELIVERY_TIMEOUT_MS / 1000 + 10)
        try:
            metadata = future.get(timeout=CALL_TIMEOUT_SECONDS)
        except kafka.errors.KafkaError as exc:
            if getattr(exc, "errno", None) != MESSAGE_TOO_LARGE:
                raise ScenarioFailed(f"the 2 MiB message failed with {exc!r}; "
                                     f"expected MESSAGE_TOO_LARGE ({MESSAGE_TOO_LARGE})")
        else:
            raise ScenarioFailed(f"the 2 MiB message was accepted at offset {metadata.offset}; "
                                 f"expected MESSAGE_TOO_LARGE ({MESSAGE_TOO_LARGE})")
        small = message_too_large_small_message(args.seed)
        delivered = send_messages(producer, args.topic, [small])
    finally:
        producer.close(timeout=CALL_TIMEOUT_SECONDS)
    if delivered[small.index] != (0, 0):
        raise ScenarioFailed(f"small message acknowledged at (partition, offset) {delivered[small.index]}, "
                             "expected (0, 0)")
    records = consume_from_beginning(args, {0: 1, 1: 0, 2: 0})
    check_records_match([small], records)


def produce_to_partition_zero(args: ScenarioArgs, messages: list[Message]) -> None:
    producer = new_producer(args)
    try:
        check_delivery_offsets(messages, send_messages(producer, args.topic, messages))
    finally:
        producer.close(timeout=CALL_TIMEOUT_SECONDS)


def offset_out_of_range(args: ScenarioArgs) -> None:
    produce_to_partition_zero(args, single_partition_messages(args.seed, OFFSET_OUT_OF_RANGE_COUNT))
    consumer = new_consumer(args)
    try:
        partition = TopicPartition(args.topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, OFFSET_OUT_OF_RANGE_FETCH_OFFSET)
        deadline = Deadline(CONSUME_TIMEOUT_SECONDS)
        while not deadline.expired():
            try:
                batch = consumer.poll(timeout_ms=int(min(1.0, deadline.remaining()) * 1000))
            except kafka.errors.KafkaError as exc:
                if getattr(exc, "errno", None) == OFFSET_OUT_OF_RANGE:
                    return
                raise ScenarioFailed(f"poll raised {exc!r}; expected OFFSET_OUT_OF_RANGE ({OFFSET_OUT_OF_RANGE})")
            for tp_records in batch.values():
                raise ScenarioFailed(f"fetching from offset {OFFSET_OUT_OF_RANGE_FETCH_OFFSET} returned a record "
                                     f"at offset {tp_records[0].offset}; expected OFFSET_OUT_OF_RANGE")
        raise ScenarioFailed("no OFFSET_OUT_OF_RANGE error reported within the timeout")
    finally:
        consumer.close(autocommit=False)


def list_offsets(args: ScenarioArgs) -> None:
    produce_to_partition_zero(
        args, single_partition_messages(args.seed, LIST_OFFSETS_COUNT, LIST_OFFSETS_TIMESTAMP_STEP_MS))
    consumer = new_consumer(args)
    try:
        check_watermarks(consumer, args.topic, {0: LIST_OFFSETS_COUNT, 1: 0, 2: 0})
        partition = TopicPartition(args.topic, 0)
        found = consumer.offsets_for_times({partition: LIST_OFFSETS_QUERY_TIMESTAMP_MS}, timeout_ms=CALL_TIMEOUT_MS)
        result = found.get(partition)
        expected_timestamp = BASE_TIMESTAMP_MS + LIST_OFFSETS_TIMESTAMP_STEP_MS * LIST_OFFSETS_EXPECTED_OFFSET
        if result is None or (result.offset, result.timestamp) != (LIST_OFFSETS_EXPECTED_OFFSET, expected_timestamp):
            raise ScenarioFailed(f"offsets_for_times({LIST_OFFSETS_QUERY_TIMESTAMP_MS}) = {result}, expected offset "
                                 f"{LIST_OFFSETS_EXPECTED_OFFSET} with timestamp {expected_timestamp}")
        found = consumer.offsets_for_times({partition: LIST_OFFSETS_FAR_FUTURE_MS}, timeout_ms=CALL_TIMEOUT_MS)
        if partition not in found or found[partition] is not None:
            raise ScenarioFailed(f"offsets_for_times({LIST_OFFSETS_FAR_FUTURE_MS}) = {found}, expected None "
                                 "(no record at or after that time)")
    finally:
        consumer.close(autocommit=False)


def topic_partition_count(admin: KafkaAdminClient, topic: str) -> int | None:
    """Partition count of TOPIC in the cluster metadata, None if the topic is absent."""
    if topic not in admin.list_topics():
        return None
    [description] = admin.describe_topics([topic])
    if description["error_code"] != 0:
        raise ScenarioFailed(f"metadata for {topic} has error code {description['error_code']}")
    return len(description["partitions"])


def create_topic_error_code(admin: KafkaAdminClient, topic: str) -> tuple[int, str | None]:
    response = admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}},
                                   timeout_ms=CALL_TIMEOUT_MS, raise_errors=False)
    [result] = [entry for entry in response["topics"] if entry["name"] == topic]
    return result["error_code"], result.get("error_message")


def admin_topics(args: ScenarioArgs) -> None:
    admin = new_admin(args)
    try:
        code, message = create_topic_error_code(admin, args.topic)
        if code != 0:
            raise ScenarioFailed(f"creating {args.topic} failed with error code {code}: {message}")
        deadline = Deadline(CALL_TIMEOUT_SECONDS)
        while topic_partition_count(admin, args.topic) != PARTITIONS:
            if deadline.expired():
                raise ScenarioFailed(f"metadata never showed {args.topic} with {PARTITIONS} partitions "
                                     f"(last: {topic_partition_count(admin, args.topic)})")
            time.sleep(0.2)

        code, message = create_topic_error_code(admin, args.topic)
        if code != TOPIC_ALREADY_EXISTS:
            raise ScenarioFailed(f"creating {args.topic} again: error code {code} ({message}); "
                                 f"expected TOPIC_ALREADY_EXISTS ({TOPIC_ALREADY_EXISTS})")

        code, message = create_topic_error_code(admin, "bad/name")
        if code != INVALID_TOPIC_EXCEPTION:
            raise ScenarioFailed(f"creating bad/name: error code {code} ({message}); "
                                 f"expected INVALID_TOPIC_EXCEPTION ({INVALID_TOPIC_EXCEPTION})")

        response = admin.delete_topics([args.topic], timeout_ms=CALL_TIMEOUT_MS, raise_errors=False)
        codes = [(entry["name"], entry["error_code"]) for entry in response["topics"]]
        if codes != [(args.topic, 0)]:
            raise ScenarioFailed(f"deleting {args.topic}: per-topic error codes {codes}, expected [({args.topic!r}, 0)]")
        deadline = Deadline(CALL_TIMEOUT_SECONDS)
        while topic_partition_count(admin, args.topic) is not None:
            if deadline.expired():
                raise ScenarioFailed(f"{args.topic} is still in the metadata after deletion")
            time.sleep(0.2)
    finally:
        admin.close()


SCENARIOS = {
    "roundtrip": roundtrip,
    "compression-gzip": compression_scenario("gzip"),
    "compression-snappy": compression_scenario("snappy"),
    "compression-lz4": compression_scenario("lz4"),
    "compression-zstd": compression_scenario("zstd"),
    "message-too-large": message_too_large,
    "offset-out-of-range": offset_out_of_range,
    "list-offsets": list_offsets,
    "admin-topics": admin_topics,
    "idempotent-produce": idempotent_produce,
    "produce": produce_phase,
    "verify": verify,
}

if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    exit_code = main(CLIENT_NAME, kafka.__version__, SCENARIOS)
    sys.stderr.flush()
    os._exit(exit_code)  # don't wait on the client's background threads
