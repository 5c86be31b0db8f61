"""Kafka Connect in distributed mode (Apache Kafka 4.3.1's connect-runtime and connect-file) against Apache Kafka (the
reference) and Skein: a real worker process with the FileStreamSource and FileStreamSink connectors.

The worker (`ConnectDistributed worker.properties`, support.connect_processes) has its own group.id and its own
config, offset and status storage topics, which it creates itself with replication factor 1 and
cleanup.policy=compact (checked on the broker with DescribeConfigs, with the partition counts asked for). Its REST
API listens on a free 127.0.0.1 port. Both connectors are created through that API: FileStreamSource reads
`input.txt` into a one-partition topic, FileStreamSink writes that topic to `output.txt`, both with
StringConverter, so a line's UTF-8 bytes are the record's value (no key) and a record's value is a line of the sink
file.

Checked for both brokers:
- every line of the input file arrives in the topic, in order, byte for byte (read back with confluent-kafka), and
  in the sink file, which ends up equal to the input file;
- GET /connectors/NAME/status shows each connector and its one task RUNNING;
- the source's position is committed to the offset topic (a record keyed `["file-source",{"filename":...}]`
  whose value is `{"position": P}`, P the length of the file read) and the sink's group `connect-file-sink` has
  committed the topic's end offset;
- after SIGTERM the worker exits cleanly (143); lines appended to the input while it is down are, once it is started
  again, the only records added to the topic (the source resumed at its committed position) and the only lines
  added to the sink file (the sink group resumed at its committed offset): no line twice.
On a failure the worker's log and properties and the broker's log are copied into the test's tmp_path.

FileStreamSourceTask counts its position in characters (Java chars) but skips bytes when it resumes, so the lines
read before the restart are ASCII; the appended lines hold multi-byte UTF-8 characters (all in the BMP).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from support.brokers import BROKER_KINDS, free_port
from support.connect_processes import CLEAN_EXIT_CODE, ConnectProcess, rest_call
from support.kafka_clients import create_topic, high_watermarks, read_partitions, unique_topic_name

CONNECT_DISTRIBUTED = "org.apache.kafka.connect.cli.ConnectDistributed"
SOURCE = "file-source"
SINK = "file-sink"
SINK_GROUP = f"connect-{SINK}"
STRING_CONVERTER = "org.apache.kafka.connect.storage.StringConverter"
OFFSET_PARTITIONS = 5
STATUS_PARTITIONS = 3
# Lines read before the restart (ASCII: see the module docstring), then lines appended while the worker is down.
FIRST_LINES = [f"line {n:03d}: {'x' * (n % 17)} the quick brown fox\t{n * 7919 % 1000}" for n in range(200)] + [""]
LATER_LINES = [f"later {n:02d}: grüße, naïve café, Ωμέγα, 日本語 {n}" for n in range(50)]

WORKER_START_SECONDS = 60
# The connectors and their tasks RUNNING, and every line delivered, within this.
DELIVERY_SECONDS = 60
CLIENT_TIMEOUT_SECONDS = 30
# Same settings on both brokers: the worker's group forms at once (Kafka's default delays a new group's first
# rebalance by 3 s; KafkaBroker sets 0 already).
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 0}


def file_text(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def java_length(text: str) -> int:
    """The length of `text` in Java chars (UTF-16 code units), which FileStreamSourceTask's position counts."""
    return len(text.encode("utf-16-le")) // 2


class Worker:
    """The test's Connect worker (one per test), its REST address and its storage topics."""

    def __init__(self, bootstrap: str, work_dir: Path):
        suffix = unique_topic_name("connect").removeprefix("connect-")
        self.bootstrap = bootstrap
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.storage_topics = {
            "config": f"connect-configs-{suffix}",
            "offset": f"connect-offsets-{suffix}",
            "status": f"connect-status-{suffix}",
        }
        self.process = ConnectProcess("worker", CONNECT_DISTRIBUTED, {
            "bootstrap.servers": bootstrap,
            "group.id": f"connect-cluster-{suffix}",
            "listeners": f"http://127.0.0.1:{self.port}",
            "key.converter": STRING_CONVERTER,
            "value.converter": STRING_CONVERTER,
            "config.storage.topic": self.storage_topics["config"],
            "offset.storage.topic": self.storage_topics["offset"],
            "status.storage.topic": self.storage_topics["status"],
            "config.storage.replication.factor": 1,
            "offset.storage.replication.factor": 1,
            "status.storage.replication.factor": 1,
            "offset.storage.partitions": OFFSET_PARTITIONS,
            "status.storage.partitions": STATUS_PARTITIONS,
            "offset.flush.interval.ms": 500,
            # The connectors are on the classpath (connect-file); no plugin directories to scan.
            "plugin.discovery": "service_load",
        }, work_dir)

    def start(self) -> None:
        """Starts the worker and waits until its REST API lists connectors (it has joined its group and read the
        config topic)."""
        self.process.start()
        deadline = time.monotonic() + WORKER_START_SECONDS
        while True:
            self.process.assert_running()
            status, body = rest_call(f"{self.url}/connectors")
            if status == 200:
                return
            assert time.monotonic() < deadline, (
                f"worker REST API not ready within {WORKER_START_SECONDS}s: {status} {body}\n"
                f"{self.process.log_tail()}")
            time.sleep(0.5)

    def create_connector(self, name: str, config: dict) -> None:
        status, body = rest_call(f"{self.url}/connectors", "POST", {"name": name, "config": config})
        assert status == 201, f"POST /connectors {name}: {status} {body}\n{self.process.log_tail()}"

    def connector_status(self, name: str) -> dict | None:
        status, body = rest_call(f"{self.url}/connectors/{name}/status")
        return body if status == 200 else None


def states(status: dict | None) -> tuple | None:
    """(connector state, [task states]) of a GET /connectors/NAME/status answer."""
    if status is None:
        return None
    return status["connector"]["state"], [task["state"] for task in status["tasks"]]


def wait_until(check, what: str, timeout: float, worker: Worker):
    """Polls `check` until it returns something true (returned); fails with `what` and its last result after
    `timeout`, or at once when the worker exited."""
    deadline = time.monotonic() + timeout
    while True:
        worker.process.assert_running()
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} not within {timeout}s (last: {result!r})\n" \
                                            f"{worker.process.log_tail()}"
        time.sleep(0.3)


def source_positions(bootstrap: str, offset_topic: str) -> list[tuple[object, object]]:
    """Every (key, value) of the worker's offset topic, JSON-decoded, in offset order per partition."""
    records = read_partitions(bootstrap, offset_topic, OFFSET_PARTITIONS, CLIENT_TIMEOUT_SECONDS)
    return [(json.loads(m.key()), json.loads(m.value()) if m.value() is not None else None)
            for partition in range(OFFSET_PARTITIONS) for m in records[partition]]


def committed_source_position(bootstrap: str, offset_topic: str, input_path: Path) -> int | None:
    """The last position of the file source committed to the offset topic."""
    wanted_key = [SOURCE, {"filename": str(input_path)}]
    positions = [value["position"] for key, value in source_positions(bootstrap, offset_topic)
                 if key == wanted_key and value is not None]
    return positions[-1] if positions else None


def sink_group_offset(bootstrap: str, topic: str) -> int | None:
    """The sink group's committed offset of the topic's partition; None while it has none (or the broker has no
    answer yet)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(SINK_GROUP, [TopicPartition(topic, 0)])
    try:
        result = admin.list_consumer_group_offsets([request], request_timeout=10)[SINK_GROUP].result(timeout=15)
    except KafkaException:
        return None
    offset = result.topic_partitions[0].offset
    return offset if offset >= 0 else None


def topic_values(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    records = read_partitions(bootstrap, topic, 1, CLIENT_TIMEOUT_SECONDS)[0]
    return [(m.key(), m.value()) for m in records]


def expected_records(lines: list[str]) -> list[tuple[None, bytes]]:
    return [(None, line.encode()) for line in lines]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_file_connectors_deliver_every_line_once_across_a_worker_restart(kind, start_broker, tmp_path):
    broker = start_broker(kind, BROKER_CONFIG)
    bootstrap = broker.bootstrap
    topic = create_topic(bootstrap, unique_topic_name("connect-lines"), partitions=1)
    work_dir = tmp_path / "worker"
    work_dir.mkdir()
    input_path = work_dir / "input.txt"
    output_path = work_dir / "output.txt"
    input_path.write_text(file_text(FIRST_LINES), encoding="utf-8")
    worker = Worker(bootstrap, work_dir)
    started = time.monotonic()
    try:
        worker.start()
        print(f"{kind}: worker REST API up after {time.monotonic() - started:.1f}s")

        # The worker created its storage topics itself: compacted, with the partition counts it was given.
        admin = AdminClient({"bootstrap.servers": bootstrap})
        metadata = admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics
        expected_partitions = {"config": 1, "offset": OFFSET_PARTITIONS, "status": STATUS_PARTITIONS}
        for role, name in worker.storage_topics.items():
            assert name in metadata, f"{role} storage topic {name} missing: {sorted(metadata)}"
            assert len(metadata[name].partitions) == expected_partitions[role], (name, metadata[name].partitions)
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in worker.storage_topics.values()]
        for resource, future in admin.describe_configs(resources, request_timeout=CLIENT_TIMEOUT_SECONDS).items():
            configs = future.result(timeout=CLIENT_TIMEOUT_SECONDS)
            assert configs["cleanup.policy"].value == "compact", (resource.name, configs["cleanup.policy"])

        worker.create_connector(SOURCE, {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "tasks.max": "1", "file": str(input_path), "topic": topic,
        })
        worker.create_connector(SINK, {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "tasks.max": "1", "file": str(output_path), "topics": topic,
        })
        for name in (SOURCE, SINK):
            wait_until(lambda: states(worker.connector_status(name)) == ("RUNNING", ["RUNNING"]),
                       f"{name} and its task RUNNING", DELIVERY_SECONDS, worker)

        first_length = java_length(file_text(FIRST_LINES))
        assert first_length == len(file_text(FIRST_LINES).encode())
        wait_until(lambda: high_watermarks(bootstrap, topic, 1)[0] >= len(FIRST_LINES),
                   f"{len(FIRST_LINES)} records in {topic}", DELIVERY_SECONDS, worker)
        wait_until(lambda: committed_source_position(bootstrap, worker.storage_topics["offset"], input_path)
                   == first_length, f"source position {first_length} committed", DELIVERY_SECONDS, worker)
        wait_until(lambda: sink_group_offset(bootstrap, topic) == len(FIRST_LINES),
                   f"{SINK_GROUP} committed offset {len(FIRST_LINES)}", DELIVERY_SECONDS, worker)
        assert topic_values(bootstrap, topic) == expected_records(FIRST_LINES)
        assert output_path.read_bytes() == file_text(FIRST_LINES).encode()
        print(f"{kind}: {len(FIRST_LINES)} lines delivered and committed after {time.monotonic() - started:.1f}s")

        assert worker.process.stop() == CLEAN_EXIT_CODE, worker.process.log_tail()
        with open(input_path, "a", encoding="utf-8") as input_file:
            input_file.write(file_text(LATER_LINES))
        worker.start()
        for name in (SOURCE, SINK):
            wait_until(lambda: states(worker.connector_status(name)) == ("RUNNING", ["RUNNING"]),
                       f"{name} and its task RUNNING after the restart", DELIVERY_SECONDS, worker)

        everything = FIRST_LINES + LATER_LINES
        full_length = java_length(file_text(everything))
        # Once the source has committed the position of the whole file, it has produced all it will.
        wait_until(lambda: committed_source_position(bootstrap, worker.storage_topics["offset"], input_path)
                   == full_length, f"source position {full_length} committed", DELIVERY_SECONDS, worker)
        assert high_watermarks(bootstrap, topic, 1)[0] == len(everything)
        assert topic_values(bootstrap, topic) == expected_records(everything)
        wait_until(lambda: sink_group_offset(bootstrap, topic) == len(everything),
                   f"{SINK_GROUP} committed offset {len(everything)}", DELIVERY_SECONDS, worker)
        assert output_path.read_bytes() == file_text(everything).encode()
        for name in (SOURCE, SINK):
            assert states(worker.connector_status(name)) == ("RUNNING", ["RUNNING"])
        assert worker.process.stop() == CLEAN_EXIT_CODE, worker.process.log_tail()
        print(f"{kind}: {len(LATER_LINES)} more lines delivered after the restart, done after "
              f"{time.monotonic() - started:.1f}s")
    except BaseException:
        worker.process.keep_log(tmp_path)
        try:
            shutil.copyfile(broker.log_path, tmp_path / "broker.log")
            print(f"broker log kept in {tmp_path / 'broker.log'}")
        except OSError as error:
            print(f"cannot keep the broker log: {error}")
        raise
    finally:
        worker.process.kill()
