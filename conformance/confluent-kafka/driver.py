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
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, OffsetSpec, ResourceType)

from common.driver import CALL_TIMEOUT_SECONDS, Deadline, ScenarioArgs, main
from common.groups import (CLASSIC_HEARTBEAT_INTERVAL_MS, GROUP_CONSUME_TIMEOUT_SECONDS, GROUP_PROTOCOLS,
                           RESUME_CONSUME_TIMEOUT_SECONDS, STRAY_WAIT_SECONDS, GroupTally, group_id,
                           message_index, roundtrip_positions)
from common.messages import (BASE_TIMESTAMP_MS, LIST_OFFSETS_COUNT, LIST_OFFSETS_EXPECTED_OFFSET,
                             LIST_OFFSETS_FAR_FUTURE_MS, LIST_OFFSETS_QUERY_TIMESTAMP_MS,
                             LIST_OFFSETS_TIMESTAMP_STEP_MS, OFFSET_OUT_OF_RANGE_COUNT,
                             OFFSET_OUT_OF_RANGE_FETCH_OFFSET, PARTITIONS, ConsumedRecord, Message,
                             CONSUMER_GROUP_RESUME_COUNT, ScenarioFailed, check_delivery_offsets, check_record,
                             check_records_match, roundtrip_message,
                             expected_counts_by_partition, large_value, message_too_large_small_message,
                             roundtrip_messages, single_partition_messages)
from common.messages import (CLUSTER_METADATA_WAIT_SECONDS, PartitionInfo, check_cluster_metadata)
from common.messages import (LOG_COMPACTION_REREAD_INTERVAL_SECONDS, LOG_COMPACTION_ROLL_DELAY_SECONDS,
                             LOG_COMPACTION_WAIT_SECONDS, CompactionRecord, check_log_compaction,
                             check_log_compaction_deliveries, log_compaction_roll_records, log_compaction_updates)

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


def new_group_member(args: ScenarioArgs, protocol: str) -> Consumer:
    """A subscribing member of the scenario's group that commits only when told to."""
    config = {
        **base_config(),
        "bootstrap.servers": args.bootstrap,
        "group.id": group_id(args.topic),
        "group.protocol": protocol,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if protocol == "classic":
        # With group.protocol=consumer the broker sets the heartbeat interval (librdkafka refuses this setting).
        config["heartbeat.interval.ms"] = CLASSIC_HEARTBEAT_INTERVAL_MS
    consumer = Consumer(config)
    consumer.subscribe([args.topic])
    return consumer


def consume_in_group(args: ScenarioArgs, members: dict[str, Consumer], tally: GroupTally, timeout: float,
                     stray_wait: float = 0.0) -> None:
    """Polls the members in turn until every expected record arrived and the members' assignments have
    settled, then (stray_wait) a little longer. Each record is checked byte for byte and counted once;
    after each non-empty batch the member commits, synchronously, the offset after the batch's last
    record of each partition."""
    deadline = Deadline(timeout)
    strays_until = None
    while True:
        for name, consumer in members.items():
            batch = consumer.consume(num_messages=500, timeout=0.1)
            next_offsets: dict[int, int] = {}
            for msg in batch:
                if msg.error() is not None:
                    raise ScenarioFailed(f"{name}: consume error: {msg.error()}")
                record = to_record(msg)
                tally.record(name, record.partition, record.offset)
                index = message_index(record.partition, record.offset)
                check_record(roundtrip_message(args.seed, index), record, expected_offset=record.offset)
                next_offsets[record.partition] = record.offset + 1
            if next_offsets:
                committed = consumer.commit(offsets=[TopicPartition(args.topic, partition, offset)
                                                     for partition, offset in next_offsets.items()],
                                            asynchronous=False)
                failed = [tp for tp in committed if tp.error is not None]
                if failed:
                    raise ScenarioFailed(f"{name}: commit of {next_offsets} failed: {failed}")
            tally.note_assignment(name, {tp.partition for tp in consumer.assignment()})
        if strays_until is None and tally.all_received() and tally.settled():
            if stray_wait <= 0:
                break
            strays_until = Deadline(stray_wait)
        if strays_until is not None and strays_until.expired():
            break
        if strays_until is None and deadline.expired():
            raise ScenarioFailed(f"not done within {timeout:.0f} s: {tally.progress()}")
    sys.stderr.write(f"group: {tally.progress()}\n")


def consumer_group(args: ScenarioArgs) -> None:
    """Two members of a new group share the topic, committing after every batch; a third member that
    joins after both closed receives exactly the messages produced since (messages.md)."""
    protocol = GROUP_PROTOCOLS[args.scenario]
    messages = roundtrip_messages(args.seed, args.count)
    check_delivery_offsets(messages, produce_messages(new_producer(args), args.topic, messages))

    members = {name: new_group_member(args, protocol) for name in ("member-1", "member-2")}
    tally = GroupTally(list(members), roundtrip_positions(0, args.count))
    consume_in_group(args, members, tally, GROUP_CONSUME_TIMEOUT_SECONDS)
    for consumer in members.values():
        consumer.close()

    resume = [roundtrip_message(args.seed, index)
              for index in range(args.count, args.count + CONSUMER_GROUP_RESUME_COUNT)]
    delivered = produce_messages(new_producer(args), args.topic, resume)
    for message in resume:
        expected = (message.partition, message.index // PARTITIONS)
        if delivered[message.index] != expected:
            raise ScenarioFailed(f"message {message.index} acknowledged at (partition, offset) "
                                 f"{delivered[message.index]}, expected {expected}")
    third = {"member-3": new_group_member(args, protocol)}
    tally = GroupTally(list(third), roundtrip_positions(args.count, CONSUMER_GROUP_RESUME_COUNT))
    consume_in_group(args, third, tally, RESUME_CONSUME_TIMEOUT_SECONDS, stray_wait=STRAY_WAIT_SECONDS)
    third["member-3"].close()


# admin-configs-partitions-records (messages.md): 30 messages, 10 per partition.
ADMIN_MESSAGE_COUNT = 30
ADMIN_DELETE_BEFORE_OFFSET = 5
ADMIN_GROWN_PARTITIONS = 5
ADMIN_WATCHED_CONFIGS = ("retention.ms", "cleanup.policy")
ADMIN_CONFIG_OVERRIDES = {"retention.ms": "123456", "cleanup.policy": "compact"}
INVALID_PARTITIONS = 37
INVALID_CONFIG = 40
POLICY_VIOLATION = 44


def admin_error(future) -> KafkaError | None:
    """The error an admin future fails with, None when it succeeds."""
    try:
        future.result(timeout=CALL_TIMEOUT_SECONDS)
    except KafkaException as exc:
        return exc.args[0]
    return None


def describe_error(err: KafkaError | None) -> str:
    return "success" if err is None else f"{err.name()} ({err.code()}): {err.str()}"


def topic_configs(admin: AdminClient, topic: str) -> dict[str, tuple[str, ConfigSource]]:
    """name -> (value, source) of the watched configs of TOPIC (DescribeConfigs)."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = retrying(lambda: admin.describe_configs([resource], request_timeout=CALL_TIMEOUT_SECONDS)[resource]
                       .result(timeout=CALL_TIMEOUT_SECONDS), "describe_configs")
    missing = [name for name in ADMIN_WATCHED_CONFIGS if name not in configs]
    if missing:
        raise ScenarioFailed(f"describe_configs of {topic} lacks {missing}")
    return {name: (configs[name].value, ConfigSource(configs[name].source)) for name in ADMIN_WATCHED_CONFIGS}


def alter_topic_configs(admin: AdminClient, topic: str, entries: list[ConfigEntry]) -> KafkaError | None:
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    return admin_error(admin.incremental_alter_configs([resource], request_timeout=CALL_TIMEOUT_SECONDS)[resource])


def partition_offsets(admin: AdminClient, topic: str, partitions, spec) -> dict[int, int]:
    wanted = {TopicPartition(topic, partition): spec for partition in partitions}
    results = retrying(lambda: {tp.partition: future.result(timeout=CALL_TIMEOUT_SECONDS).offset for tp, future in
                                admin.list_offsets(wanted, request_timeout=CALL_TIMEOUT_SECONDS).items()},
                       "list_offsets")
    return dict(sorted(results.items()))


def delete_records(admin: AdminClient, topic: str, before: dict[int, int]) -> dict[int, int | KafkaError]:
    """DeleteRecords in one request: partition -> low watermark, or the partition's error."""
    futures = admin.delete_records([TopicPartition(topic, partition, offset) for partition, offset in before.items()],
                                   request_timeout=CALL_TIMEOUT_SECONDS, operation_timeout=CALL_TIMEOUT_SECONDS)
    outcomes: dict[int, int | KafkaError] = {}
    for tp, future in futures.items():
        err = admin_error(future)
        outcomes[tp.partition] = err if err is not None else future.result().low_watermark
    return outcomes


def admin_configs_partitions_records(args: ScenarioArgs) -> None:
    """Cluster, topic configs, DeleteRecords and CreatePartitions through the AdminClient (messages.md).
    confluent-kafka has no DescribeLogDirs, so step 4 is skipped."""
    admin = new_admin(args)

    # 1. Cluster.
    cluster = retrying(lambda: admin.describe_cluster(request_timeout=CALL_TIMEOUT_SECONDS)
                       .result(timeout=CALL_TIMEOUT_SECONDS), "describe_cluster")
    if len(cluster.nodes) != 1:
        raise ScenarioFailed(f"describe_cluster: {len(cluster.nodes)} brokers, expected 1: {cluster.nodes}")
    if cluster.controller is None or cluster.controller.id != cluster.nodes[0].id:
        raise ScenarioFailed(f"describe_cluster: controller {cluster.controller}, expected broker {cluster.nodes[0]}")
    if not cluster.cluster_id:
        raise ScenarioFailed("describe_cluster: empty cluster id")

    # 2. Topic configs.
    initial = topic_configs(admin, args.topic)
    if any(source == ConfigSource.DYNAMIC_TOPIC_CONFIG for _, source in initial.values()):
        raise ScenarioFailed(f"the new topic already has overrides: {initial}")
    err = alter_topic_configs(admin, args.topic, [
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        for name, value in ADMIN_CONFIG_OVERRIDES.items()])
    if err is not None:
        raise ScenarioFailed(f"incremental_alter_configs SET {ADMIN_CONFIG_OVERRIDES}: {describe_error(err)}")
    overridden = {name: (value, ConfigSource.DYNAMIC_TOPIC_CONFIG) for name, value in ADMIN_CONFIG_OVERRIDES.items()}
    if topic_configs(admin, args.topic) != overridden:
        raise ScenarioFailed(f"after SET: {topic_configs(admin, args.topic)}, expected {overridden}")
    # Kafka deletes no records of a topic whose cleanup policy lacks `delete`.
    outcome = delete_records(admin, args.topic, {0: 0})[0]
    if not isinstance(outcome, KafkaError) or outcome.code() != POLICY_VIOLATION:
        got = f"low watermark {outcome}" if isinstance(outcome, int) else describe_error(outcome)
        raise ScenarioFailed(f"delete_records with cleanup.policy=compact: {got}; "
                             f"expected POLICY_VIOLATION ({POLICY_VIOLATION})")
    err = alter_topic_configs(admin, args.topic, [
        ConfigEntry("retention.ms", "abc", incremental_operation=AlterConfigOpType.SET)])
    if err is None or err.code() != INVALID_CONFIG:
        raise ScenarioFailed(f"SET retention.ms=abc: {describe_error(err)}; expected INVALID_CONFIG ({INVALID_CONFIG})")
    if topic_configs(admin, args.topic) != overridden:
        raise ScenarioFailed(f"after the refused SET: {topic_configs(admin, args.topic)}, expected {overridden}")
    err = alter_topic_configs(admin, args.topic, [
        ConfigEntry(name, None, incremental_operation=AlterConfigOpType.DELETE) for name in ADMIN_WATCHED_CONFIGS])
    if err is not None:
        raise ScenarioFailed(f"incremental_alter_configs DELETE {ADMIN_WATCHED_CONFIGS}: {describe_error(err)}")
    if topic_configs(admin, args.topic) != initial:
        raise ScenarioFailed(f"after DELETE: {topic_configs(admin, args.topic)}, expected the initial {initial}")

    # 3. Records.
    messages = roundtrip_messages(args.seed, ADMIN_MESSAGE_COUNT)
    check_delivery_offsets(messages, produce_messages(new_producer(args), args.topic, messages))
    counts = expected_counts_by_partition(messages)
    outcomes = delete_records(admin, args.topic, {0: ADMIN_DELETE_BEFORE_OFFSET, 1: -1})
    if outcomes != {0: ADMIN_DELETE_BEFORE_OFFSET, 1: counts[1]}:
        raise ScenarioFailed(f"delete_records low watermarks {outcomes}, expected "
                             f"{ {0: ADMIN_DELETE_BEFORE_OFFSET, 1: counts[1]} }")
    earliest = partition_offsets(admin, args.topic, range(PARTITIONS), OffsetSpec.earliest())
    latest = partition_offsets(admin, args.topic, range(PARTITIONS), OffsetSpec.latest())
    if earliest != {0: ADMIN_DELETE_BEFORE_OFFSET, 1: counts[1], 2: 0} or latest != counts:
        raise ScenarioFailed(f"after delete_records: earliest {earliest}, latest {latest}; expected earliest "
                             f"{ {0: ADMIN_DELETE_BEFORE_OFFSET, 1: counts[1], 2: 0} }, latest {counts}")
    consumer = new_consumer(args)
    try:
        consumer.assign([TopicPartition(args.topic, 0, OFFSET_BEGINNING)])
        expected_offsets = list(range(ADMIN_DELETE_BEFORE_OFFSET, counts[0]))
        records: list[ConsumedRecord] = []
        deadline = Deadline(CONSUME_TIMEOUT_SECONDS)
        while len(records) < len(expected_offsets) and not deadline.expired():
            for msg in consumer.consume(num_messages=100, timeout=min(1.0, deadline.remaining())):
                if msg.error() is not None:
                    raise ScenarioFailed(f"consume error on partition 0: {msg.error()}")
                records.append(to_record(msg))
        if [record.offset for record in records] != expected_offsets:
            raise ScenarioFailed(f"partition 0 from the beginning: offsets {[r.offset for r in records]}, "
                                 f"expected {expected_offsets}")
        for record in records:
            check_record(roundtrip_message(args.seed, PARTITIONS * record.offset), record, expected_offset=record.offset)
    finally:
        consumer.close()
    beyond = counts[2] + 1
    outcomes = delete_records(admin, args.topic, {2: beyond})
    if not isinstance(outcomes[2], KafkaError) or outcomes[2].code() != OFFSET_OUT_OF_RANGE:
        got = f"low watermark {outcomes[2]}" if isinstance(outcomes[2], int) else describe_error(outcomes[2])
        raise ScenarioFailed(f"delete_records partition 2 before {beyond}: {got}; "
                             f"expected OFFSET_OUT_OF_RANGE ({OFFSET_OUT_OF_RANGE})")
    if partition_offsets(admin, args.topic, [2], OffsetSpec.earliest()) != {2: 0}:
        raise ScenarioFailed("partition 2's earliest offset moved after the refused delete_records")

    # 5. Partitions.
    err = admin_error(admin.create_partitions([NewPartitions(args.topic, ADMIN_GROWN_PARTITIONS)],
                                              request_timeout=CALL_TIMEOUT_SECONDS)[args.topic])
    if err is not None:
        raise ScenarioFailed(f"create_partitions to {ADMIN_GROWN_PARTITIONS}: {describe_error(err)}")
    deadline = Deadline(CALL_TIMEOUT_SECONDS)
    while True:
        topic_metadata = admin.list_topics(topic=args.topic, timeout=CALL_TIMEOUT_SECONDS).topics[args.topic]
        leaders = {partition: metadata.leader for partition, metadata in topic_metadata.partitions.items()}
        if sorted(leaders) == list(range(ADMIN_GROWN_PARTITIONS)) and all(leader >= 0 for leader in leaders.values()):
            break
        if deadline.expired():
            raise ScenarioFailed(f"metadata after create_partitions: leaders {leaders}, expected partitions "
                                 f"0..{ADMIN_GROWN_PARTITIONS - 1} with leaders")
        time.sleep(0.2)
    new_partitions = range(PARTITIONS, ADMIN_GROWN_PARTITIONS)
    for spec_name, spec in (("earliest", OffsetSpec.earliest()), ("latest", OffsetSpec.latest())):
        offsets = partition_offsets(admin, args.topic, new_partitions, spec)
        if offsets != {partition: 0 for partition in new_partitions}:
            raise ScenarioFailed(f"new partitions' {spec_name} offsets {offsets}, expected 0")
    err = admin_error(admin.create_partitions([NewPartitions(args.topic, ADMIN_GROWN_PARTITIONS - 1)],
                                              request_timeout=CALL_TIMEOUT_SECONDS)[args.topic])
    if err is None or err.code() != INVALID_PARTITIONS:
        raise ScenarioFailed(f"create_partitions to {ADMIN_GROWN_PARTITIONS - 1}: {describe_error(err)}; "
                             f"expected INVALID_PARTITIONS ({INVALID_PARTITIONS})")
    if topic_partition_count(admin, args.topic) != ADMIN_GROWN_PARTITIONS:
        raise ScenarioFailed(f"the topic has {topic_partition_count(admin, args.topic)} partitions after the "
                             f"refused shrink, expected {ADMIN_GROWN_PARTITIONS}")


def produce_compaction_records(producer: Producer, topic: str, records: list[CompactionRecord]) -> list[tuple[int, int]]:
    """Sends the records in order (value None: a tombstone) and waits for every acknowledgement; returns
    (partition, offset) of each, in send order."""
    delivered: list[tuple[int, int] | None] = [None] * len(records)
    errors: list[str] = []

    def on_delivery(number: int):
        def report(err, msg):
            if err is not None:
                errors.append(f"record {number}: {err}")
            else:
                delivered[number] = (msg.partition(), msg.offset())
        return report

    for number, record in enumerate(records):
        while True:
            try:
                producer.produce(topic, value=record.value, key=record.key, partition=record.partition,
                                 on_delivery=on_delivery(number))
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: serve delivery reports, then retry
        producer.poll(0)
    remaining = producer.flush(MESSAGE_TIMEOUT_MS / 1000 + 10)
    if remaining or errors or None in delivered:
        raise ScenarioFailed(f"{remaining} records unacknowledged, {len(errors)} failed"
                             + (f", first: {errors[0]}" if errors else ""))
    return delivered


def read_whole_topic(args: ScenarioArgs, high_watermarks: dict[int, int]) -> dict[int, list[tuple]]:
    """Every record of every partition from its beginning up to its high watermark (the last offset is always
    there: the roll record), as {partition: [(offset, key, value)]}."""
    consumer = new_consumer(args)
    try:
        consumer.assign([TopicPartition(args.topic, partition, OFFSET_BEGINNING) for partition in high_watermarks])
        records: dict[int, list[tuple]] = {partition: [] for partition in high_watermarks}
        done = {partition: high == 0 for partition, high in high_watermarks.items()}
        deadline = Deadline(CONSUME_TIMEOUT_SECONDS)
        while not all(done.values()):
            if deadline.expired():
                raise ScenarioFailed(f"timed out reading the topic up to its high watermarks {high_watermarks}")
            for msg in consumer.consume(num_messages=1000, timeout=min(1.0, deadline.remaining())):
                if msg.error() is not None:
                    raise ScenarioFailed(f"consume error on partition {msg.partition()}: {msg.error()}")
                records[msg.partition()].append((msg.offset(), msg.key(), msg.value()))
                if msg.offset() >= high_watermarks[msg.partition()] - 1:
                    done[msg.partition()] = True
        return records
    finally:
        consumer.close()


def log_compaction(args: ScenarioArgs) -> None:
    """Keyed updates and tombstones to a compacted topic, then re-reads until only each key's latest record is
    left, every record at the offset its acknowledgement gave (messages.md, "Log compaction")."""
    updates = log_compaction_updates(args.seed, args.count)
    rolls = log_compaction_roll_records()
    producer = new_producer(args)
    delivered = produce_compaction_records(producer, args.topic, updates)
    time.sleep(LOG_COMPACTION_ROLL_DELAY_SECONDS)
    delivered += produce_compaction_records(producer, args.topic, rolls)
    produced = check_log_compaction_deliveries(updates + rolls, delivered)
    expected_counts = {partition: len(records) for partition, records in produced.items()}
    deadline = Deadline(LOG_COMPACTION_WAIT_SECONDS)
    while True:
        watermark_consumer = new_consumer(args)
        try:
            check_watermarks(watermark_consumer, args.topic, expected_counts)
        finally:
            watermark_consumer.close()
        left = check_log_compaction(produced, read_whole_topic(args, expected_counts))
        if left is None:
            return
        if deadline.expired():
            raise ScenarioFailed(f"not compacted within {LOG_COMPACTION_WAIT_SECONDS:.0f} s: {left}")
        sys.stderr.write(f"not compacted yet: {left}\n")
        time.sleep(LOG_COMPACTION_REREAD_INTERVAL_SECONDS)


def cluster_metadata(admin: AdminClient, topic: str) -> tuple[dict[int, tuple[str, int]], dict[int, PartitionInfo]]:
    """The brokers and TOPIC's partitions as the client's metadata shows them (all topics listed, so the request
    cannot auto-create TOPIC)."""
    metadata = admin.list_topics(timeout=CALL_TIMEOUT_SECONDS)
    brokers = {broker.id: (broker.host, broker.port) for broker in metadata.brokers.values()}
    topic_metadata = metadata.topics.get(topic)
    if topic_metadata is None:
        return brokers, {}
    if topic_metadata.error is not None:
        raise ScenarioFailed(f"metadata for {topic} has error {topic_metadata.error}")
    partitions = {number: PartitionInfo(p.leader, list(p.replicas), list(p.isrs))
                  for number, p in topic_metadata.partitions.items()}
    return brokers, partitions


def cluster(args: ScenarioArgs) -> None:
    """Bootstrapped at one node of a three-broker cluster: the metadata shows the three brokers and TOPIC's
    partitions with three replicas each, led by three different brokers; then the roundtrip, whose produce
    and fetch requests must go to each partition's leader (messages.md, "Cluster scenario")."""
    admin = new_admin(args)
    deadline = Deadline(CLUSTER_METADATA_WAIT_SECONDS)
    while True:
        brokers, partitions = retrying(lambda: cluster_metadata(admin, args.topic), "list_topics")
        try:
            check_cluster_metadata(args.bootstrap, brokers, partitions)
            break
        except ScenarioFailed:
            if deadline.expired():
                raise
            time.sleep(0.5)
    sys.stderr.write(f"cluster: brokers {sorted(brokers.items())}, partitions {sorted(partitions.items())}\n")
    roundtrip(args)


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
    "consumer-group": consumer_group,
    "consumer-group-kip848": consumer_group,
    "admin-configs-partitions-records": admin_configs_partitions_records,
    "log-compaction": log_compaction,
    "cluster": cluster,
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
