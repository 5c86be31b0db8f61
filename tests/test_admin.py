"""Admin APIs with stock admin tools, each run against Apache Kafka (the reference) and Skein:
topic configs (DescribeConfigs, IncrementalAlterConfigs, the legacy AlterConfigs), CreatePartitions,
DeleteRecords, DescribeCluster, DescribeLogDirs, ListPartitionReassignments, ElectLeaders,
DescribeProducers and the transaction listings.

Three kinds of client: Kafka's own command-line tools (kafka-topics, kafka-configs, kafka-log-dirs,
kafka-delete-records, kafka-get-offsets, kafka-console-consumer from the reference distribution's jars),
the Java AdminClient (tests/support/java/AdminOps.java) and confluent-kafka's AdminClient (which also
has the legacy AlterConfigs, gone from the Java client since 4.0).

Broker settings: both brokers take dynamic settings (AlterConfigs on the BROKER resource, cluster-wide under
the name "" or per broker under its id), apply those that topics inherit, keep them across a restart, and refuse
one read only at start-up with INVALID_REQUEST. Both accept a setting they do not know (Kafka: plugins may read
it; Skein: e.g. log.cleaner.threads, which it has no use for) and report it as sensitive.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, ElectionType, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, OffsetSpec, ResourceType)

from support.kafka_tools import TOOL_LOG4J2_PROPERTIES
from support.brokers import BROKER_KINDS, KAFKA_DIR, _die_with_parent
from support.java_programs import java_program_command
from support.kafka_clients import unique_topic_name

CLIENT_TIMEOUT_SECONDS = 30
TOOL_TIMEOUT_SECONDS = 60
JAVA_TIMEOUT_SECONDS = 120
# Both brokers run as node 1.
NODE_ID = 1
# Kafka's default topic retention (log.retention.hours=168), which both brokers report for an unset retention.ms.
DEFAULT_RETENTION_MS = "604800000"

# Error codes (Kafka protocol).
INVALID_PARTITIONS = 37
INVALID_CONFIG = 40
INVALID_REQUEST = 42
ELECTION_NOT_NEEDED = 84

# Main classes of the command-line tools (the distribution's kafka-*.sh scripts run these).
TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
CONFIG_COMMAND = "kafka.admin.ConfigCommand"
LOG_DIRS_COMMAND = "org.apache.kafka.tools.LogDirsCommand"
DELETE_RECORDS_COMMAND = "org.apache.kafka.tools.DeleteRecordsCommand"
GET_OFFSET_SHELL = "org.apache.kafka.tools.GetOffsetShell"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"



# ------------------------------------------------------------------------------------------ helpers

@pytest.fixture(scope="module")
def kafka_tool(tmp_path_factory):
    """kafka_tool(MAIN_CLASS, *arguments) runs one of Kafka's command-line tools (bounded) and returns
    the CompletedProcess (text stdout/stderr); the caller checks the exit code."""
    if not (KAFKA_DIR / "libs").is_dir():
        pytest.skip(f"Apache Kafka jars missing in {KAFKA_DIR} (run tests/setup-clients)")
    log_config = tmp_path_factory.mktemp("kafka-tools") / "log4j2.properties"
    log_config.write_text(TOOL_LOG4J2_PROPERTIES)

    def run(main_class: str, *arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
             f"-Dlog4j2.configurationFile={log_config}", "-cp", f"{KAFKA_DIR / 'libs'}/*", main_class, *arguments],
            capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    return run


def tool_output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr[-3000:]}"


def produce(bootstrap: str, topic: str, partition: int, count: int, value_size: int = 100,
            key_prefix: str = "key") -> int:
    """Produces `count` records "KEY_PREFIX-i" with `value_size`-byte values to one partition (acks=all);
    returns the value bytes written."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    failures = []
    for i in range(count):
        producer.produce(topic, key=f"{key_prefix}-{i}".encode(), value=bytes([65 + i % 26]) * value_size,
                         partition=partition, on_delivery=lambda err, msg: err and failures.append(err))
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
    assert failures == []
    return count * value_size


def kafka_error(future, timeout: float = CLIENT_TIMEOUT_SECONDS):
    """The KafkaError a confluent-kafka admin future fails with, or None when it succeeds."""
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        return exc.args[0]
    return None


def admin_client(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


# ------------------------------------------------------------------------- Kafka's command-line tools

def describe_partitions(kafka_tool, broker, topic: str) -> tuple[int, dict[int, int], str]:
    """kafka-topics --describe: (PartitionCount, {partition: leader}, output)."""
    result = kafka_tool(TOPIC_COMMAND, "--bootstrap-server", broker.bootstrap, "--describe", "--topic", topic)
    assert result.returncode == 0, tool_output(result)
    count = None
    leaders = {}
    for line in result.stdout.splitlines():
        fields = dict(field.split(": ", 1) for field in line.strip().split("\t") if ": " in field)
        if "PartitionCount" in fields:
            count = int(fields["PartitionCount"])
        elif "Partition" in fields:
            leaders[int(fields["Partition"])] = int(fields["Leader"])
    return count, leaders, result.stdout


def test_cli_topics_create_alter_partitions(broker, kafka_tool):
    topic = unique_topic_name("cli-topics")
    created = kafka_tool(TOPIC_COMMAND, "--bootstrap-server", broker.bootstrap, "--create", "--topic", topic,
                         "--partitions", "3", "--replication-factor", "1")
    assert created.returncode == 0 and f"Created topic {topic}." in created.stdout, tool_output(created)

    altered = kafka_tool(TOPIC_COMMAND, "--bootstrap-server", broker.bootstrap, "--alter", "--topic", topic,
                         "--partitions", "6")
    assert altered.returncode == 0, tool_output(altered)
    deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
    while True:
        count, leaders, output = describe_partitions(kafka_tool, broker, topic)
        if (count, leaders) == (6, {partition: NODE_ID for partition in range(6)}) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert count == 6, output
    assert leaders == {partition: NODE_ID for partition in range(6)}, output

    # Fewer partitions than the topic has: the broker refuses (INVALID_PARTITIONS) and nothing changes.
    shrunk = kafka_tool(TOPIC_COMMAND, "--bootstrap-server", broker.bootstrap, "--alter", "--topic", topic,
                        "--partitions", "4")
    assert shrunk.returncode != 0, tool_output(shrunk)
    assert "org.apache.kafka.common.errors.InvalidPartitionsException" in shrunk.stderr, tool_output(shrunk)
    assert describe_partitions(kafka_tool, broker, topic)[0] == 6


def dynamic_topic_configs(kafka_tool, broker, topic: str) -> dict[str, str]:
    """kafka-configs --describe of a topic: its dynamic (topic-level) configs, name -> value."""
    result = kafka_tool(CONFIG_COMMAND, "--bootstrap-server", broker.bootstrap, "--entity-type", "topics",
                        "--entity-name", topic, "--describe")
    assert result.returncode == 0, tool_output(result)
    lines = result.stdout.splitlines()
    assert lines[0] == f"Dynamic configs for topic {topic} are:", tool_output(result)
    # "  retention.ms=123456 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=123456, ...}"
    configs = {}
    for line in lines[1:]:
        name, value = line.strip().split(" sensitive=", 1)[0].split("=", 1)
        configs[name] = value
    return configs


def settled_dynamic_topic_configs(kafka_tool, broker, topic: str, expected: dict[str, str]) -> dict[str, str]:
    """dynamic_topic_configs once it shows `expected` (or the timeout passes); see settled_topic_configs."""
    deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
    while True:
        configs = dynamic_topic_configs(kafka_tool, broker, topic)
        if configs == expected or time.monotonic() > deadline:
            return configs
        time.sleep(0.2)


def alter_topic_configs(kafka_tool, broker, topic: str, *arguments: str) -> subprocess.CompletedProcess:
    return kafka_tool(CONFIG_COMMAND, "--bootstrap-server", broker.bootstrap, "--entity-type", "topics",
                      "--entity-name", topic, "--alter", *arguments)


def test_cli_configs_add_delete_and_invalid_value(broker, kafka_tool, new_topic):
    topic = new_topic(broker, partitions=1, prefix="cli-configs")
    assert dynamic_topic_configs(kafka_tool, broker, topic) == {}

    added = alter_topic_configs(kafka_tool, broker, topic, "--add-config", "retention.ms=123456,cleanup.policy=compact")
    assert added.returncode == 0 and f"Completed updating config for topic {topic}." in added.stdout, tool_output(added)
    expected = {"retention.ms": "123456", "cleanup.policy": "compact"}
    assert settled_dynamic_topic_configs(kafka_tool, broker, topic, expected) == expected

    deleted = alter_topic_configs(kafka_tool, broker, topic, "--delete-config", "retention.ms")
    assert deleted.returncode == 0, tool_output(deleted)
    assert settled_dynamic_topic_configs(kafka_tool, broker, topic, {"cleanup.policy": "compact"}) == {"cleanup.policy": "compact"}

    # Kafka: "InvalidConfigurationException: Invalid value abc for configuration retention.ms: Not a number of type LONG".
    invalid = alter_topic_configs(kafka_tool, broker, topic, "--add-config", "retention.ms=abc")
    assert invalid.returncode != 0, tool_output(invalid)
    assert "org.apache.kafka.common.errors.InvalidConfigurationException" in invalid.stdout + invalid.stderr, \
        tool_output(invalid)
    assert "retention.ms" in invalid.stdout + invalid.stderr, tool_output(invalid)
    assert dynamic_topic_configs(kafka_tool, broker, topic) == {"cleanup.policy": "compact"}


def test_cli_log_dirs(broker, kafka_tool, new_topic):
    topic = new_topic(broker, partitions=3, prefix="cli-log-dirs")
    written = {0: produce(broker.bootstrap, topic, 0, 20, value_size=200),
               1: produce(broker.bootstrap, topic, 1, 5, value_size=200)}

    result = kafka_tool(LOG_DIRS_COMMAND, "--bootstrap-server", broker.bootstrap, "--describe", "--topic-list", topic)
    assert result.returncode == 0, tool_output(result)
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Querying brokers for log directories information",
                         f"Received log directory information from brokers {NODE_ID}"], tool_output(result)
    described = json.loads(lines[2])
    [broker_dirs] = described["brokers"]
    assert broker_dirs["broker"] == NODE_ID
    [log_dir] = broker_dirs["logDirs"]  # one data directory
    assert log_dir["error"] is None and log_dir["logDir"], log_dir
    sizes = {entry["partition"]: entry["size"] for entry in log_dir["partitions"]}
    assert set(sizes) == {f"{topic}-{partition}" for partition in range(3)}, sizes
    assert sizes[f"{topic}-0"] >= written[0], sizes
    assert sizes[f"{topic}-1"] >= written[1], sizes
    assert sizes[f"{topic}-2"] == 0, sizes
    assert all(not entry["isFuture"] and entry["offsetLag"] == 0 for entry in log_dir["partitions"]), log_dir


def delete_records(kafka_tool, broker, tmp_path, offsets: dict[tuple[str, int], int]) -> dict[str, str]:
    """kafka-delete-records --offset-json-file: {"TOPIC-P": "low_watermark: N" or "error: ..."}."""
    offset_file = tmp_path / f"offsets-{uuid.uuid4().hex[:8]}.json"
    offset_file.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": partition, "offset": offset} for (topic, partition), offset in offsets.items()]}))
    result = kafka_tool(DELETE_RECORDS_COMMAND, "--bootstrap-server", broker.bootstrap,
                        "--offset-json-file", str(offset_file))
    # The tool exits 0 and reports failures per partition.
    assert result.returncode == 0, tool_output(result)
    outcomes = {}
    for line in result.stdout.splitlines():
        if line.startswith("partition: "):
            partition, outcome = line.removeprefix("partition: ").split("\t", 1)
            outcomes[partition] = outcome
    return outcomes


def earliest_offsets(kafka_tool, broker, topic: str) -> dict[int, int]:
    """kafka-get-offsets --time -2: partition -> earliest offset (log start offset)."""
    result = kafka_tool(GET_OFFSET_SHELL, "--bootstrap-server", broker.bootstrap, "--topic", topic, "--time", "-2")
    assert result.returncode == 0, tool_output(result)
    offsets = {}
    for line in result.stdout.splitlines():
        name, partition, offset = line.rsplit(":", 2)
        assert name == topic, line
        offsets[int(partition)] = int(offset)
    return offsets


def test_cli_delete_records(broker, kafka_tool, new_topic, tmp_path):
    topic = new_topic(broker, partitions=3, prefix="cli-delete-records")
    produce(broker.bootstrap, topic, 0, 10)
    produce(broker.bootstrap, topic, 1, 10)

    # Offset -1 deletes everything below the high watermark.
    outcomes = delete_records(kafka_tool, broker, tmp_path, {(topic, 0): 5, (topic, 1): -1})
    assert outcomes == {f"{topic}-0": "low_watermark: 5", f"{topic}-1": "low_watermark: 10"}
    assert earliest_offsets(kafka_tool, broker, topic) == {0: 5, 1: 10, 2: 0}

    # A consumer reading partition 0 from the beginning starts at offset 5 (record key-5).
    consumed = kafka_tool(CONSOLE_CONSUMER, "--bootstrap-server", broker.bootstrap, "--topic", topic,
                          "--partition", "0", "--offset", "earliest", "--max-messages", "5", "--timeout-ms", "20000",
                          "--formatter-property", "print.offset=true", "--formatter-property", "print.key=true",
                          "--formatter-property", "print.value=false")
    assert consumed.returncode == 0, tool_output(consumed)
    assert consumed.stdout.splitlines() == [f"Offset:{offset}\tkey-{offset}" for offset in range(5, 10)], \
        tool_output(consumed)

    # Beyond the high watermark: OFFSET_OUT_OF_RANGE, and the log start offset stays.
    outcomes = delete_records(kafka_tool, broker, tmp_path, {(topic, 0): 50})
    assert outcomes[f"{topic}-0"].startswith("error: org.apache.kafka.common.errors.OffsetOutOfRangeException"), outcomes
    assert earliest_offsets(kafka_tool, broker, topic)[0] == 5


def test_cli_delete_records_refused_on_compacted_topic(broker, kafka_tool, new_topic, tmp_path):
    """Kafka does not delete records of a topic whose cleanup.policy lacks `delete` (POLICY_VIOLATION)."""
    topic = new_topic(broker, partitions=1, config={"cleanup.policy": "compact"}, prefix="cli-delete-compacted")
    produce(broker.bootstrap, topic, 0, 3)
    outcomes = delete_records(kafka_tool, broker, tmp_path, {(topic, 0): 2})
    assert outcomes[f"{topic}-0"].startswith("error: org.apache.kafka.common.errors.PolicyViolationException"), outcomes
    assert earliest_offsets(kafka_tool, broker, topic) == {0: 0}


# ---------------------------------------------------------------------------- Java AdminClient

@pytest.fixture(scope="module")
def java_admin(broker):
    """Runs AdminOps once against the module's broker; returns its outcomes {key: value}."""
    command = java_program_command("AdminOps")
    prefix = unique_topic_name("java-admin")
    result = subprocess.run(command + [broker.bootstrap, prefix], capture_output=True, text=True,
                            timeout=JAVA_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    assert result.returncode == 0, f"AdminOps exited {result.returncode}\n{result.stdout}{result.stderr}"
    outcomes = {}
    for line in result.stdout.splitlines():
        key, value = line.split("=", 1)
        assert key not in outcomes, f"AdminOps printed {key} twice\n{result.stdout}"
        outcomes[key] = value
    return outcomes


def error_class(outcome: str) -> str:
    """The exception class of an "error:Class: message" outcome ("ok" for a success)."""
    return outcome.removeprefix("error:").split(":", 1)[0] if outcome.startswith("error:") else outcome


def test_java_describe_cluster(broker, java_admin):
    node = f"{NODE_ID}@{broker.bootstrap}"
    assert java_admin["cluster.nodes"] == node
    assert java_admin["cluster.controller"] == node
    assert len(java_admin["cluster.id"]) > 0 and java_admin["cluster.id"] != "null"


def test_java_create_partitions(java_admin):
    assert java_admin["partitions.create-topic"] == "ok"
    assert java_admin["partitions.grow-3-to-5"] == "ok"
    assert java_admin["partitions.after-grow"] == "5 1,1,1,1,1"
    assert error_class(java_admin["partitions.shrink-5-to-4"]) == "InvalidPartitionsException"
    assert error_class(java_admin["partitions.same-count-5"]) == "InvalidPartitionsException"
    assert error_class(java_admin["partitions.unknown-topic"]) == "UnknownTopicOrPartitionException"
    # validate_only checks the request and changes nothing.
    assert java_admin["partitions.validate-only-6"] == "ok 5 1,1,1,1,1"


def test_java_incremental_alter_configs(java_admin):
    assert java_admin["configs.set"] == "ok"
    assert java_admin["configs.after-set.retention.ms"] == "123456 DYNAMIC_TOPIC_CONFIG"
    assert java_admin["configs.append"] == "ok"
    assert java_admin["configs.after-append.cleanup.policy"] == "delete,compact DYNAMIC_TOPIC_CONFIG"
    assert java_admin["configs.subtract"] == "ok"
    assert java_admin["configs.after-subtract.cleanup.policy"] == "compact DYNAMIC_TOPIC_CONFIG"
    assert java_admin["configs.delete"] == "ok"
    assert java_admin["configs.after-delete.retention.ms"] == f"{DEFAULT_RETENTION_MS} DEFAULT_CONFIG"
    assert error_class(java_admin["configs.invalid-value"]) == "InvalidConfigurationException"
    assert error_class(java_admin["configs.unknown-name"]) == "InvalidConfigurationException"
    assert error_class(java_admin["configs.unknown-topic"]) == "UnknownTopicOrPartitionException"
    # validate_only: accepted, nothing changed.
    assert java_admin["configs.validate-only"] == f"ok {DEFAULT_RETENTION_MS} DEFAULT_CONFIG"


def test_java_broker_configs(java_admin):
    assert java_admin["broker-configs.describe.message.max.bytes"] == "1048588 DEFAULT_CONFIG"
    # log.cleaner.threads: dynamic in Kafka; stored (and unused) by Skein.
    assert java_admin["broker-configs.incremental-alter"] == "ok"


def test_java_describe_producers(java_admin):
    status, producer_id, last_timestamp = java_admin["producers.idempotent-write"].split()
    assert status == "ok"
    # "count producerId epoch lastSequence lastTimestamp currentTransactionStartOffset": the idempotent
    # producer's 7 records (sequences 0..6), its last record's CreateTime, no open transaction.
    assert java_admin["producers.idempotent"] == f"1 {producer_id} 0 6 {last_timestamp} OptionalLong.empty"
    assert java_admin["producers.empty-partition"] == "0"


def test_java_transactions(java_admin):
    assert java_admin["transactions.write"] == "ok"
    state, producer_id = java_admin["transactions.list"].split()
    assert state == "CompleteCommit"
    described_state, described_producer_id, epoch, coordinator, partitions = java_admin["transactions.describe"].split()
    assert (described_state, described_producer_id, coordinator, partitions) == (
        "CompleteCommit", producer_id, str(NODE_ID), "partitions=0")
    assert error_class(java_admin["transactions.describe-unknown"]) == "TransactionalIdNotFoundException"
    # The partition's producer is the transaction's. The commit marker (transaction version 2) carries the
    # bumped epoch, which resets the producer's sequence: lastSequence -1, no open transaction.
    count, partition_producer_id, partition_epoch, last_sequence, _, txn_start = \
        java_admin["producers.transactional"].split()
    assert (count, partition_producer_id, partition_epoch, last_sequence, txn_start) == (
        "1", producer_id, epoch, "-1", "OptionalLong.empty")


def test_java_describe_log_dirs(java_admin):
    assert java_admin["logdirs.count"] == "1"
    assert java_admin["logdirs.error"] == "none"
    total, usable = int(java_admin["logdirs.total-bytes"]), int(java_admin["logdirs.usable-bytes"])
    assert 0 < usable <= total
    # Partition 0: the idempotent producer's 7 records of 100 bytes; 1: the transaction's 3; 2: empty.
    assert int(java_admin["logdirs.size.p0"]) >= 700
    assert int(java_admin["logdirs.size.p1"]) >= 300
    assert java_admin["logdirs.size.p2"] == "0"


def test_java_delete_records(java_admin):
    assert java_admin["delete-records.before-5"] == "5"
    assert java_admin["delete-records.offsets.p0"] == "5 7"  # earliest, latest
    # -1 = the high watermark: 3 records and the commit marker.
    assert java_admin["delete-records.to-high-watermark"] == "4"
    assert java_admin["delete-records.offsets.p1"] == "4 4"
    assert error_class(java_admin["delete-records.beyond-high-watermark"]) == "OffsetOutOfRangeException"


def test_java_delete_records_refused_on_compacted_topic(java_admin):
    assert java_admin["delete-records.compacted-topic-setup"] == "ok"
    assert error_class(java_admin["delete-records.compacted-topic"]) == "PolicyViolationException"
    assert java_admin["delete-records.compacted-topic.earliest"] == "0"


def test_java_reassignments_and_leader_election(java_admin):
    assert java_admin["reassignments"] == "0"
    assert java_admin["reassignments.topic"] == "0"
    # One replica per partition: it is already the preferred (and only) leader.
    assert java_admin["elect.preferred"] == "0:ElectionNotNeededException"
    assert java_admin["elect.unclean"] == "1:ElectionNotNeededException"
    assert java_admin["elect.unknown-partition"] == "99:UnknownTopicOrPartitionException"


# --------------------------------------------------------------------- confluent-kafka AdminClient

def wait_for_partition_count(admin: AdminClient, topic: str, count: int) -> int:
    deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
    while True:
        partitions = admin.list_topics(topic=topic, timeout=CLIENT_TIMEOUT_SECONDS).topics[topic].partitions
        if len(partitions) == count and all(p.leader == NODE_ID for p in partitions.values()):
            return len(partitions)
        if time.monotonic() > deadline:
            return len(partitions)
        time.sleep(0.2)


def test_confluent_create_partitions(broker, new_topic):
    topic = new_topic(broker, partitions=3, prefix="ck-partitions")
    admin = admin_client(broker)
    assert kafka_error(admin.create_partitions([NewPartitions(topic, 5)])[topic]) is None
    assert wait_for_partition_count(admin, topic, 5) == 5
    err = kafka_error(admin.create_partitions([NewPartitions(topic, 4)])[topic])
    assert err is not None and err.code() == INVALID_PARTITIONS, err
    assert wait_for_partition_count(admin, topic, 5) == 5


def describe_topic_configs(admin: AdminClient, topic: str) -> dict[str, tuple[str, ConfigSource]]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=CLIENT_TIMEOUT_SECONDS)
    return {name: (entry.value, ConfigSource(entry.source)) for name, entry in configs.items()}


def settled_topic_configs(admin: AdminClient, topic: str, expected: dict[str, tuple[str, ConfigSource]]):
    """The topic's configs once `expected` shows (or the timeout passes). Apache Kafka applies an
    acknowledged config change to what DescribeConfigs reads a moment later (via its metadata log)."""
    deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
    while True:
        configs = describe_topic_configs(admin, topic)
        if all(configs.get(name) == value for name, value in expected.items()) or time.monotonic() > deadline:
            return configs
        time.sleep(0.2)


def incremental_alter(admin: AdminClient, resource_type: ResourceType, name: str, *entries: ConfigEntry):
    resource = ConfigResource(resource_type, name, incremental_configs=list(entries))
    return kafka_error(admin.incremental_alter_configs([resource])[resource])


def test_confluent_incremental_alter_and_describe_configs(broker, new_topic):
    topic = new_topic(broker, partitions=1, prefix="ck-configs")
    admin = admin_client(broker)
    configs = describe_topic_configs(admin, topic)
    assert configs["retention.ms"] == (DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG)
    assert configs["cleanup.policy"] == ("delete", ConfigSource.DEFAULT_CONFIG)

    assert incremental_alter(
        admin, ResourceType.TOPIC, topic,
        ConfigEntry("retention.ms", "123456", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND)) is None
    expected = {"retention.ms": ("123456", ConfigSource.DYNAMIC_TOPIC_CONFIG),
                # APPEND adds to the current (default) value.
                "cleanup.policy": ("delete,compact", ConfigSource.DYNAMIC_TOPIC_CONFIG)}
    configs = settled_topic_configs(admin, topic, expected)
    assert {name: configs[name] for name in expected} == expected

    assert incremental_alter(
        admin, ResourceType.TOPIC, topic,
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)) is None
    default_retention = {"retention.ms": (DEFAULT_RETENTION_MS, ConfigSource.DEFAULT_CONFIG)}
    assert settled_topic_configs(admin, topic, default_retention)["retention.ms"] == default_retention["retention.ms"]

    err = incremental_alter(admin, ResourceType.TOPIC, topic,
                            ConfigEntry("retention.ms", "abc", incremental_operation=AlterConfigOpType.SET))
    assert err is not None and err.code() == INVALID_CONFIG, err
    assert describe_topic_configs(admin, topic)["retention.ms"] == default_retention["retention.ms"]


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")
def test_confluent_legacy_alter_configs_replaces_topic_config(broker, new_topic):
    """The legacy AlterConfigs API sets the topic's whole config: what it does not name returns to the default."""
    topic = new_topic(broker, partitions=1, config={"cleanup.policy": "compact"}, prefix="ck-legacy-configs")
    admin = admin_client(broker)
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "777"})
    assert kafka_error(admin.alter_configs([resource])[resource]) is None
    expected = {"retention.ms": ("777", ConfigSource.DYNAMIC_TOPIC_CONFIG),
                "cleanup.policy": ("delete", ConfigSource.DEFAULT_CONFIG)}
    configs = settled_topic_configs(admin, topic, expected)
    assert {name: configs[name] for name in expected} == expected

    invalid = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "abc"})
    err = kafka_error(admin.alter_configs([invalid])[invalid])
    assert err is not None and err.code() == INVALID_CONFIG, err
    assert describe_topic_configs(admin, topic)["retention.ms"] == expected["retention.ms"]


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")
def test_confluent_broker_configs(broker):
    admin = admin_client(broker)
    resource = ConfigResource(ResourceType.BROKER, str(NODE_ID))
    configs = admin.describe_configs([resource])[resource].result(timeout=CLIENT_TIMEOUT_SECONDS)
    assert configs["message.max.bytes"].value == "1048588"

    legacy = ConfigResource(ResourceType.BROKER, str(NODE_ID), set_config={"log.cleaner.threads": "2"})
    legacy_error = kafka_error(admin.alter_configs([legacy])[legacy])
    incremental_error = incremental_alter(
        admin, ResourceType.BROKER, str(NODE_ID),
        ConfigEntry("log.cleaner.threads", "2", incremental_operation=AlterConfigOpType.SET))
    # log.cleaner.threads: dynamic in Kafka; stored (and unused) by Skein.
    assert (legacy_error, incremental_error) == (None, None)

    # A setting read only at start-up: "Cannot update these configs dynamically: [node.id]".
    err = incremental_alter(admin, ResourceType.BROKER, str(NODE_ID),
                            ConfigEntry("node.id", "5", incremental_operation=AlterConfigOpType.SET))
    assert err is not None and err.code() == INVALID_REQUEST, err
    assert "Cannot update these configs dynamically" in err.str() and "node.id" in err.str(), err


def alter_broker_default(kafka_tool, broker, *arguments: str) -> subprocess.CompletedProcess:
    return kafka_tool(CONFIG_COMMAND, "--bootstrap-server", broker.bootstrap, "--entity-type", "brokers",
                      "--entity-default", "--alter", *arguments)


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_dynamic_broker_configs_apply_to_topics_and_survive_restart(kind, start_broker, kafka_tool):
    """A cluster-wide default (kafka-configs --entity-default) and a per-broker setting (AdminClient, broker "1")
    of log.retention.ms are what a topic without its own retention.ms inherits, with their sources; both survive a
    restart; deleting the per-broker one falls back to the default. A fresh broker: these change every topic."""
    broker = start_broker(kind)
    admin = admin_client(broker)
    topic = unique_topic_name("dynamic-broker-configs")
    kafka_error(admin.create_topics([NewTopic(topic, 1, 1)])[topic])

    added = alter_broker_default(kafka_tool, broker, "--add-config", "log.retention.ms=3600000")
    assert added.returncode == 0, tool_output(added)
    assert "Completed updating default config for brokers in the cluster." in added.stdout, tool_output(added)
    cluster_default = {"retention.ms": ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)}
    assert settled_topic_configs(admin, topic, cluster_default)["retention.ms"] == cluster_default["retention.ms"]

    assert incremental_alter(admin, ResourceType.BROKER, str(NODE_ID),
                             ConfigEntry("log.retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)) is None
    per_broker = {"retention.ms": ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG)}
    assert settled_topic_configs(admin, topic, per_broker)["retention.ms"] == per_broker["retention.ms"]
    resource = ConfigResource(ResourceType.BROKER, str(NODE_ID))
    entry = admin.describe_configs([resource])[resource].result(timeout=CLIENT_TIMEOUT_SECONDS)["log.retention.ms"]
    assert (entry.value, ConfigSource(entry.source), entry.is_read_only) == \
        ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG, False)

    # Kafka: "InvalidRequestException: Invalid value abc for configuration log.retention.ms: Not a number of type LONG".
    invalid = alter_broker_default(kafka_tool, broker, "--add-config", "log.retention.ms=abc")
    assert invalid.returncode != 0, tool_output(invalid)
    assert "org.apache.kafka.common.errors.InvalidRequestException" in invalid.stderr, tool_output(invalid)
    described = kafka_tool(CONFIG_COMMAND, "--bootstrap-server", broker.bootstrap, "--entity-type", "brokers",
                           "--entity-default", "--describe")
    assert described.returncode == 0, tool_output(described)
    assert ("  log.retention.ms=3600000 sensitive=false "
            "synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=3600000}") in described.stdout.splitlines(), \
        tool_output(described)

    broker.restart()
    admin = admin_client(broker)
    assert settled_topic_configs(admin, topic, per_broker)["retention.ms"] == per_broker["retention.ms"]
    assert incremental_alter(admin, ResourceType.BROKER, str(NODE_ID),
                             ConfigEntry("log.retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)) is None
    assert settled_topic_configs(admin, topic, cluster_default)["retention.ms"] == cluster_default["retention.ms"]


def test_confluent_delete_records_and_list_offsets(broker, new_topic):
    topic = new_topic(broker, partitions=3, prefix="ck-delete-records")
    produce(broker.bootstrap, topic, 0, 10)
    produce(broker.bootstrap, topic, 1, 10)
    admin = admin_client(broker)

    requests = [TopicPartition(topic, 0, 5), TopicPartition(topic, 1, -1)]  # -1: up to the high watermark
    futures = admin.delete_records(requests, request_timeout=CLIENT_TIMEOUT_SECONDS)
    low_watermarks = {tp.partition: future.result(timeout=CLIENT_TIMEOUT_SECONDS).low_watermark
                      for tp, future in futures.items()}
    assert low_watermarks == {0: 5, 1: 10}

    def offsets(spec) -> dict[int, int]:
        partitions = {TopicPartition(topic, p): spec for p in range(3)}
        results = admin.list_offsets(partitions, request_timeout=CLIENT_TIMEOUT_SECONDS)
        return {tp.partition: future.result(timeout=CLIENT_TIMEOUT_SECONDS).offset for tp, future in results.items()}

    assert offsets(OffsetSpec.earliest()) == {0: 5, 1: 10, 2: 0}
    assert offsets(OffsetSpec.latest()) == {0: 10, 1: 10, 2: 0}

    # A consumer from the beginning of partition 0 gets offset 5 first.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic_name("ck-reader"),
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
        assert message is not None and message.error() is None, message and message.error()
        assert (message.offset(), message.key()) == (5, b"key-5")
    finally:
        consumer.close()


def test_confluent_describe_cluster_and_elect_leaders(broker, new_topic):
    admin = admin_client(broker)
    cluster = admin.describe_cluster(request_timeout=CLIENT_TIMEOUT_SECONDS).result(timeout=CLIENT_TIMEOUT_SECONDS)
    host, port = broker.bootstrap.split(":")
    assert [(node.id, node.host, node.port) for node in cluster.nodes] == [(NODE_ID, host, int(port))]
    assert (cluster.controller.id, cluster.controller.host, cluster.controller.port) == (NODE_ID, host, int(port))
    assert cluster.cluster_id

    topic = new_topic(broker, partitions=1, prefix="ck-elect")
    results = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(
        timeout=CLIENT_TIMEOUT_SECONDS)
    assert {tp.partition: err.code() for tp, err in results.items()} == {0: ELECTION_NOT_NEEDED}


def describe_broker_configs(broker) -> dict[str, dict]:
    """Broker 1's configs as the Java admin client describes them, with synonyms (DescribeBrokerConfigs.java)."""
    described = subprocess.run([*java_program_command("DescribeBrokerConfigs"), broker.bootstrap, str(NODE_ID)],
                               capture_output=True, text=True, timeout=120)
    assert described.returncode == 0, described.stderr[-3000:]
    configs = {}
    for line in described.stdout.splitlines():
        name, value, source, read_only, sensitive, config_type, *synonyms = line.split("\t")
        configs[name] = {"value": value, "source": source, "read_only": read_only == "true",
                         "sensitive": sensitive == "true", "type": config_type, "synonyms": synonyms}
    return configs


# Settings whose default is Skein's own (README, "Broker configs"): the rest of Kafka's defaults are reported as is.
SKEIN_OWN_DEFAULTS = {"log.dir", "log.retention.ms", "max.connections", "sasl.enabled.mechanisms", "ssl.keystore.type",
                      "ssl.truststore.type"}


def test_broker_describe_configs_reports_every_config_kafka_reports(start_broker):
    """DescribeConfigs of a broker names every config Apache Kafka 4.3.1 names (the Java admin client, with
    synonyms), each with Kafka's type and sensitivity: tools and UIs that read e.g. log.dirs or advertised.listeners
    find them. A setting Skein does not use is reported read-only with Kafka's default; a secret without its value;
    a setting given on the command line as STATIC_BROKER_CONFIG with its default as a synonym."""
    kafka = describe_broker_configs(start_broker("kafka"))
    skein_broker = start_broker("skein")
    skein = describe_broker_configs(skein_broker)

    assert sorted(set(kafka) - set(skein)) == []
    assert [name for name in kafka if (skein[name]["type"], skein[name]["sensitive"])
            != (kafka[name]["type"], kafka[name]["sensitive"])] == []
    defaults_differ = [name for name in kafka
                       if kafka[name]["source"] == skein[name]["source"] == "DEFAULT_CONFIG"
                       and kafka[name]["value"] != skein[name]["value"] and name not in SKEIN_OWN_DEFAULTS]
    assert defaults_differ == []

    # Unused by Skein: Kafka's default, read-only (the harness gives Kafka num.io.threads=4).
    assert skein["num.io.threads"] == {"value": "8", "source": "DEFAULT_CONFIG", "read_only": True,
                                       "sensitive": False, "type": "INT",
                                       "synonyms": ["num.io.threads=8@DEFAULT_CONFIG"]}
    # A secret: no value and, unset, no synonym, as Kafka reports it (read-only: Skein's TLS settings are static).
    assert skein["ssl.keystore.password"] == {**kafka["ssl.keystore.password"], "read_only": True}
    # Given on the command line (--listen, --advertised-listener, --data-dir of the harness).
    assert skein["advertised.listeners"]["value"] == f"PLAINTEXT://{skein_broker.bootstrap}"
    assert skein["advertised.listeners"]["source"] == "STATIC_BROKER_CONFIG"
    data_dir = str(skein_broker.data_dir.resolve())
    assert (skein["log.dirs"]["value"], skein["log.dirs"]["source"]) == (data_dir, "STATIC_BROKER_CONFIG")
    # A setting Skein uses and has left at its default.
    assert skein["message.max.bytes"] == kafka["message.max.bytes"]


def test_topic_describe_configs_reports_every_config_kafka_reports(start_broker):
    """A new topic's DescribeConfigs names exactly the configs Apache Kafka 4.3.1 names, each with Kafka's default
    and source where the brokers are configured alike (tools that copy a topic's configs, such as MirrorMaker 2,
    send them all back)."""
    described = {}
    for kind in BROKER_KINDS:
        broker = start_broker(kind)
        admin = admin_client(broker)
        topic = unique_topic_name("all-topic-configs")
        kafka_error(admin.create_topics([NewTopic(topic, 1, 1)])[topic])
        described[kind] = describe_topic_configs(admin, topic)
    kafka, skein = described["kafka"], described["skein"]
    assert sorted(skein) == sorted(kafka)
    # Skein's own defaults (README, "Configuration reference"): retention in ms, not hours; no segment files. And
    # Kafka 4's storage format sets min.insync.replicas as a cluster-wide dynamic default (for ELR, KIP-966).
    own = {"retention.ms", "segment.ms", "min.insync.replicas"}
    assert skein["min.insync.replicas"][0] == kafka["min.insync.replicas"][0]
    assert {name: skein[name] for name in kafka if name not in own} == {name: kafka[name] for name in kafka
                                                                        if name not in own}
