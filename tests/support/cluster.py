"""Start, stop, kill and restart multi-node clusters: N `skein` processes, or N Apache Kafka KRaft nodes.

SkeinCluster and KafkaCluster run `size` nodes (node ids 1..size) on 127.0.0.1, each a combined broker +
controller with its own Kafka port, controller port, data dir and log file, and every node a voter of the
metadata quorum (`controller.quorum.voters`). Both take `config`, Kafka setting names applied to every node
(YAML for Skein, server.properties for Kafka), on top of CLUSTER_CONFIG (short session and heartbeat times
for a 2-core machine); `node_config` adds settings to one node at a time (a listener of its own, its key store).

The nodes are the single-broker classes of support.brokers with a node id: start/stop/kill (SIGKILL)/
restart, pid, bootstrap, data_dir, log_tail. A cluster node is ready only once a quorum exists, so
`cluster.start()` launches every process first and then waits for all of them. Every process dies with the
Python process that started it (PR_SET_PDEATHSIG, atexit) and `close()` kills whatever still runs.

Cluster-wide views: `bootstrap_servers`, `wait_for_brokers(n)` (the Metadata broker list, through confluent-
kafka's AdminClient), `describe_quorum()` / `quorum_leader_id()` (Kafka's own `kafka-metadata-quorum
describe --status`, which sends DescribeQuorum), and `run_kafka_tool(...)` for the other CLI tools.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

from support.kafka_tools import TOOL_TIMEOUT_SECONDS, run_kafka_tool, tool_output  # noqa: F401 (used by tests)
from support.brokers import (STOP_TIMEOUT_SECONDS, BrokerError, KafkaBroker, SkeinBroker, free_port,
                             skein_binary)

DEFAULT_SIZE = 3
START_TIMEOUT_SECONDS = 180
CLIENT_TIMEOUT_SECONDS = 30

# Settings every cluster node gets (both kinds know these names). Short times so that a fenced broker leaves
# Metadata and a lost leader is replaced quickly, but not so short that a busy 2-core machine misses beats.
CLUSTER_CONFIG = {
    "broker.session.timeout.ms": 6000,
    "broker.heartbeat.interval.ms": 500,
    "controller.quorum.election.timeout.ms": 1000,
    "offsets.topic.replication.factor": 3,
    "transaction.state.log.replication.factor": 3,
    "transaction.state.log.min.isr": 2,
    "min.insync.replicas": 1,
    "default.replication.factor": 1,
}

# Settings only Kafka knows; its internal share-group topic needs a replication factor like the others.
KAFKA_ONLY_CONFIG = {
    "share.coordinator.state.topic.replication.factor": 3,
    "share.coordinator.state.topic.min.isr": 2,
}

# Main classes of Kafka's command-line tools (what the distribution's kafka-*.sh scripts run).
METADATA_QUORUM_COMMAND = "org.apache.kafka.tools.MetadataQuorumCommand"
BROKER_API_VERSIONS_COMMAND = "org.apache.kafka.tools.BrokerApiVersionsCommand"
CLUSTER_TOOL = "org.apache.kafka.tools.ClusterTool"
TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
TRANSACTIONS_COMMAND = "org.apache.kafka.tools.TransactionsCommand"

def skein_supports_cluster() -> bool:
    """Whether the built skein binary takes the cluster settings (it has `--override KEY=VALUE`)."""
    binary = skein_binary()
    if not binary.is_file():
        return False
    try:
        result = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--override" in result.stdout


def parse_quorum_status(text: str) -> dict:
    """`kafka-metadata-quorum describe --status` output as {field: value}; LeaderId, LeaderEpoch, HighWatermark
    become ints and CurrentVoters / CurrentObservers lists of dicts (each with at least "id")."""
    status: dict = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+):\s*(.*)$", line.strip())
        if match is None:
            continue
        key, value = match.groups()
        if key in ("CurrentVoters", "CurrentObservers"):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = [{"id": int(voter_id)} for voter_id in re.findall(r'"id"\s*:\s*(-?\d+)', value)]
            status[key] = parsed
        elif key in ("LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag", "MaxFollowerLagTimeMs"):
            try:
                status[key] = int(value)
            except ValueError:
                status[key] = value
        else:
            status[key] = value
    return status


# ------------------------------------------------------------------------------------------------- nodes

class SkeinClusterNode(SkeinBroker):
    """One skein process of a cluster: its settings (node.id, listeners, voters, ...) are in its YAML file."""

    def __init__(self, node_id: int, config: dict | None = None, binary=None):
        super().__init__(config, binary)
        self.node_id = node_id
        self.controller_port = free_port()
        # Extra `--override KEY=VALUE` flags, applied after the YAML file.
        self.overrides: dict = {}

    def _command(self) -> list[str]:
        command = [
            str(self.binary),
            "--config", str(self.config_path),
            "--data-dir", str(self.data_dir),
            "--metrics-listen", f"{self.host}:{self.metrics_port}",
        ]
        for key, value in self.overrides.items():
            command += ["--override", f"{key}={value}"]
        return command

    def __repr__(self) -> str:
        return f"SkeinClusterNode(node_id={self.node_id}, bootstrap={self.bootstrap!r}, pid={self.pid})"


class KafkaClusterNode(KafkaBroker):
    """One Apache Kafka KRaft node of a cluster (combined broker + controller)."""

    def __init__(self, node_id: int, config: dict | None = None):
        super().__init__(config)
        self.node_id = node_id

    def __repr__(self) -> str:
        return f"KafkaClusterNode(node_id={self.node_id}, bootstrap={self.bootstrap!r}, pid={self.pid})"


# ------------------------------------------------------------------------------------------------ clusters

class _Cluster:
    kind = ""

    def __init__(self, size: int = DEFAULT_SIZE, config: dict | None = None, network=None, node_config=None):
        """`network`: a support.node_network.NodeNetwork of `size` nodes, made; node N then runs in its namespace and
        listens (clients, controllers, metrics) on its address. `node_config(node, settings)`: settings of one node
        on top of the others (another listener, a key store of its own), given the node and the settings it has
        so far (listeners and advertised.listeners included); what it returns is added or replaces them."""
        self.size = size
        self.config = {**CLUSTER_CONFIG, **(config or {})}
        self.network = network
        self.nodes: list = [self._make_node(node_id) for node_id in range(1, size + 1)]
        if network is not None:
            for node in self.nodes:
                node.host = network.address(node.node_id)
                node.command_prefix = network.command_prefix(node.node_id)
        voters = ",".join(f"{node.node_id}@{node.host}:{node.controller_port}" for node in self.nodes)
        for node in self.nodes:
            node.config.update(self._node_config(node, voters))
            if node_config is not None:
                node.config.update(node_config(node, dict(node.config)))

    # -- what subclasses provide ---------------------------------------------------------------
    def _make_node(self, node_id: int):
        raise NotImplementedError

    def _node_config(self, node, voters: str) -> dict:
        return {
            **self.config,
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{node.bootstrap},CONTROLLER://{node.host}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{node.bootstrap}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
        }

    # -- nodes -----------------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int):
        return next(node for node in self.nodes if node.node_id == node_id)

    def running_nodes(self) -> list:
        return [node for node in self.nodes if node.is_running()]

    def running_bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.running_nodes())

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_SECONDS, nodes: list | None = None) -> "_Cluster":
        """Launches the nodes (default: all that are not running) and waits until each is ready."""
        nodes = [node for node in (nodes or self.nodes) if not node.is_running()]
        deadline = time.monotonic() + timeout
        try:
            for node in nodes:
                node.launch()
            for node in nodes:
                node.wait_ready(max(1.0, deadline - time.monotonic()))
        except BaseException:
            for node in nodes:
                node.kill()
            raise
        return self

    def stop_all(self, timeout: float = STOP_TIMEOUT_SECONDS * 2,
                 kill_kafka_left_without_quorum: bool = False) -> dict[int, int | None]:
        """SIGTERM every running node at once, then wait; {node_id: exit code}. A node still running after
        `timeout` is SIGKILLed and BrokerError raised, except, when `kill_kafka_left_without_quorum`, an Apache
        Kafka node whose every peer has exited: its broker's controlled shutdown was not answered before the
        other nodes' controllers stopped, and Kafka then waits minutes for a quorum that is gone. Its code is
        None."""
        running = self.running_nodes()
        for node in running:
            node.terminate()
        deadline = time.monotonic() + timeout
        codes, stuck = {}, []
        for node in running:
            code = node.wait_exit(max(0.1, deadline - time.monotonic()))
            if code is None:
                stuck.append(node)
                node.kill()
            codes[node.node_id] = code
        if stuck and kill_kafka_left_without_quorum and self.kind == "kafka" and len(stuck) == 1:
            print(f"kafka node {stuck[0].node_id} was left in its controlled shutdown without a quorum; killed it")
            return codes
        if stuck:
            raise BrokerError(f"{self.kind} nodes {[n.node_id for n in stuck]} did not exit within {timeout}s of "
                              f"SIGTERM; killed them\n" + "\n".join(n.log_tail() for n in stuck))
        return codes

    def restart_all(self, timeout: float = START_TIMEOUT_SECONDS) -> dict[int, int | None]:
        codes = self.stop_all()
        self.start(timeout)
        return codes

    def close(self) -> None:
        for node in self.nodes:
            node.kill()
        for node in self.nodes:
            node.close()

    def __enter__(self) -> "_Cluster":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.nodes!r})"

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(node.log_tail(lines) for node in self.nodes)

    # -- cluster views ----------------------------------------------------------------------------
    def broker_ids(self, bootstrap: str | None = None, timeout: float = 10) -> set[int]:
        """The broker ids a Metadata request lists (through `bootstrap`, default every running node)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap or self.running_bootstrap(), "log_level": 0})
        return set(admin.list_topics(timeout=timeout).brokers)

    def wait_for_brokers(self, n: int, timeout: float = 60, bootstrap: str | None = None) -> set[int]:
        """Polls Metadata until exactly `n` brokers are listed; returns their ids."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                last = self.broker_ids(bootstrap, timeout=5)
                if len(last) == n:
                    return last
            except Exception as error:  # not answering yet
                last = error
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.kind} cluster did not list {n} brokers within {timeout}s "
                                   f"(last: {last!r})\n{self.log_tails()}")
            time.sleep(0.5)

    def describe_quorum(self, bootstrap: str | None = None) -> dict:
        """`kafka-metadata-quorum --bootstrap-server B describe --status`, parsed (see parse_quorum_status);
        raises when the tool fails."""
        result = run_kafka_tool(METADATA_QUORUM_COMMAND, "--bootstrap-server",
                                bootstrap or self.running_bootstrap(), "describe", "--status")
        if result.returncode != 0:
            raise RuntimeError(f"kafka-metadata-quorum failed\n{tool_output(result)}")
        status = parse_quorum_status(result.stdout)
        status["_raw"] = result.stdout
        return status

    def quorum_leader_id(self, bootstrap: str | None = None) -> int:
        return self.describe_quorum(bootstrap)["LeaderId"]


class SkeinCluster(_Cluster):
    kind = "skein"

    def __init__(self, size: int = DEFAULT_SIZE, config: dict | None = None, cluster_id: str | None = None,
                 binary=None, network=None, node_config=None):
        """`cluster_id`: written as `cluster.id` to every node; by default the nodes agree on a generated one."""
        self.binary = binary
        self.cluster_id = cluster_id
        super().__init__(size, config, network, node_config)

    def _make_node(self, node_id: int) -> SkeinClusterNode:
        return SkeinClusterNode(node_id, binary=self.binary)

    def _node_config(self, node, voters: str) -> dict:
        config = super()._node_config(node, voters)
        if self.cluster_id is not None:
            config["cluster.id"] = self.cluster_id
        return config


class KafkaCluster(_Cluster):
    kind = "kafka"

    def __init__(self, size: int = DEFAULT_SIZE, config: dict | None = None, network=None, node_config=None):
        super().__init__(size, {**KAFKA_ONLY_CONFIG, **(config or {})}, network, node_config)
        # Every node is formatted with the same cluster id (kafka-storage format --cluster-id, static voters).
        self.cluster_id = self.nodes[0].cluster_id
        for node in self.nodes:
            node.cluster_id = self.cluster_id

    def _make_node(self, node_id: int) -> KafkaClusterNode:
        return KafkaClusterNode(node_id)


def skip_unless_cluster_available(kind: str) -> None:
    """Skips the calling test when the kind's cluster cannot run here (Kafka jars, which the tools need too, or a
    skein binary with cluster settings)."""
    import pytest

    from support.brokers import kafka_installed

    if not kafka_installed():
        pytest.skip("Apache Kafka jars missing in .tools/kafka (run tests/setup-clients); the CLI tools need them")
    if kind == "skein":
        if not skein_binary().is_file():
            pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
        if not skein_supports_cluster():
            pytest.skip(f"{skein_binary()} has no cluster settings yet (no --override in --help)")


def started(cluster, brokers: int = DEFAULT_SIZE):
    """`cluster` started with `brokers` brokers listed in Metadata; closed (every node killed) if that fails."""
    try:
        cluster.start()
        cluster.wait_for_brokers(brokers, timeout=60)
    except BaseException:
        cluster.close()
        raise
    return cluster


def healthy(cluster, brokers: int = DEFAULT_SIZE):
    """`cluster` with every node running and `brokers` brokers listed (restarts what an earlier failure left
    down)."""
    if len(cluster.running_nodes()) < len(cluster.nodes):
        cluster.start()
    cluster.wait_for_brokers(brokers, timeout=60)
    return cluster


def make_cluster(kind: str, size: int = DEFAULT_SIZE, config: dict | None = None, network=None, node_config=None):
    """A cluster of the given kind ("kafka" or "skein"), not yet started; `network`, `node_config`: see _Cluster."""
    if kind == "skein":
        return SkeinCluster(size, config, network=network, node_config=node_config)
    if kind == "kafka":
        return KafkaCluster(size, config, network, node_config)
    raise ValueError(f"unknown cluster kind {kind!r} (expected 'skein' or 'kafka')")
