"""Consumer groups on the KIP-848 consumer group protocol (`group.protocol=consumer`) with stock clients.

The broker, not the client, owns the session timeout, the heartbeat interval and the assignor here;
both brokers get the same short settings (BROKER_CONFIG). Tests:
  * three confluent-kafka consumers split a 6-partition topic, read every message once (committing each
    right after processing it), and when one closes the other two take over at the committed offsets;
  * the same after a member in its own process is SIGKILLed: its partitions move when its session expires;
  * Java kafka-clients consumers split the topic and take over, with the broker's default assignor and
    with group.remote.assignor=range (tests/support/java/GroupConsumerProtocol.java);
  * members join and leave while a producer keeps producing numbered messages: each is read exactly once;
  * describe/list: AdminClient and Kafka's kafka-consumer-groups tool show the group, its type, state,
    members, their partitions and the committed offsets.
Runs against Apache Kafka (the oracle) and Skein."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupType, KafkaException, Producer)
from confluent_kafka.admin import AdminClient

from support.brokers import BROKER_KINDS, KAFKA_DIR, _die_with_parent
from support.java_programs import java_program_command
from support.kafka_clients import unique_topic_name

PARTITIONS = 6
MESSAGES_PER_PARTITION = 10
GROUP_TIMEOUT_SECONDS = 60
# After the expected messages arrived, poll this long more to catch duplicates arriving late.
QUIET_SECONDS = 2
# KIP-848 moves session timeout and heartbeat interval from the client to the broker; the same short
# values on both brokers. Kafka requires min <= value <= max for each, and heartbeat < session.
BROKER_CONFIG = {
    "group.consumer.session.timeout.ms": 6000,
    "group.consumer.min.session.timeout.ms": 6000,
    "group.consumer.heartbeat.interval.ms": 500,
    "group.consumer.min.heartbeat.interval.ms": 500,
}


def consumer_config(bootstrap: str, group_id: str, client_id: str) -> dict:
    # No session.timeout.ms, heartbeat.interval.ms or partition.assignment.strategy: with
    # group.protocol=consumer these are the broker's, and librdkafka refuses them.
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "group.protocol": "consumer",
        "client.id": client_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }


class GroupMember:
    """A confluent-kafka consumer in the group that records each message it consumes and commits it
    synchronously right after. confluent-kafka serves revocations inside poll(), so a partition only
    moves to another member after everything read from it here has been committed."""

    def __init__(self, name: str, bootstrap: str, group_id: str, topic: str):
        self.name = name
        self.consumer = Consumer(consumer_config(bootstrap, group_id, client_id=name))
        self.consumer.subscribe([topic])
        self.consumed: list[bytes] = []
        self.closed = False

    def poll(self, timeout: float = 0.05) -> None:
        message = self.consumer.poll(timeout)
        if message is None:
            return
        if message.error() is not None:
            raise KafkaException(message.error())
        self.consumed.append(message.value())
        for committed in self.consumer.commit(message=message, asynchronous=False):
            if committed.error is not None:
                raise KafkaException(committed.error)

    def partitions(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    def close(self) -> None:
        """Closes the consumer: it revokes its partitions and leaves the group."""
        if not self.closed:
            self.closed = True
            self.consumer.close()


# A group member in its own process, so that it can be SIGKILLed. Prints one JSON line per change of its
# assignment ({"assignment": [...]}) and per message consumed *after* committing it ({"consumed": "..."}).
MEMBER_PROCESS_SCRIPT = """
import json, sys, time
from confluent_kafka import Consumer, KafkaException
bootstrap, group_id, topic, lifetime = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "group.protocol": "consumer",
                     "client.id": "member-process", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
consumer.subscribe([topic])
reported = None
deadline = time.monotonic() + lifetime
while time.monotonic() < deadline:
    message = consumer.poll(0.1)
    if message is not None:
        if message.error() is not None:
            raise KafkaException(message.error())
        for committed in consumer.commit(message=message, asynchronous=False):
            if committed.error is not None:
                raise KafkaException(committed.error)
        print(json.dumps({"consumed": message.value().decode()}), flush=True)
    assignment = sorted(tp.partition for tp in consumer.assignment())
    if assignment != reported:
        print(json.dumps({"assignment": assignment}), flush=True)
        reported = assignment
consumer.close()
"""
MEMBER_PROCESS_LIFETIME_SECONDS = 120


class MemberProcess:
    """MEMBER_PROCESS_SCRIPT in a child process; a thread reads its report lines so that `consumed` and
    `partitions()` follow it like a GroupMember's."""

    def __init__(self, bootstrap: str, group_id: str, topic: str):
        self.name = "member-process"
        self.process = subprocess.Popen(
            [sys.executable, "-c", MEMBER_PROCESS_SCRIPT, bootstrap, group_id, topic,
             str(MEMBER_PROCESS_LIFETIME_SECONDS)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent,
        )
        self.consumed: list[bytes] = []
        self.assignment: set[int] = set()
        self._reader = threading.Thread(target=self._read_reports, daemon=True)
        self._reader.start()

    def _read_reports(self) -> None:
        for line in self.process.stdout:
            report = json.loads(line)
            if "consumed" in report:
                self.consumed.append(report["consumed"].encode())
            else:
                self.assignment = set(report["assignment"])

    def poll(self, timeout: float = 0.05) -> None:
        assert self.process.poll() is None, f"member process exited early with {self.process.returncode}"
        time.sleep(timeout)

    def partitions(self) -> set[int]:
        return set(self.assignment)

    def kill(self) -> None:
        """SIGKILL: the member never leaves the group; only its session timeout frees its partitions."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)

    def close(self) -> None:
        self.kill()
        self.process.stdout.close()


def poll_members(members) -> None:
    for member in members:
        member.poll()


def is_split(assignments: list[set[int]], per_member: int) -> bool:
    """The assignments are disjoint, cover every partition and each has `per_member` partitions."""
    return (set().union(*assignments) == set(range(PARTITIONS))
            and all(len(assignment) == per_member for assignment in assignments)
            and sum(len(assignment) for assignment in assignments) == PARTITIONS)


def wait_for_split(members, per_member: int, timeout: float = GROUP_TIMEOUT_SECONDS) -> list[set[int]]:
    """Polls the members until their assignments split the topic `per_member` partitions each."""
    deadline = time.monotonic() + timeout
    assignments: list[set[int]] = []
    while time.monotonic() < deadline:
        poll_members(members)
        assignments = [member.partitions() for member in members]
        if is_split(assignments, per_member):
            return assignments
    raise TimeoutError(f"no split into {per_member} partitions each within {timeout}s; last assignments "
                       f"{[(member.name, sorted(a)) for member, a in zip(members, assignments)]}")


def produce_batch(bootstrap: str, topic: str, prefix: str) -> list[bytes]:
    """Produces MESSAGES_PER_PARTITION messages "<prefix>-<partition>-<i>" to every partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failures = []
    values = []
    for partition in range(PARTITIONS):
        for i in range(MESSAGES_PER_PARTITION):
            value = f"{prefix}-{partition}-{i}".encode()
            producer.produce(topic, value=value, partition=partition,
                             on_delivery=lambda err, msg: err and failures.append(err))
            values.append(value)
    assert producer.flush(30) == 0
    assert failures == []
    return values


def partition_of(value: bytes) -> int:
    return int(value.split(b"-")[1])


def consumed_counts(members) -> dict[str, int]:
    """How many messages each member has consumed so far."""
    return {member.name: len(member.consumed) for member in members}


def consume_batch(members, expected: list[bytes], starts: dict[str, int] | None = None) -> dict[str, list[bytes]]:
    """Polls the members until they have consumed len(expected) messages more than `starts` (default: now),
    then QUIET_SECONDS more; asserts that they consumed exactly `expected`, each message once. Returns what each
    member consumed. A member in its own process consumes while the batch is still being produced: take
    `starts` before producing."""
    starts = starts if starts is not None else consumed_counts(members)

    def consumed_now() -> dict[str, list[bytes]]:
        return {member.name: member.consumed[starts[member.name]:] for member in members}

    deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
    while sum(len(values) for values in consumed_now().values()) < len(expected):
        assert time.monotonic() < deadline, (
            f"consumed {sum(len(v) for v in consumed_now().values())} of {len(expected)} messages "
            f"within {GROUP_TIMEOUT_SECONDS}s")
        poll_members(members)
    quiet_until = time.monotonic() + QUIET_SECONDS
    while time.monotonic() < quiet_until:
        poll_members(members)
    consumed = consumed_now()
    assert_exactly_once([value for values in consumed.values() for value in values], expected)
    return consumed


def assert_exactly_once(consumed: list, expected: list) -> None:
    counts = collections.Counter(consumed)
    missing = sorted(set(expected) - set(counts))
    duplicates = sorted(value for value, count in counts.items() if count > 1)
    unexpected = sorted(set(counts) - set(expected))
    assert (missing, duplicates, unexpected) == ([], [], []), (
        f"missing {missing[:20]}, consumed more than once {duplicates[:20]}, "
        f"unexpected {unexpected[:20]} ({len(consumed)} consumed, {len(expected)} expected)")


def close_members(members) -> None:
    for member in members:
        member.close()


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_three_consumers_split_the_topic_and_two_take_over(kind, start_broker, new_topic):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    members: list[GroupMember] = []
    try:
        members = [GroupMember(f"member-{i}", broker.bootstrap, group_id, topic) for i in range(3)]
        assignments = wait_for_split(members, per_member=2)

        first = produce_batch(broker.bootstrap, topic, "first")
        consumed = consume_batch(members, first)
        # Each member read exactly the partitions it was assigned.
        for member, assignment in zip(members, assignments):
            assert {partition_of(value) for value in consumed[member.name]} == assignment, member.name

        leaving = members[2]
        leaving.close()
        survivors = members[:2]
        assignments = wait_for_split(survivors, per_member=3)

        # The survivors resume the leaver's partitions at its committed offsets: the second batch
        # exactly once, nothing of the first batch again.
        second = produce_batch(broker.bootstrap, topic, "second")
        consumed = consume_batch(survivors, second)
        for member, assignment in zip(survivors, assignments):
            assert {partition_of(value) for value in consumed[member.name]} == assignment, member.name
    finally:
        close_members(members)


# The broker's session timeout is 6 s; it must expire the killed member and reassign well within this.
SESSION_EXPIRY_TAKE_OVER_SECONDS = 15
# ...but not much sooner: the member's last heartbeat was at most 0.5 s before the kill, so its session
# ends no earlier than ~5.5 s after it. Earlier means a wrong expiry.
SESSION_EXPIRY_EARLIEST_SECONDS = 4


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_survivors_take_over_from_a_killed_member(kind, start_broker, new_topic):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    members = []
    try:
        killed = MemberProcess(broker.bootstrap, group_id, topic)
        members.append(killed)
        survivors = [GroupMember(f"member-{i}", broker.bootstrap, group_id, topic) for i in range(2)]
        members += survivors
        wait_for_split(members, per_member=2)

        starts = consumed_counts(members)
        first = produce_batch(broker.bootstrap, topic, "first")
        consume_batch(members, first, starts)
        assert killed.consumed, "the member process consumed nothing"

        killed.kill()
        killed_at = time.monotonic()
        assignments = wait_for_split(survivors, per_member=3, timeout=SESSION_EXPIRY_TAKE_OVER_SECONDS)
        take_over_seconds = time.monotonic() - killed_at
        assert take_over_seconds >= SESSION_EXPIRY_EARLIEST_SECONDS, (
            f"killed member's partitions reassigned after {take_over_seconds:.1f}s, "
            f"before its 6 s session could expire")

        # The killed member committed everything it reported: the survivors go on from there.
        second = produce_batch(broker.bootstrap, topic, "second")
        consumed = consume_batch(survivors, second)
        for member, assignment in zip(survivors, assignments):
            assert {partition_of(value) for value in consumed[member.name]} == assignment, member.name
    finally:
        close_members(members)


JAVA_SPLIT_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def java_group_consumer_protocol() -> list[str]:
    """The command that runs tests/support/java/GroupConsumerProtocol.java, compiled once per module."""
    return java_program_command("GroupConsumerProtocol")


def parse_java_splits(stdout: str) -> dict[int, list[list[int]]]:
    """{member count: sorted member assignments} from GroupConsumerProtocol's "split N member I: [..]" lines."""
    splits: dict[int, list[list[int]]] = collections.defaultdict(list)
    for line in stdout.splitlines():
        head, assignment = line.split(": ", 1)
        member_count = int(head.split()[1])
        splits[member_count].append(json.loads(assignment))
    return {count: sorted(assignments) for count, assignments in splits.items()}


@pytest.mark.parametrize("remote_assignor", [None, "range"], ids=["broker-default-assignor", "range-assignor"])
@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_java_consumers_split_the_topic_and_two_take_over(kind, remote_assignor, start_broker, new_topic,
                                                          java_group_consumer_protocol):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    command = java_group_consumer_protocol + [broker.bootstrap, group_id, topic, "3", str(JAVA_SPLIT_TIMEOUT_SECONDS)]
    if remote_assignor is not None:
        command.append(remote_assignor)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=JAVA_SPLIT_TIMEOUT_SECONDS + 60,
        stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
    )
    assert result.returncode == 0, f"GroupConsumerProtocol exited {result.returncode}\n{result.stdout}{result.stderr}"
    splits = parse_java_splits(result.stdout)
    assert is_split([set(a) for a in splits[3]], per_member=2), splits
    assert is_split([set(a) for a in splits[2]], per_member=3), splits
    if remote_assignor == "range":
        # The range assignor gives each member one contiguous range of partitions (members ordered by
        # member id, which the client does not choose; the set of ranges is the same either way).
        assert splits[3] == [[0, 1], [2, 3], [4, 5]]
        assert splits[2] == [[0, 1, 2], [3, 4, 5]]


CHURN_MESSAGES = 600
CHURN_PRODUCE_INTERVAL_SECONDS = 0.01


class NumberedProducer:
    """Produces the numbers 0..count-1 (as text; number n to partition n % PARTITIONS) from a thread at a
    steady pace; `sent` says how many were handed to the producer so far."""

    def __init__(self, bootstrap: str, topic: str, count: int):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        self.topic = topic
        self.count = count
        self.sent = 0
        self.failures: list = []
        self.unflushed = -1
        self.thread = threading.Thread(target=self._produce, daemon=True)
        self.thread.start()

    def _produce(self) -> None:
        for number in range(self.count):
            self.producer.produce(self.topic, value=str(number).encode(), partition=number % PARTITIONS,
                                  on_delivery=lambda err, msg: err and self.failures.append(err))
            self.producer.poll(0)
            self.sent = number + 1
            time.sleep(CHURN_PRODUCE_INTERVAL_SECONDS)
        self.unflushed = self.producer.flush(30)

    def join(self) -> None:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "producer thread did not finish within 60s"
        assert self.unflushed == 0 and self.failures == [], (self.unflushed, self.failures)


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_members_join_and_leave_while_messages_keep_coming(kind, start_broker, new_topic):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    members: list[GroupMember] = []
    try:
        members = [GroupMember(f"member-{i}", broker.bootstrap, group_id, topic) for i in range(2)]
        first, second = members
        wait_for_split(members, per_member=3)
        producer = NumberedProducer(broker.bootstrap, topic, CHURN_MESSAGES)
        active = [first, second]
        joiner = None
        deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
        while producer.thread.is_alive():
            assert time.monotonic() < deadline, f"producer still running after {GROUP_TIMEOUT_SECONDS}s"
            poll_members(active)
            # A member joins a third of the way in and another leaves (cleanly) two thirds of the way in.
            if joiner is None and producer.sent >= CHURN_MESSAGES // 3:
                joiner = GroupMember("member-2", broker.bootstrap, group_id, topic)
                members.append(joiner)
                active.append(joiner)
            if not first.closed and producer.sent >= 2 * CHURN_MESSAGES // 3:
                first.close()
                active.remove(first)
        producer.join()
        assert joiner is not None and first.closed

        def consumed_numbers() -> list[int]:
            return [int(value) for member in members for value in member.consumed]

        while set(consumed_numbers()) != set(range(CHURN_MESSAGES)):
            assert time.monotonic() < deadline, (
                f"{len(set(consumed_numbers()))} of {CHURN_MESSAGES} numbers consumed within {GROUP_TIMEOUT_SECONDS}s")
            poll_members(active)
        quiet_until = time.monotonic() + QUIET_SECONDS
        while time.monotonic() < quiet_until:
            poll_members(active)

        # Every member took part, and with commit-after-processing and clean leaves nothing was read twice.
        assert all(member.consumed for member in members), {m.name: len(m.consumed) for m in members}
        assert_exactly_once(consumed_numbers(), list(range(CHURN_MESSAGES)))
        wait_for_split(active, per_member=3)
    finally:
        close_members(members)


CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
TOOL_TIMEOUT_SECONDS = 60
ADMIN_TIMEOUT_SECONDS = 30


def run_consumer_group_command(bootstrap: str, *arguments: str) -> list[list[str]]:
    """Runs Kafka's kafka-consumer-groups tool; returns the rows of its table (header row first)."""
    result = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m", "-cp", f"{KAFKA_DIR}/libs/*",
         CONSUMER_GROUP_COMMAND, "--bootstrap-server", bootstrap, *arguments],
        capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    assert result.returncode == 0, (
        f"kafka-consumer-groups {arguments} exited {result.returncode}\n{result.stdout}{result.stderr}")
    return [line.split() for line in result.stdout.splitlines() if line.strip()]


def wait_for_stable_description(admin: AdminClient, group_id: str):
    """describe_consumer_groups until the group is STABLE (members may still be reconciling)."""
    deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
    while True:
        description = admin.describe_consumer_groups(
            [group_id], request_timeout=ADMIN_TIMEOUT_SECONDS)[group_id].result(timeout=ADMIN_TIMEOUT_SECONDS)
        if description.state == ConsumerGroupState.STABLE:
            return description
        assert time.monotonic() < deadline, f"group not STABLE within {GROUP_TIMEOUT_SECONDS}s: {description.state}"
        time.sleep(0.5)


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_describe_and_list_a_consumer_protocol_group(kind, start_broker, new_topic):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=PARTITIONS)
    group_id = unique_topic_name("group")
    members: list[GroupMember] = []
    try:
        members = [GroupMember(f"member-{i}", broker.bootstrap, group_id, topic) for i in range(3)]
        wait_for_split(members, per_member=2)
        consume_batch(members, produce_batch(broker.bootstrap, topic, "first"))
        # What the members themselves know: their member ids (given by the broker) and partitions.
        expected_members = {
            member.consumer.memberid(): (member.name, member.partitions()) for member in members
        }
        assert len(expected_members) == 3 and all(expected_members), expected_members
        owner_by_partition = {
            partition: (member_id, name)
            for member_id, (name, partitions) in expected_members.items() for partition in partitions
        }

        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        description = wait_for_stable_description(admin, group_id)
        assert description.group_id == group_id
        assert description.type == ConsumerGroupType.CONSUMER
        assert not description.is_simple_consumer_group
        described = {}
        for member in description.members:
            assert {tp.topic for tp in member.assignment.topic_partitions} == {topic}
            described[member.member_id] = (member.client_id,
                                           {tp.partition for tp in member.assignment.topic_partitions})
        assert described == expected_members

        listed = admin.list_consumer_groups(request_timeout=ADMIN_TIMEOUT_SECONDS).result(timeout=ADMIN_TIMEOUT_SECONDS)
        assert listed.errors == []
        listing = {group.group_id: group for group in listed.valid}
        assert group_id in listing, sorted(listing)
        assert listing[group_id].type == ConsumerGroupType.CONSUMER
        assert listing[group_id].state == ConsumerGroupState.STABLE
        # The type filter (ListGroups TypesFilter) finds the group among CONSUMER groups only.
        def listed_group_ids(group_type: ConsumerGroupType) -> set[str]:
            future = admin.list_consumer_groups(types={group_type}, request_timeout=ADMIN_TIMEOUT_SECONDS)
            return {group.group_id for group in future.result(timeout=ADMIN_TIMEOUT_SECONDS).valid}

        assert group_id in listed_group_ids(ConsumerGroupType.CONSUMER)
        assert group_id not in listed_group_ids(ConsumerGroupType.CLASSIC)

        # kafka-consumer-groups --describe: one row per partition with the committed offset, the log end
        # offset, the lag and the member that owns it.
        header, *rows = run_consumer_group_command(broker.bootstrap, "--describe", "--group", group_id)
        assert header == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                          "CONSUMER-ID", "HOST", "CLIENT-ID"]
        by_partition = {int(row[2]): row for row in rows}
        assert len(rows) == PARTITIONS and set(by_partition) == set(range(PARTITIONS)), rows
        for partition, row in by_partition.items():
            member_id, name = owner_by_partition[partition]
            assert row[:2] == [group_id, topic]
            assert row[3:7] == [str(MESSAGES_PER_PARTITION), str(MESSAGES_PER_PARTITION), "0", member_id], row
            assert row[8] == name, row

        # --state: the group's state, server-side assignor and member count.
        header, *rows = run_consumer_group_command(broker.bootstrap, "--describe", "--group", group_id, "--state")
        assert header[-3:] == ["ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"], header
        assert len(rows) == 1 and rows[0][0] == group_id and rows[0][-2:] == ["Stable", "3"], rows
        assert rows[0][-3] in ("uniform", "range"), rows

        # --members --verbose: each member's current and target assignment ("topic:p,q").
        header, *rows = run_consumer_group_command(
            broker.bootstrap, "--describe", "--group", group_id, "--members", "--verbose")
        assert header == ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "CURRENT-EPOCH",
                          "CURRENT-ASSIGNMENT", "TARGET-EPOCH", "TARGET-ASSIGNMENT"]
        assert len(rows) == 3, rows
        for row in rows:
            name, partitions = expected_members[row[1]]
            assignment = f"{topic}:{','.join(str(p) for p in sorted(partitions))}"
            assert (row[0], row[3], row[4], row[6], row[8]) == (group_id, name, "2", assignment, assignment), row
            assert row[5] == row[7], f"current epoch differs from target epoch in a stable group: {row}"
    finally:
        close_members(members)
