"""Replicated partitions under faults: a 3-node cluster, Skein and Apache Kafka (the reference) side by side.

Every test creates its own topic: 3 partitions, replication factor 3, `min.insync.replicas=2` and
`unclean.leader.election.enable=false`. An idempotent acks=all producer writes to it at a steady rate for the
whole test while a reader consumes it concurrently, one fault is injected (several rounds of it), and at the end
a fresh consumer reads every partition from the beginning to its end offset. The checker
(tests/support/replication_checker.py) then asserts, in the spirit of Jepsen's Kafka workload: no acknowledged
record lost, no record stored twice, acknowledged records of a partition in the log in the order they were sent,
every acknowledged offset holding the acknowledged value, no gap below the end offsets, and nothing the reader
was served during the run missing from that offset afterwards ("reads that vanish"). Each test prints one
summary line with the counts (also recorded as the junit property `replication_check`); when the checker finds
something, the whole history goes to replication-history.json in the test's tmp_path, next to the producer's
librdkafka debug log (producer-debug.log; SKEIN_REPLICATION_CLIENT_DEBUG=0 turns it off). When a fault does not
play out (no new leader, no progress, no full ISR in time) the topic is still read back and checked, best effort,
before the test fails.

The faults (Kafka's behaviour is the expectation):
1. SIGKILL the leader of partition 0, restart it, wait until it is back in every ISR; again for the next leader.
   Each round a surviving ISR member takes over and every partition keeps taking acks=all writes (2 in-sync
   replicas remain); after the last restart production succeeds on every partition within LIVENESS_SECONDS.
2. Two of three brokers down (SIGKILL, one after the other; the survivor leads partition 0): with one broker up
   no acks=all write is acknowledged (a direct probe without retries gets NOT_ENOUGH_REPLICAS or a time-out, and
   no record the workload sent in the outage is acknowledged before the other brokers return); restarted,
   production resumes. The workload's records wait out the outage in the producer (message.timeout.ms is longer):
   once in-flight records of an idempotent librdkafka producer time out, records it sends again can be stored
   twice, by Kafka too (seen: thousands of duplicates with an 8 s message timeout), so no test lets that happen.
3. SIGSTOP the leader of partition 0 until a survivor has taken over (longer than the broker session timeout)
   and production goes on without it, then SIGCONT: the zombie must not acknowledge anything that is lost.
4. Stop every node (SIGTERM) in the middle of the load and start them again. (Kafka once stored one record
   twice here, in about ten runs: acknowledged at the second copy, no producer error; the producer debug log is
   kept for the next time.)
5. Cut the leader of partition 0 off from the other two brokers with packet rules (every node runs in a network
   namespace of its own, support.node_network; clients still reach all three) past its session, then heal: the
   majority elects a new leader, the old one acknowledges nothing that is lost, and rejoins the ISR.
Fault 1 runs once more with the Java client as the producer (tests/support/java/ReplicatedProducer.java, an
idempotent acks=all kafka-clients producer writing the same records; JavaWorkload in the checker's module) and the
same reader and checker; its stderr goes to producer-java.log in the test's tmp_path. It is skipped without javac or
the kafka-clients jars (conformance/java/setup).

CI mode is short; a long run by hand raises the environment variables below, e.g.
`SKEIN_REPLICATION_ROUNDS=10 SKEIN_REPLICATION_PAUSES=5 SKEIN_REPLICATION_RESTARTS=3
SKEIN_REPLICATION_JAVA_ROUNDS=5 .tools/venv/bin/pytest tests/test_replication.py -k kafka -s`.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import time

import pytest
from confluent_kafka import KafkaError, Producer

from support import node_network
from support.brokers import BROKER_KINDS, skip_kafka_reference_outside_long_mode
from support.cluster import CLUSTER_CONFIG, make_cluster, skip_unless_cluster_available, started
from support.cluster import healthy as make_healthy
from support.java_programs import java_program_command
from support.kafka_clients import unique_topic_name
from support.replication_checker import (UNAVAILABLE_ERRORS, JavaWorkload, Workload, check,
                                         create_replicated_topic, error_name, partition_states, poll_until,
                                         read_log, wait_for_full_isr, wait_for_new_leader)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


# Rounds of each fault and the load (environment variables; the defaults keep CI short).
KILL_ROUNDS = _env_int("SKEIN_REPLICATION_ROUNDS", 2)
# Rounds of fault 1 under the Java producer.
JAVA_ROUNDS = _env_int("SKEIN_REPLICATION_JAVA_ROUNDS", 1)
PAUSE_ROUNDS = _env_int("SKEIN_REPLICATION_PAUSES", 1)
RESTART_ROUNDS = _env_int("SKEIN_REPLICATION_RESTARTS", 1)
# How long only one broker is up in the two-down test.
OUTAGE_SECONDS = _env_int("SKEIN_REPLICATION_OUTAGE_SECONDS", 15)
# Load between faults, and before the final read.
STEADY_SECONDS = _env_int("SKEIN_REPLICATION_STEADY_SECONDS", 3)
# Records per second, over all partitions.
RATE = _env_int("SKEIN_REPLICATION_RATE", 300)
# The producer's librdkafka debug log (eos, msg) in the test's tmp_path, named when the checker finds something.
CLIENT_DEBUG = os.environ.get("SKEIN_REPLICATION_CLIENT_DEBUG", "1") != "0"

PARTITIONS = 3
REPLICATION_FACTOR = 3
TOPIC_CONFIG = {"min.insync.replicas": 2, "unclean.leader.election.enable": False}
# On top of support.cluster.CLUSTER_CONFIG (6 s broker sessions, 500 ms heartbeats): a follower is dropped from
# the ISR after 10 s without catching up, not sooner on a busy 2-core machine.
REPLICATION_CONFIG = {"replica.lag.time.max.ms": 10000, "unclean.leader.election.enable": False}
SESSION_TIMEOUT_SECONDS = CLUSTER_CONFIG["broker.session.timeout.ms"] / 1000
# Acknowledged records before the first fault.
WARMUP_ACKS = 300
# A new leader is elected this long after the old one died or froze (session timeout + election + slack).
FAILOVER_SECONDS = 30
# Production succeeds on every partition this long after a fault ends (or, with two replicas left, begins).
LIVENESS_SECONDS = 30
# A restarted replica is back in every ISR within this.
CATCH_UP_SECONDS = 60
# The two-down test's probe: one acks=all record to a partition the survivor leads, without retries.
PROBE_TIMEOUT_MS = 6000


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module", params=BROKER_KINDS)
def cluster(request):
    # Every scenario of this module checks Skein against the guarantees; Kafka's runs (showing the scenarios
    # hold for Kafka too) are long mode, which keeps CI within its time.
    skip_kafka_reference_outside_long_mode(request.param)
    skip_unless_cluster_available(request.param)
    cluster = started(make_cluster(request.param, config=REPLICATION_CONFIG))
    yield cluster
    cluster.close()


@pytest.fixture
def healthy(cluster):
    """The module's cluster with all three nodes running and listed (restarts what an earlier failure left down)."""
    return make_healthy(cluster)


@pytest.fixture
def topic(healthy):
    name = unique_topic_name("replicated")
    create_replicated_topic(healthy.bootstrap_servers, name, PARTITIONS, REPLICATION_FACTOR, TOPIC_CONFIG)
    return name


# ------------------------------------------------------------------------------------------ helpers

def bootstrap_of(nodes) -> str:
    return ",".join(node.bootstrap for node in nodes)


def leader_of(cluster, topic: str, partition: int):
    """The node Metadata names as the partition's leader."""
    state = poll_until(lambda: partition_states(cluster.running_bootstrap(), topic).get(partition),
                       f"metadata of {topic}-{partition}", 30)
    assert state.leader in {node.node_id for node in cluster.nodes}, state
    return cluster.node(state.leader), state


def confluent_workload(bootstrap: str, topic: str, tmp_path) -> Workload:
    """The default load: a confluent-kafka producer, its librdkafka debug log in tmp_path (CLIENT_DEBUG)."""
    return Workload(bootstrap, topic, PARTITIONS, rate=RATE,
                    client_log=tmp_path / "producer-debug.log" if CLIENT_DEBUG else None)


def java_workload(command: list[str]):
    """A workload factory for CheckedRun: the Java producer (`command` from java_program_command), its stderr in
    tmp_path."""
    def factory(bootstrap: str, topic: str, tmp_path) -> JavaWorkload:
        return JavaWorkload(bootstrap, topic, PARTITIONS, command, rate=RATE,
                            client_log=tmp_path / "producer-java.log")
    return factory


class CheckedRun:
    """`with CheckedRun(...) as run:` starts the workload (run.workload) on the test's topic, waits for
    WARMUP_ACKS acknowledgements, and runs the block (the faults). Leaving the block normally, it stops the
    workload, waits until every replica is in sync again, reads the topic back and checks it: the summary line is
    printed and recorded, the whole history goes to a JSON file when the checker found something, and the checker's
    findings fail the test before a missing ISR does. When the block fails (a fault did not play out as in Kafka),
    the workload is abandoned and the topic still read back and checked, best effort, so the log shows whether
    records were lost too; the block's failure is what the test reports. `workload_factory(bootstrap, topic,
    tmp_path)` makes the workload (confluent_workload by default, java_workload(command) for the Java producer)."""

    def __init__(self, cluster, topic: str, label: str, record_property, tmp_path, workload_factory=None):
        self.cluster = cluster
        self.topic = topic
        self.label = f"{cluster.kind} {label}"
        self.record_property = record_property
        self.tmp_path = tmp_path
        self.unacked: set[str] = set()  # values written outside the workload, unacknowledged (probes)
        self.workload = (workload_factory or confluent_workload)(cluster.bootstrap_servers, topic, tmp_path)
        self.client_log = self.workload.client_log  # the producer's own log, when it keeps one
        self.result = None

    def __enter__(self) -> "CheckedRun":
        self.workload.start()
        try:
            self.workload.wait_for_acks(WARMUP_ACKS, LIVENESS_SECONDS)
        except BaseException:
            self.workload.stop(abandon=True)
            raise
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is None:
            self.workload.stop()
            try:
                self._finish()
            except BaseException:
                self._keep_broker_logs()
                raise
        elif not issubclass(exc_type, KeyboardInterrupt):
            self._keep_broker_logs()
            try:
                self.workload.stop(abandon=True)
                log = read_log(self.cluster.running_bootstrap() or self.cluster.bootstrap_servers, self.topic,
                               PARTITIONS, timeout=30)
                self._report(log, note=" (read back after the failure below)")
            except Exception as error:  # the cluster may be in no state to answer
                print(f"{self.label}: no read back after the failure: {error!r}")
        else:  # interrupted: only stop the producer (and its process)
            try:
                self.workload.stop(abandon=True)
            except Exception:
                pass
        return False

    def _keep_broker_logs(self) -> None:
        """Copies every node's log into the test's tmp_path (the nodes' own directories go with the cluster)."""
        for node in self.cluster.nodes:
            try:
                shutil.copyfile(node.log_path, self.tmp_path / f"broker-{node.node_id}.log")
            except OSError as error:
                print(f"cannot keep the log of node {node.node_id}: {error}")
        print(f"  broker logs: {self.tmp_path}/broker-*.log")

    def _report(self, log, note: str = ""):
        result = check(self.workload, log, label=self.label, unacked=frozenset(self.unacked))
        print(result.summary() + note)
        print(f"  end offsets {log.end_offsets}; producer errors {dict(result.producer_errors)}; client errors "
              f"{dict(result.client_errors)}; reader errors {dict(result.reader_errors)}; fatal "
              f"{result.fatal_errors[:3]}")
        self.record_property("replication_check", result.summary() + note)
        if result.violations():
            history = self.tmp_path / "replication-history.json"
            result.dump(history, self.workload, log)
            print(f"  history: {history}" + (f"; producer log: {self.client_log}" if self.client_log else ""))
        return result

    def _finish(self) -> None:
        in_sync_error = None
        try:
            wait_for_full_isr(self.cluster.bootstrap_servers, self.topic, PARTITIONS, REPLICATION_FACTOR,
                              CATCH_UP_SECONDS)
        except AssertionError as error:
            in_sync_error = error
        log = read_log(self.cluster.bootstrap_servers, self.topic, PARTITIONS)
        result = self.result = self._report(log)
        problems = result.violations()
        if self.cluster.kind == "kafka" and problems and all(p.startswith("duplicated") for p in problems):
            # The reference's own rare duplicate (see fault 4 above) is recorded, not a failure of this suite;
            # Skein is held to zero.
            pytest.xfail(f"Apache Kafka stored records twice: {problems}")
        result.assert_ok()
        if in_sync_error is not None:
            raise in_sync_error
        assert result.unresolved == 0, result.summary()
        assert result.acknowledged >= WARMUP_ACKS, result.summary()
        assert result.read_during_run > 0, result.summary()


def _wait_until_out_of_isr(bootstrap: str, topic: str, node_id: int, timeout: float):
    def out():
        states = partition_states(bootstrap, topic)
        return len(states) == PARTITIONS and all(node_id not in s.isr and s.leader not in (-1, node_id)
                                                 for s in states.values()) and states
    return poll_until(out, f"broker {node_id} out of every ISR of {topic}", timeout)


# ------------------------------------------------------------------------------------------ 1. SIGKILL

def kill_the_leader(run: CheckedRun, rounds: int) -> None:
    """Fault 1 inside a CheckedRun: `rounds` times, SIGKILL the leader of partition 0, wait for a new leader (an
    ISR member) and production on every partition, restart it and wait until it is back in every ISR; then
    production on every partition after the last restart."""
    cluster, topic = run.cluster, run.topic
    for round_number in range(1, rounds + 1):
        victim, before = leader_of(cluster, topic, 0)
        survivors = [node for node in cluster.nodes if node is not victim]
        killed_at = time.monotonic()
        victim.kill()
        after = wait_for_new_leader(bootstrap_of(survivors), topic, 0, victim.node_id, FAILOVER_SECONDS)
        failover = time.monotonic() - killed_at
        # Only an in-sync replica may take over (unclean leader election is off).
        assert after.leader in before.isr, (before, after)
        # Two in-sync replicas are left, min.insync.replicas is 2: every partition keeps taking writes.
        progress = run.workload.wait_for_progress(killed_at, LIVENESS_SECONDS)
        time.sleep(STEADY_SECONDS)
        starting_at = time.monotonic()
        victim.start()
        restarted_at = time.monotonic()
        wait_for_full_isr(cluster.bootstrap_servers, topic, PARTITIONS, REPLICATION_FACTOR, CATCH_UP_SECONDS)
        print(f"{cluster.kind} round {round_number}: killed broker {victim.node_id} (leader of partition 0), "
              f"broker {after.leader} led after {failover:.1f}s, every partition acknowledged after "
              f"{progress:.1f}s; restarted in {restarted_at - starting_at:.1f}s, back in every ISR "
              f"{time.monotonic() - restarted_at:.1f}s later")
    # Liveness after the last restart.
    resumed = run.workload.wait_for_progress(restarted_at, LIVENESS_SECONDS)
    print(f"{cluster.kind}: production on every partition {resumed:.1f}s after the last restart")
    time.sleep(STEADY_SECONDS)


@pytest.mark.timeout(240 + 120 * KILL_ROUNDS)
def test_killing_the_leader_repeatedly_loses_no_acknowledged_record(healthy, topic, record_property, tmp_path):
    skip_kafka_reference_outside_long_mode(healthy.kind)
    with CheckedRun(healthy, topic, f"sigkill leader x{KILL_ROUNDS}", record_property, tmp_path) as run:
        kill_the_leader(run, KILL_ROUNDS)


@pytest.mark.timeout(300 + 120 * JAVA_ROUNDS)
def test_killing_the_leader_under_a_java_producer_loses_no_acknowledged_record(healthy, topic, record_property,
                                                                               tmp_path):
    command = java_program_command("ReplicatedProducer")  # skips without javac or the jars
    with CheckedRun(healthy, topic, f"sigkill leader x{JAVA_ROUNDS}, java producer", record_property, tmp_path,
                    workload_factory=java_workload(command)) as run:
        kill_the_leader(run, JAVA_ROUNDS)


# ------------------------------------------------------------------------------------------ 2. two down

def probe_produce(bootstrap: str, topic: str, partition: int, value: str) -> KafkaError | None:
    """One acks=all record, no retries: the delivery error (None when acknowledged)."""
    outcome = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0, "linger.ms": 0,
                         "request.timeout.ms": PROBE_TIMEOUT_MS // 2, "message.timeout.ms": PROBE_TIMEOUT_MS,
                         "log_level": 0})
    producer.produce(topic, value=value.encode(), partition=partition,
                     on_delivery=lambda error, message: outcome.append(error))
    producer.flush(PROBE_TIMEOUT_MS / 1000 + 10)
    assert outcome, f"no delivery report for the probe within {PROBE_TIMEOUT_MS / 1000 + 10}s"
    return outcome[0]


@pytest.mark.timeout(360)
def test_with_two_of_three_brokers_down_nothing_is_acknowledged(healthy, topic, record_property, tmp_path):
    cluster = healthy
    with CheckedRun(cluster, topic, "two of three down", record_property, tmp_path) as run:
        workload = run.workload
        survivor, _ = leader_of(cluster, topic, 0)
        first, second = [node for node in cluster.nodes if node is not survivor]

        # One broker down: it leaves every ISR, two in-sync replicas remain and production goes on.
        first_down_at = time.monotonic()
        first.kill()
        _wait_until_out_of_isr(bootstrap_of([survivor, second]), topic, first.node_id, FAILOVER_SECONDS)
        progress = workload.wait_for_progress(first_down_at, LIVENESS_SECONDS)
        print(f"{cluster.kind}: broker {first.node_id} killed; out of every ISR, and every partition "
              f"acknowledged {progress:.1f}s after")
        time.sleep(STEADY_SECONDS)

        # The second one down: only the survivor is up; acks=all with min.insync.replicas=2 cannot be satisfied.
        second.kill()
        down_at = time.monotonic()
        partition = next((p for p, s in partition_states(survivor.bootstrap, topic).items()
                          if s.leader == survivor.node_id), 0)
        probe_value = f"probe-{topic}"
        run.unacked.add(probe_value)
        probe_error = probe_produce(survivor.bootstrap, topic, partition, probe_value)
        print(f"{cluster.kind}: with broker {survivor.node_id} alone, an acks=all produce to partition {partition} "
              f"got {probe_error and probe_error.name()}")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        restart_at = time.monotonic()
        acknowledged_in_outage = workload.acks_between(down_at, restart_at)

        cluster.start(nodes=[first, second])
        restarted_at = time.monotonic()
        resumed = workload.wait_for_progress(restarted_at, LIVENESS_SECONDS)
        print(f"{cluster.kind}: brokers {first.node_id} and {second.node_id} restarted "
              f"{restarted_at - restart_at:.1f}s after the outage; production on every partition {resumed:.1f}s later")

        assert probe_error is not None, "an acks=all produce was acknowledged with only one of three brokers up"
        assert probe_error.code() in UNAVAILABLE_ERRORS, f"probe failed with {probe_error}"
        assert acknowledged_in_outage == [], (
            f"{len(acknowledged_in_outage)} records sent with only one broker up were acknowledged before the "
            f"others returned (first {acknowledged_in_outage[:3]})")
        time.sleep(STEADY_SECONDS)

    # Records sent while only one broker was up waited in the producer (retried) and were acknowledged once two
    # replicas were in sync again.
    with workload.lock:
        acked_later = [a for a in workload.acks if down_at <= a.sent_at < restart_at]
        failed = [f for f in workload.failures if down_at <= f.sent_at < restart_at]
    print(f"{cluster.kind}: {len(acked_later) + len(failed)} records sent during the {restart_at - down_at:.1f}s "
          f"outage: none acknowledged during it, {len(acked_later)} after it, {len(failed)} failed "
          f"({sorted({error_name(f.code) for f in failed})})")
    assert acked_later or failed, "the workload sent nothing during the outage"


# ------------------------------------------------------------------------------------------ 3. SIGSTOP

@pytest.mark.timeout(240 + 150 * PAUSE_ROUNDS)
def test_a_frozen_leader_acknowledges_nothing_that_is_lost(healthy, topic, record_property, tmp_path):
    cluster = healthy
    with CheckedRun(cluster, topic, f"sigstop leader x{PAUSE_ROUNDS}", record_property, tmp_path) as run:
        for round_number in range(1, PAUSE_ROUNDS + 1):
            # The fault assumes followers in sync to take over: on a loaded machine the ISR can be shrunk for a
            # moment (followers more than replica.lag.time.max.ms behind), leaving no eligible leader.
            wait_for_full_isr(cluster.bootstrap_servers, topic, PARTITIONS, REPLICATION_FACTOR, CATCH_UP_SECONDS)
            zombie, before = leader_of(cluster, topic, 0)
            survivors = [node for node in cluster.nodes if node is not zombie]
            pid = zombie.pid
            stopped_at = time.monotonic()
            os.kill(pid, signal.SIGSTOP)
            try:
                after = wait_for_new_leader(bootstrap_of(survivors), topic, 0, zombie.node_id, FAILOVER_SECONDS)
                failover_at = time.monotonic()
                assert after.leader in before.isr, (before, after)
                # The cluster goes on without the frozen broker.
                progress = run.workload.wait_for_progress(failover_at, LIVENESS_SECONDS)
                time.sleep(STEADY_SECONDS)
                frozen_for = time.monotonic() - stopped_at
            finally:
                os.kill(pid, signal.SIGCONT)
            resumed_at = time.monotonic()
            assert frozen_for > SESSION_TIMEOUT_SECONDS, frozen_for
            wait_for_full_isr(cluster.bootstrap_servers, topic, PARTITIONS, REPLICATION_FACTOR, CATCH_UP_SECONDS)
            print(f"{cluster.kind} round {round_number}: froze broker {zombie.node_id} (leader of partition 0) for "
                  f"{frozen_for:.1f}s; broker {after.leader} led after {failover_at - stopped_at:.1f}s, every "
                  f"partition acknowledged {progress:.1f}s later; back in every ISR "
                  f"{time.monotonic() - resumed_at:.1f}s after SIGCONT")
        resumed = run.workload.wait_for_progress(resumed_at, LIVENESS_SECONDS)
        print(f"{cluster.kind}: production on every partition {resumed:.1f}s after the last SIGCONT")
        time.sleep(STEADY_SECONDS)


# ------------------------------------------------------------------------------------------ 4. full restart

@pytest.mark.timeout(240 + 150 * RESTART_ROUNDS)
def test_restarting_the_whole_cluster_under_load_loses_nothing(healthy, topic, record_property, tmp_path):
    cluster = healthy
    with CheckedRun(cluster, topic, f"whole-cluster restart x{RESTART_ROUNDS}", record_property, tmp_path) as run:
        for round_number in range(1, RESTART_ROUNDS + 1):
            stopping_at = time.monotonic()
            cluster.stop_all(kill_kafka_left_without_quorum=True)
            stopped = time.monotonic() - stopping_at
            cluster.start()
            restarted_at = time.monotonic()
            cluster.wait_for_brokers(3, timeout=60)
            resumed = run.workload.wait_for_progress(restarted_at, LIVENESS_SECONDS)
            print(f"{cluster.kind} round {round_number}: all nodes stopped in {stopped:.1f}s, started in "
                  f"{restarted_at - stopping_at - stopped:.1f}s; production on every partition {resumed:.1f}s later")
            wait_for_full_isr(cluster.bootstrap_servers, topic, PARTITIONS, REPLICATION_FACTOR, CATCH_UP_SECONDS)
            time.sleep(STEADY_SECONDS)


# ------------------------------------------------------------------------------------------ 4b. rolling restart

# The longest a partition may go without an acknowledgement while one broker at a time restarts cleanly: its
# SIGTERM first hands leadership to an in-sync replica (controlled shutdown), so producers only wait for a
# metadata refresh and a retry.
ROLLING_GAP_SECONDS = 15


@pytest.mark.timeout(240 + 150 * RESTART_ROUNDS)
def test_a_rolling_restart_loses_nothing_and_stalls_nothing(healthy, topic, record_property, tmp_path):
    skip_kafka_reference_outside_long_mode(healthy.kind)
    cluster = healthy
    with CheckedRun(cluster, topic, f"rolling restart x{RESTART_ROUNDS}", record_property, tmp_path) as run:
        rolling_from = time.monotonic()
        for round_number in range(1, RESTART_ROUNDS + 1):
            for node in cluster.nodes:
                stopping_at = time.monotonic()
                exit_code = node.stop()
                assert exit_code == node.clean_exit_code, f"node {node.node_id} exited with {exit_code} on SIGTERM"
                node.start()
                wait_for_full_isr(cluster.bootstrap_servers, topic, PARTITIONS, REPLICATION_FACTOR, CATCH_UP_SECONDS)
                print(f"{cluster.kind} round {round_number}: node {node.node_id} restarted and back in every ISR "
                      f"{time.monotonic() - stopping_at:.1f}s after its SIGTERM")
        rolling_until = time.monotonic()
        time.sleep(STEADY_SECONDS)
        with run.workload.lock:
            acked_at = sorted((ack.partition, ack.acked_at) for ack in run.workload.acks)
        gaps = {}
        for partition in range(PARTITIONS):
            times = [rolling_from] + [t for p, t in acked_at if p == partition and rolling_from <= t <= rolling_until]
            times.append(rolling_until)
            gaps[partition] = max(later - earlier for earlier, later in zip(times, times[1:]))
        print(f"{cluster.kind}: longest time without an acknowledgement per partition during the rolling restart: "
              f"{ {p: round(g, 1) for p, g in gaps.items()} }")
        assert max(gaps.values()) < ROLLING_GAP_SECONDS, gaps


# ------------------------------------------------------------------------------------------ 5. isolation

@pytest.fixture(scope="module", params=BROKER_KINDS)
def isolated_cluster(request):
    """A cluster whose nodes each run in a network namespace of their own (support.node_network), so packet rules
    can cut one broker off from the others while clients still reach it."""
    skip_kafka_reference_outside_long_mode(request.param)
    skip_unless_cluster_available(request.param)
    if not node_network.usable():
        pytest.skip("network namespaces and iptables are not usable here (the isolation test needs root)")
    network = node_network.NodeNetwork(3).make()
    try:
        cluster = started(make_cluster(request.param, config=REPLICATION_CONFIG, network=network))
        yield cluster
        cluster.close()
    finally:
        network.close()


@pytest.mark.timeout(240 + 150 * PAUSE_ROUNDS)
def test_an_isolated_leader_acknowledges_nothing_that_is_lost(isolated_cluster, record_property, tmp_path):
    """The leader of partition 0 is cut off from the other two brokers (clients still reach it) past its session:
    the others elect a new leader and go on; the old one cannot replicate, so no acks=all write it takes is
    acknowledged; healed, it learns the new leader, truncates what it alone had, and rejoins the ISR."""
    cluster = isolated_cluster
    network = cluster.network
    topic = unique_topic_name("isolated")
    create_replicated_topic(cluster.bootstrap_servers, topic, PARTITIONS, REPLICATION_FACTOR, TOPIC_CONFIG)
    with CheckedRun(cluster, topic, f"isolated leader x{PAUSE_ROUNDS}", record_property, tmp_path) as run:
        for round_number in range(1, PAUSE_ROUNDS + 1):
            isolated, before = leader_of(cluster, topic, 0)
            survivors = [node for node in cluster.nodes if node is not isolated]
            cut_at = time.monotonic()
            try:
                for other in survivors:
                    network.cut(isolated.node_id, other.node_id)
                after = wait_for_new_leader(bootstrap_of(survivors), topic, 0, isolated.node_id, FAILOVER_SECONDS)
                assert after.leader in before.isr, (before, after)
                progress = run.workload.wait_for_progress(time.monotonic(), LIVENESS_SECONDS)
                time.sleep(max(STEADY_SECONDS, SESSION_TIMEOUT_SECONDS - (time.monotonic() - cut_at)))
                isolated_for = time.monotonic() - cut_at
            finally:
                network.heal()
            # Asked of the majority's brokers: the isolated one may still show its stale view for a moment.
            wait_for_full_isr(bootstrap_of(survivors), topic, PARTITIONS, REPLICATION_FACTOR, CATCH_UP_SECONDS)
            print(f"{cluster.kind} round {round_number}: isolated broker {isolated.node_id} (leader of partition 0) "
                  f"for {isolated_for:.1f}s; broker {after.leader} took over; production on every partition "
                  f"{progress:.1f}s after; back in every ISR {time.monotonic() - cut_at - isolated_for:.1f}s after "
                  f"healing")
            time.sleep(STEADY_SECONDS)


# ------------------------------------------------------------------------------------------ the checker itself

def test_the_checker_counts_every_kind_of_violation():
    """The checker on a made-up history (no broker): each partition breaks one promise."""
    from support.replication_checker import Ack, Failure, LogContents

    workload = Workload("127.0.0.1:1", "made-up", partitions=4)
    acked = {0: ["p0-0", "p0-1"], 1: ["p1-0", "p1-1"], 2: ["p2-0", "p2-1"], 3: ["p3-0"]}
    workload.acks = [Ack(p, seq, seq, value, 0.0, 1.0) for p, values in acked.items()
                     for seq, value in enumerate(values)]
    workload.acks.append(Ack(3, 2, None, "p3-2", 0.0, 1.0))  # acknowledged without an offset: not a violation
    workload.failures = [Failure(3, 1, "p3-1", KafkaError._MSG_TIMED_OUT, 0.0, 1.0)]
    workload.reads = {(0, 0): "p0-0", (0, 1): "p0-1", (3, 0): "p3-0"}
    log = LogContents(records={
        0: {0: "p0-0"},                              # p0-1 acknowledged at 1, gone: lost, and its read vanished
        1: {0: "p1-0", 1: "p1-1", 2: "p1-0"},        # p1-0 twice: duplicated
        2: {0: "p2-1", 1: "p2-0"},                   # swapped: reordered, both offsets hold another value
        3: {0: "p3-0", 2: "p3-1", 3: "p3-2"},        # offset 1 missing: a gap; p3-1 failed but present
    }, end_offsets=[1, 3, 2, 4], errors=collections.Counter(), conflicts=[])
    result = check(workload, log, label="made-up")
    print(result.summary())
    assert (len(result.lost), len(result.duplicated), len(result.reordered), len(result.wrong_offset),
            len(result.gaps), len(result.vanished), result.unacked_present) == (1, 1, 1, 2, 1, 1, 1), result
    assert result.lost == [(0, 1, "p0-1")]
    assert result.duplicated == [("p1-0", [(1, 0), (1, 2)], "acked at 0")]
    assert result.gaps == [(3, 1)]
    assert result.vanished == [(0, 1, "p0-1", None)]
    assert result.no_offset == [(3, "p3-2")]
    assert (result.acknowledged, result.read_back, result.failed) == (8, 9, 1)
    with pytest.raises(AssertionError, match="lost=1 duplicated=1 reordered=1 wrong_offset=2 gaps=1 vanished=1"):
        result.assert_ok()
