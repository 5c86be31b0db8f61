"""Consumer groups keep working when their group coordinator broker dies: a 3-node cluster, Skein and Apache Kafka
(the reference) side by side, the same test body for both.

Group state lives in the replicated internal topic `__consumer_offsets` (OFFSETS_PARTITIONS partitions, replication
factor 3, and `min.insync.replicas=2` on every topic); a group's coordinator is the leader of partition
abs(javaHashCode(group_id)) % partitions. When that broker dies, another replica of the partition becomes its leader
and takes the group over with its committed offsets.

The test creates its own data topic (6 partitions, replication factor 3). An idempotent acks=all producer
(support.replication_checker.Workload) writes numbered records to it at a steady rate for the whole test while three
consumer groups read all of it at once, one per group protocol (below), each of three confluent-kafka consumers in
processes of their own (tests/support/coordinator_member.py) that commit synchronously what they consumed every
COMMIT_INTERVAL_SECONDS (see GroupMember for why not auto commit). The group ids hash to one `__consumer_offsets`
partition, so one broker coordinates all three groups. Per group, a monitor asks for the committed offsets
(OffsetFetch) every MONITOR_INTERVAL_SECONDS. Then, KILL_ROUNDS times: the coordinator (FindCoordinator) is
SIGKILLed; while it is down another broker must become every group's coordinator within FAILOVER_SECONDS and every
group's committed offset must move past where it was at the kill on every partition (commits work through the new
coordinator); then the broker is restarted and the test waits until every replica of the data topic and of
`__consumer_offsets` is in sync again. At the end the producer stops and, for every group (the failures of all
groups are reported together):
- every record the producer got acknowledged was consumed by a member (at least once), at the acknowledged offset;
- no committed offset the monitor saw ever went backwards, disappeared once committed, or was below a commit
  acknowledged to a member before the monitor asked; and no member given a partition began consuming it below a
  commit acknowledged before the assignment (what a lost or stale committed offset does to the group, seen by the
  members themselves);
- the committed offsets reach the log end offsets (everything consumed and committed);
- the group is Stable, of the expected type (and assignor), with its three members splitting the partitions;
- the group's coordinator is the leader of its `__consumer_offsets` partition. The group ids are chosen with a
  negative Java hash code whose partition differs between Kafka's abs(hash) and the tempting hash & 0x7fffffff.

The groups (running the three at once keeps the module short; each kill fails over all of them together):
1. classic protocol, `partition.assignment.strategy=range` (eager rebalancing);
2. classic protocol, `cooperative-sticky` (incremental rebalancing);
3. KIP-848 consumer protocol (`group.protocol=consumer`, librdkafka >= 2.10; left out with an older one). Its
   members, epochs and assignments are group state like its offsets, so its members carry on at the new
   coordinator without rejoining: a member losing its partitions (librdkafka's on_lost: fenced, rejoining from
   epoch 0) fails the test. (Classic members are kept as well; the test does not require it of them.)

The test prints one line per round (failover time, time until every group committed past the kill on every
partition, restart time) and a summary per group (also recorded as the junit property `coordinator_failover`):
records consumed and consumed again, commits acknowledged and failed, rebalance callbacks per member. On a failure
every broker's log and the run's history (coordinator-history.json: the test's events, every committed-offsets
answer, every member's acknowledged commits and rebalance callbacks) are kept in the test's tmp_path (also when it
passes, with SKEIN_COORDINATOR_HISTORY=1).

CI mode is short; a long run by hand raises the environment variables below, e.g.
`SKEIN_COORDINATOR_KILLS=6 .tools/venv/bin/pytest tests/test_coordinator_failover.py -k kafka -s`.
SKEIN_COORDINATOR_OFFSETS_PARTITIONS=0 leaves `offsets.topic.num.partitions` at the broker's default (50).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupType, KafkaException,
                             TopicPartition, libversion)

from support.brokers import (BROKER_KINDS, REPO_ROOT, BrokerError, _die_with_parent,
                             skip_kafka_reference_outside_long_mode)
from support.cluster import healthy as make_healthy
from support.cluster import make_cluster, skip_unless_cluster_available, started
from support.coordinators import OFFSETS_TOPIC, distinguishing_id, find_coordinator, java_string_hash, partition_for
from support.kafka_clients import end_offsets, unique_topic_name
from support.replication_checker import (Unmet, Workload, admin, create_replicated_topic, partition_states, poll_until,
                                         wait_for_full_isr)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


# Coordinator kills per test (environment variables; the defaults keep CI short).
KILL_ROUNDS = _env_int("SKEIN_COORDINATOR_KILLS", 2)
# Records per second over all partitions.
RATE = _env_int("SKEIN_COORDINATOR_RATE", 300)
# Partitions of __consumer_offsets (few: a fast start); 0 leaves the broker's default.
OFFSETS_PARTITIONS = _env_int("SKEIN_COORDINATOR_OFFSETS_PARTITIONS", 6)
# Keep the run's history (coordinator-history.json) and the broker logs in tmp_path even when the test passes.
KEEP_HISTORY = os.environ.get("SKEIN_COORDINATOR_HISTORY", "0") != "0"
# Seconds the group keeps working after commits resumed through the new coordinator, before the old one restarts.
STEADY_SECONDS = _env_int("SKEIN_COORDINATOR_STEADY_SECONDS", 2)

KAFKA_DEFAULT_OFFSETS_PARTITIONS = 50
PARTITIONS = 6
REPLICATION_FACTOR = 3
MEMBERS = 3
TOPIC_CONFIG = {"min.insync.replicas": 2, "unclean.leader.election.enable": False}
# On top of support.cluster.CLUSTER_CONFIG (offsets.topic.replication.factor=3, 6 s broker sessions).
# min.insync.replicas=2 for every topic, __consumer_offsets too: an acknowledged offset commit is on two brokers, so
# one broker's death cannot take it away. The KIP-848 session (owned by the broker) outlasts a coordinator failover;
# min <= value <= max, heartbeat < session.
COORDINATOR_CONFIG = {
    "min.insync.replicas": 2,
    "replica.lag.time.max.ms": 10000,
    "unclean.leader.election.enable": False,
    "group.initial.rebalance.delay.ms": 0,
    "group.consumer.session.timeout.ms": 20000,
    "group.consumer.min.session.timeout.ms": 6000,
    "group.consumer.heartbeat.interval.ms": 1000,
    "group.consumer.min.heartbeat.interval.ms": 500,
    **({"offsets.topic.num.partitions": OFFSETS_PARTITIONS} if OFFSETS_PARTITIONS else {}),
}
# A classic member's session: librdkafka gives up its assignment after this long without a heartbeat answer, so
# it outlasts a failover (the broker's 6 s session + leader election + loading the group).
CLASSIC_SESSION_TIMEOUT_MS = 30000
COMMIT_INTERVAL_SECONDS = 0.5
# A member of a group: a consumer in its own process.
MEMBER_PROGRAM = REPO_ROOT / "tests" / "support" / "coordinator_member.py"
MONITOR_INTERVAL_SECONDS = 0.5
# Acknowledged records, and a committed offset on every partition, before the first kill.
WARMUP_ACKS = 300
# Another broker is the group's coordinator this long after the old one died (broker session + election + load).
FAILOVER_SECONDS = 30
# Every partition's committed offset moves past the kill this long after the failover (or after the last restart).
PROGRESS_SECONDS = 30
# A restarted broker is back in every ISR within this.
CATCH_UP_SECONDS = 60
# The group is Stable with every member, or committed at the log end, within this.
GROUP_SECONDS = 60
# librdkafka implements KIP-848's consumer protocol (group.protocol=consumer) from 2.10 on (0xMMmmrrxx).
KIP_848_LIBRDKAFKA = 0x020A0000

PROTOCOLS = {
    # name: (consumer settings, expected group type, expected DescribeGroups assignor or None)
    "classic-range": ({"partition.assignment.strategy": "range"}, ConsumerGroupType.CLASSIC, "range"),
    "classic-cooperative-sticky": ({"partition.assignment.strategy": "cooperative-sticky"},
                                   ConsumerGroupType.CLASSIC, "cooperative-sticky"),
    "consumer": ({"group.protocol": "consumer"}, ConsumerGroupType.CONSUMER, None),
}


# ------------------------------------------------------------------------------------------ where a group lives

def describe_group(bootstrap: str, group_id: str, timeout: float = 10):
    """DescribeGroups/ConsumerGroupDescribe through AdminClient: a ConsumerGroupDescription (raises on errors).
    Only while every broker is up: librdkafka 2.16 aborts the process when a coordinator-bound admin request loses
    its connection (`rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0`, confluentinc/librdkafka#5397,
    seen here); the rounds use find_coordinator and OffsetMonitor's consumer instead."""
    client = admin(bootstrap)  # kept until the answer: a client going away leaves its futures pending
    future = client.describe_consumer_groups([group_id], request_timeout=timeout)[group_id]
    return future.result(timeout=timeout + 5)


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module", params=BROKER_KINDS)
def cluster(request):
    skip_unless_cluster_available(request.param)
    try:
        cluster = started(make_cluster(request.param, config=COORDINATOR_CONFIG))
    except BrokerError as error:
        if "offsets.topic.num.partitions" in str(error):
            pytest.fail(f"{request.param} does not accept offsets.topic.num.partitions: group state is not kept in "
                        f"a replicated {OFFSETS_TOPIC} topic yet (SKEIN_COORDINATOR_OFFSETS_PARTITIONS=0 leaves the "
                        f"setting out)\n{error}", pytrace=False)
        raise
    yield cluster
    cluster.close()


@pytest.fixture
def healthy(cluster):
    """The module's cluster with all three nodes running and listed (restarts what an earlier failure left down)."""
    return make_healthy(cluster)


@pytest.fixture
def topic(healthy):
    name = unique_topic_name("coordinated")
    create_replicated_topic(healthy.bootstrap_servers, name, PARTITIONS, REPLICATION_FACTOR, TOPIC_CONFIG)
    return name


# ------------------------------------------------------------------------------------------ the group

@dataclasses.dataclass(frozen=True)
class Rebalance:
    at: float
    kind: str  # "assign", "revoke" or "lost"
    partitions: tuple[int, ...]


class GroupMember:
    """A member of the group in its own process (tests/support/coordinator_member.py: a confluent-kafka consumer that
    commits what it consumed synchronously every COMMIT_INTERVAL_SECONDS and when partitions are revoked); a thread
    turns its report lines into what it consumed, the commits acknowledged to it, its commit errors, rebalance
    callbacks and client errors. stop() asks it to close (it leaves the group) and kills it when that does not end
    within `timeout` (librdkafka can hang in close(); see the helper's docstring).

    Synchronous commits keep each member's commits of a partition in order: librdkafka's auto commit queues commits
    while there is no coordinator and may send them in another order once there is one again (seen with Kafka:
    committed offsets going back by a few records after a failover, the client's doing), which would hide what this
    test looks for."""

    def __init__(self, name: str, bootstrap: str, group_id: str, topic: str, protocol_config: dict):
        self.name = name
        extra = dict(protocol_config)
        if protocol_config.get("group.protocol") != "consumer":
            # With group.protocol=consumer the broker owns these, and librdkafka refuses them.
            extra.update({"session.timeout.ms": CLASSIC_SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 1000})
        self.command = [sys.executable, str(MEMBER_PROGRAM), bootstrap, group_id, topic, name,
                        str(COMMIT_INTERVAL_SECONDS), json.dumps(extra)]
        self.lock = threading.Lock()
        self.consumed: dict[tuple[int, int], str] = {}
        self.redelivered = 0  # (partition, offset) served again to this member
        self.conflicts: list[tuple[int, int, str, str]] = []
        self.rebalances: list[Rebalance] = []
        self.commit_errors: collections.Counter = collections.Counter()
        self.commits: list[tuple[float, float, int, int]] = []  # acknowledged: (sent, answered, partition, offset)
        # Where consumption of a partition began after each assignment of it: (assigned at, partition, first offset).
        self.resumed: list[tuple[float, int, int]] = []
        self._awaiting_first: dict[int, float] = {}  # partition -> when it was assigned, until a record of it arrives
        self.client_errors: collections.Counter = collections.Counter()
        self.message_errors: collections.Counter = collections.Counter()
        self.error: str | None = None  # the member process failed or ended early
        self.close_hung = False
        self.process: subprocess.Popen | None = None
        self._closed = False  # it reported that close() returned
        self._asked_to_stop = False
        self._reader: threading.Thread | None = None

    def start(self) -> "GroupMember":
        # Started from the main thread: PR_SET_PDEATHSIG follows the thread that forked.
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        bufsize=1, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read, name=f"member-{self.name}", daemon=True)
        self._reader.start()
        return self

    def ask_to_stop(self) -> None:
        """Asks the process to close its consumer and exit (stop() waits for it)."""
        process = self.process
        if process is None or process.stdin.closed:
            return
        self._asked_to_stop = True
        try:
            process.stdin.write("stop\n")
            process.stdin.close()
        except (OSError, ValueError):  # it exited already
            pass

    def stop(self, timeout: float = 30) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        self.ask_to_stop()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.close_hung = True
            process.kill()
            process.wait(10)
        self._reader.join(10)

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"failed": f"unparsed output {line.strip()[:200]!r}"}
            self._record(event)
        with self.lock:
            if not self._closed and not self._asked_to_stop and self.error is None:
                self.error = f"exited with {self.process.wait()} before it was stopped"

    def _record(self, event: dict) -> None:
        with self.lock:
            if "consumed" in event:
                for partition, offset, value in event["consumed"]:
                    assigned_at = self._awaiting_first.pop(partition, None)
                    if assigned_at is not None:
                        self.resumed.append((assigned_at, partition, offset))
                    first = self.consumed.get((partition, offset))
                    if first is None:
                        self.consumed[(partition, offset)] = value
                    else:
                        self.redelivered += 1
                        if first != value:
                            self.conflicts.append((partition, offset, first, value))
            elif "commit" in event:
                sent, answered, acknowledged = event["commit"]
                self.commits += [(round(sent, 3), round(answered, 3), p, o) for p, o in acknowledged]
            elif "commit_error" in event:
                self.commit_errors[event["commit_error"]] += 1
            elif "rebalance" in event:
                at, kind, partitions = event["rebalance"]
                self.rebalances.append(Rebalance(at, kind, tuple(partitions)))
                for partition in partitions:
                    if kind == "assign":
                        self._awaiting_first[partition] = round(at, 3)
                    else:
                        self._awaiting_first.pop(partition, None)
            elif "client_error" in event:
                self.client_errors[event["client_error"]] += 1
            elif "message_error" in event:
                self.message_errors[event["message_error"]] += 1
            elif "closed" in event:
                self._closed = True
            else:
                self.error = event.get("failed", repr(event))

    def rebalance_counts(self) -> dict[str, int]:
        with self.lock:
            counts = dict(collections.Counter(r.kind for r in self.rebalances))
        if self.close_hung:
            counts["close hung (killed)"] = 1
        return counts


class OffsetMonitor:
    """Asks for the group's committed offsets every MONITOR_INTERVAL_SECONDS in a thread and keeps what went wrong:
    a committed offset lower than one seen before (backwards) or missing after it had been seen (vanished). Failed
    lookups (no coordinator) are counted. The lookups are OffsetFetch requests of a consumer that never joins the
    group (Consumer.committed), not AdminClient.list_consumer_group_offsets, which can abort the process when the
    coordinator dies (see describe_group)."""

    def __init__(self, bootstrap: str, group_id: str, topic: str):
        self.group_id = group_id
        self.topic = topic
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group_id,  # never subscribes: only asks the coordinator for the committed offsets
            "enable.auto.commit": False,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
            "log_level": 0,
        })
        self.lock = threading.Lock()
        self.samples = 0
        # Every answer: (asked, answered, {partition: offset}).
        self.history: list[tuple[float, float, dict[int, int]]] = []
        self.errors: collections.Counter = collections.Counter()
        self.highest: dict[int, int] = {}           # the highest committed offset seen per partition
        self.latest: tuple[float, dict[int, int]] | None = None  # (when it was asked, {partition: offset})
        self.backwards: list[tuple[float, int, int, int]] = []   # (asked, partition, highest seen, answered)
        self.vanished: list[tuple[float, int, int]] = []          # (asked, partition, highest seen)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="offset-monitor", daemon=True)

    def start(self) -> "OffsetMonitor":
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(30)
        self.consumer.close()

    def fetch(self) -> dict[int, int]:
        """{partition: committed offset} of the topic, now (raises when the coordinator does not answer)."""
        committed = {}
        for tp in self.consumer.committed([TopicPartition(self.topic, p) for p in range(PARTITIONS)], timeout=5):
            if tp.error is not None:
                raise KafkaException(tp.error)
            if tp.offset >= 0:
                committed[tp.partition] = tp.offset
        return committed

    def _run(self) -> None:
        while not self._stopping.is_set():
            asked = time.monotonic()
            try:
                committed = self.fetch()
            except Exception as error:
                name = error.args[0].name() if isinstance(error, KafkaException) else type(error).__name__
                with self.lock:
                    self.errors[name] += 1
            else:
                self.observe(committed, asked, time.monotonic())
            self._stopping.wait(MONITOR_INTERVAL_SECONDS)

    def observe(self, committed: dict[int, int], asked: float, now: float) -> None:
        with self.lock:
            self.samples += 1
            self.latest = (asked, dict(committed))
            self.history.append((round(asked, 3), round(now, 3), dict(committed)))
            for partition, highest in self.highest.items():
                if partition not in committed:
                    self.vanished.append((round(asked, 3), partition, highest))
                elif committed[partition] < highest:
                    self.backwards.append((round(asked, 3), partition, highest, committed[partition]))
            for partition, offset in committed.items():
                self.highest[partition] = max(offset, self.highest.get(partition, offset))

    def latest_after(self, since: float) -> dict[int, int] | None:
        """The latest answer, if it was asked for after `since`."""
        with self.lock:
            return dict(self.latest[1]) if self.latest is not None and self.latest[0] > since else None

    def snapshot(self) -> dict[int, int]:
        """The highest committed offset seen per partition so far."""
        with self.lock:
            return dict(self.highest)

    def wait_for_progress(self, past: dict[int, int], since: float, timeout: float) -> float:
        """Waits until an answer asked for after `since` shows every partition committed beyond `past` (missing:
        beyond nothing); returns the seconds from `since`. AssertionError naming the partitions after `timeout`."""
        def advanced():
            with self.lock:
                latest = self.latest
            if latest is None or latest[0] < since:
                return None
            behind = [p for p in range(PARTITIONS) if latest[1].get(p, -1) <= past.get(p, -1)]
            return (latest[0] - since) if not behind else Unmet(f"partitions {behind} not past it; committed {latest[1]}")
        try:
            return poll_until(advanced, f"every partition committed past {past}", timeout, interval=0.2)
        except AssertionError as error:
            with self.lock:
                errors = dict(self.errors)
            raise AssertionError(f"{error}; offset lookups failed: {errors}") from None


class Group:
    """One consumer group under test: its MEMBERS members and its offset monitor, and the checks of what it did."""

    def __init__(self, cluster, topic: str, protocol: str, group_id: str):
        self.cluster = cluster
        self.topic = topic
        self.protocol = protocol
        self.group_id = group_id
        self.label = f"{cluster.kind} {protocol}"
        self.protocol_config, self.group_type, self.assignor = PROTOCOLS[protocol]
        self.members = [GroupMember(f"{protocol}-member-{i}", cluster.bootstrap_servers, group_id, topic,
                                    self.protocol_config) for i in range(1, MEMBERS + 1)]
        self.monitor = OffsetMonitor(cluster.bootstrap_servers, group_id, topic)

    def start(self) -> None:
        for member in self.members:
            member.start()
        self.monitor.start()

    def ask_to_stop(self) -> None:
        for member in self.members:
            member.ask_to_stop()

    def stop(self, timeout: float = 30) -> None:
        """Stops the monitor and the members (all asked at once, then waited for until `timeout`)."""
        self.monitor.stop()
        self.ask_to_stop()
        deadline = time.monotonic() + timeout
        for member in self.members:
            member.stop(max(1.0, deadline - time.monotonic()))

    def wait_for_stable(self, timeout: float = GROUP_SECONDS):
        """Waits until the group is Stable with its MEMBERS members splitting every partition; the description."""
        expected = sorted(member.name for member in self.members)

        def stable():
            for member in self.members:
                if member.error is not None:
                    raise AssertionError(f"member {member.name} failed: {member.error!r}")
            group = describe_group(self.cluster.running_bootstrap(), self.group_id)
            assigned = sorted(tp.partition for m in group.members for tp in m.assignment.topic_partitions
                              if tp.topic == self.topic)
            ok = (group.state == ConsumerGroupState.STABLE and sorted(m.client_id for m in group.members) == expected
                  and assigned == list(range(PARTITIONS)))
            return group if ok else Unmet(_description(group))
        return poll_until(stable, f"group {self.group_id} Stable with members {expected} splitting {PARTITIONS} "
                                  f"partitions", timeout)

    def at_the_end(self, ends: list[int], since: float) -> bool:
        """Whether an answer asked for after `since` shows the group committed at `ends`."""
        return self.monitor.latest_after(since) == dict(enumerate(ends))

    def problems(self, acks: list, offsets_partitions: int) -> list[str]:
        """What the group did wrong (the module docstring's list), given the producer's acknowledgements; run once the
        producer stopped and the group had time to reach the end (at_the_end, wait_for_stable)."""
        problems = []
        failed_members = [(member.name, member.error) for member in self.members if member.error is not None]
        if failed_members:
            problems.append(f"members failed: {failed_members}")
        # Every acknowledged record was consumed, at its offset.
        consumed: dict[tuple[int, int], str] = {}
        for member in self.members:
            with member.lock:
                consumed.update(member.consumed)
        values = set(consumed.values())
        lost = [(a.partition, a.offset, a.value) for a in acks if a.value not in values]
        if lost:
            problems.append(f"{len(lost)} acknowledged records never consumed (first {lost[:5]})")
        misplaced = [(a.partition, a.offset, a.value, consumed.get((a.partition, a.offset))) for a in acks
                     if a.offset is not None and a.value in values and consumed.get((a.partition, a.offset)) != a.value]
        if misplaced:
            problems.append(f"{len(misplaced)} acknowledged offsets consumed with another value: {misplaced[:5]}")
        conflicts = [c for member in self.members for c in member.conflicts]
        if conflicts:
            problems.append(f"offsets served with two values: {conflicts[:5]}")
        # Committed offsets: never backwards, never gone, never below an acknowledged commit.
        if self.monitor.backwards:
            problems.append(f"committed offsets went backwards {len(self.monitor.backwards)} times (asked, partition, "
                            f"highest before, answered): {self.monitor.backwards[:5]}")
        if self.monitor.vanished:
            problems.append(f"committed offsets vanished {len(self.monitor.vanished)} times (asked, partition, "
                            f"highest before): {self.monitor.vanished[:5]}")
        forgotten = self.forgotten_commits()
        if forgotten:
            problems.append(f"{len(forgotten)} committed-offset answers below a commit acknowledged before they were "
                            f"asked for (asked, partition, acknowledged, answered): {forgotten[:5]}")
        rewound = self.rewound_assignments()
        if rewound:
            problems.append(f"{len(rewound)} times a member assigned a partition started consuming it below a commit "
                            f"acknowledged before the assignment, the committed offset lost or older (member, assigned "
                            f"at, partition, first offset consumed, acknowledged before): {rewound[:5]}")
        # KIP-848 members keep their assignments across coordinator moves.
        if self.group_type == ConsumerGroupType.CONSUMER:
            lost = []
            for member in self.members:
                with member.lock:
                    lost += [(member.name, r.at, r.partitions) for r in member.rebalances if r.kind == "lost"]
            if lost:
                problems.append(f"KIP-848 members lost their assignments {len(lost)} times (fenced: they rejoined "
                                f"instead of carrying on at the new coordinator) (member, when, partitions): "
                                f"{lost[:5]}")
        # The group at the end: its type and assignor, and where it lives.
        group = describe_group(self.cluster.bootstrap_servers, self.group_id)
        if group.type != self.group_type:
            problems.append(f"group type {group.type}, expected {self.group_type}")
        if self.assignor is not None and group.partition_assignor != self.assignor:
            problems.append(f"assignor {group.partition_assignor!r}, expected {self.assignor!r}")
        partition = partition_for(self.group_id, offsets_partitions)
        state = poll_until(lambda: partition_states(self.cluster.bootstrap_servers, OFFSETS_TOPIC).get(partition),
                           f"the leader of {OFFSETS_TOPIC}-{partition}", 30)
        if group.coordinator.id != state.leader:
            problems.append(f"coordinated by broker {group.coordinator.id}, but {OFFSETS_TOPIC}-{partition} "
                            f"(abs(Java hash {java_string_hash(self.group_id)}) % {offsets_partitions}) is led by "
                            f"broker {state.leader}")
        return problems

    def forgotten_commits(self) -> list[tuple[float, int, int, int | None]]:
        """Monitor answers below an offset a member's commit of that partition had been acknowledged with before the
        answer was asked for: (asked, partition, acknowledged offset, answered offset or None)."""
        acknowledged = sorted((answered, partition, offset) for member in self.members
                              for _sent, answered, partition, offset in member.commits)
        forgotten = []
        highest: dict[int, int] = {}
        index = 0
        with self.monitor.lock:
            history = list(self.monitor.history)
        for asked, _answered, committed in history:
            while index < len(acknowledged) and acknowledged[index][0] < asked:
                _, partition, offset = acknowledged[index]
                highest[partition] = max(offset, highest.get(partition, offset))
                index += 1
            for partition, offset in highest.items():
                if committed.get(partition, -1) < offset:
                    forgotten.append((asked, partition, offset, committed.get(partition)))
        return forgotten

    def rewound_assignments(self) -> list[tuple[str, float, int, int, int]]:
        """Assignments after which a member began a partition below the highest offset a commit of that partition
        (by any member) had been acknowledged with before the assignment: (member, assigned at, partition, first
        offset consumed, acknowledged offset). The members see this directly, whenever the monitor happens to ask."""
        acknowledged = sorted((answered, partition, offset) for member in self.members
                              for _sent, answered, partition, offset in member.commits)
        rewound = []
        for member in self.members:
            for assigned_at, partition, first in member.resumed:
                before = [offset for answered, p, offset in acknowledged if p == partition and answered < assigned_at]
                if before and first < max(before):
                    rewound.append((member.name, assigned_at, partition, first, max(before)))
        return sorted(rewound, key=lambda r: r[1])

    def summary(self) -> str:
        distinct: set[tuple[int, int]] = set()
        deliveries = 0
        for member in self.members:
            with member.lock:
                distinct.update(member.consumed)
                deliveries += len(member.consumed) + member.redelivered
        commits = sum(len(member.commits) for member in self.members)
        commit_errors = sum((member.commit_errors for member in self.members), collections.Counter())
        client_errors = sum((member.client_errors for member in self.members), collections.Counter())
        rebalances = {member.name.rsplit("-", 1)[-1]: member.rebalance_counts() for member in self.members}
        lost = sum(counts.get("lost", 0) for counts in rebalances.values())
        return (f"[{self.label}] group {self.group_id}: consumed {len(distinct)} records ({deliveries - len(distinct)} "
                f"again); "
                f"{commits} partition commits acknowledged, commit errors {dict(commit_errors)}; committed offsets "
                f"seen {self.monitor.samples} times (lookups failed {dict(self.monitor.errors)}), backwards "
                f"{len(self.monitor.backwards)}, vanished {len(self.monitor.vanished)}; client errors "
                f"{dict(client_errors)}; assignments lost (the member had to rejoin) {lost} times; rebalance "
                f"callbacks per member {rebalances}")

    def history(self) -> dict:
        return {
            "group_id": self.group_id,
            "committed": self.monitor.history,
            "backwards": self.monitor.backwards,
            "vanished": self.monitor.vanished,
            "members": {member.name: {"commits": member.commits, "rebalances": member.rebalances,
                                      "resumed": member.resumed}
                        for member in self.members},
        }


class FailoverRun:
    """`with FailoverRun(...) as run:` starts the producer (run.workload) and one Group per protocol, all coordinated
    by one broker (their ids hash to one `__consumer_offsets` partition), and waits until every group is Stable and
    has committed on every partition. The block kills the coordinator (kill_the_coordinator). Leaving it normally,
    the producer stops, every group must commit the log end offsets, and every group's problems (Group.problems)
    fail the test together. On a failure every broker's log and the run's history are kept in tmp_path."""

    def __init__(self, cluster, topic: str, protocols: list[str], record_property, tmp_path):
        self.cluster = cluster
        self.topic = topic
        self.label = f"{cluster.kind} {'+'.join(protocols)}"
        self.record_property = record_property
        self.tmp_path = tmp_path
        self.offsets_partitions = OFFSETS_PARTITIONS or KAFKA_DEFAULT_OFFSETS_PARTITIONS
        first = distinguishing_id(f"failover-{protocols[0]}", self.offsets_partitions)
        partition = partition_for(first, self.offsets_partitions)
        group_ids = [first] + [distinguishing_id(f"failover-{protocol}", self.offsets_partitions, partition)
                               for protocol in protocols[1:]]
        self.workload = Workload(cluster.bootstrap_servers, topic, PARTITIONS, rate=RATE)
        self.groups = [Group(cluster, topic, protocol, group_id) for protocol, group_id in zip(protocols, group_ids)]
        self.rounds: list[str] = []
        self.summarized = False  # the summary was printed
        self.events: list[tuple[float, str]] = []  # (time.monotonic(), what the test did or saw), for the history

    def event(self, what: str) -> None:
        self.events.append((round(time.monotonic(), 3), what))

    def __enter__(self) -> "FailoverRun":
        try:
            self.workload.start()
            self.workload.wait_for_acks(WARMUP_ACKS, PROGRESS_SECONDS)
            self.event("groups start")
            for group in self.groups:
                group.start()
            for group in self.groups:
                group.wait_for_stable()
            self.event("every group stable")
            for group in self.groups:
                group.monitor.wait_for_progress({}, 0, GROUP_SECONDS)
            self.event("every group committed on every partition")
        except BaseException as error:
            self._failed(error)
            raise
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is None:
            try:
                self._finish()
            except BaseException as error:
                self._failed(error)
                raise
        else:
            self._failed(exc)
        return False

    # -- the fault ---------------------------------------------------------------------------------------
    def kill_the_coordinator(self, round_number: int) -> None:
        """SIGKILL the groups' coordinator; another broker takes every group over and every group commits past the
        kill on every partition while the old one is down; restart it and wait until every replica is in sync."""
        cluster = self.cluster
        label = f"{self.label} round {round_number}"
        wait_for_full_isr(cluster.bootstrap_servers, OFFSETS_TOPIC, self.offsets_partitions, REPLICATION_FACTOR,
                          CATCH_UP_SECONDS)
        everyone = [node.bootstrap for node in cluster.nodes]
        coordinators = {group.group_id: poll_until(lambda: find_coordinator(everyone, group.group_id),
                                                   f"the coordinator of group {group.group_id}", FAILOVER_SECONDS)
                        for group in self.groups}
        victim = cluster.node(coordinators[self.groups[0].group_id])
        survivors = [node.bootstrap for node in cluster.nodes if node is not victim]
        committed = {group.group_id: group.monitor.snapshot() for group in self.groups}
        killed_at = time.monotonic()
        victim.kill()
        self.event(f"round {round_number}: killed broker {victim.node_id}, coordinator of {coordinators}")

        successors = {}
        for group in self.groups:
            if coordinators[group.group_id] != victim.node_id:
                continue

            def taken_over():
                coordinator = find_coordinator(survivors, group.group_id)
                return coordinator if coordinator not in (-1, victim.node_id) else None
            try:
                successors[group.group_id] = poll_until(
                    taken_over, f"a coordinator of group {group.group_id} other than the killed broker "
                                f"{victim.node_id}", max(1.0, killed_at + FAILOVER_SECONDS - time.monotonic()))
            except AssertionError as error:
                raise AssertionError(f"{label}: no coordinator failover: {error}") from None
        failover = time.monotonic() - killed_at
        self.event(f"round {round_number}: coordinators after the kill {successors}")
        progress = {}
        for group in self.groups:
            try:
                progress[group.protocol] = group.monitor.wait_for_progress(
                    committed[group.group_id], killed_at, max(1.0, killed_at + failover + PROGRESS_SECONDS
                                                              - time.monotonic()))
            except AssertionError as error:
                raise AssertionError(f"{label}: {successors} coordinate the groups {failover:.1f}s after broker "
                                     f"{victim.node_id} died, but group {group.group_id}'s commits did not resume: "
                                     f"{error}") from None
        self.event(f"round {round_number}: every group committed past the kill")
        time.sleep(STEADY_SECONDS)
        starting_at = time.monotonic()
        victim.start()
        restarted = time.monotonic() - starting_at
        self.event(f"round {round_number}: broker {victim.node_id} restarted")
        cluster.wait_for_brokers(3, timeout=60)
        for name, partitions in ((self.topic, PARTITIONS), (OFFSETS_TOPIC, self.offsets_partitions)):
            wait_for_full_isr(cluster.bootstrap_servers, name, partitions, REPLICATION_FACTOR, CATCH_UP_SECONDS)
        self.event(f"round {round_number}: every replica in sync")
        line = (f"{label}: killed broker {victim.node_id} (the coordinator); broker(s) "
                f"{sorted(set(successors.values()))} coordinators within {failover:.1f}s; every partition committed "
                f"past the kill, seconds after it: { {p: round(s, 1) for p, s in progress.items()} }; restarted in "
                f"{restarted:.1f}s, in sync {time.monotonic() - starting_at - restarted:.1f}s later")
        print(line)
        self.rounds.append(line)

    # -- the end -------------------------------------------------------------------------------------
    def _finish(self) -> None:
        # Liveness after the last restart, then no more records.
        since = time.monotonic()
        for group in self.groups:
            group.monitor.wait_for_progress(group.monitor.snapshot(), since, PROGRESS_SECONDS)
        self.workload.stop()
        self.event("producer stopped")
        ends_taken_at = time.monotonic()
        ends = end_offsets(self.cluster.bootstrap_servers, self.topic, PARTITIONS)
        with self.workload.lock:
            acks = list(self.workload.acks)
            failed = len(self.workload.failures)
        # Every group commits the end offsets (one deadline for all of them).
        try:
            poll_until(lambda: all(group.at_the_end(ends, ends_taken_at) for group in self.groups),
                       "every group committed at the log end offsets", GROUP_SECONDS, interval=0.2)
        except AssertionError:
            pass  # reported per group below
        problems = {}
        stable_by = time.monotonic() + GROUP_SECONDS
        for group in self.groups:
            found = []
            if not group.at_the_end(ends, ends_taken_at):
                found.append(f"not committed at the log end offsets {ends} within {GROUP_SECONDS}s of the producer's "
                             f"end (last answer: {group.monitor.latest_after(ends_taken_at)})")
            try:
                group.wait_for_stable(max(5.0, stable_by - time.monotonic()))
            except AssertionError as error:
                found.append(str(error))
            try:
                found += group.problems(acks, self.offsets_partitions)
            except Exception as error:  # the group cannot be described
                found.append(f"no checks of the group's end: {error!r}")
            if found:
                problems[group.group_id] = found
        self._stop_groups(30)
        summary = (f"coordinator failover [{self.label}]: {len(self.rounds)} kills; {len(acks)} records "
                   f"acknowledged ({failed} failed), end offsets {ends}\n  "
                   + "\n  ".join(group.summary() for group in self.groups))
        print(summary)
        self.summarized = True
        if KEEP_HISTORY:
            self._keep_evidence()
        self.record_property("coordinator_failover", summary)
        assert len(acks) >= WARMUP_ACKS, summary
        assert not problems, "\n".join(f"group {group_id} ({self.cluster.kind}): " + "; ".join(found)
                                       for group_id, found in problems.items())

    def _failed(self, error: BaseException) -> None:
        """Keeps the evidence (broker logs, the run's history) unless interrupted, and stops everything."""
        if not isinstance(error, KeyboardInterrupt):
            if not self.summarized:
                print(f"{self.label} failed; so far:\n  " + "\n  ".join(group.summary() for group in self.groups))
            self._keep_evidence()
        self._stop_groups(10)
        try:
            self.workload.stop(abandon=True)
        except Exception as stop_error:
            print(f"{self.label}: stopping the producer: {stop_error!r}")

    def _stop_groups(self, timeout: float) -> None:
        for group in self.groups:
            group.ask_to_stop()
        deadline = time.monotonic() + timeout
        for group in self.groups:
            group.stop(max(1.0, deadline - time.monotonic()))

    def _keep_evidence(self) -> None:
        """Every broker's log, and the run's history as JSON (the test's events, and per group every
        committed-offsets answer, every member's acknowledged commits and rebalance callbacks), in tmp_path."""
        for node in self.cluster.nodes:
            try:
                shutil.copyfile(node.log_path, self.tmp_path / f"broker-{node.node_id}.log")
            except OSError as error:
                print(f"cannot keep the log of node {node.node_id}: {error}")
        history = {"events": self.events, "groups": [group.history() for group in self.groups]}
        path = self.tmp_path / "coordinator-history.json"
        path.write_text(json.dumps(history, default=dataclasses.astuple))
        print(f"  broker logs: {self.tmp_path}/broker-*.log; history: {path}")


def _description(group) -> str:
    """A group description as a wait that it does not satisfy yet reports it."""
    members = [(m.client_id, sorted(tp.partition for tp in m.assignment.topic_partitions)) for m in group.members]
    return f"state {group.state}, coordinator {group.coordinator.id}, members {members}"


# ------------------------------------------------------------------------------------------ the tests

@pytest.mark.timeout(240 + 120 * KILL_ROUNDS)
def test_consumer_groups_survive_killing_their_coordinator(healthy, topic, record_property, tmp_path):
    skip_kafka_reference_outside_long_mode(healthy.kind)
    protocols = list(PROTOCOLS)
    if libversion()[1] < KIP_848_LIBRDKAFKA:
        print(f"librdkafka {libversion()[0]} has no group.protocol=consumer (KIP-848 needs 2.10): classic groups only")
        protocols.remove("consumer")
    with FailoverRun(healthy, topic, protocols, record_property, tmp_path) as run:
        for round_number in range(1, KILL_ROUNDS + 1):
            run.kill_the_coordinator(round_number)


def test_the_group_placement_follows_kafkas_partition_for():
    """The hash and partition functions on values computed with Java (no broker)."""
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(1 << 31)  # Integer.MIN_VALUE: Utils.abs gives 0
    assert partition_for("polygenelubricants", 50) == 0
    assert java_string_hash("failover-consumer-abc") == -943624442
    assert partition_for("failover-consumer-abc", 50) == 42
    assert java_string_hash("grüße-ǅ") == 426791439
    group_id = distinguishing_id("g", 6, partition=3)
    assert java_string_hash(group_id) < 0
    assert partition_for(group_id, 6) == 3 != (java_string_hash(group_id) & 0x7FFFFFFF) % 6
    with pytest.raises(ValueError):
        distinguishing_id("g", 6, partition=4)


def test_the_offset_checks_catch_every_kind_of_violation():
    """The committed-offset checks on a made-up history (no broker, no member process started)."""
    import types

    cluster = types.SimpleNamespace(kind="made-up", bootstrap_servers="127.0.0.1:1")
    group = Group(cluster, "made-up", "classic-range", "made-up-group")
    try:
        monitor = group.monitor
        monitor.observe({0: 10, 1: 10}, asked=1.0, now=1.1)
        monitor.observe({0: 12}, asked=2.0, now=2.1)           # partition 1 gone
        monitor.observe({0: 11, 1: 12}, asked=3.0, now=3.1)    # partition 0 back from 12 to 11
        first, second, _ = group.members
        first.commits = [(0.5, 0.6, 0, 10), (1.5, 1.6, 1, 15)]  # partition 1 acknowledged at 15 before 2.0 and 3.0
        second.resumed = [(0.55, 0, 3),                          # nothing acknowledged before: fine
                          (2.5, 1, 5)]                           # began at 5 after 15 was acknowledged: rewound
        assert monitor.vanished == [(2.0, 1, 10)]
        assert monitor.backwards == [(3.0, 0, 12, 11)]
        assert group.forgotten_commits() == [(2.0, 1, 15, None), (3.0, 1, 15, 12)]
        assert group.rewound_assignments() == [(second.name, 2.5, 1, 5, 15)]
        assert monitor.latest_after(2.5) == {0: 11, 1: 12} and monitor.latest_after(3.0) is None
    finally:
        group.stop()
