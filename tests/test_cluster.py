"""A three-node cluster, Skein and Apache Kafka (the reference) side by side, seen through stock clients.

Each kind runs one 3-node cluster for the module (tests/support/cluster.py: every node a combined broker +
controller and a voter of the metadata quorum, 6 s broker sessions, 500 ms heartbeats, 1 s election timeout).
Tests that take nodes down bring them back before they end; the `healthy` fixture restarts whatever an earlier
failure left down.

What is proven, for both kinds (Kafka's answers are the expectations):
- every stock client sees three brokers: confluent-kafka (Metadata, DescribeCluster), kafka-python
  (DescribeCluster), Java (kafka-broker-api-versions, kafka-cluster cluster-id), and kafka-metadata-quorum
  describe --status shows three voters and a leader among them;
- CreateTopics with replication factor 3 gives every partition 3 replicas and an ISR of 3, leaders spread over
  all brokers (Metadata and kafka-topics --describe agree); replication factor 4 is INVALID_REPLICATION_FACTOR;
- producer ids handed out by different nodes never collide (InitProducerId sent to each node, and idempotent
  producers bootstrapped at each node, read back with DescribeProducers);
- SIGKILL the quorum leader: a survivor becomes leader within seconds, CreateTopics and Metadata keep working,
  the dead broker leaves Metadata after its session times out; restarted, all three nodes agree. A replication
  factor is checked against the registered brokers, fenced ones included (Kafka's rule): with one broker
  fenced, 3 is placed (the fenced broker a replica outside the ISR, never leader) and 4 is refused;
- admin requests sent to different nodes (CreateTopics, IncrementalAlterConfigs, CreatePartitions, DeleteTopics,
  and a cluster-wide dynamic broker default through kafka-configs --entity-default) show on every node;
- SIGTERM all three and start them again: topics, topic ids, partition counts and configs are intact;
- a node given another cluster's data directory never joins the cluster. Skein exits non-zero naming the
  cluster id; Kafka 4.3.1 keeps running but its Raft requests get INCONSISTENT_CLUSTER_ID (104) and it never
  registers (only that is asserted for Kafka).
- decommissioning a broker Kafka's way: a broker-only node 4 holding a replica of every partition of a topic
  written with acks=all is stopped (still registered, fenced: kafka-cluster list-endpoints --include-fenced-brokers
  lists it and a replication factor of 4 is accepted), then `kafka-cluster unregister --id 4` (UnregisterBroker)
  exits 0 and every node forgets it: not in Metadata nor in DescribeCluster with fenced brokers, replication
  factor 4 refused, no leadership and no ISR left to it (its replicas stay in the assignment), every acknowledged
  record read back byte for byte. Unregistering an id never registered prints Kafka's
  BrokerIdNotRegisteredException ("Broker ID 4711 is not currently registered"). Restarted, node 4 registers
  again and rejoins every ISR; it is then stopped and unregistered, so later tests see three registered brokers;
- (Skein only) a fourth node with process.roles=broker joins as an observer: four brokers everywhere, the voters
  unchanged, the observer in kafka-metadata-quorum's CurrentObservers, partitions led by it.
Records surviving a broker's loss under load are tests/test_replication.py's subject; here only the decommissioning
test reads records back.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from support.brokers import BROKER_KINDS
from support.cluster import (BROKER_API_VERSIONS_COMMAND, CLUSTER_TOOL, TOPIC_COMMAND, TRANSACTIONS_COMMAND,
                             KafkaCluster, make_cluster, run_kafka_tool, skip_unless_cluster_available, started,
                             tool_output)
from support.cluster import healthy as make_healthy
from support.frames import init_producer_id
from support.kafka_clients import read_partitions, unique_topic_name

CLIENT_TIMEOUT_SECONDS = 30
NODE_IDS = {1, 2, 3}
# Error codes (Kafka protocol).
TOPIC_ALREADY_EXISTS = 36
INVALID_REPLICATION_FACTOR = 38
# Time-outs (librdkafka's local one, REQUEST_TIMED_OUT) and NOT_CONTROLLER: worth another CreateTopics.
RETRIABLE_CREATE_ERRORS = {KafkaError._TIMED_OUT, 7, 41}
INCONSISTENT_CLUSTER_ID = 104
# From SIGKILL of the quorum leader to a survivor reporting itself leader (measured with the tool, whose JVM
# start-up alone takes 1-2 s on 2 cores).
NEW_LEADER_WITHIN_SECONDS = 15
# broker.session.timeout.ms is 6 s; the dead broker leaves Metadata after it, plus slack for a busy machine.
FENCED_WITHIN_SECONDS = 30
# A restarted cluster's nodes converge on the same metadata within this.
AGREE_WITHIN_SECONDS = 60
# A Skein node with another cluster's data directory exits within this.
REFUSED_WITHIN_SECONDS = 30


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module", params=BROKER_KINDS)
def cluster(request):
    skip_unless_cluster_available(request.param)
    cluster = started(make_cluster(request.param))
    yield cluster
    cluster.close()


@pytest.fixture
def healthy(cluster):
    """The module's cluster with all three nodes running and listed (restarts what an earlier failure left down)."""
    return make_healthy(cluster)


# ------------------------------------------------------------------------------------------ helpers

def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def describe_cluster(bootstrap: str):
    client = admin(bootstrap)  # kept referenced until the future resolves: a collected client fails it
    return client.describe_cluster(request_timeout=CLIENT_TIMEOUT_SECONDS).result(timeout=CLIENT_TIMEOUT_SECONDS)


def create_topic(bootstrap: str, name: str, partitions: int, replication_factor: int,
                 config: dict | None = None, timeout: float = CLIENT_TIMEOUT_SECONDS) -> None:
    client = admin(bootstrap)
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=config or {})],
        request_timeout=timeout)
    futures[name].result(timeout=timeout + 5)


def create_topic_retrying(bootstrap: str, name: str, partitions: int, replication_factor: int,
                          within: float = 60) -> int:
    """CreateTopics, retried on time-outs as an admin would; returns the attempts it took. Right after a broker
    dies, Metadata and DescribeCluster may still name it as the "controller" (Kafka names a random unfenced
    broker), and librdkafka sends CreateTopics there until it is fenced."""
    deadline = time.monotonic() + within
    attempts = 0
    while True:
        attempts += 1
        try:
            create_topic(bootstrap, name, partitions, replication_factor, timeout=10)
            return attempts
        except KafkaException as exc:
            code = exc.args[0].code()
            if code == TOPIC_ALREADY_EXISTS and attempts > 1:  # an earlier attempt got through
                return attempts
            if code not in RETRIABLE_CREATE_ERRORS or time.monotonic() > deadline:
                raise


def create_topic_error_code(bootstrap: str, name: str, partitions: int, replication_factor: int) -> int | None:
    try:
        create_topic(bootstrap, name, partitions, replication_factor)
    except KafkaException as exc:
        return exc.args[0].code()
    return None


def wait_for_topic(bootstrap: str, name: str, partitions: int, isr_size: int | None = None,
                   timeout: float = CLIENT_TIMEOUT_SECONDS):
    """The topic's Metadata once every partition has a leader (and an ISR of `isr_size`, when given). Asks for
    every topic: a Metadata request naming the topic would auto-create it when CreateTopics failed."""
    deadline = time.monotonic() + timeout
    client = admin(bootstrap)
    while True:
        topic = client.list_topics(timeout=10).topics.get(name)
        if (topic is not None and topic.error is None and len(topic.partitions) == partitions
                and all(p.leader >= 0 and (isr_size is None or len(p.isrs) == isr_size)
                        for p in topic.partitions.values())):
            return topic
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} not ready within {timeout}s: {topic and topic.partitions}")
        time.sleep(0.3)


def topic_layout(bootstrap: str, timeout: float = 10) -> dict:
    """{topic: {partition: (leader, replicas)}} and the broker ids, from one Metadata answer through `bootstrap`."""
    metadata = admin(bootstrap).list_topics(timeout=timeout)
    layout = {
        name: {p.id: (p.leader, tuple(p.replicas)) for p in topic.partitions.values()}
        for name, topic in metadata.topics.items()
    }
    return {"brokers": sorted(metadata.brokers), "topics": layout}


def describe_producer_ids(bootstrap: str, topic: str, partition: int) -> list[int]:
    """Producer ids kafka-transactions describe-producers (DescribeProducers, Java AdminClient) lists."""
    result = run_kafka_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", bootstrap, "describe-producers",
                            "--topic", topic, "--partition", str(partition))
    assert result.returncode == 0, tool_output(result)
    return [int(line.split()[0]) for line in result.stdout.splitlines() if re.match(r"^\s*\d+\s", line)]


def parse_topic_describe(text: str) -> dict[int, dict]:
    """kafka-topics --describe partition lines as {partition: {"leader", "replicas", "isr"}}."""
    partitions = {}
    for match in re.finditer(r"Partition:\s*(\d+)\s+Leader:\s*(-?\d+)\s+Replicas:\s*([\d,]*)\s+Isr:\s*([\d,]*)", text):
        partition, leader, replicas, isr = match.groups()
        partitions[int(partition)] = {
            "leader": int(leader),
            "replicas": [int(r) for r in replicas.split(",") if r],
            "isr": [int(r) for r in isr.split(",") if r],
        }
    return partitions


def wait_for_quorum(cluster, bootstrap: str, condition, timeout: float) -> dict:
    """Polls kafka-metadata-quorum describe --status through `bootstrap` until condition(status) holds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = cluster.describe_quorum(bootstrap)
            if condition(last):
                return last
        except Exception as error:  # the tool fails while no leader is known
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"quorum condition not met within {timeout}s; last: {last}\n{cluster.log_tails()}")
        time.sleep(0.5)


# ------------------------------------------------------------------------------------------ three brokers

def test_confluent_and_kafka_python_see_three_brokers(healthy):
    cluster = healthy
    expected_nodes = {(node.node_id, "127.0.0.1", node.port) for node in cluster.nodes}
    cluster_ids = set()
    for node in cluster.nodes:
        # Bootstrapping at each node alone, Metadata lists all three with their advertised listeners.
        metadata = admin(node.bootstrap).list_topics(timeout=CLIENT_TIMEOUT_SECONDS)
        assert {(b.id, b.host, b.port) for b in metadata.brokers.values()} == expected_nodes
        assert metadata.controller_id in NODE_IDS
        assert metadata.cluster_id
        described = describe_cluster(node.bootstrap)
        assert {(n.id, n.host, n.port) for n in described.nodes} == expected_nodes
        assert described.controller is not None and described.controller.id in NODE_IDS
        assert described.cluster_id == metadata.cluster_id
        cluster_ids.add(described.cluster_id)
    assert len(cluster_ids) == 1, cluster_ids
    if isinstance(cluster, KafkaCluster):
        assert cluster_ids == {cluster.cluster_id}

    kafka_admin = pytest.importorskip("kafka.admin")
    client = kafka_admin.KafkaAdminClient(bootstrap_servers=cluster.nodes[0].bootstrap,
                                          request_timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000)
    try:
        described = client.describe_cluster()
    finally:
        client.close()
    assert {(b["broker_id"], b["host"], b["port"]) for b in described["brokers"]} == expected_nodes
    assert described["controller_id"] in NODE_IDS
    assert described["cluster_id"] in cluster_ids


def test_java_tools_see_three_brokers(healthy):
    cluster = healthy
    cluster_id = describe_cluster(cluster.nodes[0].bootstrap).cluster_id

    result = run_kafka_tool(BROKER_API_VERSIONS_COMMAND, "--bootstrap-server", cluster.nodes[1].bootstrap)
    assert result.returncode == 0, tool_output(result)
    # One "127.0.0.1:PORT (id: N rack: null isFenced: false) -> (" block per broker.
    listed = {(int(port), int(node_id)) for port, node_id in
              re.findall(r"^127\.0\.0\.1:(\d+) \(id: (\d+) rack", result.stdout, re.MULTILINE)}
    assert listed == {(node.port, node.node_id) for node in cluster.nodes}, tool_output(result)

    result = run_kafka_tool(CLUSTER_TOOL, "cluster-id", "--bootstrap-server", cluster.nodes[2].bootstrap)
    assert result.returncode == 0, tool_output(result)
    assert result.stdout.strip() == f"Cluster ID: {cluster_id}", tool_output(result)


def test_metadata_quorum_has_three_voters(healthy):
    cluster = healthy
    status = cluster.describe_quorum(cluster.nodes[0].bootstrap)
    assert sorted(voter["id"] for voter in status["CurrentVoters"]) == [1, 2, 3], status["_raw"]
    assert status["LeaderId"] in NODE_IDS, status["_raw"]
    assert status["LeaderEpoch"] >= 1, status["_raw"]
    assert status["CurrentObservers"] == [], status["_raw"]
    # Each voter is listed with its CONTROLLER endpoint.
    endpoints = {voter["id"]: voter.get("endpoints") for voter in status["CurrentVoters"]}
    assert endpoints == {node.node_id: [f"CONTROLLER://127.0.0.1:{node.controller_port}"] for node in cluster.nodes}, \
        status["_raw"]
    assert status["ClusterId"] == describe_cluster(cluster.nodes[0].bootstrap).cluster_id, status["_raw"]


# ------------------------------------------------------------------------------------------ topics

def test_replication_factor_three_spreads_replicas_and_leaders(healthy):
    cluster = healthy
    topic = unique_topic_name("rf3")
    create_topic(cluster.nodes[0].bootstrap, topic, partitions=6, replication_factor=3)
    metadata = wait_for_topic(cluster.bootstrap_servers, topic, partitions=6, isr_size=3)
    leaders = []
    for partition in metadata.partitions.values():
        assert sorted(partition.replicas) == [1, 2, 3], partition
        assert sorted(partition.isrs) == [1, 2, 3], partition
        assert partition.leader in partition.replicas
        leaders.append(partition.leader)
    # Every broker leads at least one of the six partitions.
    assert set(leaders) == NODE_IDS, leaders

    # The Java AdminClient (kafka-topics --describe, DescribeTopicPartitions) through another node agrees.
    result = run_kafka_tool(TOPIC_COMMAND, "--bootstrap-server", cluster.nodes[2].bootstrap, "--describe",
                            "--topic", topic)
    assert result.returncode == 0, tool_output(result)
    assert re.search(r"PartitionCount:\s*6\s+ReplicationFactor:\s*3", result.stdout), tool_output(result)
    described = {partition: {**fields, "isr": sorted(fields["isr"])}
                 for partition, fields in parse_topic_describe(result.stdout).items()}
    assert described == {
        p.id: {"leader": p.leader, "replicas": list(p.replicas), "isr": sorted(p.isrs)}
        for p in metadata.partitions.values()
    }, tool_output(result)


def test_replication_factor_above_broker_count_is_refused(healthy):
    cluster = healthy
    topic = unique_topic_name("rf4")
    assert create_topic_error_code(cluster.nodes[1].bootstrap, topic, 3, 4) == INVALID_REPLICATION_FACTOR
    assert topic not in admin(cluster.bootstrap_servers).list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics


def topic_config(bootstrap: str, topic: str, name: str) -> str | None:
    client = admin(bootstrap)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = client.describe_configs([resource], request_timeout=CLIENT_TIMEOUT_SECONDS)[resource].result(
        timeout=CLIENT_TIMEOUT_SECONDS)
    return configs[name].value if name in configs else None


def eventually(check, what: str, timeout: float = CLIENT_TIMEOUT_SECONDS):
    """check() until it returns a truthy value (returned), or fail naming `what` with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true within {timeout}s (last: {value!r})")
        time.sleep(0.3)


def test_admin_changes_made_through_one_node_are_seen_by_every_node(healthy):
    """CreateTopics, IncrementalAlterConfigs, CreatePartitions and DeleteTopics sent to different nodes: every
    node's Metadata and DescribeConfigs show the result."""
    cluster = healthy
    first, second, third = (node.bootstrap for node in cluster.nodes)
    topic = unique_topic_name("cluster-admin")
    create_topic(first, topic, partitions=2, replication_factor=3)
    wait_for_topic(cluster.bootstrap_servers, topic, partitions=2)

    client = admin(second)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[])
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
    resource.add_incremental_config(ConfigEntry("retention.ms", "3600000",
                                                incremental_operation=AlterConfigOpType.SET))
    client.incremental_alter_configs([resource])[resource].result(timeout=CLIENT_TIMEOUT_SECONDS)
    for node in cluster.nodes:
        eventually(lambda: topic_config(node.bootstrap, topic, "retention.ms") == "3600000",
                   f"retention.ms of {topic} on node {node.node_id}")

    from confluent_kafka.admin import NewPartitions
    grower = admin(third)  # referenced until its future resolves: a collected client fails it
    grower.create_partitions([NewPartitions(topic, 5)])[topic].result(timeout=CLIENT_TIMEOUT_SECONDS)
    for node in cluster.nodes:
        metadata = wait_for_topic(node.bootstrap, topic, partitions=5)
        assert all(len(p.replicas) == 3 for p in metadata.partitions.values()), metadata.partitions

    deleter = admin(second)
    deleter.delete_topics([topic])[topic].result(timeout=CLIENT_TIMEOUT_SECONDS)
    for node in cluster.nodes:
        eventually(lambda: topic not in admin(node.bootstrap).list_topics(timeout=10).topics,
                   f"{topic} gone from node {node.node_id}")


def broker_config(bootstrap: str, broker_id: int, name: str):
    client = admin(bootstrap)
    resource = ConfigResource(ResourceType.BROKER, str(broker_id))
    configs = client.describe_configs([resource], request_timeout=CLIENT_TIMEOUT_SECONDS)[resource].result(
        timeout=CLIENT_TIMEOUT_SECONDS)
    return configs[name]


def test_cluster_wide_broker_settings_reach_every_broker(healthy):
    """A dynamic default for every broker (the BROKER resource named ""), set through one node, is in effect on
    every broker (DescribeConfigs of each broker: the value, from DYNAMIC_DEFAULT_BROKER_CONFIG); deleting it
    removes it everywhere."""
    from confluent_kafka.admin import ConfigSource
    cluster = healthy
    first = cluster.nodes[0].bootstrap

    def change(*arguments):
        # kafka-configs --entity-default: the Java AdminClient's IncrementalAlterConfigs on BROKER "".
        result = run_kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", first, "--entity-type",
                                "brokers", "--entity-default", "--alter", *arguments)
        assert result.returncode == 0, tool_output(result)

    change("--add-config", "log.retention.ms=7200000")
    try:
        for node in cluster.nodes:
            entry = eventually(
                lambda: (lambda e: e if e.value == "7200000" else None)(
                    broker_config(node.bootstrap, node.node_id, "log.retention.ms")),
                f"log.retention.ms on broker {node.node_id}")
            assert entry.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, entry
    finally:
        change("--delete-config", "log.retention.ms")
    for node in cluster.nodes:
        eventually(lambda: broker_config(node.bootstrap, node.node_id, "log.retention.ms").source
                   != ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value,
                   f"log.retention.ms no longer a dynamic default on broker {node.node_id}")


# ------------------------------------------------------------------------------------------ producer ids

def test_producer_ids_never_collide_across_nodes(healthy):
    cluster = healthy
    # InitProducerId straight to each node, three times each: nine distinct ids.
    allocated = []
    for round_number in range(3):
        for node in cluster.nodes:
            error_code, producer_id, epoch = init_producer_id(node.bootstrap, 100 * round_number + node.node_id)
            assert (error_code, epoch) == (0, 0), (node, error_code, producer_id, epoch)
            assert producer_id >= 0
            allocated.append((node.node_id, producer_id))
    assert len({producer_id for _, producer_id in allocated}) == len(allocated), allocated

    # An idempotent producer bootstrapped at each node writes to its own partition; DescribeProducers on each
    # partition's leader shows three different producer ids.
    topic = unique_topic_name("pids")
    create_topic(cluster.nodes[0].bootstrap, topic, partitions=3, replication_factor=1)
    wait_for_topic(cluster.bootstrap_servers, topic, partitions=3)
    for partition, node in enumerate(cluster.nodes):
        producer = Producer({"bootstrap.servers": node.bootstrap, "enable.idempotence": True, "log_level": 0})
        failures = []
        for i in range(3):
            producer.produce(topic, key=f"k{i}".encode(), value=b"v", partition=partition,
                             on_delivery=lambda err, msg: err and failures.append(err))
        assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
        assert failures == []
    producer_ids = []
    for partition in range(3):
        ids = describe_producer_ids(cluster.nodes[partition].bootstrap, topic, partition)
        assert len(ids) == 1, (partition, ids)
        producer_ids += ids
    assert len(set(producer_ids)) == 3, producer_ids


# ------------------------------------------------------------------------------------------ wrong data dir

def test_node_with_another_clusters_data_dir_never_joins(healthy):
    cluster_a = healthy
    cluster_a_id = describe_cluster(cluster_a.nodes[0].bootstrap).cluster_id
    cluster_b = started(make_cluster(cluster_a.kind))
    try:
        cluster_b_id = describe_cluster(cluster_b.nodes[0].bootstrap).cluster_id
        assert cluster_b_id != cluster_a_id
        cluster_b.stop_all()

        # Node 3 of cluster B gets a copy of node 3 of cluster A's data directory (taken while A's node 3 is
        # stopped, so the copy is consistent).
        donor, intruder = cluster_a.node(3), cluster_b.node(3)
        donor.stop()
        try:
            shutil.rmtree(intruder.data_dir)
            shutil.copytree(donor.data_dir, intruder.data_dir)
        finally:
            donor.start()

        for node in cluster_b.nodes:
            node.launch()
        if cluster_b.kind == "skein":
            exit_code = intruder.wait_exit(REFUSED_WITHIN_SECONDS)
            log = intruder.log_path.read_text(errors="replace")
            assert exit_code is not None, (f"skein node with cluster {cluster_a_id}'s data dir still runs in "
                                           f"cluster {cluster_b_id} after {REFUSED_WITHIN_SECONDS}s\n"
                                           f"{intruder.log_tail()}")
            assert exit_code != 0, intruder.log_tail()
            # An error names the cluster id the data directory belongs to.
            assert any("ERROR" in line and cluster_a_id in line for line in log.splitlines()), intruder.log_tail()
            # The rest of B still forms its cluster of two.
            for node in cluster_b.nodes[:2]:
                node.wait_ready(60)
            assert cluster_b.wait_for_brokers(2, timeout=30) == {1, 2}
        else:
            # Kafka 4.3.1 does not exit: the intruder keeps asking for votes and every answer is
            # INCONSISTENT_CLUSTER_ID; the two real members form the cluster without it.
            for node in cluster_b.nodes[:2]:
                node.wait_ready(90)
            assert cluster_b.wait_for_brokers(2, timeout=30) == {1, 2}
            time.sleep(10)
            assert intruder.is_running()
            assert cluster_b.broker_ids(cluster_b.nodes[0].bootstrap) == {1, 2}
            intruder_log = intruder.log_path.read_text(errors="replace")
            member_logs = "".join(node.log_path.read_text(errors="replace") for node in cluster_b.nodes[:2])
            assert "INCONSISTENT_CLUSTER_ID" in intruder_log, intruder.log_tail()
            assert "INCONSISTENT_CLUSTER_ID" in member_logs
    finally:
        cluster_b.close()
    cluster_a.wait_for_brokers(3, timeout=60)


# ------------------------------------------------------------------------------------------ losing the leader

def test_killing_the_quorum_leader(healthy):
    cluster = healthy
    old_leader = cluster.quorum_leader_id(cluster.bootstrap_servers)
    assert old_leader in NODE_IDS
    before = unique_topic_name("before-kill")
    create_topic(cluster.bootstrap_servers, before, partitions=6, replication_factor=3)
    wait_for_topic(cluster.bootstrap_servers, before, partitions=6, isr_size=3)

    victim = cluster.node(old_leader)
    survivors = [node for node in cluster.nodes if node is not victim]
    survivor_bootstrap = ",".join(node.bootstrap for node in survivors)
    killed_at = time.monotonic()
    victim.kill()

    # A survivor is elected.
    status = wait_for_quorum(cluster, survivors[0].bootstrap,
                             lambda s: s.get("LeaderId") not in (None, -1, old_leader), NEW_LEADER_WITHIN_SECONDS)
    elected_after = time.monotonic() - killed_at
    assert status["LeaderId"] in {node.node_id for node in survivors}, status["_raw"]
    assert sorted(voter["id"] for voter in status["CurrentVoters"]) == [1, 2, 3], status["_raw"]
    print(f"{cluster.kind}: node {status['LeaderId']} leads {elected_after:.1f}s after node {old_leader} was killed")
    # The other survivor knows the same leader.
    other = wait_for_quorum(cluster, survivors[1].bootstrap, lambda s: s.get("LeaderId") == status["LeaderId"],
                            NEW_LEADER_WITHIN_SECONDS)
    assert other["LeaderEpoch"] == status["LeaderEpoch"]

    # CreateTopics works right away through the survivors (retried while the client still picks the dead node).
    right_after = unique_topic_name("after-kill")
    attempts = create_topic_retrying(survivor_bootstrap, right_after, partitions=2, replication_factor=1)
    print(f"{cluster.kind}: CreateTopics after the kill took {attempts} attempt(s)")

    # The dead broker is fenced and leaves Metadata: two brokers, from each survivor.
    survivor_ids = {node.node_id for node in survivors}
    for node in survivors:
        assert cluster.wait_for_brokers(2, timeout=FENCED_WITHIN_SECONDS, bootstrap=node.bootstrap) == survivor_ids
    # Kafka checks a replication factor against the registered brokers, fenced ones included: 4 is refused, 3
    # is placed with the fenced broker as a replica but never as leader, and out of the ISR.
    assert create_topic_error_code(survivor_bootstrap, unique_topic_name("rf4-two-live"), 3, 4) == \
        INVALID_REPLICATION_FACTOR
    with_fenced = unique_topic_name("rf3-two-live")
    create_topic(survivor_bootstrap, with_fenced, partitions=3, replication_factor=3)
    metadata = wait_for_topic(survivor_bootstrap, with_fenced, partitions=3)
    for partition in metadata.partitions.values():
        assert sorted(partition.replicas) == [1, 2, 3], partition
        assert set(partition.isrs) == survivor_ids, partition
        assert partition.leader in survivor_ids
    # Replication factor 2 lands on the two live brokers only.
    fenced_era = unique_topic_name("two-live")
    create_topic(survivor_bootstrap, fenced_era, partitions=4, replication_factor=2)
    metadata = wait_for_topic(survivor_bootstrap, fenced_era, partitions=4, isr_size=2)
    for partition in metadata.partitions.values():
        assert set(partition.replicas) == survivor_ids, partition
        assert partition.leader in survivor_ids
    # Partitions the victim led have new leaders among the survivors.
    moved = wait_for_topic(survivor_bootstrap, before, partitions=6)
    assert all(p.leader in survivor_ids for p in moved.partitions.values()), moved.partitions
    topics = admin(survivor_bootstrap).list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics
    assert {before, right_after, with_fenced, fenced_era} <= set(topics)

    # Restarted, the old leader rejoins and all three agree on brokers, topics, leaders and replicas.
    victim.start()
    cluster.wait_for_brokers(3, timeout=60)
    assert_nodes_agree(cluster, {before, right_after, with_fenced, fenced_era})


def assert_nodes_agree(cluster, expected_topics: set[str]) -> None:
    deadline = time.monotonic() + AGREE_WITHIN_SECONDS
    while True:
        layouts = {}
        for node in cluster.nodes:
            try:
                layouts[node.node_id] = topic_layout(node.bootstrap)
            except Exception as error:
                layouts[node.node_id] = repr(error)
        first = layouts[cluster.nodes[0].node_id]
        if (all(layout == first for layout in layouts.values()) and isinstance(first, dict)
                and first["brokers"] == [1, 2, 3] and expected_topics <= set(first["topics"])):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes disagree after {AGREE_WITHIN_SECONDS}s: {layouts}\n{cluster.log_tails()}")
        time.sleep(1)


# ------------------------------------------------------------------------------------------ full restart

def test_restarting_every_node_keeps_metadata(healthy):
    cluster = healthy
    configured = {
        unique_topic_name("keep-rf3"): (4, 3, {"retention.ms": "3600000", "max.message.bytes": "200000"}),
        unique_topic_name("keep-compact"): (2, 1, {"cleanup.policy": "compact"}),
    }
    for name, (partitions, replication_factor, config) in configured.items():
        create_topic(cluster.nodes[0].bootstrap, name, partitions, replication_factor, config)
        wait_for_topic(cluster.bootstrap_servers, name, partitions)

    def snapshot() -> dict:
        client = admin(cluster.bootstrap_servers)
        names = sorted(n for n in client.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics if not n.startswith("__"))
        futures = client.describe_topics(TopicCollection(names), request_timeout=CLIENT_TIMEOUT_SECONDS)
        topics = {}
        for name, future in futures.items():
            description = future.result(timeout=CLIENT_TIMEOUT_SECONDS)
            topics[name] = {
                "id": str(description.topic_id),
                "partitions": len(description.partitions),
                "replicas": {p.id: sorted(r.id for r in p.replicas) for p in description.partitions},
            }
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in configured]
        configs = {}
        for resource, future in client.describe_configs(resources, request_timeout=CLIENT_TIMEOUT_SECONDS).items():
            entries = future.result(timeout=CLIENT_TIMEOUT_SECONDS)
            wanted = configured[resource.name][2]
            configs[resource.name] = {key: entries[key].value for key in wanted}
        return {"cluster_id": describe_cluster(cluster.bootstrap_servers).cluster_id, "topics": topics,
                "configs": configs}

    before = snapshot()
    assert {name: value for name, value in before["configs"].items()} == \
        {name: spec[2] for name, spec in configured.items()}
    for name, (partitions, replication_factor, _) in configured.items():
        assert before["topics"][name]["partitions"] == partitions
        assert all(len(r) == replication_factor for r in before["topics"][name]["replicas"].values())

    exit_codes = cluster.stop_all(kill_kafka_left_without_quorum=True)
    clean = cluster.nodes[0].clean_exit_code
    if cluster.kind == "skein":
        assert exit_codes == {1: clean, 2: clean, 3: clean}, exit_codes
    else:
        # At most one Kafka node killed, left in its controlled shutdown once its peers' controllers had gone.
        assert list(exit_codes.values()).count(clean) >= 2, exit_codes
    cluster.start()
    cluster.wait_for_brokers(3, timeout=60)
    for name, (partitions, _, _) in configured.items():
        wait_for_topic(cluster.bootstrap_servers, name, partitions)
    after = snapshot()
    assert after == before
    status = cluster.describe_quorum(cluster.nodes[1].bootstrap)
    assert sorted(voter["id"] for voter in status["CurrentVoters"]) == [1, 2, 3], status["_raw"]
    assert status["ClusterId"] == before["cluster_id"]


# ------------------------------------------------------------------------------------------ decommissioning

# The broker-only node the decommissioning test adds, and an id no broker ever registered.
DECOMMISSIONED_ID = 4
NEVER_REGISTERED_ID = 4711
RECORDS_PER_PARTITION = 40
# Each partition's replicas (the first its preferred leader): the broker-only node holds a replica of every
# partition and leads three of them.
DECOMMISSION_ASSIGNMENT = [[4, 1, 2], [4, 2, 3], [4, 3, 1], [1, 2, 4]]
# A registered broker-only node's return to every ISR after its restart (it catches up on four small
# partitions).
BACK_IN_ISR_WITHIN_SECONDS = 60


def broker_only_node(cluster, node_id: int):
    """A node of `cluster` with process.roles=broker (not a voter of the metadata quorum), not yet started. A Skein
    broker-only node receives the metadata log on a controller listener of its own; a Kafka one fetches it from
    the controllers and listens for clients only (Kafka refuses a controller listener on a broker-only node)."""
    from support.cluster import KafkaClusterNode, SkeinClusterNode

    voters = ",".join(f"{node.node_id}@127.0.0.1:{node.controller_port}" for node in cluster.nodes)
    settings = {
        **cluster.config,
        "node.id": node_id,
        "process.roles": "broker",
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
    }
    if cluster.kind == "skein":
        node = SkeinClusterNode(node_id, binary=cluster.binary)
        settings["listeners"] = f"PLAINTEXT://{node.bootstrap},CONTROLLER://127.0.0.1:{node.controller_port}"
    else:
        node = KafkaClusterNode(node_id)
        node.cluster_id = cluster.cluster_id  # formatted into the cluster's id, as the voters were
        settings.update({
            "listeners": f"PLAINTEXT://{node.bootstrap}",
            "advertised.listeners": f"PLAINTEXT://{node.bootstrap}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
        })
    node.config.update(settings)
    return node


def unregister_broker(bootstrap: str, broker_id: int):
    """kafka-cluster unregister (the Java AdminClient's UnregisterBroker); the finished tool."""
    return run_kafka_tool(CLUSTER_TOOL, "unregister", "--bootstrap-server", bootstrap, "--id", str(broker_id))


def registered_brokers(bootstrap: str) -> dict[int, str]:
    """{broker id: state} from kafka-cluster list-endpoints --include-fenced-brokers (DescribeCluster v2 asking
    for fenced brokers too): every registered broker, fenced or not."""
    result = run_kafka_tool(CLUSTER_TOOL, "list-endpoints", "--bootstrap-server", bootstrap,
                            "--include-fenced-brokers")
    assert result.returncode == 0, tool_output(result)
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()]
    assert rows and rows[0][:3] == ["ID", "HOST", "PORT"] and "STATE" in rows[0], tool_output(result)
    state = rows[0].index("STATE")
    return {int(row[0]): row[state] for row in rows[1:] if row[-1] == "broker"}


def validate_replication_factor(bootstrap: str, replication_factor: int) -> int | None:
    """CreateTopics with validate_only (nothing is created): the error code for this replication factor, or None.
    Kafka places replicas on the registered brokers, fenced ones included, so this counts registrations."""
    client = admin(bootstrap)
    name = unique_topic_name("validate-rf")
    futures = client.create_topics([NewTopic(name, num_partitions=1, replication_factor=replication_factor)],
                                   validate_only=True, request_timeout=CLIENT_TIMEOUT_SECONDS)
    try:
        futures[name].result(timeout=CLIENT_TIMEOUT_SECONDS + 5)
    except KafkaException as exc:
        return exc.args[0].code()
    return None


def test_a_stopped_broker_unregistered_with_kafka_cluster_is_forgotten(healthy):
    """Decommissioning a broker with Kafka's own tool: stop it, then `kafka-cluster unregister --id N`
    (UnregisterBroker, API 64). A broker-only node 4 holds a replica of every partition of a topic (and leads
    three of four) when records are written with acks=all; stopped, it stays registered (fenced): list-endpoints
    --include-fenced-brokers still shows it and a replication factor of 4 is still accepted. Unregistered (exit
    code 0), every node forgets it: neither Metadata nor DescribeCluster with fenced brokers lists it, a
    replication factor of 4 is INVALID_REPLICATION_FACTOR, it leads nothing and is in no ISR (its replicas stay
    in the assignment, as Kafka leaves them), and every acknowledged record reads back byte for byte.
    Unregistering id 4711, which never registered, fails with Kafka's BrokerIdNotRegisteredException ("Broker ID
    4711 is not currently registered"). Restarted, node 4 registers again: listed everywhere, back in every ISR.
    It is then stopped and unregistered once more, so the cluster ends with its three brokers registered."""
    cluster = healthy
    three = ",".join(node.bootstrap for node in cluster.nodes)
    decommissioned = broker_only_node(cluster, DECOMMISSIONED_ID)
    registered = False
    topic = unique_topic_name("decommission")
    try:
        decommissioned.start()
        registered = True
        four_ids = NODE_IDS | {DECOMMISSIONED_ID}
        for node in [*cluster.nodes, decommissioned]:
            assert cluster.wait_for_brokers(4, timeout=60, bootstrap=node.bootstrap) == four_ids

        client = admin(three)
        futures = client.create_topics([NewTopic(topic, num_partitions=len(DECOMMISSION_ASSIGNMENT),
                                                replica_assignment=DECOMMISSION_ASSIGNMENT)],
                                       request_timeout=CLIENT_TIMEOUT_SECONDS)
        futures[topic].result(timeout=CLIENT_TIMEOUT_SECONDS + 5)
        partitions = len(DECOMMISSION_ASSIGNMENT)
        metadata = wait_for_topic(three, topic, partitions, isr_size=3, timeout=60)
        for partition in metadata.partitions.values():
            assert list(partition.replicas) == DECOMMISSION_ASSIGNMENT[partition.id], partition
            assert partition.leader == DECOMMISSION_ASSIGNMENT[partition.id][0], partition

        # acks=all with node 4 in every ISR: each record acknowledged is on node 4 and on two of the voters.
        producer = Producer({"bootstrap.servers": three, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 5, "log_level": 0})
        acknowledged: dict[int, list[tuple[int, bytes, bytes]]] = {p: [] for p in range(partitions)}
        failures = []

        def delivered(error, message):
            if error is not None:
                failures.append(error)
            else:
                acknowledged[message.partition()].append((message.offset(), message.key(), message.value()))

        for partition in range(partitions):
            for i in range(RECORDS_PER_PARTITION):
                # Every byte value, in a different order per record.
                value = bytes((partition * 31 + i * 7 + j) % 256 for j in range(256 + i))
                producer.produce(topic, key=f"p{partition}-{i}".encode(), value=value, partition=partition,
                                 on_delivery=delivered)
        assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
        assert failures == []
        assert all(len(records) == RECORDS_PER_PARTITION for records in acknowledged.values()), acknowledged

        # Stopped, node 4 is fenced but still registered.
        exit_code = decommissioned.stop()
        assert exit_code == decommissioned.clean_exit_code, decommissioned.log_tail()
        for node in cluster.nodes:
            assert cluster.wait_for_brokers(3, timeout=FENCED_WITHIN_SECONDS, bootstrap=node.bootstrap) == NODE_IDS
        assert registered_brokers(three) == {**dict.fromkeys(NODE_IDS, "unfenced"), DECOMMISSIONED_ID: "fenced"}
        assert validate_replication_factor(three, 4) is None

        # Unregistered, every node forgets it.
        result = unregister_broker(cluster.nodes[1].bootstrap, DECOMMISSIONED_ID)
        assert result.returncode == 0, tool_output(result)
        registered = False
        print(f"{cluster.kind}: kafka-cluster unregister --id {DECOMMISSIONED_ID}: {result.stdout.strip()!r}")
        for node in cluster.nodes:
            assert eventually(lambda: set(registered_brokers(node.bootstrap)) == NODE_IDS,
                              f"node {node.node_id} lists only brokers 1-3 with fenced ones")
            assert cluster.broker_ids(node.bootstrap) == NODE_IDS
            assert {n.id for n in describe_cluster(node.bootstrap).nodes} == NODE_IDS
        assert validate_replication_factor(three, 4) == INVALID_REPLICATION_FACTOR
        assert validate_replication_factor(three, 3) is None
        for node in cluster.nodes:
            metadata = wait_for_topic(node.bootstrap, topic, partitions)
            for partition in metadata.partitions.values():
                assert partition.leader in NODE_IDS, (node.node_id, partition)
                assert DECOMMISSIONED_ID not in partition.isrs, (node.node_id, partition)
                assert set(partition.isrs) == set(DECOMMISSION_ASSIGNMENT[partition.id]) - {DECOMMISSIONED_ID}, \
                    (node.node_id, partition)
                assert list(partition.replicas) == DECOMMISSION_ASSIGNMENT[partition.id], (node.node_id, partition)
        stored = read_partitions(three, topic, partitions)
        assert {p: [(m.offset(), m.key(), m.value()) for m in messages] for p, messages in stored.items()} == \
            acknowledged

        # An id that is not registered: Kafka's BROKER_ID_NOT_REGISTERED, through the tool.
        result = unregister_broker(three, NEVER_REGISTERED_ID)
        assert result.returncode != 0, tool_output(result)
        output = result.stdout + result.stderr
        assert "BrokerIdNotRegisteredException" in output, tool_output(result)
        assert f"Broker ID {NEVER_REGISTERED_ID} is not currently registered" in output, tool_output(result)

        # Restarted, it registers again and rejoins every ISR.
        decommissioned.start()
        registered = True
        for node in [*cluster.nodes, decommissioned]:
            assert cluster.wait_for_brokers(4, timeout=60, bootstrap=node.bootstrap) == four_ids
        assert registered_brokers(three) == dict.fromkeys(four_ids, "unfenced")
        metadata = wait_for_topic(three, topic, partitions, isr_size=3, timeout=BACK_IN_ISR_WITHIN_SECONDS)
        assert all(DECOMMISSIONED_ID in p.isrs for p in metadata.partitions.values()), metadata.partitions

        # Decommissioned for good: the cluster is left with brokers 1-3 registered, as it was.
        assert decommissioned.stop() == decommissioned.clean_exit_code, decommissioned.log_tail()
        result = unregister_broker(three, DECOMMISSIONED_ID)
        assert result.returncode == 0, tool_output(result)
        registered = False
        assert eventually(lambda: set(registered_brokers(three)) == NODE_IDS, "brokers 1-3 registered")
    finally:
        decommissioned.close()
        if registered:  # the test failed between start and unregister: leave no fenced registration behind
            print(tool_output(unregister_broker(cluster.running_bootstrap(), DECOMMISSIONED_ID)))
        deleter = admin(cluster.running_bootstrap())
        for future in deleter.delete_topics([topic], request_timeout=CLIENT_TIMEOUT_SECONDS).values():
            try:
                future.result(timeout=CLIENT_TIMEOUT_SECONDS)
            except KafkaException:
                pass  # never created


# ------------------------------------------------------------------------------------------ observers

# Last in the module: the observer stays registered (fenced) once stopped, and counts as a registered broker
# for replication factor checks.
def test_a_broker_without_the_controller_role_joins_as_an_observer(healthy):
    """process.roles=broker: a fourth node serves clients and leads partitions but does not vote. Every node lists
    four brokers; kafka-metadata-quorum shows it under CurrentObservers, the voters unchanged. (Skein only: a
    Skein broker-only node receives the metadata log on a controller listener of its own.)"""
    cluster = healthy
    if cluster.kind != "skein":
        pytest.skip("Skein's broker-only node; Kafka's differs in how it reaches the controllers")
    observer = broker_only_node(cluster, 4)
    try:
        observer.start()
        for node in [*cluster.nodes, observer]:
            assert cluster.wait_for_brokers(4, timeout=60, bootstrap=node.bootstrap) == NODE_IDS | {4}
        status = wait_for_quorum(cluster, observer.bootstrap,
                                 lambda s: [o.get("id") for o in s.get("CurrentObservers") or []] == [4], 30)
        assert sorted(voter["id"] for voter in status["CurrentVoters"]) == [1, 2, 3], status["_raw"]
        topic = unique_topic_name("four-brokers")
        create_topic(observer.bootstrap, topic, partitions=8, replication_factor=1)
        metadata = wait_for_topic(cluster.bootstrap_servers, topic, partitions=8)
        assert {p.leader for p in metadata.partitions.values()} == NODE_IDS | {4}, metadata.partitions
    finally:
        observer.close()
