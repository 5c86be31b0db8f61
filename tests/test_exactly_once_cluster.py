"""Exactly-once processing on a 3-node cluster while the brokers it depends on are killed: Skein and Apache Kafka (the
reference) side by side, each with two clients, the same test body for all four.

The consume-transform-produce application of tests/test_exactly_once.py (tests/support/eos_app.py: read_committed
consumer, transactional producer, the consumed positions committed in each transaction with
send_offsets_to_transaction), on confluent-kafka (librdkafka), or the same application on the Java kafka-clients
(tests/support/java/EosPipeline.java: same arguments, log lines and exits; sendOffsetsToTransaction with
consumer.groupMetadata()), processes TOTAL_MESSAGES[client] numbered records from an input topic to an output topic, both
with 3 partitions, replication factor 3 and `min.insync.replicas=2`; the group's offsets (`__consumer_offsets`) and
the transaction state (`__transaction_state`) are replicated 3 times too (support.cluster.CLUSTER_CONFIG), in
INTERNAL_TOPIC_PARTITIONS partitions each. The application is given all three brokers as its bootstrap.

While it runs, the test interrupts it in a fixed order (INTERRUPTIONS), each time once the application has committed
a random number of transactions since the previous interruption (seeded; the seed is printed, and
SKEIN_EOS_CLUSTER_SEED gives the same interruption points and ids again; which broker leads what is the cluster's
doing): SIGKILL of the broker coordinating the transactional id, of the broker coordinating the group, of the leader
of output partition 0, of the application itself, and of the transaction coordinator again.
- A broker is killed only once every partition of the four topics has its full ISR. A coordinator is found as Kafka
  places it (support.coordinators: the leader of partition abs(Java hashCode(id)) % partitions of the internal topic,
  from Metadata), and a FindCoordinator request must name the same broker. The group and transactional ids hash to
  partitions that abs(hash) and hash & 0x7fffffff tell apart. After the kill another broker must take the role over
  (Metadata and FindCoordinator, asked of the survivors, agreeing) within FAILOVER_SECONDS; then the killed broker is
  started again and must be back (ready, listed in Metadata) before the test goes on.
- The application is killed while its transaction is Ongoing (DescribeTransactions) with records in the output (last
  stable offset below the high watermark): frozen (SIGSTOP) when DescribeTransactions shows it Ongoing, checked, and
  SIGKILLed (or let go on when it was committing already; support.open_transactions, which test_kafka_streams.py
  shares); the restarted application aborts that transaction.
The application also exits by itself on a fatal client error or a stuck call (its watchdog); it is restarted, up to
MAX_UNPLANNED_EXITS times. The group's committed offsets must move at least every STALL_SECONDS.

At the end, once the group's committed offsets reach the input's end: the application stops cleanly (exit 0 on
SIGTERM), the group's stable committed offsets (read_committed) are the input's end offsets, every output partition's
last stable offset reaches its high watermark (no transaction left open), and a read_committed consumer of the whole
output sees every input number exactly once (so no record of an aborted transaction is visible), in input order per
partition. A read_uncommitted consumer sees at least the records the application's kills left in open transactions:
they were aborted, and are there. On a failure every broker's log is copied into the test's tmp_path (broker-N.log),
next to the application's (eos_app.log), and the failure message tells the application's last logged commit, the
group's committed offsets as both isolation levels see them, DescribeTransactions, the last stable offsets of the
output and of the group's __consumer_offsets partition, and (Skein) each node's group and transaction request and
error counters.

CI mode is short, and runs Skein only: the Apache Kafka reference runs in long mode (SKEIN_LONG=1,
support.brokers.skip_kafka_reference_outside_long_mode). A long run by hand raises the environment variables below,
e.g. `SKEIN_LONG=1 SKEIN_EOS_CLUSTER_ROUNDS=4 .tools/venv/bin/pytest tests/test_exactly_once_cluster.py -k "kafka and
not skein" -s` (four rounds of the four interruptions, then the last transaction coordinator kill, on 230,000 records;
SKEIN_EOS_CLUSTER_RECORDS sets the number).
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from itertools import zip_longest

import pytest
from confluent_kafka import Consumer, IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from support.brokers import BROKER_KINDS, _die_with_parent, skip_kafka_reference_outside_long_mode
from support.cluster import make_cluster, skip_unless_cluster_available, started
from support.cluster import healthy as make_healthy
from support.coordinators import (GROUP, OFFSETS_TOPIC, TRANSACTION, TRANSACTION_STATE_TOPIC, agreed_coordinator,
                                  describe_transaction, distinguishing_id, java_string_hash, partition_for)
from support.java_programs import java_program_command
from support.kafka_clients import end_offsets, read_to_end, unique_topic_name
from support.open_transactions import kill_in_open_transaction
from support.replication_checker import (Unmet, create_replicated_topic, partition_states, poll_until,
                                         wait_for_full_isr)
from test_exactly_once import EOS_APP, AppProcess, produce_input
from test_replication import REPLICATION_CONFIG, TOPIC_CONFIG


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


TRANSACTION_COORDINATOR = "transaction coordinator"
GROUP_COORDINATOR = "group coordinator"
OUTPUT_LEADER = "leader of output partition 0"
APPLICATION = "application"
# Rounds of the four interruptions (environment variable; the default keeps CI short); one more transaction
# coordinator kill follows the last round, so the transaction coordinator dies at least twice.
ROUNDS = _env_int("SKEIN_EOS_CLUSTER_ROUNDS", 1)
INTERRUPTIONS = [TRANSACTION_COORDINATOR, GROUP_COORDINATOR, OUTPUT_LEADER, APPLICATION] * ROUNDS \
    + [TRANSACTION_COORDINATOR]
# Records to process, per client: they must outlast the interruptions. The application goes on while a broker it
# does not wait for is down (Skein: up to 100 transactions of 200 records in one broker kill's 10 s), so every further
# round adds room for three such kills. The Java application is the faster one (on Skein it processed 50,000 records
# within the first three broker kills), so it gets three times as many.
_RECORDS = _env_int("SKEIN_EOS_CLUSTER_RECORDS", 50_000 + 60_000 * (ROUNDS - 1))
TOTAL_MESSAGES = {"confluent-kafka": _RECORDS, "java": _env_int("SKEIN_EOS_CLUSTER_RECORDS", 3 * _RECORDS)}
# Replays a run's interruption points (its printed seed).
SEED = os.environ.get("SKEIN_EOS_CLUSTER_SEED")

# The application's client: eos_app.py on confluent-kafka, or EosPipeline.java on the Java kafka-clients.
CLIENTS = ["confluent-kafka", "java"]

PARTITIONS = 3
REPLICATION_FACTOR = 3
# Partitions of __consumer_offsets and __transaction_state (few: a quick start; both brokers take both settings).
INTERNAL_TOPIC_PARTITIONS = 5
# On top of support.cluster.CLUSTER_CONFIG, which already replicates both internal topics 3 times
# (offsets.topic.replication.factor, transaction.state.log.replication.factor) with transaction.state.log.min.isr 2:
# REPLICATION_CONFIG of test_replication.py, and min.insync.replicas=2 for every topic, __consumer_offsets too, so an
# acknowledged offset commit is on two brokers.
EOS_CLUSTER_CONFIG = {
    **REPLICATION_CONFIG,
    "min.insync.replicas": 2,
    "group.initial.rebalance.delay.ms": 0,
    "offsets.topic.num.partitions": INTERNAL_TOPIC_PARTITIONS,
    "transaction.state.log.num.partitions": INTERNAL_TOPIC_PARTITIONS,
}
# Each interruption comes once the application has committed a random number of transactions (within these bounds)
# since the previous one (commits while a killed broker is away count too), so the kill lands anywhere in a
# transaction.
COMMITS_BEFORE_INTERRUPTION = (1, 15)
# A killed broker is ready again within this (started again once another broker took its place).
BROKER_RESTART_TIMEOUT_SECONDS = 90
# Every partition of the four topics is back to its full ISR within this (before the next broker kill).
CATCH_UP_SECONDS = 60
# Metadata's placement and FindCoordinator agree on a coordinator within this.
AGREE_SECONDS = 30
# Another broker leads a killed broker's partition (and coordinates) this long after the kill (its 6 s session,
# the election, slack), before the killed broker is started again.
FAILOVER_SECONDS = 30
# The application is caught with its transaction Ongoing with records in the output within this.
CATCH_TRANSACTION_SECONDS = 60
# The input is processed within this: up to 20 s per interruption (a broker kill's handling took up to 17 s) and 250
# records a second (measured on 2 cores, default settings: Kafka 30,000 records in 77-103 s, Skein in 45-72 s).
PROCESSING_DEADLINE_SECONDS = {client: 60 + 20 * len(INTERRUPTIONS) + total // 250
                               for client, total in TOTAL_MESSAGES.items()}
# The group's committed offsets move at least this often (a broker kill's handling took up to 17 s, the application's
# watchdog gives a stuck call 20 s).
STALL_SECONDS = 90
MAX_UNPLANNED_EXITS = 5
READ_BACK_TIMEOUT_SECONDS = 120
# After the application stopped: the group's stable offsets and the output's last stable offsets settle within this.
SETTLE_SECONDS = 30
# The cluster's start (module fixture, inside the first test's time), the input, the processing and the checks.
TEST_TIMEOUT_SECONDS = 180 + max(PROCESSING_DEADLINE_SECONDS.values())


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module", params=BROKER_KINDS)
def cluster(request):
    skip_kafka_reference_outside_long_mode(request.param)
    skip_unless_cluster_available(request.param)
    cluster = started(make_cluster(request.param, config=EOS_CLUSTER_CONFIG))
    yield cluster
    cluster.close()


@pytest.fixture
def healthy(cluster):
    """The module's cluster with all three nodes running and listed (restarts what an earlier failure left down)."""
    return make_healthy(cluster)


# ------------------------------------------------------------------------------------------ helpers

def app_command(client: str) -> list[str]:
    """The command that runs the application on `client` (its arguments follow); compiles the Java one (skips the
    test when javac or the jars are missing)."""
    if client == "java":
        return java_program_command("EosPipeline")
    return [sys.executable, str(EOS_APP)]


class ClientAppProcess(AppProcess):
    """test_exactly_once's AppProcess running `command` (app_command) instead of eos_app.py: the same log file,
    commit lines, kill and stop."""

    def __init__(self, command: list[str], arguments: list[str], log_path):
        super().__init__(arguments, log_path)
        self.command = command

    def start(self) -> None:
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"==== start {time.strftime('%H:%M:%S')} ====\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(
                [*self.command, *self.arguments], stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )


def committed_offsets(consumer: Consumer, topic: str) -> list[int] | None:
    """The group's committed offsets of `topic` (OffsetFetch through a consumer of the group that never joins it), or
    None while no coordinator answers. A read_uncommitted consumer gets them without waiting for pending
    transactional offsets; a read_committed one asks for stable offsets only."""
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=5)
    except KafkaException:
        return None
    return [max(tp.offset, 0) for tp in sorted(committed, key=lambda tp: tp.partition)]


def keep_broker_logs(cluster, tmp_path) -> None:
    """Copies every node's log into the test's tmp_path (the nodes' own directories go with the cluster)."""
    for node in cluster.nodes:
        try:
            shutil.copyfile(node.log_path, tmp_path / f"broker-{node.node_id}.log")
        except OSError as error:
            print(f"cannot keep the log of node {node.node_id}: {error}")
    print(f"  broker logs: {tmp_path}/broker-*.log; application log: {tmp_path}/eos_app.log")


@dataclasses.dataclass(frozen=True)
class Placement:
    """The broker that leads `topic`-`partition`: the leader of output partition 0, or a coordinator."""
    node_id: int
    topic: str
    partition: int


def state_now(bootstrap: str, everyone: list[str], input_topic: str, output_topic: str, group_id: str,
              transactional_id: str) -> str:
    """For failure messages: the group's committed offsets as OffsetFetch answers a read_uncommitted and a
    read_committed (stable offsets only) consumer, DescribeTransactions of the transactional id, and the last stable
    offsets and high watermarks of the output and of the group's __consumer_offsets partition (a transaction whose
    marker never arrived keeps its partition's last stable offset down)."""
    parts = []
    for level in ("read_uncommitted", "read_committed"):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False,
                             "isolation.level": level, "log_level": 0})
        try:
            committed = consumer.committed([TopicPartition(input_topic, p) for p in range(PARTITIONS)], timeout=5)
            parts.append(f"{level} committed offsets " + ", ".join(
                f"{tp.partition}:{tp.offset}" + (f" ({tp.error})" if tp.error else "") for tp in committed))
        except KafkaException as error:
            parts.append(f"{level} committed offsets: {error.args[0]}")
        finally:
            consumer.close()
    try:
        parts.append(f"{describe_transaction(everyone, transactional_id)}")
    except (KafkaException, ConnectionError) as error:
        parts.append(f"DescribeTransactions: {error!r}")
    client = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    for topic, partitions in ((output_topic, range(PARTITIONS)),
                              (OFFSETS_TOPIC, [partition_for(group_id, INTERNAL_TOPIC_PARTITIONS)])):
        try:
            ends = {}
            for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
                futures = client.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in partitions},
                                              isolation_level=level, request_timeout=5)
                ends[level] = {tp.partition: future.result(timeout=10).offset for tp, future in futures.items()}
            parts.append(f"{topic} (last stable offset, high watermark) " + ", ".join(
                f"{p}: ({ends[IsolationLevel.READ_COMMITTED][p]}, {ends[IsolationLevel.READ_UNCOMMITTED][p]})"
                for p in partitions))
        except KafkaException as error:
            parts.append(f"{topic} end offsets: {error.args[0]}")
    return "; ".join(parts)


# The APIs of groups and transactions, whose request and error counters a Skein node's failure details show.
COORDINATION_APIS = ("FindCoordinator", "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup", "OffsetFetch",
                     "InitProducerId", "AddPartitionsToTxn", "AddOffsetsToTxn", "TxnOffsetCommit", "EndTxn",
                     "WriteTxnMarkers")


def skein_coordination_counters(cluster) -> str:
    """For failure messages: each Skein node's request and error counters (since it last started) of
    COORDINATION_APIS, from its metrics endpoint."""
    if cluster.kind != "skein":
        return ""
    parts = []
    for node in cluster.nodes:
        try:
            with urllib.request.urlopen(f"{node.metrics_url}/metrics", timeout=5) as response:
                text = response.read().decode(errors="replace")
        except OSError as error:
            parts.append(f"node {node.node_id}: no metrics ({error!r})")
            continue
        counters = [line for line in text.splitlines()
                    if line.startswith(("skein_requests_total{", "skein_request_errors_total{"))
                    and any(f'api="{api}"' in line for api in COORDINATION_APIS)]
        parts.append(f"node {node.node_id}: " + "; ".join(counters))
    return "\n".join(parts)


def output_numbers(messages: list) -> list[int]:
    return [int(message.value().removeprefix(b"processed-")) for message in messages]


# ------------------------------------------------------------------------------------------ the test

@pytest.mark.timeout(TEST_TIMEOUT_SECONDS)
@pytest.mark.parametrize("client", CLIENTS)
def test_exactly_once_through_coordinator_leader_and_application_kills(healthy, client, tmp_path):
    cluster = healthy
    command = app_command(client)
    total, deadline = TOTAL_MESSAGES[client], PROCESSING_DEADLINE_SECONDS[client]
    bootstrap = cluster.bootstrap_servers
    everyone = [node.bootstrap for node in cluster.nodes]
    try:
        input_topic = unique_topic_name("eos-in")
        output_topic = unique_topic_name("eos-out")
        for topic in (input_topic, output_topic):
            create_replicated_topic(bootstrap, topic, PARTITIONS, REPLICATION_FACTOR, TOPIC_CONFIG)
        seed = int(SEED) if SEED else random.randrange(1 << 30)
        rng = random.Random(seed)
        # The ids (a generator of their own: the interruption points stay the seed's).
        names = random.Random(seed + 1)
        group_id = distinguishing_id("eos-group", INTERNAL_TOPIC_PARTITIONS, rng=names)
        transactional_id = distinguishing_id("eos-app", INTERNAL_TOPIC_PARTITIONS, rng=names)
        keys = {TRANSACTION_COORDINATOR: (transactional_id, TRANSACTION), GROUP_COORDINATOR: (group_id, GROUP)}
        produce_input(bootstrap, input_topic, total, PARTITIONS)
        input_ends = end_offsets(bootstrap, input_topic, PARTITIONS)
        assert sum(input_ends) == total, f"input end offsets {input_ends}, expected {total} records"

        print(f"{cluster.kind} ({client}): seed {seed}; {total} records; interruptions {INTERRUPTIONS}; "
              f"group {group_id} (Java hash {java_string_hash(group_id)}), transactional id {transactional_id} "
              f"(Java hash {java_string_hash(transactional_id)})")
        app = ClientAppProcess(command, [bootstrap, input_topic, output_topic, group_id, transactional_id],
                               tmp_path / "eos_app.log")
        # Follows the group's offsets as they are committed (read_uncommitted: never waits for pending ones).
        monitor = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False,
                            "isolation.level": "read_uncommitted", "log_level": 0})
        interruptions_done: list[str] = []
        # What each kill of the application left open: {partition: (last stable offset, high watermark)}.
        killed_open_transactions: list[dict[int, tuple[int, int]]] = []
        unplanned_exits: list[int] = []
        progress = 0
        started_at = time.monotonic()

        def safe_state_now() -> str:
            try:
                return state_now(bootstrap, everyone, input_topic, output_topic, group_id, transactional_id)
            except Exception as error:  # a failure message must not fail for want of its details
                return f"(not known: {error!r})"

        def last_commit_logged() -> str:
            lines = [line for line in app.log_path.read_text(errors="replace").splitlines()
                     if line.startswith("committed ")]
            return lines[-1] if lines else "none"

        def details() -> str:
            return (f"{cluster.kind} ({client}), seed {seed}, {time.monotonic() - started_at:.0f}s, group progress "
                    f"{progress}/{total}, interruptions {interruptions_done}, unplanned app exits "
                    f"{unplanned_exits}\nthe application's last commit: {last_commit_logged()}; now: "
                    f"{safe_state_now()}\n{skein_coordination_counters(cluster)}"
                    f"\n{app.log_tail()}\n{cluster.log_tails(30)}")

        def tend_app() -> None:
            """Restarts the application when it exited by itself (pytest.fail, which the polls do not catch, once it
            did so too often)."""
            exit_code = app.exit_code()
            if exit_code is not None:
                unplanned_exits.append(exit_code)
                if len(unplanned_exits) > MAX_UNPLANNED_EXITS:
                    pytest.fail(f"the application keeps failing: {details()}")
                app.start()

        def wait_in_sync() -> None:
            """Every partition of the four topics led, with its full ISR (the application tended meanwhile)."""
            for topic, partitions in ((input_topic, PARTITIONS), (output_topic, PARTITIONS),
                                      (TRANSACTION_STATE_TOPIC, INTERNAL_TOPIC_PARTITIONS),
                                      (OFFSETS_TOPIC, INTERNAL_TOPIC_PARTITIONS)):
                tend_app()
                wait_for_full_isr(bootstrap, topic, partitions, REPLICATION_FACTOR, CATCH_UP_SECONDS)

        def placement(target: str, bootstraps: list[str], not_on: int | None = None) -> Placement | Unmet:
            """Where `target` is, asked of `bootstraps`: the leader of output partition 0, or a coordinator on which
            Metadata's placement and FindCoordinator agree; Unmet while there is none, they disagree, or it is still on
            broker `not_on`."""
            through = ",".join(bootstraps)
            if target == OUTPUT_LEADER:
                state = partition_states(through, output_topic).get(0)
                found = Placement(state.leader, output_topic, 0) if state is not None and state.leader >= 0 else None
            else:
                placed = agreed_coordinator(bootstraps, *keys[target])
                if isinstance(placed, str):
                    return Unmet(placed)
                found = Placement(placed.node_id, placed.topic, placed.partition)
            return found if found is not None and found.node_id != not_on else Unmet(found)

        def wait_for(target: str, bootstraps: list[str], what: str, timeout: float, not_on: int | None = None):
            def check():
                tend_app()
                return placement(target, bootstraps, not_on)
            return poll_until(check, f"the {target} ({what})", timeout)

        def kill_app_in_transaction(commits: int) -> None:
            """SIGKILLs the application while its transaction is Ongoing with records in the output
            (support.open_transactions.kill_in_open_transaction: frozen with SIGSTOP when DescribeTransactions shows
            it Ongoing, checked, SIGKILLed or let go on), so the restarted application aborts it."""
            at = time.monotonic() - started_at
            killed = kill_in_open_transaction(app, lambda: describe_transaction(everyone, transactional_id), bootstrap,
                                              output_topic, PARTITIONS, CATCH_TRANSACTION_SECONDS, details, tend_app)
            app.new_commits()  # lines the killed run wrote last
            app.start()
            killed_open_transactions.append(killed.left_open)
            interruptions_done.append(f"{APPLICATION} killed after {commits} commits at {at:.0f}s with its "
                                      f"transaction Ongoing, {{output partition: (last stable offset, high "
                                      f"watermark)}} {killed.left_open}, frozen {killed.freezes} times to catch it")
            print(f"{cluster.kind} ({client}): {interruptions_done[-1]}")

        def kill_broker(target: str, commits: int) -> None:
            """SIGKILLs the broker that is `target`, waits until another broker took its place, restarts it."""
            at = time.monotonic() - started_at
            wait_in_sync()
            found = wait_for(target, everyone, "Metadata's placement and FindCoordinator agreeing", AGREE_SECONDS)
            victim = cluster.node(found.node_id)
            survivors = [node.bootstrap for node in cluster.nodes if node is not victim]
            killed_at = time.monotonic()
            assert victim.kill() == -9, f"broker {victim.node_id} was not running: {details()}"
            successor = wait_for(target, survivors, f"on a broker other than the killed {victim.node_id}",
                                 FAILOVER_SECONDS, not_on=victim.node_id)
            failover = time.monotonic() - killed_at
            cluster.start(nodes=[victim], timeout=BROKER_RESTART_TIMEOUT_SECONDS)
            cluster.wait_for_brokers(REPLICATION_FACTOR)
            interruptions_done.append(f"{target} (broker {victim.node_id}, leader of {found.topic}-"
                                      f"{found.partition}) killed after {commits} commits at {at:.0f}s; broker "
                                      f"{successor.node_id} took over after {failover:.1f}s; back "
                                      f"{time.monotonic() - killed_at:.1f}s after the kill")
            print(f"{cluster.kind} ({client}): {interruptions_done[-1]}")

        try:
            app.start()
            commits_since_interruption = 0
            commits_wanted = rng.randint(*COMMITS_BEFORE_INTERRUPTION)
            next_progress_check = 0.0
            progress_at = time.monotonic()
            while True:
                assert time.monotonic() - started_at < deadline, (
                    f"input not processed within {deadline}s: {details()}")
                tend_app()
                commits_since_interruption += app.new_commits()
                if len(interruptions_done) < len(INTERRUPTIONS) and commits_since_interruption >= commits_wanted:
                    target = INTERRUPTIONS[len(interruptions_done)]
                    if target == APPLICATION:
                        kill_app_in_transaction(commits_since_interruption)
                    else:
                        kill_broker(target, commits_since_interruption)
                    commits_since_interruption = 0
                    commits_wanted = rng.randint(*COMMITS_BEFORE_INTERRUPTION)
                if time.monotonic() >= next_progress_check:
                    offsets = committed_offsets(monitor, input_topic)
                    if offsets is not None:
                        if sum(offsets) != progress:
                            progress, progress_at = sum(offsets), time.monotonic()
                        if offsets == input_ends:
                            break
                    assert time.monotonic() - progress_at < STALL_SECONDS, (
                        f"the group's committed offsets did not move for {STALL_SECONDS}s: {details()}")
                    next_progress_check = time.monotonic() + 0.5
                time.sleep(0.01)
            processing_seconds = time.monotonic() - started_at
            assert len(interruptions_done) == len(INTERRUPTIONS), (
                f"the input was processed before every interruption ({len(interruptions_done)} of "
                f"{len(INTERRUPTIONS)}; SKEIN_EOS_CLUSTER_RECORDS gives more): {details()}")
            exit_code = app.stop()
            assert exit_code == 0, f"the application did not stop cleanly (exit code {exit_code}): {details()}"
        finally:
            app.kill()
            monitor.close()

        # The group's stable offsets (a read_committed consumer asks for those) are the input's end offsets.
        stable = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False,
                           "isolation.level": "read_committed", "log_level": 0})
        try:
            poll_until(lambda: (offsets := committed_offsets(stable, input_topic)) == input_ends or Unmet(offsets),
                       f"the group's stable committed offsets at the input's end {input_ends}", SETTLE_SECONDS)
        finally:
            stable.close()
        # No transaction left open: every output partition's last stable offset reaches its high watermark.
        poll_until(lambda: ((lso := end_offsets(bootstrap, output_topic, PARTITIONS, "read_committed"))
                            == (hw := end_offsets(bootstrap, output_topic, PARTITIONS)) or Unmet((lso, hw))),
                   "output last stable offsets (first) at the high watermarks (second)", SETTLE_SECONDS)

        output = read_to_end(bootstrap, output_topic, PARTITIONS, "read_committed", READ_BACK_TIMEOUT_SECONDS)
        numbers = [n for p in range(PARTITIONS) for n in output_numbers(output[p])]
        counts = Counter(numbers)
        missing = sorted(set(range(total)) - counts.keys())
        duplicated = sorted(n for n, count in counts.items() if count > 1)
        unexpected = sorted(n for n in counts if not 0 <= n < total)
        assert (len(missing), len(duplicated), len(unexpected)) == (0, 0, 0), (
            f"{len(missing)} numbers missing (first {missing[:10]}), {len(duplicated)} duplicated (first "
            f"{duplicated[:10]}), {len(unexpected)} not in the input (first {unexpected[:10]}) in {len(numbers)} "
            f"committed output records: {details()}")
        assert len(numbers) == total
        for p in range(PARTITIONS):
            partition_numbers = output_numbers(output[p])
            expected = list(range(p, total, PARTITIONS))
            if partition_numbers != expected:
                at = next(i for i, (got, want) in enumerate(zip_longest(partition_numbers, expected)) if got != want)
                pytest.fail(f"output partition {p} not in input order: from position {at} "
                            f"{partition_numbers[at:at + 5]} instead of {expected[at:at + 5]}: {details()}")

        # The transactions the application's kills left open, records in the log, were aborted: read_uncommitted
        # sees their records (at least those between the last stable offset and the high watermark at the kill).
        all_output = read_to_end(bootstrap, output_topic, PARTITIONS, "read_uncommitted", READ_BACK_TIMEOUT_SECONDS)
        aborted_records = sum(len(messages) for messages in all_output.values()) - total
        left_open = sum(hw - lso for kill in killed_open_transactions for lso, hw in kill.values())
        assert aborted_records >= left_open > 0, (
            f"{aborted_records} records of aborted transactions in the output (read_uncommitted: "
            f"{[len(all_output[p]) for p in range(PARTITIONS)]} records per partition), but the application's kills "
            f"left {left_open} records of open transactions: {killed_open_transactions}: {details()}")
    except BaseException:
        keep_broker_logs(cluster, tmp_path)
        raise
    print(f"{cluster.kind} ({client}): processed {total} records in {processing_seconds:.0f}s, "
          f"{aborted_records} output records aborted, {len(unplanned_exits)} unplanned application exits "
          f"{unplanned_exits}; seed {seed}; {'; '.join(interruptions_done)}")
