"""Consumer groups with stock clients: three confluent-kafka consumers subscribed to a 6-partition topic
(range assignor) share it without overlap; when one leaves, the other two take over all partitions;
committed offsets survive a broker restart. The same split and take-over with kafka-python consumers,
a take-over after a member is SIGKILLed (it never leaves; the broker expires its session), and the split
with Java kafka-clients consumers on the classic group protocol (tests/support/java/GroupSplit.java).
Runs against Apache Kafka (the oracle) and Skein."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from kafka import KafkaConsumer

from support.brokers import BROKER_KINDS, _die_with_parent
from support.java_programs import java_program_command
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


class KafkaPythonMember:
    """A kafka-python consumer polled by its own thread: a member blocked in a rebalance (JoinGroup waits
    for every member) must not stop the others from polling, as it would in one shared loop."""

    def __init__(self, bootstrap: str, group_id: str, topic: str):
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, session_timeout_ms=6000,
            heartbeat_interval_ms=500, enable_auto_commit=False, auto_offset_reset="earliest",
        )
        # Partitions looked up before subscribing: see conformance/README.md on kafka-python 3.0.12's rejoin race.
        assert self.consumer.partitions_for_topic(topic), f"no partitions known for {topic}"
        self.consumer.subscribe([topic])
        self.assignment: set[int] = set()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_until_stopped, daemon=True)
        self._thread.start()

    def _poll_until_stopped(self) -> None:
        try:
            while not self._stop.is_set():
                self.consumer.poll(timeout_ms=100)
                self.assignment = {tp.partition for tp in self.consumer.assignment()}
        except BaseException as error:  # reported by wait_for_kafka_python_split
            self.error = error

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "kafka-python poll thread did not stop within 30s"
        self.consumer.close()


def wait_for_kafka_python_split(members: list[KafkaPythonMember], per_consumer: int) -> list[set[int]]:
    deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
    assignments: list[set[int]] = []
    while time.monotonic() < deadline:
        for member in members:
            if member.error is not None:
                raise member.error
        assignments = [set(member.assignment) for member in members]
        union = set().union(*assignments)
        if (union == set(range(PARTITIONS)) and sum(len(a) for a in assignments) == PARTITIONS
                and all(len(a) == per_consumer for a in assignments)):
            return assignments
        time.sleep(0.1)
    raise TimeoutError(f"no stable split within {GROUP_TIMEOUT_SECONDS}s; last assignments {assignments}")


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_kafka_python_consumers_split_the_topic_and_two_take_over(kind, start_broker, new_topic):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    members = [KafkaPythonMember(broker.bootstrap, group_id, topic) for _ in range(3)]
    try:
        wait_for_kafka_python_split(members, per_consumer=2)

        members.pop().close()
        wait_for_kafka_python_split(members, per_consumer=3)
    finally:
        for member in members:
            member.close()


# A group member in its own process: joins, prints its assignment as one JSON line once it has one,
# then keeps polling (heartbeating) until it is killed or its time is up.
MEMBER_PROCESS_SCRIPT = """
import json, sys, time
from confluent_kafka import Consumer
bootstrap, group_id, topic, lifetime = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                     "partition.assignment.strategy": "range", "enable.auto.commit": False,
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
consumer.subscribe([topic])
reported = None
deadline = time.monotonic() + lifetime
while time.monotonic() < deadline:
    consumer.poll(0.1)
    assignment = sorted(tp.partition for tp in consumer.assignment())
    if assignment and assignment != reported:
        print(json.dumps(assignment), flush=True)
        reported = assignment
consumer.close()
"""
MEMBER_PROCESS_LIFETIME_SECONDS = 120
# session.timeout.ms is 6 s; the broker must expire the killed member and rebalance well within this.
SESSION_EXPIRY_TAKE_OVER_SECONDS = 15
# ...but not much sooner: the member's last heartbeat was at most 0.5 s before the kill, so its
# session ends no earlier than ~5.5 s after it (Kafka takes ~6.2 s here). Earlier means a wrong expiry.
SESSION_EXPIRY_EARLIEST_SECONDS = 4


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_survivors_take_over_from_a_killed_member(kind, start_broker, new_topic):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    member = subprocess.Popen(
        [sys.executable, "-c", MEMBER_PROCESS_SCRIPT, broker.bootstrap, group_id, topic,
         str(MEMBER_PROCESS_LIFETIME_SECONDS)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent,
    )
    survivors: list[Consumer] = []
    try:
        survivors = [new_consumer(broker.bootstrap, group_id, topic) for _ in range(2)]
        for survivor in survivors:
            survivor.poll(0.1)
        # Wait until the three members (two here, one in the child) split the six partitions.
        os.set_blocking(member.stdout.fileno(), False)
        member_assignment: list[int] = []
        deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
        while True:
            assert member.poll() is None, f"member process exited early with {member.returncode}"
            for survivor in survivors:
                survivor.poll(0.1)
            line = member.stdout.readline()
            if line:
                member_assignment = json.loads(line)
            assignments = [assigned_partitions(s) for s in survivors] + [set(member_assignment)]
            if (set().union(*assignments) == set(range(PARTITIONS))
                    and all(len(a) == 2 for a in assignments)):
                break
            assert time.monotonic() < deadline, f"no three-way split within {GROUP_TIMEOUT_SECONDS}s: {assignments}"

        # SIGKILL: the member sends no LeaveGroup; only its session timeout frees its partitions.
        member.send_signal(signal.SIGKILL)
        member.wait(timeout=10)
        killed_at = time.monotonic()
        deadline = killed_at + SESSION_EXPIRY_TAKE_OVER_SECONDS
        while True:
            for survivor in survivors:
                message = survivor.poll(0.1)
                if message is not None and message.error() is not None:
                    raise KafkaException(message.error())
            assignments = [assigned_partitions(s) for s in survivors]
            if (set().union(*assignments) == set(range(PARTITIONS))
                    and sum(len(a) for a in assignments) == PARTITIONS):
                break
            assert time.monotonic() < deadline, (
                f"survivors cover {assignments} {SESSION_EXPIRY_TAKE_OVER_SECONDS}s after the member was killed")
        take_over_seconds = time.monotonic() - killed_at
        assert take_over_seconds >= SESSION_EXPIRY_EARLIEST_SECONDS, (
            f"killed member's partitions reassigned after {take_over_seconds:.1f}s, before its 6 s session could expire")
        assert sorted(sorted(a) for a in assignments) == [[0, 1, 2], [3, 4, 5]]
    finally:
        for survivor in survivors:
            survivor.close()
        if member.poll() is None:
            member.kill()
        member.wait(timeout=10)
        member.stdout.close()


JAVA_SPLIT_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def java_group_split() -> list[str]:
    """The command that runs tests/support/java/GroupSplit.java, compiled once per module."""
    return java_program_command("GroupSplit")


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_java_classic_consumers_split_the_topic(kind, start_broker, new_topic, java_group_split):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    result = subprocess.run(
        java_group_split + [broker.bootstrap, group_id, topic, "3", str(JAVA_SPLIT_TIMEOUT_SECONDS)],
        capture_output=True, text=True, timeout=JAVA_SPLIT_TIMEOUT_SECONDS + 60, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    assert result.returncode == 0, f"GroupSplit exited {result.returncode}\n{result.stdout}{result.stderr}"
    # "member N: [a, b]" per member; the range assignor gives each two consecutive partitions.
    assignments = sorted(json.loads(line.split(": ", 1)[1]) for line in result.stdout.splitlines())
    assert assignments == [[0, 1], [2, 3], [4, 5]]
