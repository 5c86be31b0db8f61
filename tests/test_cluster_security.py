"""Brokers that talk to each other over TLS, or over SASL on TLS: a 3-node cluster, Skein and Apache Kafka (the
reference) side by side.

Every node has three listeners: PLAINTEXT for the test's clients, INTERNAL between brokers
(`inter.broker.listener.name: INTERNAL`, a follower's fetches, a transaction coordinator's WriteTxnMarkers and
AddPartitionsToTxn verification) and CONTROLLER for the metadata quorum (`controller.listener.names: CONTROLLER`:
the controllers' Raft traffic, Vote and Fetch, and the brokers' registrations and heartbeats). Per variant (Kafka's
setting names, the same for both brokers):
- `ssl`: INTERNAL and CONTROLLER are both SSL with mutual TLS. Each listener's `listener.name.<listener>.ssl.*`: a
  PEM key store (the node's key and certificate, which is a server and a client certificate at once: a node
  presents it when it serves and when it connects), a PEM trust store (the test CA) and `ssl.client.auth=required`.
  Host names are verified (Kafka's default `ssl.endpoint.identification.algorithm=https`): the certificates name
  127.0.0.1. So the variant's tests also show the quorum running over TLS: no node registers, and no controller is
  elected, unless the nodes' controller listeners accept each other's certificates.
- `sasl_ssl`: INTERNAL is SASL_SSL, SCRAM-SHA-512 between brokers (`sasl.mechanism.inter.broker.protocol`), the
  broker's user and password in `listener.name.internal.scram-sha-512.sasl.jaas.config` (Kafka's ScramLoginModule
  text, read as the server's JAAS entry and as the inter-broker client's login); TLS as above without client
  certificates. The user's SCRAM credential is created with AlterUserScramCredentials through PLAINTEXT once the
  cluster is up, before the first replicated topic: until then no broker can log in to another.
  `sasl.enabled.mechanisms` is SCRAM-SHA-512 alone: Kafka refuses to start with a mechanism enabled on a listener
  that has no JAAS entry for it. CONTROLLER stays PLAINTEXT: Skein has no SASL on the quorum's listener (SSL there
  is what the `ssl` variant covers).

What is shown for each variant (Kafka's behaviour is the expectation):
1. the cluster starts and Metadata lists three brokers;
2. a topic with replication factor 3, min.insync.replicas=2 and one partition led by each broker takes
   RECORDS records with acks=all through PLAINTEXT, every one acknowledged, and every partition's ISR (Admin API
   DescribeTopics) then holds all three replicas: only followers fetching over INTERNAL get there;
3. a transaction writing to partitions led by three different brokers commits, another is aborted, and once every
   partition's last stable offset is its high watermark (the markers reached the partitions' leaders over
   INTERNAL) a read_committed consumer reads exactly the committed records;
4. the leader of partition 0 is SIGKILLed; the survivors serve every acknowledged record, byte for byte.

Two more clusters, each with one node (node 3) whose certificate on one listener is signed by a CA the other
nodes do not trust. Node 3 trusts both CAs: Kafka refuses to start a broker whose inter-broker client settings
cannot connect to its own listener, so a node must trust its own certificate (the CONTROLLER case keeps that
trust too, so that only the other nodes refuse):
- INTERNAL (CONTROLLER PLAINTEXT). Node 3 follows both partitions of a topic with replication factor 3 (never a
  leader) that takes records with acks=1: within STRANGER_SETTLE_SECONDS node 3 is out of both ISRs while nodes 1
  and 2 are in (a new partition's ISR starts with every live replica, and Kafka drops a follower that does not
  fetch after replica.lag.time.max.ms), it stays out for STRANGER_OBSERVE_SECONDS, and the two trusted nodes
  replicate every record (high watermarks at the produced counts).
- CONTROLLER (both listeners SSL with ssl.client.auth=required; node 3's INTERNAL certificate is trusted). All
  three nodes are voters, launched together; nodes 1 and 2, a majority, elect a leader and register. Every
  connection between node 3 and another node's CONTROLLER listener fails its TLS handshake (nodes 1 and 2 reject
  node 3's certificate as a client's and as a server's): its votes and its broker registration never arrive, nor
  does the leader's log. Metadata through node 1 and through node 2 lists brokers {1, 2} within
  QUORUM_STRANGER_SETTLE_SECONDS and for QUORUM_STRANGER_OBSERVE_SECONDS after; a TLS client (Python's ssl)
  presenting node 3's certificate to node 1's CONTROLLER listener is refused, one presenting the trusted
  certificate is not; DescribeQuorum (`kafka-metadata-quorum describe --replication`) then shows voters 1, 2 and 3
  led by node 1 or 2, which both hold the metadata log, and node 3 with no log end offset and no fetch (-1, -1);
  node 3 still runs. Kafka's broker exits once it has not registered within `initial.broker.registration.timeout.ms`
  (60 s by default): Kafka's nodes get a longer one here. The Apache Kafka reference of this scenario runs in long
  mode (SKEIN_LONG=1), to keep the file within CI's time.

Each (kind, variant) runs one cluster for its four tests; test 4 runs last and closes it. With -s the first Skein
node's YAML is printed (the settings every Skein node receives, its own ports aside), and where the nodes' logs
are kept (node-N.log in a pytest temp directory: logs-<kind>-<variant>, logs-<kind>-untrusted-node,
logs-<kind>-untrusted-quorum-node).
"""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                  UserScramCredentialUpsertion)

from support.brokers import BROKER_KINDS, free_port
from support.certificates import make_certificates
from support.cluster import (METADATA_QUORUM_COMMAND, make_cluster, run_kafka_tool, skip_unless_cluster_available,
                             tool_output)
from support.kafka_clients import end_offsets, read_to_end, unique_topic_name

CLIENT_TIMEOUT_SECONDS = 30
VARIANTS = ["ssl", "sasl_ssl"]
BROKER_USER, BROKER_PASSWORD = "broker", "broker-secret-7d1f"
# One partition led by each node (the first replica of a list is its preferred leader).
ASSIGNMENT = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
TOPIC_CONFIG = {"min.insync.replicas": "2"}
RECORDS = 300
TRANSACTION_RECORDS_PER_PARTITION = 5
# A follower that does not fetch leaves the ISR after this (both kinds read replica.lag.time.max.ms); long enough
# that a busy 2-core machine does not drop a working one.
REPLICA_LAG_MS = 10000
CLUSTER_SETTINGS = {"replica.lag.time.max.ms": REPLICA_LAG_MS}
# Every partition's ISR is full within this once the records are acknowledged.
FULL_ISR_SECONDS = 30
# The last stable offsets reach the high watermarks (markers written) within this after a commit or abort.
MARKERS_SECONDS = 30
# A survivor leads partition 0 within this after its leader's SIGKILL (6 s broker session + election + slack).
FAILOVER_SECONDS = 45
# The cluster whose node 3 has a certificate from an untrusted CA: a shorter lag time, so that the ISR settles
# within STRANGER_SETTLE_SECONDS; then it is watched for STRANGER_OBSERVE_SECONDS.
STRANGER_LAG_MS = 5000
STRANGER = 3
STRANGER_ASSIGNMENT = [[1, 2, 3], [2, 1, 3]]
STRANGER_RECORDS_PER_PARTITION = 50
STRANGER_SETTLE_SECONDS = 30
STRANGER_OBSERVE_SECONDS = 10
# The cluster whose node 3 has a CONTROLLER certificate from an untrusted CA: nodes 1 and 2 list each other alone
# within QUORUM_STRANGER_SETTLE_SECONDS once both are ready, and go on doing so for QUORUM_STRANGER_OBSERVE_SECONDS.
QUORUM_STRANGER_SETTLE_SECONDS = 30
QUORUM_STRANGER_OBSERVE_SECONDS = 10
# Kafka's broker gives up and exits when it has not registered within initial.broker.registration.timeout.ms
# (60 s by default); set beyond the scenario's length so that Kafka's node 3 is still trying while it is watched.
# A Kafka-only setting (Skein's YAML has no such key).
KAFKA_REGISTRATION_TIMEOUT = {"initial.broker.registration.timeout.ms": 600000}
# How long a TLS connection to a CONTROLLER listener is watched after its handshake: a refused client certificate
# ends it (an alert, or the connection closed) well within this; an accepted one stays open, waiting for a request.
CONTROLLER_PROBE_SECONDS = 5


# ------------------------------------------------------------------------------------------ configuration

def tls(listener: str, keystore, truststore, client_auth: str) -> dict:
    """A listener's TLS settings (`listener.name.<listener>.ssl.*`): PEM key store and trust store, client auth."""
    prefix = f"listener.name.{listener.lower()}."
    return {
        prefix + "ssl.keystore.type": "PEM",
        prefix + "ssl.keystore.location": str(keystore),
        prefix + "ssl.truststore.type": "PEM",
        prefix + "ssl.truststore.location": str(truststore),
        prefix + "ssl.client.auth": client_auth,
    }


def secured_listeners(protocol: str, client_auth: str, keystore, truststore, controller_keystore=None,
                      controller_truststore=None):
    """A node_config hook (support.cluster): an INTERNAL listener on a port of its own, named the inter-broker
    listener, over `protocol` with its TLS settings; `keystore(node)` and `truststore(node)` give the node's PEM
    files. With `controller_keystore(node)` and `controller_truststore(node)`, the CONTROLLER listener is SSL with
    mutual TLS (`ssl.client.auth=required`) too; without them it stays PLAINTEXT."""
    def settings(node, config: dict) -> dict:
        address = f"{node.host}:{free_port()}"
        controller = "PLAINTEXT" if controller_keystore is None else "SSL"
        result = {
            "listeners": f"{config['listeners']},INTERNAL://{address}",
            "advertised.listeners": f"{config['advertised.listeners']},INTERNAL://{address}",
            "listener.security.protocol.map": f"PLAINTEXT:PLAINTEXT,INTERNAL:{protocol},CONTROLLER:{controller}",
            "inter.broker.listener.name": "INTERNAL",
            **tls("INTERNAL", keystore(node), truststore(node), client_auth),
        }
        if controller_keystore is not None:
            result.update(tls("CONTROLLER", controller_keystore(node), controller_truststore(node), "required"))
        return result
    return settings


def cluster_for(kind: str, variant: str, certificates):
    """A cluster (not started) whose brokers talk to each other over `variant` (and, for `ssl`, whose quorum runs
    over mutual TLS too)."""
    config = dict(CLUSTER_SETTINGS)
    keystore, truststore = (lambda node: certificates.node.bundle), (lambda node: certificates.ca)
    if variant == "ssl":
        node_config = secured_listeners("SSL", "required", keystore, truststore, keystore, truststore)
    else:
        # CONTROLLER stays PLAINTEXT: Skein has no SASL on the quorum's listener, and the SSL variant already runs
        # the quorum over TLS.
        node_config = secured_listeners("SASL_SSL", "none", keystore, truststore)
        config.update({
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "listener.name.internal.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{BROKER_USER}" password="{BROKER_PASSWORD}";',
        })
    return make_cluster(kind, config=config, node_config=node_config)


def show_skein_yaml(cluster) -> None:
    """Prints the first Skein node's YAML (written when the node is launched)."""
    if cluster.kind == "skein":
        node = cluster.nodes[0]
        text = node.config_path.read_text() if node.config_path.exists() else "(not written)"
        print(f"\n---- {node.config_path} ----\n{text}----")


def close(cluster) -> None:
    """Closes the cluster, first copying each node's log to the directory named by its `logs` attribute (the
    nodes' own directories are removed)."""
    for node in cluster.nodes:
        if node.log_path.exists():
            shutil.copyfile(node.log_path, cluster.logs / f"node-{node.node_id}.log")
    cluster.close()
    if not hasattr(cluster, "closed_at"):
        cluster.closed_at = time.monotonic()


def start(cluster):
    """Starts the cluster and waits until Metadata lists its three brokers (the caller closes it)."""
    try:
        cluster.start()
    finally:
        show_skein_yaml(cluster)
    cluster.wait_for_brokers(3, timeout=60)
    return cluster


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module", params=[(kind, variant) for variant in VARIANTS for kind in BROKER_KINDS],
                ids=lambda param: "-".join(param))
def cluster(request, certificates, tmp_path_factory):
    kind, variant = request.param
    skip_unless_cluster_available(kind)
    cluster = cluster_for(kind, variant, certificates)
    cluster.logs = tmp_path_factory.mktemp(f"logs-{kind}-{variant}")
    began = time.monotonic()
    try:
        start(cluster)
        print(f"{kind} cluster with INTERNAL over {variant} up in {time.monotonic() - began:.1f}s")
        if variant == "sasl_ssl":
            create_broker_credential(cluster.bootstrap_servers)
        yield cluster
    finally:
        close(cluster)
        print(f"{kind} {variant}: {cluster.closed_at - began:.1f}s from start to close; node logs in {cluster.logs}")


@pytest.fixture(scope="module")
def replicated(cluster):
    """The module cluster's replicated topic and what a producer had acknowledged in it: (topic,
    {(partition, offset): value}, [delivery errors])."""
    topic = unique_topic_name("internal-replicated")
    create_topic(cluster.bootstrap_servers, topic, ASSIGNMENT, TOPIC_CONFIG)
    acked, errors = produce(cluster.bootstrap_servers, topic,
                            [(i % len(ASSIGNMENT), f"{i}:".encode() + os.urandom(24)) for i in range(RECORDS)],
                            {"acks": "all", "enable.idempotence": True})
    return topic, acked, errors


# ------------------------------------------------------------------------------------------ helpers

def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def create_broker_credential(bootstrap: str) -> None:
    """The brokers' own SCRAM-SHA-512 credential (AlterUserScramCredentials through PLAINTEXT)."""
    client = admin(bootstrap)
    futures = client.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(BROKER_USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                      BROKER_PASSWORD.encode())],
        request_timeout=CLIENT_TIMEOUT_SECONDS)
    for future in futures.values():
        future.result(timeout=CLIENT_TIMEOUT_SECONDS)


def create_topic(bootstrap: str, name: str, assignment: list[list[int]], config: dict) -> None:
    client = admin(bootstrap)
    futures = client.create_topics([NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment,
                                            config=config)],
                                   request_timeout=CLIENT_TIMEOUT_SECONDS)
    futures[name].result(timeout=CLIENT_TIMEOUT_SECONDS + 5)
    # Every partition led (Metadata) before anything is produced.
    wait_for(lambda: leaders_by_partition(bootstrap, name), lambda leaders: None not in leaders.values(),
             f"a leader for every partition of {name}", CLIENT_TIMEOUT_SECONDS)


def describe_topic(bootstrap: str, name: str):
    """The topic's TopicDescription (Admin API DescribeTopics)."""
    client = admin(bootstrap)
    futures = client.describe_topics(TopicCollection([name]), request_timeout=10)
    return futures[name].result(timeout=15)


def isr_by_partition(bootstrap: str, name: str) -> dict[int, set[int]]:
    return {p.id: {node.id for node in p.isr} for p in describe_topic(bootstrap, name).partitions}


def leaders_by_partition(bootstrap: str, name: str) -> dict[int, int | None]:
    return {p.id: (p.leader.id if p.leader is not None else None) for p in describe_topic(bootstrap, name).partitions}


def wait_for(observe, condition, what: str, timeout: float, interval: float = 0.5):
    """observe() until condition(value) holds (the value is returned); AssertionError naming `what` and the last
    value seen after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = observe()
            if condition(last):
                return last
        except KafkaException as error:  # not answering yet, or a leader moving
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        time.sleep(interval)


def produce(bootstrap: str, topic: str, records: list[tuple[int, bytes]], settings: dict):
    """Produces (partition, value) records; ({(partition, offset): value} acknowledged, [errors])."""
    acked: dict[tuple[int, int], bytes] = {}
    errors: list[str] = []

    def delivered(error, message):
        if error is None:
            acked[(message.partition(), message.offset())] = message.value()
        else:
            errors.append(f"{message.partition()}: {error}")

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 60000,
                         "log_level": 0, **settings})
    for partition, value in records:
        producer.produce(topic, value=value, partition=partition, on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(90)
    assert left == 0, f"{left} records without a delivery report after 90 s"
    return acked, errors


def read_offsets(bootstrap: str, topic: str, wanted: set[tuple[int, int]], partitions: int,
                 timeout: float = 60) -> dict[tuple[int, int], bytes]:
    """What a consumer reads from the beginning of every partition until it has seen every (partition, offset) of
    `wanted` (or `timeout` passes): {(partition, offset): value}."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "log_level": 0, "topic.metadata.refresh.interval.ms": 2000})
    read: dict[tuple[int, int], bytes] = {}
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while not wanted <= read.keys() and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                if message.error() is None:
                    read[(message.partition(), message.offset())] = message.value()
    finally:
        consumer.close()
    return read


# ------------------------------------------------------------------------------------------ the tests

def test_the_cluster_lists_three_brokers(cluster):
    assert cluster.broker_ids() == {1, 2, 3}
    assert len(cluster.running_nodes()) == 3


def test_followers_replicate_over_the_internal_listener(cluster, replicated):
    topic, acked, errors = replicated
    assert errors == []
    assert len(acked) == RECORDS
    # One partition led by each broker, so every broker is the leader of one and a follower of two.
    assert set(leaders_by_partition(cluster.bootstrap_servers, topic).values()) == {1, 2, 3}
    full = {p: {1, 2, 3} for p in range(len(ASSIGNMENT))}
    wait_for(lambda: isr_by_partition(cluster.bootstrap_servers, topic), lambda isr: isr == full,
             f"a full ISR on every partition of {topic}", FULL_ISR_SECONDS)
    assert end_offsets(cluster.bootstrap_servers, topic) == [RECORDS // len(ASSIGNMENT)] * len(ASSIGNMENT)


def test_transaction_markers_reach_the_leaders_over_the_internal_listener(cluster):
    bootstrap = cluster.bootstrap_servers
    topic = unique_topic_name("internal-transactions")
    create_topic(bootstrap, topic, ASSIGNMENT, TOPIC_CONFIG)
    assert set(leaders_by_partition(bootstrap, topic).values()) == {1, 2, 3}
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"txn-{uuid.uuid4().hex[:8]}",
                         "linger.ms": 5, "log_level": 0})
    producer.init_transactions(CLIENT_TIMEOUT_SECONDS)
    committed: dict[int, list[bytes]] = {p: [] for p in range(len(ASSIGNMENT))}
    for outcome in ("commit", "abort"):
        producer.begin_transaction()
        for partition in committed:
            for i in range(TRANSACTION_RECORDS_PER_PARTITION):
                value = f"{outcome}-{partition}-{i}:".encode() + os.urandom(8)
                producer.produce(topic, value=value, partition=partition)
                if outcome == "commit":
                    committed[partition].append(value)
        if outcome == "commit":
            producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)
        else:
            producer.flush(CLIENT_TIMEOUT_SECONDS)
            producer.abort_transaction(CLIENT_TIMEOUT_SECONDS)
    # Each transaction ends with a marker in every partition: 2 * (records + 1) offsets; the last stable offset
    # reaches the high watermark only once both markers are written by the partition's leader.
    expected_end = [2 * (TRANSACTION_RECORDS_PER_PARTITION + 1)] * len(ASSIGNMENT)
    wait_for(lambda: end_offsets(bootstrap, topic, len(ASSIGNMENT), "read_committed"),
             lambda ends: ends == expected_end, f"the last stable offsets of {topic} at {expected_end}",
             MARKERS_SECONDS)
    assert end_offsets(bootstrap, topic, len(ASSIGNMENT), "read_uncommitted") == expected_end
    messages = read_to_end(bootstrap, topic, len(ASSIGNMENT), "read_committed")
    assert {p: [m.value() for m in ms] for p, ms in messages.items()} == committed


def test_acknowledged_records_survive_the_loss_of_a_leader(cluster, replicated):
    """Runs last for its cluster, and closes it: no cluster with a node down idles beside the next one."""
    topic, acked, _ = replicated
    try:
        leader = leaders_by_partition(cluster.bootstrap_servers, topic)[0]
        cluster.node(leader).kill()
        survivors = cluster.running_bootstrap()
        wait_for(lambda: leaders_by_partition(survivors, topic)[0], lambda new: new not in (None, leader),
                 f"a leader of {topic}-0 other than broker {leader}", FAILOVER_SECONDS)
        read = read_offsets(survivors, topic, set(acked), len(ASSIGNMENT))
    finally:
        close(cluster)
    missing = sorted(set(acked) - set(read))
    assert missing == [], f"{len(missing)} acknowledged records not served by the survivors: {missing[:10]}"
    assert {key: read[key] for key in acked} == acked
    assert set(read) == set(acked), f"records nobody acknowledged: {sorted(set(read) - set(acked))[:10]}"


# ------------------------------------------------------------------------------------------ an untrusted node

@pytest.fixture(scope="module", params=BROKER_KINDS)
def stranger_cluster(request, certificates, tmp_path_factory):
    kind = request.param
    skip_unless_cluster_available(kind)
    # The stranger trusts both CAs: Kafka checks at start-up that a client with the inter-broker listener's settings
    # can connect to a server with them, so a node must trust its own certificate.
    both_cas = tmp_path_factory.mktemp("trust") / "both-cas.pem"
    both_cas.write_bytes(certificates.ca.read_bytes() + certificates.other_ca.read_bytes())
    node_config = secured_listeners(
        "SSL", "required",
        lambda node: (certificates.other_node if node.node_id == STRANGER else certificates.node).bundle,
        lambda node: both_cas if node.node_id == STRANGER else certificates.ca)
    cluster = make_cluster(kind, config={"replica.lag.time.max.ms": STRANGER_LAG_MS}, node_config=node_config)
    cluster.logs = tmp_path_factory.mktemp(f"logs-{kind}-untrusted-node")
    began = time.monotonic()
    try:
        start(cluster)
        yield cluster
    finally:
        close(cluster)
        print(f"{kind} cluster with an untrusted node: {cluster.closed_at - began:.1f}s from start to close; node "
              f"logs in {cluster.logs}")


def test_a_node_with_an_untrusted_certificate_never_joins_the_isr(stranger_cluster):
    bootstrap = stranger_cluster.bootstrap_servers
    topic = unique_topic_name("untrusted-follower")
    create_topic(bootstrap, topic, STRANGER_ASSIGNMENT, {})
    partitions = len(STRANGER_ASSIGNMENT)
    acked, errors = produce(bootstrap, topic, [(p, f"{p}-{i}".encode()) for i in range(STRANGER_RECORDS_PER_PARTITION)
                                               for p in range(partitions)], {"acks": "1"})
    assert errors == [] and len(acked) == partitions * STRANGER_RECORDS_PER_PARTITION
    trusted = {1, 2, 3} - {STRANGER}
    settled = {p: trusted for p in range(partitions)}
    wait_for(lambda: isr_by_partition(bootstrap, topic), lambda isr: isr == settled,
             f"the ISRs of {topic} settled at {trusted}", STRANGER_SETTLE_SECONDS)
    seen = []
    deadline = time.monotonic() + STRANGER_OBSERVE_SECONDS
    while time.monotonic() < deadline:
        seen.append(isr_by_partition(bootstrap, topic))
        time.sleep(1)
    assert all(isr == settled for isr in seen), seen
    # The trusted follower has every record: the high watermark moved with an ISR of the two trusted nodes.
    assert end_offsets(bootstrap, topic, partitions) == [STRANGER_RECORDS_PER_PARTITION] * partitions


# ------------------------------------------------------------------------------------------ an untrusted quorum node

@pytest.fixture(scope="module", params=BROKER_KINDS)
def quorum_stranger_cluster(request, certificates, tmp_path_factory):
    """Nodes 1 and 2 started (each listed in its own Metadata) beside node 3, launched at the same time, whose
    CONTROLLER certificate nodes 1 and 2 do not trust; INTERNAL is SSL with trusted certificates on every node."""
    kind = request.param
    skip_unless_cluster_available(kind)
    # Node 3 trusts both CAs, as in the stranger cluster above: it would accept the others, they refuse it.
    both_cas = tmp_path_factory.mktemp("trust") / "both-cas.pem"
    both_cas.write_bytes(certificates.ca.read_bytes() + certificates.other_ca.read_bytes())
    node_config = secured_listeners(
        "SSL", "required", lambda node: certificates.node.bundle, lambda node: certificates.ca,
        lambda node: (certificates.other_node if node.node_id == STRANGER else certificates.node).bundle,
        lambda node: both_cas if node.node_id == STRANGER else certificates.ca)
    config = dict(CLUSTER_SETTINGS, **(KAFKA_REGISTRATION_TIMEOUT if kind == "kafka" else {}))
    cluster = make_cluster(kind, config=config, node_config=node_config)
    cluster.logs = tmp_path_factory.mktemp(f"logs-{kind}-untrusted-quorum-node")
    began = time.monotonic()
    try:
        cluster.node(STRANGER).launch()
        try:
            cluster.start(nodes=[node for node in cluster.nodes if node.node_id != STRANGER])
        finally:
            show_skein_yaml(cluster)
        print(f"{kind} nodes 1 and 2 ready in {time.monotonic() - began:.1f}s")
        yield cluster
    finally:
        close(cluster)
        print(f"{kind} cluster with an untrusted quorum node: {cluster.closed_at - began:.1f}s from start to close; "
              f"node logs in {cluster.logs}")


def quorum_replication(bootstrap: str) -> dict[int, dict[str, str]]:
    """`kafka-metadata-quorum describe --replication` (DescribeQuorum) through `bootstrap`: {node id: {column:
    value}} (NodeId, LogEndOffset, Lag, LastFetchTimestamp, LastCaughtUpTimestamp, Status, ...)."""
    result = run_kafka_tool(METADATA_QUORUM_COMMAND, "--bootstrap-server", bootstrap, "describe", "--replication")
    assert result.returncode == 0, tool_output(result)
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    header = next(line for line in lines if line and line[0] == "NodeId")
    rows = [dict(zip(header, line)) for line in lines if line is not header and line[0].lstrip("-").isdigit()]
    return {int(row["NodeId"]): row for row in rows}


def controller_connection(node, identity, ca) -> str:
    """Connects to `node`'s CONTROLLER listener over TLS from Python's ssl module, presenting `identity`'s certificate
    and trusting `ca` (host name checked), sends nothing and reads for CONTROLLER_PROBE_SECONDS: "open" when nothing
    came and the connection is still up, else what ended it (the server's alert, "closed", a refused handshake)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(identity.cert), str(identity.key))
    try:
        with socket.create_connection((node.host, node.controller_port), timeout=CONTROLLER_PROBE_SECONDS) as raw:
            with context.wrap_socket(raw, server_hostname=node.host) as tls:
                try:
                    data = tls.recv(4096)
                except TimeoutError:
                    return "open"
                return f"data: {data!r}" if data else "closed"
    except (ssl.SSLError, OSError) as error:
        return f"{type(error).__name__}: {error}"


def test_a_node_with_an_untrusted_controller_certificate_never_joins_the_quorum(quorum_stranger_cluster,
                                                                                 certificates):
    cluster = quorum_stranger_cluster
    trusted = {1, 2, 3} - {STRANGER}
    trusted_nodes = [cluster.node(node_id) for node_id in sorted(trusted)]

    def listed() -> list[set[int]]:
        return [cluster.broker_ids(node.bootstrap, timeout=5) for node in trusted_nodes]

    # Metadata through node 1 and through node 2, each alone: the two trusted brokers, not node 3.
    wait_for(listed, lambda seen: seen == [trusted] * len(trusted_nodes), f"nodes {sorted(trusted)} listing "
             f"brokers {sorted(trusted)}", QUORUM_STRANGER_SETTLE_SECONDS)
    seen = []
    deadline = time.monotonic() + QUORUM_STRANGER_OBSERVE_SECONDS
    while time.monotonic() < deadline:
        seen.append(listed())
        time.sleep(1)
    assert all(brokers == [trusted] * len(trusted_nodes) for brokers in seen), seen
    # Node 1's CONTROLLER listener, to a client that trusts it: a connection presenting node 3's certificate is
    # refused after the handshake (an alert), one presenting the trusted nodes' certificate is kept open.
    assert controller_connection(trusted_nodes[0], certificates.node, certificates.ca) == "open"
    refused = controller_connection(trusted_nodes[0], certificates.other_node, certificates.ca)
    assert refused != "open" and not refused.startswith("data"), refused
    # The quorum (DescribeQuorum, answered by its leader): three voters, led by a trusted node, and node 3 has
    # never fetched the metadata log from the leader; nodes 1 and 2 replicate it.
    replication = quorum_replication(trusted_nodes[0].bootstrap)
    raw = "\n".join(str(row) for row in replication.values())
    assert set(replication) == {1, 2, 3}, raw
    assert {node_id for node_id, row in replication.items() if row["Status"] == "Leader"} <= trusted, raw
    assert [row["Status"] for row in replication.values()].count("Leader") == 1, raw
    assert all(int(replication[node_id]["LogEndOffset"]) > 0 for node_id in trusted), raw
    assert int(replication[STRANGER]["LogEndOffset"]) == -1, raw
    assert int(replication[STRANGER]["LastFetchTimestamp"]) == -1, raw
    # Node 3 is kept out, not gone: it still runs, still trying to reach the quorum.
    assert cluster.node(STRANGER).is_running(), cluster.node(STRANGER).log_tail()
