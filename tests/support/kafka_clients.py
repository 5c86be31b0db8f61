"""Small helpers around the Python confluent-kafka client that tests share (topics, writing, reading back,
committed offsets)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, Consumer, IsolationLevel, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

CLIENT_TIMEOUT_SECONDS = 30


def unique_topic_name(prefix: str = "test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_topic(bootstrap: str, name: str, partitions: int = 3, config: dict | None = None,
                 timeout: float = CLIENT_TIMEOUT_SECONDS) -> str:
    """Create a topic (replication factor 1) and wait until its metadata shows every partition led."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=timeout,
    )
    futures[name].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        topic = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        if topic is not None and topic.error is None and len(topic.partitions) == partitions and all(
            p.leader >= 0 for p in topic.partitions.values()
        ):
            return name
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} not ready within {timeout}s: {topic}")
        time.sleep(0.2)


def high_watermarks(bootstrap: str, topic: str, partitions: int = 3,
                    timeout: float = CLIENT_TIMEOUT_SECONDS) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic_name("watermarks")})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)[1]
            for partition in range(partitions)
        ]
    finally:
        consumer.close()


def read_partitions(bootstrap: str, topic: str, partitions: int = 3,
                    timeout: float = CLIENT_TIMEOUT_SECONDS) -> dict[int, list]:
    """Every message of every partition, from the beginning to the current high watermark.

    Returns {partition: [confluent_kafka.Message, ...]} in offset order. Raises on any consume error
    or when the high watermark is not reached within `timeout`.
    """
    end_offsets = high_watermarks(bootstrap, topic, partitions, timeout)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_topic_name("reader"),  # never joined: partitions are assigned directly
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    messages: dict[int, list] = {partition: [] for partition in range(partitions)}
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        next_offsets = [0] * partitions
        while any(next_offsets[p] < end_offsets[p] for p in range(partitions)):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"read {[len(messages[p]) for p in range(partitions)]} of {end_offsets} messages "
                    f"from {topic} within {timeout}s"
                )
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            messages[message.partition()].append(message)
            next_offsets[message.partition()] = message.offset() + 1
    finally:
        consumer.close()
    return messages


def end_offsets(bootstrap: str, topic: str, partitions: int = 3, isolation_level: str = "read_uncommitted",
                timeout: float = CLIENT_TIMEOUT_SECONDS) -> list[int]:
    """ListOffsets(latest) per partition: the high watermark for read_uncommitted, the last stable
    offset (below every open transaction) for read_committed."""
    level = {"read_uncommitted": IsolationLevel.READ_UNCOMMITTED,
             "read_committed": IsolationLevel.READ_COMMITTED}[isolation_level]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                                 isolation_level=level, request_timeout=timeout)
    offsets = {tp.partition: future.result(timeout=timeout).offset for tp, future in futures.items()}
    return [offsets[p] for p in range(partitions)]


def read_to_end(bootstrap: str, topic: str, partitions: int = 3, isolation_level: str = "read_committed",
                timeout: float = CLIENT_TIMEOUT_SECONDS) -> dict[int, list]:
    """What a consumer with this isolation level gets from the beginning of every partition up to its
    current end (end_offsets for that level). Unlike read_partitions this also works on partitions with
    transaction markers or aborted records, whose offsets the consumer never returns.

    Returns {partition: [confluent_kafka.Message, ...]} in offset order. Raises on any consume error or
    when the consumer has not reached the end of every partition within `timeout`.
    """
    ends = end_offsets(bootstrap, topic, partitions, isolation_level, timeout)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_topic_name("reader"),  # never joined: partitions are assigned directly
        "enable.auto.commit": False,
        "isolation.level": isolation_level,
        # The consumer reports reaching the end of a partition (past any trailing markers).
        "enable.partition.eof": True,
    })
    messages: dict[int, list] = {partition: [] for partition in range(partitions)}
    reached_end = [end == 0 for end in ends]
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while not all(reached_end):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"read {[len(messages[p]) for p in range(partitions)]} messages of {topic} "
                    f"({isolation_level}); ends {ends}, reached {reached_end} within {timeout}s"
                )
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    if message.offset() >= ends[message.partition()]:
                        reached_end[message.partition()] = True
                    continue
                raise KafkaException(message.error())
            messages[message.partition()].append(message)
    finally:
        consumer.close()
    return messages


def eventually(check, timeout: float):
    """Runs `check` until it returns without an AssertionError (its result), for at most `timeout` seconds: for
    effects a broker applies asynchronously (ACLs and quotas reach Kafka's brokers after its controller)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def expect(value, wanted):
    """Asserts value == wanted and returns it (for `eventually`)."""
    assert value == wanted, value
    return value


def produce(bootstrap: str, topic: str, count: int) -> None:
    """`count` records `record-0`, `record-1`, ... to partition 0 of `topic`, all acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for index in range(count):
        producer.produce(topic, f"record-{index}".encode(), partition=0)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0


def commit_in_group(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """A classic consumer joins `group` subscribed to `topic`, is assigned its partition, commits `offset` and
    leaves: an empty group with committed offsets."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"not assigned {topic} within {CLIENT_TIMEOUT_SECONDS}s"
            message = consumer.poll(0.2)
            if message is not None and message.error() is not None:
                raise KafkaException(message.error())
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()
