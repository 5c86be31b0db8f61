"""The container packaging: docker/skein.yaml, docker/Dockerfile, compose.yaml and compose.cluster.yaml.

The compose tests run the compose files for real with podman and podman-compose (see support/containers.py):
Skein's image is built from docker/Dockerfile (target `runtime-prebuilt`, around target/release/skein) and a
Prometheus image from Debian's package, both on a debootstrapped Debian base that stands in for
debian:bookworm-slim, once for both tests; each brings its project up on free host ports and checks what a user
relies on:
- compose.yaml (one node): clients on the host produce and consume through the advertised listener, Prometheus
  scrapes Skein, and the data survives a restart and the re-creation of the container (named volume);
- compose.cluster.yaml (three nodes): all three become ready, a client on the host bootstrapping at any one node
  sees the three brokers at their published ports, creates a topic with replication factor 3 (three replicas
  shown), produces to and reads from it, and Prometheus scrapes all three nodes.
They skip, with the reason, where podman cannot run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from support.brokers import REPO_ROOT, free_port, http_get_status, skein_binary
from support.cluster import skein_supports_cluster
from support.containers import ContainerError, PodmanHost, unavailable_reason
from support.kafka_clients import create_topic, high_watermarks, read_partitions, unique_topic_name

EXAMPLE_CONFIG = REPO_ROOT / "docker" / "skein.yaml"
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
COMPOSE_FILE = REPO_ROOT / "compose.yaml"
COMPOSE_CLUSTER_FILE = REPO_ROOT / "compose.cluster.yaml"
CLUSTER_NODE_IDS = (1, 2, 3)

# A commented setting in docker/skein.yaml: `# key: value`, optionally followed by `# explanation`.
COMMENTED_SETTING = re.compile(r"^# ([a-z]+(?:\.[a-z]+)+): (\S+)")

SKEIN_IMAGE = "localhost/skein:compose-test"
PROMETHEUS_IMAGE = "localhost/prometheus:compose-test"
BASE_IMAGE = "localhost/debian-base:compose-test"

# Stands in for prom/prometheus: the same entrypoint, default arguments, user and data directory, so
# compose.yaml runs it exactly as it runs the official image.
PROMETHEUS_CONTAINERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \\
    && apt-get install -y --no-install-recommends prometheus \\
    && rm -rf /var/lib/apt/lists/* \\
    && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
"""

MESSAGE_COUNT = 100
PARTITIONS = 3
READY_TIMEOUT_SECONDS = 90
SCRAPE_TIMEOUT_SECONDS = 90
CLIENT_TIMEOUT_SECONDS = 60


# --- docker/skein.yaml --------------------------------------------------------------------------------------

def example_config_with_every_setting() -> dict:
    """docker/skein.yaml with its commented settings uncommented."""
    lines = [re.sub(r"^# (?=[a-z]+(\.[a-z]+)+: )", "", line) for line in EXAMPLE_CONFIG.read_text().splitlines()]
    return yaml.safe_load("\n".join(lines))


def commented_defaults() -> dict[str, str]:
    """The values docker/skein.yaml shows for the settings it leaves commented (it says they are the defaults)."""
    defaults = {}
    for line in EXAMPLE_CONFIG.read_text().splitlines():
        match = COMMENTED_SETTING.match(line)
        if match:
            defaults[match.group(1)] = match.group(2)
    return defaults


def describe_broker_configs(bootstrap: str) -> dict:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource("BROKER", "1")
    return admin.describe_configs([resource], request_timeout=30)[resource].result(timeout=30)


def test_example_configuration_documents_true_defaults(start_broker):
    """Skein starts with docker/skein.yaml, and every default it shows in a comment is the broker's default.

    The broker's flags override the container addresses and paths of the file (listen, data.dir, ...)."""
    defaults = commented_defaults()
    assert {"num.partitions", "log.flush", "message.max.bytes", "offsets.retention.minutes"} <= defaults.keys()
    broker = start_broker("skein", yaml.safe_load(EXAMPLE_CONFIG.read_text()))
    described = describe_broker_configs(broker.bootstrap)
    # log.flush is Skein's own setting, not a broker config that DescribeConfigs reports.
    assert defaults.keys() - described.keys() == {"log.flush"}
    for key, value in defaults.items():
        if key in described:
            assert described[key].value == value, f"{key}: docker/skein.yaml says {value}, Skein uses {described[key].value}"


def test_example_configuration_with_every_setting_uncommented_starts(start_broker):
    """Every key in docker/skein.yaml is one Skein accepts (an unknown key would stop start-up)."""
    config = example_config_with_every_setting()
    assert len(config) == len(commented_defaults()) + 4, config  # + listen, advertised.listener, data.dir, metrics.listen
    broker = start_broker("skein", config)
    described = describe_broker_configs(broker.bootstrap)
    assert described["num.partitions"].value == str(config["num.partitions"])
    assert http_get_status(f"{broker.metrics_url}/ready") == 200


# --- compose.yaml ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def podman_images():
    """A PodmanHost holding Skein's image and the Prometheus stand-in, built once for the compose tests of this
    module; yields (host, timings of the builds). Everything is removed at the end and the clean-up checked."""
    reason = unavailable_reason()
    if reason is None and not skein_binary().is_file():
        reason = f"skein binary not built: {skein_binary()} (run `cargo build --release`)"
    if reason is not None:
        print(f"skipping: {reason}")
        pytest.skip(reason)
    host = PodmanHost()
    try:
        yield host, build_images(host)
    finally:
        problems = host.close()
        assert not problems, f"clean-up of {host.root} left problems: {problems}"


def build_images(host: PodmanHost) -> dict[str, float]:
    """Imports the debootstrapped base and builds SKEIN_IMAGE and PROMETHEUS_IMAGE on it; returns timings."""
    timings = {}
    started = time.monotonic()
    host.import_debian_base(BASE_IMAGE)
    reason = host.check_can_run_containers(BASE_IMAGE)
    if reason is not None:
        print(f"skipping: {reason}")
        pytest.skip(reason)
    timings["debootstrap base image"] = time.monotonic() - started

    # Skein's image, from a build context holding just what the runtime-prebuilt target copies.
    phase_started = time.monotonic()
    skein_context = host.root / "skein-context"
    (skein_context / "target" / "release").mkdir(parents=True)
    (skein_context / "docker").mkdir()
    shutil.copy2(skein_binary(), skein_context / "target" / "release" / "skein")
    shutil.copy2(EXAMPLE_CONFIG, skein_context / "docker" / "skein.yaml")
    host.build(skein_context, SKEIN_IMAGE, containerfile=DOCKERFILE, target="runtime-prebuilt",
               build_args={"RUNTIME_IMAGE": BASE_IMAGE})
    shutil.rmtree(skein_context)
    prometheus_context = host.root / "prometheus-context"
    prometheus_context.mkdir()
    (prometheus_context / "Containerfile").write_text(PROMETHEUS_CONTAINERFILE)
    host.build(prometheus_context, PROMETHEUS_IMAGE, build_args={"BASE_IMAGE": BASE_IMAGE})
    timings["image builds"] = time.monotonic() - phase_started
    return timings


def produce_messages(bootstrap: str, topic: str) -> list[tuple]:
    """Produces MESSAGE_COUNT keyed messages, message i to partition i % PARTITIONS; returns what the broker
    acknowledged as (partition, offset, key, value) tuples."""
    acknowledged = []
    errors = []

    def on_delivery(error, message):
        if error is not None:
            errors.append(error)
        else:
            acknowledged.append((message.partition(), message.offset(), message.key(), message.value()))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for index in range(MESSAGE_COUNT):
        producer.produce(topic, key=f"key-{index}".encode(), value=f"value-{index}".encode(),
                         partition=index % PARTITIONS, on_delivery=on_delivery)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0, "messages still unacknowledged"
    assert not errors, errors
    return sorted(acknowledged)


def consume_with_group(bootstrap: str, topic: str) -> list[tuple]:
    """Reads MESSAGE_COUNT messages as a member of a new consumer group (so FindCoordinator's advertised
    address is used too); returns them as (partition, offset, key, value) tuples."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_topic_name("compose-group"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    received = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while len(received) < MESSAGE_COUNT and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            received.append((message.partition(), message.offset(), message.key(), message.value()))
    finally:
        consumer.close()
    return sorted(received)


def read_everything(bootstrap: str, topic: str) -> list[tuple]:
    messages = read_partitions(bootstrap, topic, PARTITIONS, timeout=CLIENT_TIMEOUT_SECONDS)
    return sorted((m.partition(), m.offset(), m.key(), m.value()) for ms in messages.values() for m in ms)


def prometheus_query(port: int, query: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(query)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


class ComposeProject:
    """compose.yaml brought up with podman-compose under a unique project name, on free host ports."""

    file = COMPOSE_FILE
    services = ("skein", "prometheus")

    def __init__(self, host: PodmanHost):
        self.host = host
        self.name = f"skein-compose-{uuid.uuid4().hex[:8]}"
        self.kafka_port = free_port()
        self.metrics_port = free_port()
        self.prometheus_port = free_port()
        self.env = {
            "SKEIN_IMAGE": SKEIN_IMAGE,
            "PROMETHEUS_IMAGE": PROMETHEUS_IMAGE,
            "SKEIN_KAFKA_PORT": str(self.kafka_port),
            "SKEIN_METRICS_PORT": str(self.metrics_port),
            "PROMETHEUS_PORT": str(self.prometheus_port),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def compose(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        return self.host.compose(self.name, [self.file], *args, env=self.env, timeout=timeout, check=check)

    def up(self) -> None:
        # The images were built beforehand: neither build nor pull (no registry is reachable).
        self.compose("up", "--detach", "--no-build", "--pull", "never")

    def container(self, service: str) -> str:
        return self.host.container_name(self.name, service)

    def logs(self) -> str:
        """The last lines each service's container printed, for failure messages."""
        parts = []
        for service in self.services:
            try:
                result = self.host.podman("logs", "--tail", "60", self.container(service), check=False)
                parts.append(f"---- {service} ----\n{result.stdout}")
            except (ContainerError, subprocess.TimeoutExpired) as error:
                parts.append(f"---- {service}: no logs ({error}) ----")
        return "\n".join(parts)

    def wait_until_skein_serves(self) -> None:
        """/ready answers through the published metrics port, and Metadata through the published Kafka port
        names the advertised address: 127.0.0.1 and the published port."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while http_get_status(f"http://127.0.0.1:{self.metrics_port}/ready") != 200:
            assert time.monotonic() < deadline, f"Skein not ready within {READY_TIMEOUT_SECONDS}s\n{self.logs()}"
            time.sleep(0.5)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        brokers = admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).brokers
        assert [(b.id, b.host, b.port) for b in brokers.values()] == [(1, "127.0.0.1", self.kafka_port)]


@pytest.mark.timeout(900)
def test_compose_serves_host_clients_is_scraped_and_keeps_data(podman_images):
    podman_host, build_timings = podman_images
    timings = dict(build_timings)
    started = time.monotonic()

    project = ComposeProject(podman_host)
    try:
        phase_started = time.monotonic()
        project.up()
        project.wait_until_skein_serves()
        timings["compose up until ready"] = time.monotonic() - phase_started
        skein_container = project.container("skein")
        # The image's HEALTHCHECK command passes. (podman schedules health checks with systemd timers, which
        # this machine lacks, so the check is run once by hand.)
        health = podman_host.podman("healthcheck", "run", skein_container, check=False)
        assert health.returncode == 0, f"health check failed: {health.stdout}\n{project.logs()}"

        # Host clients: produce and consume through the advertised listener.
        phase_started = time.monotonic()
        topic = create_topic(project.bootstrap, unique_topic_name("compose"), PARTITIONS)
        produced = produce_messages(project.bootstrap, topic)
        assert len(produced) == MESSAGE_COUNT
        assert high_watermarks(project.bootstrap, topic, PARTITIONS) == [34, 33, 33]
        assert consume_with_group(project.bootstrap, topic) == produced
        timings["produce and consume"] = time.monotonic() - phase_started

        # Prometheus scrapes Skein by service name: up == 1, and a Skein counter shows our connections.
        phase_started = time.monotonic()
        deadline = time.monotonic() + SCRAPE_TIMEOUT_SECONDS
        up = accepted = None
        while True:
            try:
                up = prometheus_query(project.prometheus_port, 'up{job="skein"}')
                accepted = prometheus_query(project.prometheus_port, 'skein_connections_accepted_total{job="skein"}')
            except OSError as error:  # Prometheus still starting
                up = accepted = error
            else:
                if up and up[0]["value"][1] == "1" and accepted and float(accepted[0]["value"][1]) > 0:
                    break
            assert time.monotonic() < deadline, (
                f"Prometheus has not scraped Skein within {SCRAPE_TIMEOUT_SECONDS}s: up={up} accepted={accepted}\n"
                f"{project.logs()}"
            )
            time.sleep(1)
        assert up[0]["metric"]["instance"] == "skein:9644"
        timings["first scrape seen"] = time.monotonic() - phase_started

        # Restart: SIGTERM stops Skein cleanly as PID 1 (exit code 0, not a kill), and the data is back.
        phase_started = time.monotonic()
        project.compose("stop", "skein")
        assert podman_host.inspect(skein_container, "{{.State.ExitCode}}") == "0", project.logs()
        project.compose("start", "skein")
        project.wait_until_skein_serves()
        assert read_everything(project.bootstrap, topic) == produced
        timings["stop, start, read back"] = time.monotonic() - phase_started

        # Re-creation: `down` removes the container, the named volume keeps the data for the new one.
        phase_started = time.monotonic()
        old_container_id = podman_host.inspect(skein_container, "{{.Id}}")
        project.compose("down")
        project.up()
        project.wait_until_skein_serves()
        assert podman_host.inspect(project.container("skein"), "{{.Id}}") != old_container_id
        assert read_everything(project.bootstrap, topic) == produced
        timings["down, up, read back"] = time.monotonic() - phase_started
    except BaseException:
        print(project.logs())
        raise
    finally:
        phase_started = time.monotonic()
        down = project.compose("down", "--volumes", check=False)
        timings["down --volumes"] = time.monotonic() - phase_started
        timings["total after the builds"] = time.monotonic() - started
        print("timings (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in timings.items()))
    assert down.returncode == 0, down.stdout
    volumes = podman_host.podman("volume", "ls", "--quiet").stdout.split()
    assert not [volume for volume in volumes if volume.startswith(project.name)], volumes


# --- compose.cluster.yaml ----------------------------------------------------------------------------------

class ClusterComposeProject(ComposeProject):
    """compose.cluster.yaml brought up with podman-compose under a unique project name, on free host ports."""

    file = COMPOSE_CLUSTER_FILE
    services = tuple(f"skein-{node_id}" for node_id in CLUSTER_NODE_IDS) + ("prometheus",)

    def __init__(self, host: PodmanHost):
        self.host = host
        self.name = f"skein-cluster-{uuid.uuid4().hex[:8]}"
        self.kafka_ports = {node_id: free_port() for node_id in CLUSTER_NODE_IDS}
        self.metrics_ports = {node_id: free_port() for node_id in CLUSTER_NODE_IDS}
        self.prometheus_port = free_port()
        self.env = {"SKEIN_IMAGE": SKEIN_IMAGE, "PROMETHEUS_IMAGE": PROMETHEUS_IMAGE,
                    "PROMETHEUS_PORT": str(self.prometheus_port)}
        for node_id in CLUSTER_NODE_IDS:
            self.env[f"SKEIN_{node_id}_KAFKA_PORT"] = str(self.kafka_ports[node_id])
            self.env[f"SKEIN_{node_id}_METRICS_PORT"] = str(self.metrics_ports[node_id])

    def bootstrap_of(self, node_id: int) -> str:
        return f"127.0.0.1:{self.kafka_ports[node_id]}"

    @property
    def bootstrap(self) -> str:
        return self.bootstrap_of(1)

    def expected_brokers(self) -> list[tuple[int, str, int]]:
        """Every node, advertised on the host as 127.0.0.1 and its own published port."""
        return [(node_id, "127.0.0.1", self.kafka_ports[node_id]) for node_id in CLUSTER_NODE_IDS]

    def wait_until_cluster_serves(self) -> None:
        """Every node's /ready answers 200 through its published metrics port (it serves Kafka requests and is
        registered with the quorum), and Metadata through each node's published Kafka port lists all three
        brokers at their advertised addresses."""
        deadline = time.monotonic() + CLUSTER_READY_TIMEOUT_SECONDS
        for node_id in CLUSTER_NODE_IDS:
            while http_get_status(f"http://127.0.0.1:{self.metrics_ports[node_id]}/ready") != 200:
                assert time.monotonic() < deadline, (
                    f"skein-{node_id} not ready within {CLUSTER_READY_TIMEOUT_SECONDS}s\n{self.logs()}")
                time.sleep(0.5)
        for node_id in CLUSTER_NODE_IDS:
            admin = AdminClient({"bootstrap.servers": self.bootstrap_of(node_id)})
            while True:
                brokers = admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).brokers
                listed = sorted((b.id, b.host, b.port) for b in brokers.values())
                if listed == self.expected_brokers():
                    break
                assert time.monotonic() < deadline, (
                    f"Metadata through skein-{node_id} lists {listed}, expected {self.expected_brokers()}\n"
                    f"{self.logs()}")
                time.sleep(0.5)


CLUSTER_READY_TIMEOUT_SECONDS = 180
REPLICATION_FACTOR = 3


def create_replicated_topic(bootstrap: str, name: str) -> dict:
    """Creates NAME with PARTITIONS partitions and replication factor 3; waits until the metadata shows every
    partition with a leader and three replicas, and returns {partition: PartitionMetadata}."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=REPLICATION_FACTOR)],
                                  request_timeout=CLIENT_TIMEOUT_SECONDS)
    futures[name].result(timeout=CLIENT_TIMEOUT_SECONDS)
    deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
    while True:
        topic = admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics.get(name)
        if topic is not None and topic.error is None and len(topic.partitions) == PARTITIONS and all(
                p.leader >= 0 and len(p.replicas) == REPLICATION_FACTOR for p in topic.partitions.values()):
            return dict(topic.partitions)
        assert time.monotonic() < deadline, f"topic {name} not ready within {CLIENT_TIMEOUT_SECONDS}s: {topic}"
        time.sleep(0.2)


@pytest.mark.skipif(not skein_supports_cluster(),
                    reason=f"{skein_binary()} has no cluster support yet (no --override in its --help)")
@pytest.mark.timeout(900)
def test_compose_cluster_serves_host_clients_and_is_scraped(podman_images):
    podman_host, build_timings = podman_images
    timings = dict(build_timings)
    started = time.monotonic()
    project = ClusterComposeProject(podman_host)
    try:
        # All three nodes come up together and each becomes ready once the quorum exists.
        phase_started = time.monotonic()
        project.up()
        project.wait_until_cluster_serves()
        timings["compose up until three nodes ready"] = time.monotonic() - phase_started
        for service in project.services[:-1]:
            health = podman_host.podman("healthcheck", "run", project.container(service), check=False)
            assert health.returncode == 0, f"{service} health check failed: {health.stdout}\n{project.logs()}"

        # A host client bootstrapping at node 1 creates a topic with replication factor 3: three replicas on
        # the three brokers; then produces (acks=all) and reads every partition back from its leader.
        phase_started = time.monotonic()
        topic = unique_topic_name("compose-cluster")
        partitions = create_replicated_topic(project.bootstrap, topic)
        for number, partition in partitions.items():
            assert sorted(partition.replicas) == list(CLUSTER_NODE_IDS), (number, partition.replicas)
            assert partition.leader in CLUSTER_NODE_IDS, (number, partition.leader)
        produced = produce_messages(project.bootstrap, topic)
        assert len(produced) == MESSAGE_COUNT
        assert high_watermarks(project.bootstrap, topic, PARTITIONS) == [34, 33, 33]
        assert read_everything(project.bootstrap, topic) == produced
        timings["topic, produce and read back"] = time.monotonic() - phase_started

        # Prometheus scrapes every node by service name: three `skein` targets, each up.
        phase_started = time.monotonic()
        expected_instances = sorted(f"skein-{node_id}:9644" for node_id in CLUSTER_NODE_IDS)
        deadline = time.monotonic() + SCRAPE_TIMEOUT_SECONDS
        while True:
            try:
                up = prometheus_query(project.prometheus_port, 'up{job="skein"}')
            except OSError as error:  # Prometheus still starting
                up = error
            else:
                instances = sorted(series["metric"]["instance"] for series in up)
                if instances == expected_instances and all(series["value"][1] == "1" for series in up):
                    break
            assert time.monotonic() < deadline, (
                f"Prometheus has not scraped the three nodes within {SCRAPE_TIMEOUT_SECONDS}s: up={up}\n"
                f"{project.logs()}")
            time.sleep(1)
        timings["three targets up"] = time.monotonic() - phase_started
    except BaseException:
        print(project.logs())
        raise
    finally:
        phase_started = time.monotonic()
        down = project.compose("down", "--volumes", check=False)
        timings["down --volumes"] = time.monotonic() - phase_started
        timings["total after the builds"] = time.monotonic() - started
        print("timings (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in timings.items()))
    assert down.returncode == 0, down.stdout
    volumes = podman_host.podman("volume", "ls", "--quiet").stdout.split()
    assert not [volume for volume in volumes if volume.startswith(project.name)], volumes
