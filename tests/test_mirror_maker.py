"""MirrorMaker 2 (Apache Kafka 4.3.1's connect-mirror, in its dedicated mode) between Apache Kafka and Skein: records
and a consumer group's committed offsets mirrored from cluster A to cluster B.

`org.apache.kafka.connect.mirror.MirrorMaker mm2.properties` (support.connect_processes) runs with clusters A and B,
the flow A->B enabled for one topic and one group, B->A disabled (no heartbeats either, so no B->A herder), every
topic MM2 creates with replication factor 1, and short intervals: topics and groups refreshed, checkpoints emitted and
group offsets synced (sync.group.offsets.enabled=true) each second. offset.lag.max=0 makes MirrorSourceTask emit an
offset sync for every record it mirrors, so the last record's sync is always there: a group committed at the end of
a partition is then translated exactly (MirrorCheckpointTask's OffsetSyncStore maps the upstream offset one past a
sync to one past its downstream offset), and the target's committed offset must equal the source's. The herder's
worker settings are the ones prefixed with the target's alias: `B.offset.flush.interval.ms` is 1 s (MirrorSourceTask
sends its delayed offset syncs when its offsets are committed; the default would hold them for a minute), and no
classpath scan for plugins (plugin.discovery=service_load: every plugin has a ServiceLoader manifest).

Before MM2 starts, the source topic (3 partitions) is filled with records of different shapes through confluent-kafka:
keys and values of arbitrary bytes, null keys, an empty value, a null value, headers (several, a repeated key, binary
and null values), explicit CreateTime timestamps; then a consumer of the group subscribes, reads every record and
commits the partitions' end offsets (checked on the source with ListConsumerGroupOffsets).

Checked, each within a bounded wait:
- the target has topic `A.<topic>` with as many partitions as the source, and every partition holds exactly the
  source partition's records, in order, byte for byte: key, value, headers (in order), timestamp;
- the group's committed offsets for `A.<topic>` on the target (AdminClient list_consumer_group_offsets) equal the
  source's committed offsets for `<topic>`;
- the mirrored topic was created with the source topic's retention.ms, and once retention.ms is changed on the
  source (IncrementalAlterConfigs), the change reaches the mirrored topic (sync.topic.configs.interval.seconds=1);
  MM2's IncrementalAlterConfigs names every config the source's DescribeConfigs lists, those at their default as
  DELETE operations, so the target must accept each of them (checked last);
- MM2 exits cleanly (143) after SIGTERM.

Three runs, each with two fresh brokers: Apache Kafka to Skein, Skein to Apache Kafka, and Apache Kafka to Apache
Kafka, the reference that tells a Skein failure from a test defect (in long mode, SKEIN_LONG=1, for CI's time). On a
failure MM2's log and properties and both
brokers' logs are copied into the test's tmp_path.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from support.brokers import LONG_MODE
from support.connect_processes import CLEAN_EXIT_CODE, ConnectProcess
from support.kafka_clients import create_topic, high_watermarks, read_partitions, unique_topic_name

MIRROR_MAKER = "org.apache.kafka.connect.mirror.MirrorMaker"
PARTITIONS = 3
RECORDS_PER_PARTITION = [40, 23, 9]
# Each of these within this: the mirrored topic created after MM2's start (Connect's herder, the connectors and their
# tasks), all its records mirrored, the group's offsets synced.
MIRROR_SECONDS = 90
# A topic config change on the source reaches the target within this (MM2 syncs every second).
CONFIG_SYNC_SECONDS = 20
CLIENT_TIMEOUT_SECONDS = 30
# The source topic is created with one retention and changed to the other once the mirroring is done: MM2 creates
# the target topic with the first (CreateTopics) and syncs the change (IncrementalAlterConfigs).
CREATED_RETENTION_MS = "86400000"
CHANGED_RETENTION_MS = "43200000"
# Same settings on both brokers: groups (MM2's herder's, the test's consumer's) form at once.
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 0}

# (source kind, target kind): Skein as each end, and the Apache Kafka reference.
DIRECTIONS = [("kafka", "skein"), ("skein", "kafka"), ("kafka", "kafka")]


def source_records(now_ms: int) -> dict[int, list[dict]]:
    """The records written to each partition: {partition: [{key, value, headers, timestamp}, ...]}."""
    rng = random.Random(2)
    records: dict[int, list[dict]] = {}
    for partition, count in enumerate(RECORDS_PER_PARTITION):
        records[partition] = []
        for n in range(count):
            key = None if n % 7 == 3 else f"key-{partition}-{n}".encode() + bytes([0, 0xff, n])
            if n == 1:
                value = b""
            elif n == 5:
                value = None
            else:
                value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            headers = []
            if n % 3 == 0:
                headers = [("trace", f"{partition}:{n}".encode()), ("bin", bytes([0, 0xfe, n % 256])),
                           ("trace", b"again")]
            if n % 4 == 2:
                headers.append(("nothing", None))
            records[partition].append({"key": key, "value": value, "headers": headers,
                                       "timestamp": now_ms - 60_000 + partition * 1000 + n})
    return records


def produce(bootstrap: str, topic: str, records: dict[int, list[dict]]) -> None:
    failures = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for partition, partition_records in records.items():
        for record in partition_records:
            producer.produce(topic, key=record["key"], value=record["value"], partition=partition,
                             headers=record["headers"] or None, timestamp=record["timestamp"],
                             on_delivery=lambda error, message: error and failures.append(error))
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
    assert failures == []


def consume_and_commit(bootstrap: str, topic: str, group: str, total: int) -> None:
    """A consumer of `group` subscribes to `topic`, reads all `total` records and commits where it stands."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        seen = 0
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while seen < total:
            assert time.monotonic() < deadline, f"the group's consumer read {seen} of {total} records"
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            seen += 1
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> list[int] | None:
    """The group's committed offset of each partition of `topic` (-1001 where none); None when the broker gave no
    answer."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(PARTITIONS)])
    try:
        result = admin.list_consumer_group_offsets([request], request_timeout=10)[group].result(timeout=15)
    except KafkaException:
        return None
    return [tp.offset for tp in sorted(result.topic_partitions, key=lambda tp: tp.partition)]


def as_stored(message) -> dict:
    return {"key": message.key(), "value": message.value(), "headers": message.headers() or [],
            "timestamp": message.timestamp()[1]}


def partition_count(bootstrap: str, topic: str) -> int | None:
    """The topic's partition count, None while it does not exist. All topics are listed: a Metadata request naming the
    topic would have Apache Kafka create it (auto.create.topics.enable)."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return None
    return len(found.partitions)


def topic_config(bootstrap: str, topic: str, name: str) -> str | None:
    """The value of one config of a topic (DescribeConfigs); None when the broker gave no answer."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        configs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=10)
        return next(iter(configs.values())).result(timeout=15)[name].value
    except KafkaException:
        return None


def set_topic_config(bootstrap: str, topic: str, name: str, value: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)])
    next(iter(admin.incremental_alter_configs([resource], request_timeout=10).values())).result(timeout=15)


def mm2_properties(source: str, target: str, topic: str, group: str) -> dict:
    return {
        "clusters": "A, B",
        "A.bootstrap.servers": source,
        "B.bootstrap.servers": target,
        "A->B.enabled": "true",
        "A->B.topics": topic,
        "A->B.groups": group,
        "B->A.enabled": "false",
        "B->A.emit.heartbeats.enabled": "false",
        "tasks.max": 1,
        # One broker on each side: every topic MM2 or its Connect workers create has one replica.
        "replication.factor": 1,
        "checkpoints.topic.replication.factor": 1,
        "heartbeats.topic.replication.factor": 1,
        "offset-syncs.topic.replication.factor": 1,
        "config.storage.replication.factor": 1,
        "offset.storage.replication.factor": 1,
        "status.storage.replication.factor": 1,
        "offset.lag.max": 0,
        "sync.topic.configs.interval.seconds": 1,
        "sync.group.offsets.enabled": "true",
        "sync.group.offsets.interval.seconds": 1,
        "emit.checkpoints.interval.seconds": 1,
        "emit.heartbeats.interval.seconds": 1,
        "refresh.topics.interval.seconds": 1,
        "refresh.groups.interval.seconds": 1,
        # The worker settings of the A->B herder are those prefixed with the target's alias: MirrorSourceTask's
        # delayed offset syncs go out when its offsets are committed.
        "B.offset.flush.interval.ms": 1000,
        # Every plugin (connect-runtime's, connect-mirror's) has a ServiceLoader manifest: no classpath scan, neither
        # by MirrorMaker itself nor by the herder's worker.
        "plugin.discovery": "service_load",
        "B.plugin.discovery": "service_load",
    }


def keep_logs(tmp_path: Path, mm2: ConnectProcess, brokers: dict) -> None:
    """Copies MM2's log and both brokers' logs into the failed test's tmp_path (the brokers' own directories go with
    them)."""
    mm2.keep_log(tmp_path)
    for alias, broker in brokers.items():
        try:
            shutil.copyfile(broker.log_path, tmp_path / f"broker-{alias}-{broker.kind}.log")
        except OSError as error:
            print(f"cannot keep the log of broker {alias}: {error}")
    print(f"broker logs kept in {tmp_path}/broker-*.log")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("source_kind,target_kind", DIRECTIONS, ids=[f"{s}-to-{t}" for s, t in DIRECTIONS])
def test_mirror_maker_mirrors_records_and_group_offsets(source_kind, target_kind, start_broker, tmp_path):
    if source_kind == target_kind == "kafka" and not LONG_MODE:
        pytest.skip("the Apache Kafka to Apache Kafka reference runs in long mode (SKEIN_LONG=1)")
    brokers = {"A": start_broker(source_kind, BROKER_CONFIG), "B": start_broker(target_kind, BROKER_CONFIG)}
    source, target = brokers["A"].bootstrap, brokers["B"].bootstrap
    topic = create_topic(source, unique_topic_name("mirrored"), PARTITIONS, {"retention.ms": CREATED_RETENTION_MS})
    group = unique_topic_name("mirrored-app")
    records = source_records(int(time.time() * 1000))
    produce(source, topic, records)
    consume_and_commit(source, topic, group, sum(RECORDS_PER_PARTITION))
    source_offsets = committed_offsets(source, group, topic)
    assert source_offsets == RECORDS_PER_PARTITION == high_watermarks(source, topic, PARTITIONS)

    mirrored = f"A.{topic}"
    work_dir = tmp_path / "mm2"
    work_dir.mkdir()
    mm2 = ConnectProcess("mm2", MIRROR_MAKER, mm2_properties(source, target, topic, group), work_dir)
    mm2.start()
    started = time.monotonic()
    try:
        def wait_for(what: str, check, wanted, timeout: float = MIRROR_SECONDS):
            """Polls check() until it returns `wanted` (a None result: not yet), for at most `timeout` seconds; fails
            at once when MM2 exits."""
            deadline = time.monotonic() + timeout
            while True:
                mm2.assert_running()
                result = check()
                if (result is not None) if wanted is None else (result == wanted):
                    print(f"{source_kind} -> {target_kind}: {what} {time.monotonic() - started:.1f}s after MM2's "
                          f"start")
                    return result
                assert time.monotonic() < deadline, (
                    f"{what} not within {timeout}s (last: {result!r})\n{mm2.log_tail()}")
                time.sleep(0.5)

        assert wait_for(f"topic {mirrored} on the target", lambda: partition_count(target, mirrored),
                        None) == PARTITIONS
        wait_for(f"{RECORDS_PER_PARTITION} records in {mirrored}",
                 lambda: high_watermarks(target, mirrored, PARTITIONS), RECORDS_PER_PARTITION)
        copied = read_partitions(target, mirrored, PARTITIONS, CLIENT_TIMEOUT_SECONDS)
        for partition in range(PARTITIONS):
            assert [as_stored(m) for m in copied[partition]] == records[partition], f"partition {partition}"

        wait_for(f"group {group}'s offsets {source_offsets} for {mirrored} on the target",
                 lambda: committed_offsets(target, group, mirrored), source_offsets)
        # Still the same a few syncs later: MM2 does not move them on without progress upstream.
        time.sleep(2)
        assert committed_offsets(target, group, mirrored) == source_offsets
        assert topic_config(target, mirrored, "retention.ms") == CREATED_RETENTION_MS

        # Last, so that a failure here leaves the records' and offsets' checks passed: a topic config changed on the
        # source reaches the mirrored topic (MM2 sends the target every config of the source topic, those at their
        # default as DELETE operations).
        set_topic_config(source, topic, "retention.ms", CHANGED_RETENTION_MS)
        wait_for(f"retention.ms={CHANGED_RETENTION_MS} of {mirrored} on the target",
                 lambda: topic_config(target, mirrored, "retention.ms"), CHANGED_RETENTION_MS, CONFIG_SYNC_SECONDS)
        assert mm2.stop() == CLEAN_EXIT_CODE, mm2.log_tail()
    except BaseException:
        keep_logs(tmp_path, mm2, brokers)
        raise
    finally:
        mm2.kill()
