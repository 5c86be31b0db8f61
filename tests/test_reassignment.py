"""Partition reassignment (KIP-455) with Kafka's own `kafka-reassign-partitions`, Skein and Apache Kafka (the
reference) side by side: per kind one cluster for the module, three voters (nodes 1-3, as tests/support/cluster.py
makes them) and node 4 with process.roles=broker, all four launched together. Node 4 holds nothing until a
reassignment moves replicas onto it.

What is proven, for both kinds (Kafka's answers are the expectations), in this order:
1. Errors of AlterPartitionReassignments, per partition (kafka-python's admin client; a raw v1 request where the
   client has no option): a broker that is not registered (99), a broker named twice or an empty replica list is
   INVALID_REPLICA_ASSIGNMENT; cancelling where nothing is under way is NO_REASSIGNMENT_IN_PROGRESS; an unknown topic
   or partition is UNKNOWN_TOPIC_OR_PARTITION; v1 with allow_replication_factor_change=false and another replica
   count is INVALID_REPLICATION_FACTOR. None of them starts or changes anything.
2. Under test_replication's idempotent acks=all load (its CheckedRun and the replication checker, at this module's
   RATE), `--execute` moves every partition of a 3-partition, RF 3, min.insync.replicas=2 topic off the leader of
   partition 0 (broker R) and onto node 4, node 4 first in every target. `--verify` is polled until it reports
   every partition complete; then Metadata shows replicas equal to the targets (in their order), ISRs of the
   target sets, partition 0 led by node 4 (the first in-sync target replica takes over from a removed leader), R
   leading nothing, and ListPartitionReassignments empty. The load stops: the checker finds nothing acknowledged
   lost and nothing stored twice. Then node 4 must hold the data: a preferred election makes it lead every
   partition, R is stopped, and the whole topic read back through node 4 passes the checker again with the same
   counts. Judged last: the `--verify` run that saw completion exited 0 (it also clears replication throttles),
   and DescribeLogDirs (asked before R stopped) shows node 4 hosting the three partitions with data and R hosting
   none of them. R stays stopped; the next test needs only two voters.
3. Cancel: with node 4 stopped (fenced, but still registered) a reassignment [a,b] -> [4,b] is accepted but cannot
   complete. ListPartitionReassignments (kafka-python, and `--list`) shows replicas 4,b,a, adding 4, removing a, and
   Metadata the same three replicas; `--cancel` takes 4 out again: the replicas are b,a (Kafka's
   PartitionReassignmentRevert keeps the order they had, less the adding ones), ISR and leader unchanged, nothing
   listed any more.

Why node 4 is stopped rather than SIGSTOPped for the cancel: a frozen broker is still in Metadata, and Kafka names
a random live broker as the "controller" in Metadata, so the tool's and kafka-python's AlterPartitionReassignments
would now and then go to the frozen node and wait out a request time-out. A stopped broker is fenced and out of
Metadata, yet still registered, which is all the controller checks. The tool refuses it (`--execute` checks the
ids against DescribeCluster, which lists unfenced brokers only), so that reassignment is sent with kafka-python;
`--cancel` runs with --preserve-throttles, since clearing throttles would address node 4 itself.

On failure every node's log is copied to the test's tmp_path (broker-N.log). Environment: SKEIN_REASSIGNMENT_SECONDS
bounds the wait for `--verify` to report completion (default 60), SKEIN_REASSIGNMENT_RATE sets the load's records
per second (default 100).
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import time
from contextlib import contextmanager

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from support.brokers import BROKER_KINDS, skip_kafka_reference_outside_long_mode
from support.cluster import (KafkaClusterNode, SkeinClusterNode, make_cluster, run_kafka_tool,
                             skip_unless_cluster_available, started, tool_output)
from support.kafka_clients import unique_topic_name
from support.replication_checker import (Unmet, Workload, check, partition_states, poll_until, read_log,
                                         wait_for_full_isr)
from test_replication import PARTITIONS, REPLICATION_CONFIG, STEADY_SECONDS, TOPIC_CONFIG, CheckedRun

pytestmark = [
    # kafka-python loads its protocol schemas with importlib calls Python 3.11 deprecates.
    pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                               "ignore:open_text is deprecated:DeprecationWarning"),
]

REASSIGN_COMMAND = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
CLIENT_TIMEOUT_SECONDS = 30
# The broker-only node reassignments move replicas onto.
NEW_BROKER = 4
VOTERS = (1, 2, 3)
# `--verify` reports every partition complete within this.
REASSIGN_SECONDS = int(os.environ.get("SKEIN_REASSIGNMENT_SECONDS") or 60)
# Metadata, ListPartitionReassignments and DescribeLogDirs agree with a finished change within this.
SETTLE_SECONDS = 30
# Records per second of the load, over all partitions.
RATE = int(os.environ.get("SKEIN_REASSIGNMENT_RATE") or 100)

# Error codes (Kafka protocol).
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
NO_REASSIGNMENT_IN_PROGRESS = 85


# ------------------------------------------------------------------------------------------ fixtures

def broker_only_node(cluster, node_id: int):
    """A node with process.roles=broker for `cluster` (not started): the voters' settings, its own listener. A Skein
    broker-only node receives the metadata log on a controller listener of its own; Kafka's may not list a
    controller listener at all, and is formatted with the cluster's id."""
    node = (SkeinClusterNode(node_id, binary=cluster.binary) if cluster.kind == "skein"
            else KafkaClusterNode(node_id))
    voters = ",".join(f"{voter.node_id}@{voter.host}:{voter.controller_port}" for voter in cluster.nodes)
    node.config.update({**cluster._node_config(node, voters), "process.roles": "broker"})
    if cluster.kind == "kafka":
        node.config["listeners"] = f"PLAINTEXT://{node.bootstrap}"
        node.cluster_id = cluster.cluster_id
    return node


@pytest.fixture(scope="module", params=BROKER_KINDS)
def cluster(request):
    """Three voters (nodes 1-3) and node 4, broker only; all four launched together."""
    skip_unless_cluster_available(request.param)
    cluster = make_cluster(request.param, config=REPLICATION_CONFIG)
    cluster.nodes.append(broker_only_node(cluster, NEW_BROKER))
    yield started(cluster, brokers=4)
    cluster.close()


@pytest.fixture
def healthy(cluster):
    """The module's cluster with the three voters running (restarts what an earlier test left down); node 4 may be
    up or down."""
    voters = [node for node in cluster.nodes if node.node_id in VOTERS]
    if not all(node.is_running() for node in voters):
        cluster.start(nodes=voters)
    cluster.wait_for_brokers(len(cluster.running_nodes()), timeout=60)
    return cluster


@contextmanager
def broker_logs_kept(cluster, tmp_path):
    """On failure, copies every node's log into the test's tmp_path (the nodes' own directories go with the
    cluster)."""
    try:
        yield
    except BaseException:
        for node in cluster.nodes:
            try:
                shutil.copyfile(node.log_path, tmp_path / f"broker-{node.node_id}.log")
            except OSError as error:
                print(f"cannot keep the log of node {node.node_id}: {error}")
        print(f"  broker logs: {tmp_path}/broker-*.log")
        raise


# ------------------------------------------------------------------------------------------ helpers

def create_assigned_topic(bootstrap: str, name: str, assignment: list[list[int]], config: dict | None = None) -> None:
    """CreateTopics with an explicit replica assignment (partition p on assignment[p], its first broker the
    preferred leader); waits until every partition is led with a full ISR."""
    client = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    # confluent-kafka wants the partition count beside the assignment (no replication factor).
    topic = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment,
                     config={key: str(value).lower() if isinstance(value, bool) else str(value)
                             for key, value in (config or {}).items()})
    client.create_topics([topic], request_timeout=CLIENT_TIMEOUT_SECONDS)[name].result(timeout=CLIENT_TIMEOUT_SECONDS)
    wait_for_full_isr(bootstrap, name, len(assignment), len(assignment[0]), CLIENT_TIMEOUT_SECONDS)


def kafka_admin(cluster):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=cluster.running_bootstrap(),
                            request_timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000)


def error_codes(outcome: dict) -> dict:
    """kafka-python's alter_partition_reassignments answer as {(topic, partition): error code}, 0 for success."""
    return {(tp.topic, tp.partition): 0 if error is None else error.errno for tp, error in outcome.items()}


def alter_raw(client, reassignments: dict, allow_replication_factor_change: bool = True):
    """AlterPartitionReassignments built by hand (kafka-python's method can send neither an empty replica list nor
    allow_replication_factor_change=false), sent to the controller through the client's own connections.
    `reassignments`: {(topic, partition): replicas or None}. Returns the response."""
    from kafka.protocol.admin import AlterPartitionReassignmentsRequest

    topic_type = AlterPartitionReassignmentsRequest.ReassignableTopic
    partition_type = topic_type.ReassignablePartition
    by_topic = collections.defaultdict(list)
    for (topic, partition), replicas in reassignments.items():
        by_topic[topic].append(partition_type(partition_index=partition, replicas=replicas))
    request = AlterPartitionReassignmentsRequest(
        timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000, allow_replication_factor_change=allow_replication_factor_change,
        topics=[topic_type(name=topic, partitions=partitions) for topic, partitions in by_topic.items()])
    return client._manager.run(client._send_request_to_controller, request)


def raw_error_codes(response) -> dict:
    return {(topic.name, partition.partition_index): partition.error_code
            for topic in response.responses for partition in topic.partitions}


def ongoing(client, topic: str) -> dict:
    """ListPartitionReassignments (every topic) as {partition: (replicas, adding, removing)} for `topic`."""
    listed = client.list_partition_reassignments()
    return {tp.partition: (reassignment["replicas"], reassignment["adding_replicas"],
                           reassignment["removing_replicas"])
            for tp, reassignment in listed.items() if tp.topic == topic}


def reassignment_file(tmp_path, topic: str, targets: dict[int, list[int]], name: str = "reassignment.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": partition, "replicas": replicas} for partition, replicas in targets.items()]}))
    return path


def reassign_tool(bootstrap: str, *arguments: str):
    """kafka-reassign-partitions --bootstrap-server B ...; the completed process (text output)."""
    return run_kafka_tool(REASSIGN_COMMAND, "--bootstrap-server", bootstrap, *arguments)


def verify_states(result, topic: str) -> dict[int, str]:
    """`--verify` output as {partition: "completed" | "in progress" | the line}, for `topic`."""
    states = {}
    for line in result.stdout.splitlines():
        match = re.match(rf"^Reassignment of partition {re.escape(topic)}-(\d+) is (completed|still in progress)\.",
                         line)
        if match:
            states[int(match.group(1))] = "completed" if match.group(2) == "completed" else "in progress"
        match = re.match(rf"^There is no active reassignment of partition {re.escape(topic)}-(\d+), (.*)", line)
        if match:
            states[int(match.group(1))] = line
    return states


def wait_for_verified(bootstrap: str, json_file, topic: str, partitions: int, timeout: float):
    """Runs `--verify` until it reports every partition of `topic` completed; returns (seconds, runs, last run).
    The last run's exit code is left to the caller: once everything is complete the tool goes on to clear the
    replication throttles (IncrementalAlterConfigs), which can fail on its own."""
    started_at = time.monotonic()
    runs = 0
    while True:
        result = reassign_tool(bootstrap, "--verify", "--reassignment-json-file", str(json_file))
        runs += 1
        states = verify_states(result, topic)
        if states == {p: "completed" for p in range(partitions)}:
            return time.monotonic() - started_at, runs, result
        assert result.returncode == 0, tool_output(result)
        if any(state not in ("completed", "in progress") for state in states.values()):
            raise AssertionError(f"--verify: a partition is neither complete nor in progress\n{tool_output(result)}")
        if time.monotonic() - started_at > timeout:
            raise AssertionError(f"--verify did not report every partition of {topic} completed within {timeout}s"
                                 f"\n{tool_output(result)}")
        time.sleep(1)


def wait_for_layout(bootstrap: str, topic: str, targets: dict[int, list[int]], timeout: float = SETTLE_SECONDS):
    """Polls Metadata until every partition's replicas are its target (in order), its ISR the target set and its
    leader a target replica; returns the states."""
    def settled():
        states = partition_states(bootstrap, topic)
        done = len(states) == len(targets) and all(
            list(states[p].replicas) == target and set(states[p].isr) == set(target) and states[p].leader in target
            for p, target in targets.items())
        return states if done else Unmet(states)
    return poll_until(settled, f"replicas, ISR and leaders of {topic} matching {targets}", timeout)




def settle(read, done, timeout: float = SETTLE_SECONDS):
    """read() until done(value) holds or `timeout` passes; the last value either way (the caller judges it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def hosted_partitions(client, topic: str, broker: int) -> dict[int, int]:
    """DescribeLogDirs sent to `broker`: {partition: size in bytes} of `topic`'s replicas it hosts."""
    [answer] = client.describe_log_dirs(topic_partitions=[topic], brokers=[broker])
    hosted = {}
    for log_dir in answer["log_dirs"]:
        for described in log_dir.get("topics") or []:
            if described["name"] == topic:
                for partition in described["partitions"]:
                    hosted[partition["partition_index"]] = partition["partition_size"]
    return hosted


def light_workload(bootstrap: str, topic: str, tmp_path) -> Workload:
    """test_replication's load at this module's RATE (2 cores run four brokers here), its producer's librdkafka
    debug log in tmp_path."""
    return Workload(bootstrap, topic, PARTITIONS, rate=RATE, client_log=tmp_path / "producer-debug.log")


# ------------------------------------------------------------------------------------------ 1. errors

@pytest.mark.timeout(180)
def test_reassignment_errors(healthy, tmp_path):
    cluster = healthy
    with broker_logs_kept(cluster, tmp_path):
        topic = unique_topic_name("reassign-errors")
        create_assigned_topic(cluster.running_bootstrap(), topic, [[1, 2, 3]])
        from kafka import TopicPartition

        client = kafka_admin(cluster)
        try:
            tp = TopicPartition(topic, 0)
            codes = {}
            for label, target in (("broker 99", [99, 2, 3]), ("broker twice", [1, 1, 2])):
                codes[label] = error_codes(client.alter_partition_reassignments({tp: target}))
            codes["cancel with none"] = error_codes(client.alter_partition_reassignments({tp: None}))
            unknown_topic = unique_topic_name("no-such-topic")
            codes["unknown topic"] = error_codes(
                client.alter_partition_reassignments({TopicPartition(unknown_topic, 0): [1, 2, 3]}))
            codes["unknown partition"] = error_codes(
                client.alter_partition_reassignments({TopicPartition(topic, 7): [1, 2, 3]}))
            codes["empty list"] = raw_error_codes(alter_raw(client, {(topic, 0): []}))
            fixed_rf = alter_raw(client, {(topic, 0): [1, 2]}, allow_replication_factor_change=False)
            codes["rf change disallowed"] = raw_error_codes(fixed_rf)
            print(f"{cluster.kind}: {codes}")
            assert codes == {
                "broker 99": {(topic, 0): INVALID_REPLICA_ASSIGNMENT},
                "broker twice": {(topic, 0): INVALID_REPLICA_ASSIGNMENT},
                "cancel with none": {(topic, 0): NO_REASSIGNMENT_IN_PROGRESS},
                "unknown topic": {(unknown_topic, 0): UNKNOWN_TOPIC_OR_PARTITION},
                "unknown partition": {(topic, 7): UNKNOWN_TOPIC_OR_PARTITION},
                "empty list": {(topic, 0): INVALID_REPLICA_ASSIGNMENT},
                "rf change disallowed": {(topic, 0): INVALID_REPLICATION_FACTOR},
            }
            # The v1 answer echoes the flag (a v0 exchange would have dropped it).
            assert fixed_rf.API_VERSION >= 1 and fixed_rf.allow_replication_factor_change is False, fixed_rf

            # Nothing was started or changed, and the unknown topic was not created.
            assert ongoing(client, topic) == {}
            state = partition_states(cluster.running_bootstrap(), topic)[0]
            assert (list(state.replicas), sorted(state.isr), state.leader) == ([1, 2, 3], [1, 2, 3], 1), state
            topics = AdminClient({"bootstrap.servers": cluster.running_bootstrap(), "log_level": 0}).list_topics(
                timeout=CLIENT_TIMEOUT_SECONDS).topics
            assert unknown_topic not in topics
        finally:
            client.close()


# ------------------------------------------------------------------------------------------ 2. under load

@pytest.mark.timeout(420)
def test_moving_replicas_onto_a_new_broker_under_load(healthy, record_property, tmp_path):
    skip_kafka_reference_outside_long_mode(healthy.kind)
    cluster = healthy
    fourth = cluster.node(NEW_BROKER)
    topic = unique_topic_name("reassigned")
    # Partition p led by broker p+1, replicas on the three voters.
    create_assigned_topic(cluster.running_bootstrap(), topic, [[1, 2, 3], [2, 3, 1], [3, 1, 2]], TOPIC_CONFIG)
    with CheckedRun(cluster, topic, "reassignment onto a new broker", record_property, tmp_path,
                    workload_factory=light_workload) as run:
        if not fourth.is_running():
            starting_at = time.monotonic()
            fourth.start()
            print(f"{cluster.kind}: broker 4 started under load in {time.monotonic() - starting_at:.1f}s")
        bootstrap = cluster.running_bootstrap()
        cluster.wait_for_brokers(4, timeout=60, bootstrap=bootstrap)

        before = partition_states(bootstrap, topic)
        removed = before[0].leader
        assert removed in VOTERS, before
        # Every partition: broker 4 first, then its replicas other than `removed`.
        targets = {p: [NEW_BROKER] + [r for r in before[p].replicas if r != removed] for p in range(PARTITIONS)}
        json_file = reassignment_file(tmp_path, topic, targets)
        executed_at = time.monotonic()
        result = reassign_tool(bootstrap, "--execute", "--reassignment-json-file", str(json_file))
        print(f"{cluster.kind}: --execute took {time.monotonic() - executed_at:.1f}s")
        assert result.returncode == 0, tool_output(result)
        assert (f"Successfully started partition reassignments for "
                f"{','.join(f'{topic}-{p}' for p in range(PARTITIONS))}") in result.stdout, tool_output(result)

        _, runs, verified = wait_for_verified(bootstrap, json_file, topic, PARTITIONS, REASSIGN_SECONDS)
        print(f"{cluster.kind}: moved {topic} off broker {removed} onto broker 4 ({targets}); --verify reported "
              f"every partition complete after {time.monotonic() - executed_at:.1f}s ({runs} runs), exit code "
              f"{verified.returncode}")

        after = wait_for_layout(bootstrap, topic, targets)
        # The removed leader handed partition 0 to the first in-sync target replica, broker 4.
        assert after[0].leader == NEW_BROKER, after
        assert all(state.leader != removed for state in after.values()), after
        client = kafka_admin(cluster)
        try:
            assert client.list_partition_reassignments() == {}
        finally:
            client.close()
        # Production goes on through the new layout.
        run.workload.wait_for_progress(time.monotonic(), 30)
        time.sleep(STEADY_SECONDS)
    # CheckedRun stopped the load, waited for full ISRs and checked the read-back: nothing lost or duplicated.
    first = run.result
    print(f"{cluster.kind}: layout after the reassignment "
          f"{ {p: (s.leader, s.replicas, s.isr) for p, s in after.items()} }")

    with broker_logs_kept(cluster, tmp_path):
        # DescribeLogDirs, asked now and judged last: broker 4 hosts the three partitions, with data, and the removed
        # broker has deleted its copies.
        client = kafka_admin(cluster)
        try:
            on_new = settle(lambda: hosted_partitions(client, topic, NEW_BROKER),
                            lambda h: set(h) == set(range(PARTITIONS)) and all(size > 0 for size in h.values()))
            on_removed = settle(lambda: hosted_partitions(client, topic, removed), lambda h: h == {})
        finally:
            client.close()
        print(f"{cluster.kind}: DescribeLogDirs: broker 4 hosts {on_new}, broker {removed} {on_removed}")

        # Broker 4 holds every partition: made leader of each (it is every target's first replica), with the
        # removed broker stopped, it serves the whole topic, and the checker finds every acknowledged record.
        client = kafka_admin(cluster)
        try:
            client.elect_leaders(0, {topic: list(range(PARTITIONS))})
        finally:
            client.close()
        poll_until(lambda: all(s.leader == NEW_BROKER for s in partition_states(bootstrap, topic).values()) or
                   Unmet(partition_states(bootstrap, topic)), f"broker 4 leading every partition of {topic}",
                   SETTLE_SECONDS)
        cluster.node(removed).stop()
        remaining = cluster.running_bootstrap()
        leaders = {p: s.leader for p, s in partition_states(remaining, topic).items()}
        assert leaders == {p: NEW_BROKER for p in range(PARTITIONS)}, leaders
        log = read_log(fourth.bootstrap, topic, PARTITIONS)
        again = check(run.workload, log, label=f"{cluster.kind} read from broker 4 alone")
        print(again.summary())
        again.assert_ok()
        assert (again.acknowledged, again.read_back) == (first.acknowledged, first.read_back), (again.summary(),
                                                                                              first.summary())

        # Judged last, so that what the data shows is reported first: the --verify run that saw every partition
        # complete also cleared the (topic and broker) replication throttles, as the tool always does.
        assert verified.returncode == 0, f"--verify failed after reporting completion\n{tool_output(verified)}"
        assert set(on_new) == set(range(PARTITIONS)) and all(size > 0 for size in on_new.values()), \
            f"DescribeLogDirs of broker 4: {on_new}"
        assert on_removed == {}, f"DescribeLogDirs of broker {removed}, no longer a replica: {on_removed}"


# ------------------------------------------------------------------------------------------ 3. cancel

@pytest.mark.timeout(240)
def test_cancelling_a_reassignment_that_cannot_complete(cluster, tmp_path):
    # Runs after the test above, which leaves its removed broker stopped: two voters are enough here.
    voters = [node for node in cluster.nodes if node.node_id in VOTERS]
    if sum(node.is_running() for node in voters) < 2:
        cluster.start(nodes=voters)
    first, second = sorted(node.node_id for node in voters if node.is_running())[:2]
    fourth = cluster.node(NEW_BROKER)
    with broker_logs_kept(cluster, tmp_path):
        topic = unique_topic_name("reassign-cancel")
        create_assigned_topic(cluster.running_bootstrap(), topic, [[first, second]])

        # Node 4 stopped: fenced (out of Metadata) but still registered, so the controller takes it as a target.
        stopping_at = time.monotonic()
        fourth.stop()
        stopped_at = time.monotonic()
        bootstrap = cluster.running_bootstrap()
        assert NEW_BROKER not in cluster.wait_for_brokers(len(cluster.running_nodes()), timeout=60,
                                                          bootstrap=bootstrap)
        print(f"{cluster.kind}: broker 4 stopped in {stopped_at - stopping_at:.1f}s, out of Metadata "
              f"{time.monotonic() - stopped_at:.1f}s later")
        from kafka import TopicPartition

        client = kafka_admin(cluster)
        try:
            target = [NEW_BROKER, second]
            outcome = error_codes(client.alter_partition_reassignments({TopicPartition(topic, 0): target}))
            assert outcome == {(topic, 0): 0}, outcome
            # Target first, then the replica leaving; 4 is being added, `first` removed.
            under_way = ([NEW_BROKER, second, first], [NEW_BROKER], [first])
            listed = poll_until(lambda: ongoing(client, topic), f"a reassignment of {topic}-0 listed", SETTLE_SECONDS)
            assert listed == {0: under_way}, listed
            state = poll_until(lambda: (s := partition_states(bootstrap, topic).get(0)) and
                               list(s.replicas) == under_way[0] and s or Unmet(s),
                               f"Metadata of {topic}-0 naming the three replicas", SETTLE_SECONDS)
            assert (sorted(state.isr), state.leader) == ([first, second], first), state
            # Still under way a moment later: node 4 cannot catch up.
            time.sleep(2)
            assert ongoing(client, topic) == {0: under_way}

            result = reassign_tool(bootstrap, "--list")
            assert result.returncode == 0, tool_output(result)
            assert (f"{topic}-0: replicas: {NEW_BROKER},{second},{first}. adding: {NEW_BROKER}. removing: {first}."
                    in result.stdout), tool_output(result)

            # --cancel (the file names the partition; the replicas in it do not matter). --preserve-throttles: none
            # were set, and clearing them would address broker 4, which is down.
            json_file = reassignment_file(tmp_path, topic, {0: target})
            result = reassign_tool(bootstrap, "--cancel", "--reassignment-json-file", str(json_file),
                                   "--preserve-throttles")
            assert result.returncode == 0, tool_output(result)
            assert f"Successfully cancelled partition reassignment for: {topic}-0" in result.stdout, \
                tool_output(result)

            assert poll_until(lambda: ongoing(client, topic) == {} or Unmet(ongoing(client, topic)),
                              f"no reassignment of {topic} listed", SETTLE_SECONDS)
            # Kafka's revert: the replicas less the adding ones, in the order they had during the reassignment.
            reverted = [second, first]
            state = poll_until(lambda: (s := partition_states(bootstrap, topic).get(0)) and
                               list(s.replicas) == reverted and s or Unmet(s),
                               f"{topic}-0 back on {reverted}", SETTLE_SECONDS)
            assert (sorted(state.isr), state.leader) == ([first, second], first), state
            result = reassign_tool(bootstrap, "--list")
            assert result.returncode == 0, tool_output(result)
            assert "No partition reassignments found." in result.stdout, tool_output(result)
            print(f"{cluster.kind}: reassignment of [{first}, {second}] onto stopped broker 4 listed as {under_way}, "
                  f"cancelled back to {list(state.replicas)}")
        finally:
            client.close()
