"""Helpers for the log lifecycle tests (retention and compaction): waiting for the broker's cleaning to act,
what a partition stores (bytes on disk, DescribeLogDirs size, ListOffsets earliest), producing with the offsets
from the delivery reports, reading a partition back and folding it by key."""

from __future__ import annotations

import os
import time
from pathlib import Path

from confluent_kafka import (OFFSET_BEGINNING, Consumer, IsolationLevel, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, OffsetSpec

from support.kafka_clients import unique_topic_name

CLIENT_TIMEOUT_SECONDS = 30


def wait_until(condition, timeout: float, describe, interval: float = 0.25):
    """Calls `condition()` until it returns a truthy value (returned) or `timeout` seconds pass; then fails with
    `describe()`, which says what was seen last."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {describe()}")
        time.sleep(interval)


def earliest_offset(bootstrap: str, topic: str, partition: int = 0) -> int:
    """ListOffsets(earliest): the partition's log start offset."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.list_offsets({TopicPartition(topic, partition): OffsetSpec.earliest()},
                                 request_timeout=CLIENT_TIMEOUT_SECONDS)
    return next(iter(futures.values())).result(timeout=CLIENT_TIMEOUT_SECONDS).offset


def partition_size_bytes(bootstrap: str, topic: str, partition: int = 0) -> int:
    """The partition's size as the broker reports it in DescribeLogDirs. confluent-kafka's AdminClient has no
    DescribeLogDirs, so this asks with kafka-python's."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000)
    try:
        for broker_result in admin.describe_log_dirs(topic_partitions={topic: [partition]}):
            for log_dir in broker_result["log_dirs"]:
                assert log_dir["error_code"] == 0, log_dir
                for described in log_dir["topics"]:
                    if described["name"] != topic:
                        continue
                    for described_partition in described["partitions"]:
                        if described_partition["partition_index"] == partition:
                            return described_partition["partition_size"]
    finally:
        admin.close()
    raise AssertionError(f"DescribeLogDirs did not describe {topic}-{partition}")


def stored_bytes(broker, topic: str, partition: int = 0) -> int:
    """What the broker keeps on disk for the partition, in bytes (sum of file sizes).

    Apache Kafka: the partition's segment files (`<log dir>/<topic>-<partition>/*.log`; its index files are
    preallocated to a fixed size, so they say nothing about the data). Skein: every file of its data directory
    (one RocksDB for all partitions, its write-ahead log included); the tests give each Skein broker a single
    topic, so that is the partition's data plus a small fixed overhead.
    """
    if broker.kind == "kafka":
        return _files_bytes(Path(broker.data_dir) / f"{topic}-{partition}", suffix=".log")
    return _files_bytes(Path(broker.data_dir))


def _files_bytes(directory: Path, suffix: str = "") -> int:
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if name.endswith(suffix):
                try:
                    total += os.stat(os.path.join(root, name)).st_size
                except FileNotFoundError:
                    pass  # deleted while we walked
    return total


def produce_records(producer: Producer, topic: str, records, partition: int = 0, **produce_args) -> list[tuple]:
    """Produces (key, value) pairs (value None: a tombstone) in order and flushes. Returns
    [(offset, key, value), ...] from the delivery reports, in produce order; fails on any delivery error."""
    delivered: list[tuple] = []
    errors: list = []

    def on_delivery(error, message):
        if error is not None:
            errors.append(error)
        else:
            delivered.append((message.offset(), message.key(), message.value()))

    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value, partition=partition, on_delivery=on_delivery,
                                 **produce_args)
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.1)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0, "records still undelivered"
    assert not errors, errors[:5]
    return delivered


def read_partition(bootstrap: str, topic: str, partition: int = 0, isolation_level: str = "read_uncommitted",
                   timeout: float = CLIENT_TIMEOUT_SECONDS) -> list[tuple]:
    """Every record a consumer with this isolation level gets from the start of the partition to its current
    end, as [(offset, key, value), ...]. Works on partitions with gaps (compaction, retention, transaction
    markers). Fails on any consume error."""
    end = end_offset(bootstrap, topic, partition, isolation_level)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_topic_name("reader"),  # never joined: the partition is assigned directly
        "enable.auto.commit": False,
        "isolation.level": isolation_level,
        "auto.offset.reset": "error",
        "enable.partition.eof": True,
    })
    records: list[tuple] = []
    try:
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        records += consume_until_end(consumer, end, timeout)
    finally:
        consumer.close()
    return records


def consume_until_end(consumer: Consumer, end: int, timeout: float = CLIENT_TIMEOUT_SECONDS) -> list[tuple]:
    """Polls a consumer assigned one partition until it reports reaching offset `end` (partition EOF).
    Returns [(offset, key, value), ...]; fails on any consume error."""
    records: list[tuple] = []
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            last = records[-1][0] if records else None
            raise TimeoutError(f"read {len(records)} records (last offset {last}), end {end}, within {timeout}s")
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() == KafkaError._PARTITION_EOF:
                if message.offset() >= end:
                    return records
                continue
            raise KafkaException(message.error())
        records.append((message.offset(), message.key(), message.value()))


def end_offset(bootstrap: str, topic: str, partition: int = 0, isolation_level: str = "read_uncommitted") -> int:
    """ListOffsets(latest): the high watermark, or for read_committed the last stable offset."""
    level = {"read_uncommitted": IsolationLevel.READ_UNCOMMITTED,
             "read_committed": IsolationLevel.READ_COMMITTED}[isolation_level]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.list_offsets({TopicPartition(topic, partition): OffsetSpec.latest()}, isolation_level=level,
                                 request_timeout=CLIENT_TIMEOUT_SECONDS)
    return next(iter(futures.values())).result(timeout=CLIENT_TIMEOUT_SECONDS).offset


def fold_by_key(records) -> dict:
    """The table a compacted topic stands for: the latest value of each key; a tombstone (None) deletes it."""
    table: dict = {}
    for _offset, key, value in records:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


def keys_seen_more_than_once(records) -> dict:
    """{key: [offsets]} for each key that appears more than once in `records`."""
    offsets_by_key: dict = {}
    for offset, key, _value in records:
        offsets_by_key.setdefault(key, []).append(offset)
    return {key: offsets for key, offsets in offsets_by_key.items() if len(offsets) > 1}
