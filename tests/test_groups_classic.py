"""Classic consumer group protocol with stock clients, beyond the split / take-over of test_groups.py:
incremental (cooperative-sticky) rebalancing, static membership surviving a member's restart without a
rebalance, committed offsets surviving a SIGKILL of the broker, Kafka's own kafka-consumer-groups tool
(list, describe, reset-offsets, delete) and confluent-kafka's AdminClient group calls.
Runs against Apache Kafka (the oracle) and Skein with the same group settings."""

from __future__ import annotations

import subprocess
import time

import pytest
from confluent_kafka import (ConsumerGroupState, ConsumerGroupTopicPartitions, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient

from support.kafka_tools import TOOL_LOG4J2_PROPERTIES
from support.brokers import BROKER_KINDS, KAFKA_DIR, _die_with_parent
from support.kafka_clients import unique_topic_name

# The same group settings on both brokers. The session-timeout bounds are Kafka's defaults for the
# minimum and a small maximum, set explicitly so both brokers accept the 10 s sessions used here.
BROKER_CONFIG = {
    "group.initial.rebalance.delay.ms": 1000,
    "group.min.session.timeout.ms": 6000,
    "group.max.session.timeout.ms": 60000,
}
SESSION_TIMEOUT_MS = 10000
GROUP_TIMEOUT_SECONDS = 60
CLIENT_TIMEOUT_SECONDS = 30
# After a group looks settled, how long to keep polling to see that no further rebalance follows.
SETTLE_SECONDS = 3


def consumer_config(bootstrap: str, group_id: str, **overrides) -> dict:
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "partition.assignment.strategy": "range",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": 500,
    }
    config.update(overrides)
    return config


def produce(bootstrap: str, topic: str, counts: list[int], prefix: str = "m") -> None:
    """Produces counts[p] messages "prefix-p-i" to each partition p."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failures = []
    for partition, count in enumerate(counts):
        for i in range(count):
            producer.produce(topic, value=f"{prefix}-{partition}-{i}".encode(), partition=partition,
                             on_delivery=lambda err, msg: err and failures.append(err))
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
    assert failures == []


# Errors a client gets while the group coordinator is still being created or loaded (e.g. right after
# a broker start); applications retry them.
COORDINATOR_NOT_READY_ERRORS = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                                KafkaError.COORDINATOR_NOT_AVAILABLE}


def retry_until_coordinator_ready(call):
    """call(), retried for up to CLIENT_TIMEOUT_SECONDS while it fails with a coordinator-not-ready error."""
    deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
    while True:
        try:
            return call()
        except KafkaException as error:
            if error.args[0].code() not in COORDINATOR_NOT_READY_ERRORS or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def partitions_of(consumer: Consumer) -> set[int]:
    return {tp.partition for tp in consumer.assignment()}


class RecordedMember:
    """A subscribed confluent-kafka consumer whose rebalance callbacks are recorded in `events` as
    (kind, partitions) with kind "assign", "revoke" or "lost". With `incremental`, the callbacks apply
    the delta themselves (incremental_assign / incremental_unassign), as a cooperative consumer must."""

    def __init__(self, config: dict, topic: str, incremental: bool = False):
        self.incremental = incremental
        self.events: list[tuple[str, set[int]]] = []
        self.closed = False
        self.consumer = Consumer(config)
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.events.append(("assign", {tp.partition for tp in partitions}))
        if self.incremental:
            consumer.incremental_assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.events.append(("revoke", {tp.partition for tp in partitions}))
        if self.incremental:
            consumer.incremental_unassign(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.events.append(("lost", {tp.partition for tp in partitions}))
        if self.incremental:
            consumer.incremental_unassign(partitions)

    def poll(self) -> None:
        message = self.consumer.poll(0.1)
        if message is not None and message.error() is not None:
            raise KafkaException(message.error())

    def partitions(self) -> set[int]:
        return partitions_of(self.consumer)

    def moved(self, kind: str) -> set[int]:
        """Every partition named by a callback of this kind so far."""
        return set().union(*(partitions for event, partitions in self.events if event == kind))

    def close(self) -> None:
        """Closes the consumer once (later calls do nothing)."""
        if not self.closed:
            self.closed = True
            self.consumer.close()


def wait_for_split(members: list[RecordedMember], sizes: list[int], partitions: int) -> list[set[int]]:
    """Polls every member until their assignments are disjoint, cover every partition and member i has
    sizes[i] partitions; then keeps polling SETTLE_SECONDS and checks that nothing changed."""
    deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
    while True:
        for member in members:
            member.poll()
        assignments = [member.partitions() for member in members]
        if (set().union(*assignments) == set(range(partitions))
                and [len(a) for a in assignments] == sizes):
            break
        assert time.monotonic() < deadline, (
            f"no split {sizes} within {GROUP_TIMEOUT_SECONDS}s; last assignments {assignments}")
    # A callback naming no partitions may still arrive for the rebalance that made the split (the
    # cooperative protocol tells a member whose assignment did not change with an empty one); any
    # callback that names partitions after this point is a further rebalance.
    event_counts = [len(member.events) for member in members]
    settle_end = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < settle_end:
        for member in members:
            member.poll()
    assert [member.partitions() for member in members] == assignments, "assignments changed after settling"
    later_moves = [[event for event in m.events[n:] if event[1]] for m, n in zip(members, event_counts)]
    assert later_moves == [[] for _ in members], f"partitions moved after the split settled: {later_moves}"
    return assignments


def describe_group(admin: AdminClient, group_id: str):
    return admin.describe_consumer_groups([group_id], request_timeout=CLIENT_TIMEOUT_SECONDS)[group_id].result()


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_cooperative_sticky_moves_only_the_partitions_a_new_member_takes(kind, start_broker, new_topic):
    partitions = 6
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=partitions)
    group_id = unique_topic_name("group")
    config = consumer_config(broker.bootstrap, group_id, **{"partition.assignment.strategy": "cooperative-sticky"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    members: list[RecordedMember] = []
    try:
        members = [RecordedMember(config, topic, incremental=True) for _ in range(2)]
        before = wait_for_split(members, [3, 3], partitions)
        # The Python client has no rebalance_protocol(); the group's chosen assignor says the same, and
        # incremental_assign() in the callbacks raises unless the rebalance protocol is COOPERATIVE.
        assert describe_group(admin, group_id).partition_assignor == "cooperative-sticky"
        for member in members:
            member.events.clear()

        members.append(RecordedMember(config, topic, incremental=True))
        after = wait_for_split(members, [2, 2, 2], partitions)
        description = describe_group(admin, group_id)
        assert description.partition_assignor == "cooperative-sticky"
        assert {m.member_id: {tp.partition for tp in m.assignment.topic_partitions} for m in description.members} == {
            m.consumer.memberid(): owned for m, owned in zip(members, after)}

        newcomer = members[2]
        for member, owned_before, owned_after in zip(members[:2], before, after):
            assert all(event != "lost" for event, _ in member.events), member.events
            revoked_sets = [moved for event, moved in member.events if event == "revoke"]
            # Under the cooperative protocol a revoke names only the partitions that move: here one of
            # the three each member owned, never all of them.
            assert revoked_sets, f"no revoke callback for a member that gave up a partition: {member.events}"
            for revoked in revoked_sets:
                assert revoked and revoked < owned_before, f"revoke {revoked} of owned {owned_before}"
            assert member.moved("revoke") == owned_before - owned_after
            assert len(owned_before - owned_after) == 1
            assert owned_after < owned_before, "a member kept by the sticky assignor gained a partition"
            assert member.moved("assign") == set(), f"existing member was assigned partitions: {member.events}"
        assert all(event == "assign" for event, _ in newcomer.events), newcomer.events
        assert newcomer.moved("assign") == after[2] == (before[0] - after[0]) | (before[1] - after[1])
    finally:
        for member in members:
            member.close()


def instance_member_ids(admin: AdminClient, group_id: str) -> dict[str, str]:
    """{group.instance.id: member id} of the group's current members."""
    return {m.group_instance_id: m.member_id for m in describe_group(admin, group_id).members}


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_static_member_restart_gets_its_partitions_back_without_a_rebalance(kind, start_broker, new_topic):
    partitions = 6
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=partitions)
    group_id = unique_topic_name("group")
    instance_ids = [f"{group_id}-instance-{i}" for i in range(3)]

    def static_member(instance_id: str) -> RecordedMember:
        return RecordedMember(consumer_config(broker.bootstrap, group_id, **{"group.instance.id": instance_id}), topic)

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    members: list[RecordedMember] = []
    try:
        members = [static_member(instance_id) for instance_id in instance_ids]
        split = wait_for_split(members, [2, 2, 2], partitions)
        member_ids = instance_member_ids(admin, group_id)
        assert member_ids == {i: m.consumer.memberid() for i, m in zip(instance_ids, members)}

        # Every member restarts in turn, so one of them is the group's leader (which the client does not
        # reveal): a restarted leader must not cause a rebalance either.
        for restarting in range(3):
            for member in members:
                member.events.clear()
            # A static member's close sends no LeaveGroup: the broker keeps its place (and partitions)
            # until its session times out.
            members[restarting].close()
            closed_at = time.monotonic()
            assert instance_member_ids(admin, group_id) == member_ids, "the closed static member left the group"

            members[restarting] = static_member(instance_ids[restarting])
            deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
            while not members[restarting].partitions():
                for member in members:
                    member.poll()
                assert time.monotonic() < deadline, (
                    f"restarted static member got no partitions: {members[restarting].events}")
            rejoin_seconds = time.monotonic() - closed_at
            assert rejoin_seconds < SESSION_TIMEOUT_MS / 1000, (
                f"rejoined after {rejoin_seconds:.1f}s, not within the session")

            assert wait_for_split(members, [2, 2, 2], partitions) == split, (
                f"restarting {instance_ids[restarting]} changed the assignment")
            assert members[restarting].events == [("assign", split[restarting])]
            for index, member in enumerate(members):
                if index != restarting:
                    assert member.events == [], (f"{instance_ids[index]} saw a rebalance when "
                                                 f"{instance_ids[restarting]} restarted: {member.events}")
            member_ids[instance_ids[restarting]] = members[restarting].consumer.memberid()
            assert instance_member_ids(admin, group_id) == member_ids
    finally:
        for member in members:
            member.close()


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_committed_offsets_survive_a_broker_kill(kind, start_broker, new_topic):
    messages_per_partition = 10
    committed_targets = [2, 5, 7]  # per partition: how many messages are processed and committed
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=3)
    group_id = unique_topic_name("group")
    produce(broker.bootstrap, topic, [messages_per_partition] * 3)
    every_partition = [TopicPartition(topic, p) for p in range(3)]

    consumer = Consumer(consumer_config(broker.bootstrap, group_id))
    try:
        consumer.subscribe([topic])
        polled = 0
        deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
        while polled < 3 * messages_per_partition:
            assert time.monotonic() < deadline, f"polled {polled} of {3 * messages_per_partition} messages"
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            polled += 1
            # "Process" the first committed_targets[p] messages of partition p, committing each one
            # synchronously after processing (the commit names the next offset to read).
            if message.offset() < committed_targets[message.partition()]:
                committed = consumer.commit(message=message, asynchronous=False)
                assert [(tp.partition, tp.offset, tp.error) for tp in committed] == [
                    (message.partition(), message.offset() + 1, None)]
        committed = consumer.committed(every_partition, timeout=CLIENT_TIMEOUT_SECONDS)
        assert [tp.offset for tp in committed] == committed_targets

        # The broker dies while the consumer is still a member of the group (no LeaveGroup, no clean
        # shutdown); the consumer is closed only once the broker is back.
        broker.kill()
        broker.restart()
    finally:
        consumer.close()

    # auto.offset.reset=latest: without the committed offsets this consumer would read nothing.
    consumer = Consumer(consumer_config(broker.bootstrap, group_id, **{"auto.offset.reset": "latest"}))
    try:
        committed = retry_until_coordinator_ready(
            lambda: consumer.committed(every_partition, timeout=CLIENT_TIMEOUT_SECONDS))
        assert [(tp.offset, tp.error) for tp in committed] == [(t, None) for t in committed_targets]
        consumer.subscribe([topic])
        read: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(3)}
        expected_count = 3 * messages_per_partition - sum(committed_targets)
        deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
        while sum(len(r) for r in read.values()) < expected_count:
            assert time.monotonic() < deadline, f"read {read} after the restart"
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            read[message.partition()].append((message.offset(), message.value()))
        # The first message read from each partition is exactly its committed offset.
        assert [r[0][0] for r in read.values()] == committed_targets
        assert read == {
            p: [(i, f"m-{p}-{i}".encode()) for i in range(committed_targets[p], messages_per_partition)]
            for p in range(3)
        }
    finally:
        consumer.close()


# Kafka's kafka-consumer-groups tool (ConsumerGroupCommand) from the reference distribution's jars.
CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
TOOL_TIMEOUT_SECONDS = 60


@pytest.fixture
def consumer_groups_tool(tmp_path):
    """Runs kafka-consumer-groups with the given arguments; returns the finished process (exit 0 checked)."""
    if not (KAFKA_DIR / "libs").is_dir():
        pytest.skip(f"Apache Kafka jars missing in {KAFKA_DIR} (run tests/setup-clients)")
    log_config = tmp_path / "tool-log4j2.properties"
    log_config.write_text(TOOL_LOG4J2_PROPERTIES)

    def run(bootstrap: str, *arguments: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
             f"-Dlog4j2.configurationFile={log_config}", "-cp", f"{KAFKA_DIR / 'libs'}/*",
             CONSUMER_GROUP_COMMAND, "--bootstrap-server", bootstrap, *arguments],
            capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        assert result.returncode == 0, (
            f"kafka-consumer-groups {' '.join(arguments)} exited {result.returncode}\n{result.stdout}{result.stderr}")
        return result

    return run


def parse_table(output: str) -> list[dict[str, str]]:
    """The rows of a table the tool prints: a header line of column names, then one line per row
    (columns separated by whitespace; no value contains any)."""
    lines = [line.split() for line in output.splitlines() if line.strip()]
    header_index = next(i for i, line in enumerate(lines) if line[0] == "GROUP")
    header = lines[header_index]
    rows = [dict(zip(header, line)) for line in lines[header_index + 1:]]
    assert all(len(line) == len(header) for line in lines[header_index + 1:]), f"ragged table:\n{output}"
    return rows


def committed_offsets(bootstrap: str, group_id: str, topic: str, partitions: int) -> list[int]:
    """The group's committed offsets as a consumer of the group sees them (it never joins)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False})
    try:
        every_partition = [TopicPartition(topic, p) for p in range(partitions)]
        committed = retry_until_coordinator_ready(
            lambda: consumer.committed(every_partition, timeout=CLIENT_TIMEOUT_SECONDS))
        assert [tp.error for tp in committed] == [None] * partitions
        return [tp.offset for tp in committed]
    finally:
        consumer.close()


def wait_for_assignment(consumer: Consumer, partitions: int) -> None:
    deadline = time.monotonic() + GROUP_TIMEOUT_SECONDS
    while len(consumer.assignment()) < partitions:
        message = consumer.poll(0.2)
        if message is not None and message.error() is not None:
            raise KafkaException(message.error())
        assert time.monotonic() < deadline, f"assignment {consumer.assignment()} after {GROUP_TIMEOUT_SECONDS}s"


# Three partitions with different lengths and committed offsets (one fully consumed: lag 0).
PRODUCED = [4, 6, 8]
COMMITTED = [1, 3, 8]


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_kafka_consumer_groups_tool_lists_describes_resets_and_deletes(kind, start_broker, new_topic,
                                                                       consumer_groups_tool):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=3)
    group_id = unique_topic_name("group")
    produce(broker.bootstrap, topic, PRODUCED)

    def tool(*arguments: str) -> subprocess.CompletedProcess:
        return consumer_groups_tool(broker.bootstrap, *arguments)

    consumer = Consumer(consumer_config(broker.bootstrap, group_id, **{"client.id": "groups-tool-test"}))
    try:
        consumer.subscribe([topic])
        wait_for_assignment(consumer, 3)
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in enumerate(COMMITTED)], asynchronous=False)

        assert tool("--list").stdout.split() == [group_id]

        rows = parse_table(tool("--describe", "--group", group_id).stdout)
        member_id = consumer.memberid()
        assert sorted((row["GROUP"], row["TOPIC"], int(row["PARTITION"]), int(row["CURRENT-OFFSET"]),
                       int(row["LOG-END-OFFSET"]), int(row["LAG"]), row["CONSUMER-ID"], row["CLIENT-ID"])
                      for row in rows) == [
            (group_id, topic, p, COMMITTED[p], PRODUCED[p], PRODUCED[p] - COMMITTED[p], member_id, "groups-tool-test")
            for p in range(3)
        ]
    finally:
        consumer.close()

    # With no members left the offsets are still described, with "-" for the member columns.
    described = tool("--describe", "--group", group_id)
    assert f"Consumer group '{group_id}' has no active members." in described.stderr
    assert sorted((int(row["PARTITION"]), int(row["CURRENT-OFFSET"]), int(row["LOG-END-OFFSET"]),
                   int(row["LAG"]), row["CONSUMER-ID"]) for row in parse_table(described.stdout)) == [
        (p, COMMITTED[p], PRODUCED[p], PRODUCED[p] - COMMITTED[p], "-") for p in range(3)
    ]

    reset = tool("--reset-offsets", "--group", group_id, "--to-earliest", "--execute", "--topic", topic)
    assert sorted((row["TOPIC"], int(row["PARTITION"]), int(row["NEW-OFFSET"]))
                  for row in parse_table(reset.stdout)) == [(topic, p, 0) for p in range(3)]
    assert committed_offsets(broker.bootstrap, group_id, topic, 3) == [0, 0, 0]

    deleted = tool("--delete", "--group", group_id)
    assert f"Deletion of requested consumer groups ('{group_id}') was successful." in deleted.stdout
    assert group_id not in tool("--list").stdout.split()


def error_code_of(future) -> int:
    """The Kafka error code a failed admin future carries."""
    with pytest.raises(KafkaException) as failure:
        future.result(timeout=CLIENT_TIMEOUT_SECONDS)
    return failure.value.args[0].code()


def listed_groups(admin: AdminClient, states: set | None = None) -> dict[str, tuple]:
    """{group id: (state, is_simple_consumer_group)} from ListGroups (optionally filtered by state)."""
    result = admin.list_consumer_groups(states=states, request_timeout=CLIENT_TIMEOUT_SECONDS).result()
    assert result.errors == []
    return {g.group_id: (g.state, g.is_simple_consumer_group) for g in result.valid}


def group_offsets(admin: AdminClient, group_id: str) -> dict[tuple[str, int], int]:
    request = [ConsumerGroupTopicPartitions(group_id)]
    result = admin.list_consumer_group_offsets(request, request_timeout=CLIENT_TIMEOUT_SECONDS)[group_id].result()
    assert [tp.error for tp in result.topic_partitions] == [None] * len(result.topic_partitions)
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_admin_client_lists_describes_alters_and_deletes_groups(kind, start_broker, new_topic):
    broker = start_broker(kind, BROKER_CONFIG)
    topic = new_topic(broker, partitions=3)
    group_id = unique_topic_name("group")
    # A "simple" group: offsets committed by a consumer that never joins (assign-style); no protocol type.
    simple_group_id = unique_topic_name("simple")
    unknown_group_id = unique_topic_name("unknown")
    produce(broker.bootstrap, topic, PRODUCED)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    simple = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": simple_group_id, "enable.auto.commit": False})
    try:
        retry_until_coordinator_ready(
            lambda: simple.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False))
    finally:
        simple.close()

    consumer = Consumer(consumer_config(broker.bootstrap, group_id, **{"client.id": "admin-test"}))
    try:
        consumer.subscribe([topic])
        wait_for_assignment(consumer, 3)
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in enumerate(COMMITTED)], asynchronous=False)

        stable, empty = ConsumerGroupState.STABLE, ConsumerGroupState.EMPTY
        assert listed_groups(admin) == {group_id: (stable, False), simple_group_id: (empty, True)}
        assert listed_groups(admin, {stable}) == {group_id: (stable, False)}
        assert listed_groups(admin, {empty}) == {simple_group_id: (empty, True)}

        description = describe_group(admin, group_id)
        assert (description.group_id, description.state, description.is_simple_consumer_group,
                description.partition_assignor) == (group_id, stable, False, "range")
        assert [(m.member_id, m.client_id, m.host, m.group_instance_id,
                 sorted((tp.topic, tp.partition) for tp in m.assignment.topic_partitions))
                for m in description.members] == [
            (consumer.memberid(), "admin-test", "/127.0.0.1", None, [(topic, p) for p in range(3)])]
        simple_description = describe_group(admin, simple_group_id)
        assert (simple_description.state, simple_description.is_simple_consumer_group,
                simple_description.members) == (empty, True, [])

        assert group_offsets(admin, group_id) == {(topic, p): COMMITTED[p] for p in range(3)}
        assert group_offsets(admin, simple_group_id) == {(topic, 0): 2}

        deletions = admin.delete_consumer_groups([group_id, unknown_group_id], request_timeout=CLIENT_TIMEOUT_SECONDS)
        assert error_code_of(deletions[group_id]) == KafkaError.NON_EMPTY_GROUP == 68
        assert error_code_of(deletions[unknown_group_id]) == KafkaError.GROUP_ID_NOT_FOUND == 69
        # Offsets of a group with members can only be committed by its members: an admin's commit
        # (no member id, no generation) is refused per partition with UNKNOWN_MEMBER_ID.
        request = [ConsumerGroupTopicPartitions(group_id, [TopicPartition(topic, 0, 0)])]
        refused = admin.alter_consumer_group_offsets(request, request_timeout=CLIENT_TIMEOUT_SECONDS)[group_id].result()
        assert [(tp.partition, tp.error.code() if tp.error else None) for tp in refused.topic_partitions] == [
            (0, KafkaError.UNKNOWN_MEMBER_ID)]
        assert group_offsets(admin, group_id) == {(topic, p): COMMITTED[p] for p in range(3)}
    finally:
        consumer.close()

    assert listed_groups(admin, {empty}) == {group_id: (empty, False), simple_group_id: (empty, True)}

    altered_offsets = [0, 5, 2]
    request = [ConsumerGroupTopicPartitions(
        group_id, [TopicPartition(topic, p, o) for p, o in enumerate(altered_offsets)])]
    altered = admin.alter_consumer_group_offsets(request, request_timeout=CLIENT_TIMEOUT_SECONDS)[group_id].result()
    assert sorted((tp.partition, tp.offset, tp.error) for tp in altered.topic_partitions) == [
        (p, o, None) for p, o in enumerate(altered_offsets)]
    assert group_offsets(admin, group_id) == {(topic, p): altered_offsets[p] for p in range(3)}
    assert committed_offsets(broker.bootstrap, group_id, topic, 3) == altered_offsets

    deletions = admin.delete_consumer_groups([group_id, simple_group_id], request_timeout=CLIENT_TIMEOUT_SECONDS)
    for deleted in deletions.values():
        assert deleted.result(timeout=CLIENT_TIMEOUT_SECONDS) is None
    assert listed_groups(admin) == {}
    assert group_offsets(admin, group_id) == {}
