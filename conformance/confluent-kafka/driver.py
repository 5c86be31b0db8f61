"""Conformance driver for confluent-kafka (Python, librdkafka based): Producer, Consumer and AdminClient only."""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import confluent_kafka
from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from common.driver import CALL_TIMEOUT_SECONDS, Deadline, ScenarioArgs, main
from common.messages import (BASE_TIMESTAMP_MS, LIST_OFFSETS_COUNT, LIST_OFFSETS_EXPECTED_OFFSET,
                             LIST_OFFSETS_FAR_FUTURE_MS, LIST_OFFSETS_QUERY_TIMESTAMP_MS,
                             LIST_OFFSETS_TIMESTAMP_STEP_MS, OFFSET_OUT_OF_RANGE_COUNT,
                             OFFSET_OUT_OF_RANGE_FETCH_OFFSET, PARTITIONS, ConsumedRecord, Message,
                             ScenarioFailed, check_delivery_offsets, check_records_match,
                             expected_counts_by_partition, large_value, message_too_large_small_message,
                             roundtrip_messages, single_partition_messages)

CLIENT_NAME = "confluent-kafka"
CONSUME_TIMEOUT_SECONDS = 60.0
MESSAGE_TOO_LARGE = 10
OFFSET_OUT_OF_RANGE = 1
TOPIC_ALREADY_EXISTS = 36
INVALID_TOPIC_EXCEPTION = 17
# Errors the Kafka protocol marks retriable that can show up transiently (e.g. while a restarted broker
# loads its partitions). librdkafka flags only some errors it creates as retriable(), so the codes are listed.
RETRIABLE_CODES = {
    KafkaError.UNKNOWN_TOPIC_OR_PART,        # 3
    KafkaError.LEADER_NOT_AVAILABLE,         # 5
    KafkaError.NOT_LEADER_FOR_PARTITION,     # 6 (NOT_LEADER_OR_FOLLOWER)
    KafkaError.REQUEST_TIMED_OUT,            # 7
    KafkaError.NETWORK_EXCEPTION,            # 13
    KafkaError.FENCED_LEADER_EPOCH,          # 74
    KafkaError.UNKNOWN_LEADER_EPOCH,         # 75
    KafkaError.OFFSET_NOT_AVAILABLE,         # 78
    KafkaError._TRANSPORT,                   # connection lost
}
# Delivery must be reported well inside the driver's overall timeout.
MESSAGE_TIMEOUT_MS = 60_000


class RepeatFilter(logging.Filter):
    """librdkafka logs a connection failure every few milliseconds; keep the first few of each kind."""

    def __init__(self, keep: int = 3):
        super().__init__()
        self.keep = keep
        self.seen: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.getMessage().split("]", 1)[-1][:80]
        self.seen[kind] = self.seen.get(kind, 0) + 1
        return self.seen[kind] <= self.keep


def client_logger() -> logging.Logger:
    logger = logging.getLogger("librdkafka")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s librdkafka %(levelname)s %(message)s"))
        handler.addFilter(RepeatFilter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return logger


def base_config() -> dict:
    return {"client.id": f"conformance-{CLIENT_NAME}", "logger": client_logger()}


def new_producer(args: ScenarioArgs, **extra) -> Producer:
    config = {
        **base_config(),
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
    }
    config.update(extra)
    return Producer(config)


def new_consumer(args: ScenarioArgs, auto_offset_reset: str = "error") -> Consumer:
    # confluent-kafka insists on a group.id even for assign(); nothing is ever committed to it.
    return Consumer({
        **base_config(),
        "bootstrap.servers": args.bootstrap,
        "group.id": f"conformance-{CLIENT_NAME}-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": auto_offset_reset,
    })


def new_admin(args: ScenarioArgs) -> AdminClient:
    return AdminClient({**base_config(), "bootstrap.servers": args.bootstrap})


def produce_messages(producer: Producer, topic: str, messages: list[Message]) -> dict[int, tuple[int, int]]:
    """Sends every message and waits for all acknowledgements; returns index -> (partition, offset)."""
    delivered: dict[int, tuple[int, int]] = {}
    errors: list[str] = []

    def on_delivery(index: int):
        def report(err, msg):
            if err is not None:
                errors.append(f"message {index}: {err}")
            else:
                delivered[index] = (msg.partition(), msg.offset())
        return report

    for message in messages:
        while True:
            try:
                producer.produce(topic, value=message.value, key=message.key, partition=message.partition,
                                 headers=message.headers, timestamp=message.timestamp_ms,
                                 on_delivery=on_delivery(message.index))
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: serve delivery reports, then retry
        producer.poll(0)
    remaining = producer.flush(MESSAGE_TIMEOUT_MS / 1000 + 10)
    if remaining:
        raise ScenarioFailed(f"{remaining} messages still unacknowledged after flush")
    if errors:
        raise ScenarioFailed(f"{len(errors)} deliveries failed, first: {errors[0]}")
    return delivered


def to_record(msg) -> ConsumedRecord:
    timestamp_type, timestamp_ms = msg.timestamp()
    return ConsumedRecord(
        partition=msg.partition(),
        offset=msg.offset(),
        key=msg.key(),
        value=msg.value(),
        headers=list(msg.headers() or []),
        timestamp_ms=timestamp_ms,
        timestamp_is_create_time=timestamp_type == TIMESTAMP_CREATE_TIME,
    )


def retrying(call, what: str):
    """Runs a one-shot client call, retrying while it fails with a retriable error (e.g. NOT_LEADER_OR_FOLLOWER
    right after a broker restart), as an application would; gives up after CALL_TIMEOUT_SECONDS."""
    deadline = Deadline(CALL_TIMEOUT_SECONDS)
    while True:
        try:
            return call()
        except KafkaException as exc:
            err = exc.args[0]
            if not (err.retriable() or err.code() in RETRIABLE_CODES) or deadline.expired():
                raise ScenarioFailed(f"{what} failed: {err.name()} ({err.code()}): {err.str()}")
            sys.stderr.write(f"{what}: retriable error {err.name()}, retrying\n")
            time.sleep(0.5)


def check_watermarks(consumer: Consumer, topic: str, expected_counts: dict[int, int]) -> None:
    for partition, expected in expected_counts.items():
        low, high = retrying(
            lambda: consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                   timeout=CALL_TIMEOUT_SECONDS, cached=False),
            f"get_watermark_offsets(partition {partition})")
        if (low, high) != (0, expected):
            raise ScenarioFailed(f"partition {partition}: watermarks (low, high) = ({low}, {high}), "
                                 f"expected (0, {expected})")


def consume_from_beginning(args: ScenarioArgs, expected_counts: dict[int, int]) -> dict[int, list[ConsumedRecord]]:
    """Assigns the partitions (no group membership), reads each from its beginning up to its high
    watermark, which must equal the expected count."""
    consumer = new_consumer(args)
    try:
        check_watermarks(consumer, args.topic, expected_counts)
        records: dict[int, list[ConsumedRecord]] = {partition: [] for partition in expected_counts}
        wanted = [partition for partition, count in expected_counts.items() if count > 0]
        if not wanted:
            return records
        consumer.assign([TopicPartition(args.topic, partition, OFFSET_BEGINNING) for partition in wanted])
        deadline = Deadline(CONSUME_TIMEOUT_SECONDS)
        while any(len(records[partition]) < expected_counts[partition] for partition in wanted):
            if deadline.expired():
                progress = {partition: len(records[partition]) for partition in wanted}
                raise ScenarioFailed(f"timed out consuming: got {progress}, expected {expected_counts}")
            for msg in consumer.consume(num_messages=1000, timeout=min(1.0, deadline.remaining())):
                if msg.error() is not None:
                    raise ScenarioFailed(f"consume error on partition {msg.partition()}: {msg.error()}")
                records[msg.partition()].append(to_record(msg))
        return records
    finally:
        consumer.close()


def roundtrip(args: ScenarioArgs, compression: str = "none") -> None:
    messages = roundtrip_messages(args.seed, args.count)
    producer = new_producer(args, **{"compression.type": compression})
    delivered = produce_messages(producer, args.topic, messages)
    check_delivery_offsets(messages, delivered)
    verify(args)


def idempotent_produce(args: ScenarioArgs) -> None:
    """The roundtrip with an idempotent producer (producer id + per-partition sequence numbers) and up to
    5 requests in flight per connection, the most idempotence allows."""
    messages = roundtrip_messages(args.seed, args.count)
    producer = new_producer(args, **{"enable.idempotence": True, "max.in.flight.requests.per.connection": 5})
    delivered = produce_messages(producer, args.topic, messages)
    check_delivery_offsets(messages, delivered)
    verify(args)


def produce_phase(args: ScenarioArgs) -> None:
    messages = roundtrip_messages(args.seed, args.count)
    delivered = produce_messages(new_producer(args), args.topic, messages)
    check_delivery_offsets(messages, delivered)


def verify(args: ScenarioArgs) -> None:
    messages = roundtrip_messages(args.seed, args.count)
    records = consume_from_beginning(args, expected_counts_by_partition(messages))
    check_records_match(messages, records)


def compression_scenario(codec: str):
    return lambda args: roundtrip(args, compression=codec)


def message_too_large(args: ScenarioArgs) -> None:
    # The producer's own limit is raised so that the broker, not the client, rejects the message.
    # librdkafka's own limit check raises from produce() with the very same code (10) and text
    # ("Broker: Message size too large"); only an error in the delivery report comes from the broker.
    producer = new_producer(args, **{"message.max.bytes": 10 * 1024 * 1024})
    outcome: list = []
    try:
        producer.produce(args.topic, value=large_value(), key=b"large", partition=0,
                         on_delivery=lambda err, msg: outcome.append(err))
    except KafkaException as exc:
        raise ScenarioFailed(f"produce() rejected the 2 MiB message locally: {exc.args[0]}")
    if producer.flush(MESSAGE_TIMEOUT_MS / 1000 + 10):
        raise ScenarioFailed("the 2 MiB message was not reported within the timeout")
    if len(outcome) != 1:
        raise ScenarioFailed(f"expected one delivery report for the 2 MiB message, got {len(outcome)}")
    err = outcome[0]
    if err is None:
        raise ScenarioFailed("the 2 MiB message was accepted; expected MESSAGE_TOO_LARGE (10)")
    if err.code() != MESSAGE_TOO_LARGE:
        raise ScenarioFailed(f"the 2 MiB message failed with {err.name()} ({err.code()}): {err.str()}; "
                             f"expected MESSAGE_TOO_LARGE ({MESSAGE_TOO_LARGE})")
    small = message_too_large_small_message(args.seed)
    delivered = produce_messages(producer, args.topic, [small])
    if delivered[small.index] != (0, 0):
        raise ScenarioFailed(f"small message acknowledged at (partition, offset) {delivered[small.index]}, "
                             "expected (0, 0)")
    records = consume_from_beginning(args, {0: 1, 1: 0, 2: 0})
    check_records_match([small], records)


def offset_out_of_range(args: ScenarioArgs) -> None:
    messages = single_partition_messages(args.seed, OFFSET_OUT_OF_RANGE_COUNT)
    check_delivery_offsets(messages, produce_messages(new_producer(args), args.topic, messages))
    consumer = new_consumer(args, auto_offset_reset="error")
    try:
        consumer.assign([TopicPartition(args.topic, 0, OFFSET_OUT_OF_RANGE_FETCH_OFFSET)])
        deadline = Deadline(CONSUME_TIMEOUT_SECONDS)
        while not deadline.expired():
            msg = consumer.poll(min(1.0, deadline.remaining()))
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                raise ScenarioFailed(f"fetching from offset {OFFSET_OUT_OF_RANGE_FETCH_OFFSET} returned a record "
                                     f"at offset {msg.offset()}; expected OFFSET_OUT_OF_RANGE")
            # librdkafka surfaces the broker's OFFSET_OUT_OF_RANGE through its auto.offset.reset=error
            # path: code _AUTO_OFFSET_RESET, with the broker error's text in the message.
            if err.code() == OFFSET_OUT_OF_RANGE:
                return
            if err.code() == KafkaError._AUTO_OFFSET_RESET and "Broker: Offset out of range" in err.str():
                return
            raise ScenarioFailed(f"consume error {err.name()} ({err.code()}): {err.str()}; "
                                 f"expected OFFSET_OUT_OF_RANGE ({OFFSET_OUT_OF_RANGE})")
        raise ScenarioFailed("no OFFSET_OUT_OF_RANGE error reported within the timeout")
    finally:
        consumer.close()


def list_offsets(args: ScenarioArgs) -> None:
    messages = single_partition_messages(args.seed, LIST_OFFSETS_COUNT, LIST_OFFSETS_TIMESTAMP_STEP_MS)
    check_delivery_offsets(messages, produce_messages(new_producer(args), args.topic, messages))
    query_expectations = [
        (LIST_OFFSETS_QUERY_TIMESTAMP_MS, LIST_OFFSETS_EXPECTED_OFFSET),
        (LIST_OFFSETS_FAR_FUTURE_MS, -1),
    ]
    consumer = new_consumer(args)
    try:
        check_watermarks(consumer, args.topic, {0: LIST_OFFSETS_COUNT, 1: 0, 2: 0})
        for timestamp_ms, expected_offset in query_expectations:
            [result] = retrying(
                lambda: consumer.offsets_for_times([TopicPartition(args.topic, 0, timestamp_ms)],
                                                   timeout=CALL_TIMEOUT_SECONDS),
                f"offsets_for_times({timestamp_ms})")
            if result.error is not None:
                raise ScenarioFailed(f"offsets_for_times({timestamp_ms}) error: {result.error}")
            if result.offset != expected_offset:
                raise ScenarioFailed(f"offsets_for_times({timestamp_ms}) = {result.offset}, expected {expected_offset}")
    finally:
        consumer.close()

    # The same lookups through the admin API, which also reports the found record's timestamp.
    admin = new_admin(args)
    partition = TopicPartition(args.topic, 0)
    expected_results = [
        ("earliest", OffsetSpec.earliest(), 0, None),
        ("latest", OffsetSpec.latest(), LIST_OFFSETS_COUNT, None),
        (f"for_timestamp({LIST_OFFSETS_QUERY_TIMESTAMP_MS})", OffsetSpec.for_timestamp(LIST_OFFSETS_QUERY_TIMESTAMP_MS),
         LIST_OFFSETS_EXPECTED_OFFSET,
         BASE_TIMESTAMP_MS + LIST_OFFSETS_TIMESTAMP_STEP_MS * LIST_OFFSETS_EXPECTED_OFFSET),
        (f"for_timestamp({LIST_OFFSETS_FAR_FUTURE_MS})", OffsetSpec.for_timestamp(LIST_OFFSETS_FAR_FUTURE_MS), -1, None),
    ]
    for label, spec, expected_offset, expected_timestamp in expected_results:
        info = retrying(
            lambda: admin.list_offsets({partition: spec}, request_timeout=CALL_TIMEOUT_SECONDS)[partition]
            .result(timeout=CALL_TIMEOUT_SECONDS),
            f"AdminClient.list_offsets {label}")
        if info.offset != expected_offset:
            raise ScenarioFailed(f"AdminClient.list_offsets {label} = {info.offset}, expected {expected_offset}")
        if expected_timestamp is not None and info.timestamp != expected_timestamp:
            raise ScenarioFailed(f"AdminClient.list_offsets {label} timestamp = {info.timestamp}, "
                                 f"expected {expected_timestamp}")


def topic_partition_count(admin: AdminClient, topic: str) -> int | None:
    """Partition count of TOPIC in the cluster metadata, None if the topic is absent.
    All topics are listed (not just TOPIC) so that the metadata request cannot auto-create it."""
    metadata = admin.list_topics(timeout=CALL_TIMEOUT_SECONDS)
    topic_metadata = metadata.topics.get(topic)
    if topic_metadata is None:
        return None
    if topic_metadata.error is not None:
        raise ScenarioFailed(f"metadata for {topic} has error {topic_metadata.error}")
    return len(topic_metadata.partitions)


def create_topic_error(admin: AdminClient, topic: str) -> KafkaError | None:
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)],
                                  request_timeout=CALL_TIMEOUT_SECONDS, operation_timeout=CALL_TIMEOUT_SECONDS)
    try:
        futures[topic].result(timeout=CALL_TIMEOUT_SECONDS * 2)
    except KafkaException as exc:
        return exc.args[0]
    return None


def admin_topics(args: ScenarioArgs) -> None:
    admin = new_admin(args)
    err = create_topic_error(admin, args.topic)
    if err is not None:
        raise ScenarioFailed(f"creating {args.topic} failed: {err.name()} ({err.code()}): {err.str()}")
    deadline = Deadline(CALL_TIMEOUT_SECONDS)
    while topic_partition_count(admin, args.topic) != PARTITIONS:
        if deadline.expired():
            raise ScenarioFailed(f"metadata never showed {args.topic} with {PARTITIONS} partitions "
                                 f"(last: {topic_partition_count(admin, args.topic)})")
        time.sleep(0.2)

    err = create_topic_error(admin, args.topic)
    if err is None or err.code() != TOPIC_ALREADY_EXISTS:
        got = "success" if err is None else f"{err.name()} ({err.code()}): {err.str()}"
        raise ScenarioFailed(f"creating {args.topic} again: {got}; expected TOPIC_ALREADY_EXISTS ({TOPIC_ALREADY_EXISTS})")

    err = create_topic_error(admin, "bad/name")
    if err is None or err.code() != INVALID_TOPIC_EXCEPTION:
        got = "success" if err is None else f"{err.name()} ({err.code()}): {err.str()}"
        raise ScenarioFailed(f"creating bad/name: {got}; expected INVALID_TOPIC_EXCEPTION ({INVALID_TOPIC_EXCEPTION})")

    futures = admin.delete_topics([args.topic], request_timeout=CALL_TIMEOUT_SECONDS,
                                  operation_timeout=CALL_TIMEOUT_SECONDS)
    try:
        futures[args.topic].result(timeout=CALL_TIMEOUT_SECONDS * 2)
    except KafkaException as exc:
        raise ScenarioFailed(f"deleting {args.topic} failed: {exc.args[0]}")
    deadline = Deadline(CALL_TIMEOUT_SECONDS)
    while topic_partition_count(admin, args.topic) is not None:
        if deadline.expired():
            raise ScenarioFailed(f"{args.topic} is still in the metadata after deletion")
        time.sleep(0.2)


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
    python_client_version = confluent_kafka.version()  # a plain string in 2.16, a tuple in older releases
    if isinstance(python_client_version, tuple):
        python_client_version = python_client_version[0]
    version = f"{python_client_version} (librdkafka {confluent_kafka.libversion()[0]})"
    exit_code = main(CLIENT_NAME, version, SCENARIOS)
    sys.stderr.flush()
    os._exit(exit_code)  # don't wait on librdkafka's background threads
