"""Consumer groups with a stock client: three confluent-kafka consumers subscribed to a 6-partition topic
(range assignor) share it without overlap; when one leaves, the other two take over all partitions;
committed offsets survive a broker restart. Runs against Apache Kafka (the oracle) and Skein."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from support.brokers import BROKER_KINDS
from support.kafka_clients import unique_topic_name

PARTITIONS = 6
MESSAGES_PER_PARTITION = 10
GROUP_TIMEOUT_SECONDS = 60
# The same group settings on both brokers: a short initial delay so the three joins usually land in one rebalance.
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 1000}


def new_consumer(bootstrap: str, group_id: str, topic: str) -> Consumer:
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "partition.assignment.strategy": "range",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
    })
    consumer.subscribe([topic])
    return consumer


def assigned_partitions(consumer: Consumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


def wait_for_split(consumers: list[Consumer], per_consumer: int) -> list[set[int]]:
    """Polls every consumer until their assignments are disjoint, cover every partition and each has
    `per_consumer` partitions; returns the assignments."""
    deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
    assignments: list[set[int]] = []
    while time.monotonic() < deadline:
        for consumer in consumers:
            message = consumer.poll(0.1)
            if message is not None and message.error() is not None:
                raise KafkaException(message.error())
        assignments = [assigned_partitions(consumer) for consumer in consumers]
        union = set().union(*assignments)
        if (union == set(range(PARTITIONS)) and sum(len(a) for a in assignments) == PARTITIONS
                and all(len(a) == per_consumer for a in assignments)):
            return assignments
    raise TimeoutError(f"no stable split within {GROUP_TIMEOUT_SECONDS}s; last assignments {assignments}")


def produce(bootstrap: str, topic: str, prefix: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failures = []
    for partition in range(PARTITIONS):
        for i in range(MESSAGES_PER_PARTITION):
            producer.produce(topic, value=f"{prefix}-{partition}-{i}".encode(), partition=partition,
                             on_delivery=lambda err, msg: err and failures.append(err))
    assert producer.flush(30) == 0
    assert failures == []


def consume_exactly(consumer: Consumer, count: int) -> list[bytes]:
    """Consumes `count` messages (and checks nothing more arrives for a moment)."""
    values: list[bytes] = []
    deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
    while len(values) < count:
        assert time.monotonic() < deadline, f"consumed {len(values)} of {count} messages"
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            raise KafkaException(message.error())
        values.append(message.value())
    extra_deadline = time.monotonic() + 2
    while time.monotonic() < extra_deadline:
        message = consumer.poll(0.2)
        assert message is None or message.error() is not None, f"unexpected extra message {message.value()!r}"
    return values


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_three_consumers_split_the_topic_and_two_take_over(kind, start_broker, new_topic):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    consumers = [new_consumer(broker.bootstrap, group_id, topic) for _ in range(3)]
    try:
        assignments = wait_for_split(consumers, per_consumer=2)
        # The range assignor gives each consumer two consecutive partitions.
        assert sorted(sorted(a) for a in assignments) == [[0, 1], [2, 3], [4, 5]]

        consumers.pop().close()
        assignments = wait_for_split(consumers, per_consumer=3)
        assert sorted(sorted(a) for a in assignments) == [[0, 1, 2], [3, 4, 5]]
    finally:
        for consumer in consumers:
            consumer.close()


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_committed_offsets_resume_after_a_restart(kind, start_broker, new_topic):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    produce(broker.bootstrap, topic, "before")

    consumer = new_consumer(broker.bootstrap, group_id, topic)
    try:
        values = consume_exactly(consumer, PARTITIONS * MESSAGES_PER_PARTITION)
        assert all(v.startswith(b"before-") for v in values)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()

    broker.restart()
    produce(broker.bootstrap, topic, "after")

    consumer = new_consumer(broker.bootstrap, group_id, topic)
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
        assert [tp.offset for tp in committed] == [MESSAGES_PER_PARTITION] * PARTITIONS
        values = consume_exactly(consumer, PARTITIONS * MESSAGES_PER_PARTITION)
        assert sorted(values) == sorted(
            f"after-{p}-{i}".encode() for p in range(PARTITIONS) for i in range(MESSAGES_PER_PARTITION)
        )
    finally:
        consumer.close()
