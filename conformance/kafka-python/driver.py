"""Conformance driver for kafka-python (pure Python): KafkaProducer, KafkaConsumer and KafkaAdminClient only."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import kafka
import kafka.codec
import kafka.errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

from common.driver import CALL_TIMEOUT_SECONDS, Deadline, ScenarioArgs, main
from common.groups import (CLASSIC_HEARTBEAT_INTERVAL_MS, GROUP_CONSUME_TIMEOUT_SECONDS,
                           RESUME_CONSUME_TIMEOUT_SECONDS, STRAY_WAIT_SECONDS, GroupTally, group_id,
                           message_index, roundtrip_positions)
from common.messages import (BASE_TIMESTAMP_MS, LIST_OFFSETS_COUNT, LIST_OFFSETS_EXPECTED_OFFSET,
                             LIST_OFFSETS_FAR_FUTURE_MS, LIST_OFFSETS_QUERY_TIMESTAMP_MS,
                             LIST_OFFSETS_TIMESTAMP_STEP_MS, OFFSET_OUT_OF_RANGE_COUNT,
                             OFFSET_OUT_OF_RANGE_FETCH_OFFSET, PARTITIONS, CONSUMER_GROUP_RESUME_COUNT,
                             ConsumedRecord, Message, ScenarioFailed, ScenarioNotSupported, check_delivery_offsets,
                             check_record, check_records_match, roundtrip_message,
                             expected_counts_by_partition, large_value, message_too_large_small_message,
                             roundtrip_messages, single_partition_messages)
from common.messages import CLUSTER_METADATA_WAIT_SECONDS, PartitionInfo, check_cluster_metadata
from common.messages import (LOG_COMPACTION_REREAD_INTERVAL_SECONDS, LOG_COMPACTION_ROLL_DELAY_SECONDS,
                             LOG_COMPACTION_WAIT_SECONDS, CompactionRecord, check_log_compaction,
                             check_log_compaction_deliveries, log_compaction_roll_records, log_compaction_updates)

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


def produce_to_topic(args: ScenarioArgs, messages: list[Message]) -> None:
    producer = new_producer(args)
    try:
        check_delivery_offsets(messages, send_messages(producer, args.topic, messages))
    finally:
        producer.close(timeout=CALL_TIMEOUT_SECONDS)


def produce_phase(args: ScenarioArgs) -> None:
    produce_to_topic(args, roundtrip_messages(args.seed, args.count))


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


def new_group_member(args: ScenarioArgs) -> KafkaConsumer:
    """A subscribing member of the scenario's group (classic protocol) that commits only when told to."""
    consumer = KafkaConsumer(
        **common_config(args),
        group_id=group_id(args.topic),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        heartbeat_interval_ms=CLASSIC_HEARTBEAT_INTERVAL_MS,
    )
    # The topic's partitions are looked up before subscribing, so a member that becomes leader assigns them in its
    # first rebalance. Otherwise the leader assigns nothing, rejoins once the metadata arrives, and kafka-python
    # 3.0.12 drops that rejoin's result if the join and sync both complete between two polls (the member then
    # holds no partitions and sends no heartbeats) -- a client race that a coordinator answering within a
    # millisecond or two exposes. See conformance/README.md.
    if not consumer.partitions_for_topic(args.topic):
        raise ScenarioFailed(f"no partitions known for topic {args.topic}")
    consumer.subscribe([args.topic])
    return consumer


def poll_and_commit(args: ScenarioArgs, name: str, consumer: KafkaConsumer, tally: GroupTally,
                    tally_lock: threading.Lock) -> None:
    """One poll of one member: each record is checked byte for byte and counted once; after a non-empty
    batch the member commits, synchronously, the offset after the batch's last record of each partition."""
    batch = consumer.poll(timeout_ms=100)
    next_offsets: dict[int, int] = {}
    for tp_records in batch.values():
        for consumer_record in tp_records:
            record = to_record(consumer_record)
            with tally_lock:
                tally.record(name, record.partition, record.offset)
            index = message_index(record.partition, record.offset)
            check_record(roundtrip_message(args.seed, index), record, expected_offset=record.offset)
            next_offsets[record.partition] = record.offset + 1
    if next_offsets:
        try:
            consumer.commit({TopicPartition(args.topic, partition): OffsetAndMetadata(offset)
                             for partition, offset in next_offsets.items()}, timeout_ms=CALL_TIMEOUT_MS)
        except kafka.errors.KafkaError as exc:
            raise ScenarioFailed(f"{name}: commit of {next_offsets} failed: {exc!r}")
    with tally_lock:
        tally.note_assignment(name, {tp.partition for tp in consumer.assignment()})


def consume_in_group(args: ScenarioArgs, members: dict[str, KafkaConsumer], tally: GroupTally, timeout: float,
                     stray_wait: float = 0.0) -> None:
    """Each member polls in its own thread (kafka-python drives its group membership from poll(); a member
    that only gets its turn between another member's polls can miss a rebalance and be dropped from the
    group) until every expected record arrived and the members' assignments have settled, then (stray_wait)
    a little longer."""
    tally_lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def run_member(name: str, consumer: KafkaConsumer) -> None:
        try:
            while not stop.is_set():
                poll_and_commit(args, name, consumer, tally, tally_lock)
        except BaseException as failure:  # reported by the main thread
            failures.append(failure)
            stop.set()

    threads = [threading.Thread(target=run_member, args=item, daemon=True) for item in members.items()]
    for thread in threads:
        thread.start()
    deadline = Deadline(timeout)
    strays_until = None
    try:
        while not failures:
            with tally_lock:
                done = tally.all_received() and tally.settled()
            if strays_until is None and done:
                strays_until = Deadline(stray_wait)
            if strays_until is not None and strays_until.expired():
                break
            if strays_until is None and deadline.expired():
                with tally_lock:
                    raise ScenarioFailed(f"not done within {timeout:.0f} s: {tally.progress()}")
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=CALL_TIMEOUT_SECONDS)
    if failures:
        raise failures[0]
    with tally_lock:
        if not (tally.all_received() and tally.settled()):
            raise ScenarioFailed(f"the members' state changed after they had settled: {tally.progress()}")
        sys.stderr.write(f"group: {tally.progress()}\n")


def consumer_group(args: ScenarioArgs) -> None:
    """Two members of a new group share the topic, committing after every batch; a third member that
    joins after both closed receives exactly the messages produced since (messages.md)."""
    messages = roundtrip_messages(args.seed, args.count)
    produce_to_topic(args, messages)

    members = {name: new_group_member(args) for name in ("member-1", "member-2")}
    tally = GroupTally(list(members), roundtrip_positions(0, args.count))
    consume_in_group(args, members, tally, GROUP_CONSUME_TIMEOUT_SECONDS)
    for consumer in members.values():
        consumer.close(autocommit=False)

    resume = [roundtrip_message(args.seed, index)
              for index in range(args.count, args.count + CONSUMER_GROUP_RESUME_COUNT)]
    producer = new_producer(args)
    try:
        delivered = send_messages(producer, args.topic, resume)
    finally:
        producer.close(timeout=CALL_TIMEOUT_SECONDS)
    for message in resume:
        expected = (message.partition, message.index // PARTITIONS)
        if delivered[message.index] != expected:
            raise ScenarioFailed(f"message {message.index} acknowledged at (partition, offset) "
                                 f"{delivered[message.index]}, expected {expected}")
    third = {"member-3": new_group_member(args)}
    tally = GroupTally(list(third), roundtrip_positions(args.count, CONSUMER_GROUP_RESUME_COUNT))
    consume_in_group(args, third, tally, RESUME_CONSUME_TIMEOUT_SECONDS, stray_wait=STRAY_WAIT_SECONDS)
    third["member-3"].close(autocommit=False)


def consumer_group_kip848(args: ScenarioArgs) -> None:
    raise ScenarioNotSupported("kafka-python has no KIP-848 consumer (group.protocol=consumer); "
                               "it speaks only the classic group protocol")


def send_compaction_records(producer: KafkaProducer, topic: str, records: list[CompactionRecord]) -> list[tuple[int, int]]:
    """Sends the records in order (value None: a tombstone) and waits for every acknowledgement; returns
    (partition, offset) of each, in send order."""
    futures = [producer.send(topic, value=record.value, key=record.key, partition=record.partition)
               for record in records]
    producer.flush(timeout=DELIVERY_TIMEOUT_MS / 1000 + 10)
    delivered: list[tuple[int, int]] = []
    for number, future in enumerate(futures):
        try:
            metadata = future.get(timeout=CALL_TIMEOUT_SECONDS)
        except kafka.errors.KafkaError as exc:
            raise ScenarioFailed(f"record {number} was not acknowledged: {exc!r}")
        delivered.append((metadata.partition, metadata.offset))
    return delivered


def read_whole_topic(args: ScenarioArgs, high_watermarks: dict[int, int]) -> dict[int, list[tuple]]:
    """Every record of every partition from its beginning up to its high watermark (the last offset is always
    there: the roll record), as {partition: [(offset, key, value)]}."""
    consumer = new_consumer(args)
    try:
        partitions = [TopicPartition(args.topic, partition) for partition in high_watermarks]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: dict[int, list[tuple]] = {partition: [] for partition in high_watermarks}
        done = {partition: high == 0 for partition, high in high_watermarks.items()}
        deadline = Deadline(CONSUME_TIMEOUT_SECONDS)
        while not all(done.values()):
            if deadline.expired():
                raise ScenarioFailed(f"timed out reading the topic up to its high watermarks {high_watermarks}")
            batch = consumer.poll(timeout_ms=int(min(1.0, deadline.remaining()) * 1000))
            for tp, tp_records in batch.items():
                for record in tp_records:
                    records[tp.partition].append((record.offset, record.key, record.value))
                    if record.offset >= high_watermarks[tp.partition] - 1:
                        done[tp.partition] = True
        return records
    finally:
        consumer.close(autocommit=False)


def log_compaction(args: ScenarioArgs) -> None:
    """Keyed updates and tombstones to a compacted topic, then re-reads until only each key's latest record is
    left, every record at the offset its acknowledgement gave (messages.md, "Log compaction")."""
    updates = log_compaction_updates(args.seed, args.count)
    rolls = log_compaction_roll_records()
    producer = new_producer(args)
    try:
        delivered = send_compaction_records(producer, args.topic, updates)
        time.sleep(LOG_COMPACTION_ROLL_DELAY_SECONDS)
        delivered += send_compaction_records(producer, args.topic, rolls)
    finally:
        producer.close(timeout=CALL_TIMEOUT_SECONDS)
    produced = check_log_compaction_deliveries(updates + rolls, delivered)
    expected_counts = {partition: len(records) for partition, records in produced.items()}
    deadline = Deadline(LOG_COMPACTION_WAIT_SECONDS)
    while True:
        watermark_consumer = new_consumer(args)
        try:
            check_watermarks(watermark_consumer, args.topic, expected_counts)
        finally:
            watermark_consumer.close(autocommit=False)
        left = check_log_compaction(produced, read_whole_topic(args, expected_counts))
        if left is None:
            return
        if deadline.expired():
            raise ScenarioFailed(f"not compacted within {LOG_COMPACTION_WAIT_SECONDS:.0f} s: {left}")
        sys.stderr.write(f"not compacted yet: {left}\n")
        time.sleep(LOG_COMPACTION_REREAD_INTERVAL_SECONDS)


def cluster_metadata(admin: KafkaAdminClient, topic: str) -> tuple[dict[int, tuple[str, int]], dict[int, PartitionInfo]]:
    """The brokers (DescribeCluster) and TOPIC's partitions (Metadata) as the admin client shows them."""
    brokers = {broker["broker_id"]: (broker["host"], broker["port"]) for broker in admin.describe_cluster()["brokers"]}
    if topic not in admin.list_topics():
        return brokers, {}
    [description] = admin.describe_topics([topic])
    if description["error_code"] != 0:
        raise ScenarioFailed(f"metadata for {topic} has error code {description['error_code']}")
    partitions = {p["partition_index"]: PartitionInfo(p["leader_id"], list(p["replica_nodes"]), list(p["isr_nodes"]))
                  for p in description["partitions"]}
    return brokers, partitions


def cluster(args: ScenarioArgs) -> None:
    """Bootstrapped at one node of a three-broker cluster: the metadata shows the three brokers and TOPIC's
    partitions with three replicas each, led by three different brokers; then the roundtrip, whose produce
    and fetch requests must go to each partition's leader (messages.md, "Cluster scenario")."""
    admin = new_admin(args)
    try:
        deadline = Deadline(CLUSTER_METADATA_WAIT_SECONDS)
        while True:
            brokers, partitions = cluster_metadata(admin, args.topic)
            try:
                check_cluster_metadata(args.bootstrap, brokers, partitions)
                break
            except ScenarioFailed:
                if deadline.expired():
                    raise
                time.sleep(0.5)
    finally:
        admin.close()
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
    "consumer-group-kip848": consumer_group_kip848,
    "log-compaction": log_compaction,
    "cluster": cluster,
    "produce": produce_phase,
    "verify": verify,
}

if __name__ == "__main__":
    # KAFKA_PYTHON_LOG_LEVEL=DEBUG shows the client's own view (group joins, heartbeats) when a scenario fails.
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("KAFKA_PYTHON_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    exit_code = main(CLIENT_NAME, kafka.__version__, SCENARIOS)
    sys.stderr.flush()
    os._exit(exit_code)  # don't wait on the client's background threads
