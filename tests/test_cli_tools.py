"""Kafka's command-line tools (the reference distribution's jars in .tools/kafka) against Apache Kafka (the
reference) and Skein, one broker per kind for the module, with the same assertions on what the tools print.

Shown for both brokers:
- A fresh broker: kafka-topics --list prints nothing (no topic, internal or not, exists before a client asks for
  a group or transaction coordinator).
- kafka-topics (TopicCommand): --create with partitions, replication factor and --config prints `Created topic
  T.`; --list shows it; --describe prints the topic line (TopicId, PartitionCount, ReplicationFactor, Configs
  holding the --config values) and one line per partition (Leader 1, Replicas 1, Isr 1, empty Elr and
  LastKnownElr); --alter --partitions 3 prints nothing and --describe then shows three partitions; --delete
  prints nothing and the topic leaves the listing.
- kafka-consumer-groups (ConsumerGroupCommand), after a confluent-kafka consumer subscribed in a group and
  committed offsets 7 and 2 on a topic with 10 and 4 records: --list shows the group; --describe prints GROUP
  TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG (no member: CONSUMER-ID, HOST and CLIENT-ID are `-`, and
  stderr says the group has no active members); --reset-offsets --execute --to-earliest, --to-offset 3 and
  --shift-by 2 (clamped to the log end) print the NEW-OFFSET table and --describe shows the new offsets;
  --delete-offsets for one partition reports it Successful and leaves only the other; --delete reports success
  and the group leaves the listing.
- kafka-get-offsets (GetOffsetShell): --time -1 and -2 print `T:partition:offset` lines; kafka-delete-records
  (DeleteRecordsCommand) with an --offset-json-file prints the new low watermark, and --time -2 then shows it.
- kafka-log-dirs (LogDirsCommand): --describe --topic-list T prints the two progress lines and a JSON line with
  broker 1, one log dir without error, and the topic's partitions with size > 0, offsetLag 0, isFuture false
  (log dir paths differ between brokers and are not compared).
- kafka-transactions (TransactionsCommand), after a confluent-kafka transactional producer committed: `list`
  shows the transactional id with coordinator 1 and state CompleteCommit, and with --transactional-id-pattern
  only where the pattern matches the whole id; `describe` prints coordinator 1,
  epoch 0, state CompleteCommit, the producer's 60000 ms timeout, the last transaction's start time (within the
  test's clock readings) and its duration, and no partitions.
- kafka-metadata-quorum (MetadataQuorumCommand): `describe --status` prints Kafka's keys in Kafka's order;
  ClusterId is the cluster id Metadata reports, LeaderId is node 1, the only voter is node 1, no observers, no
  follower lag (the values of LeaderEpoch, HighWatermark and the voters' endpoints differ between brokers).
- kafka-features (FeatureCommand): `describe` prints the same metadata.version (supported 3.3-IV3 to 4.3-IV0,
  finalized 4.3-IV0), group.version (0-1, finalized 1) and transaction.version (0-2, finalized 2) lines, all at
  one epoch. Updates (UpdateFeatures) go through Kafka's controller checks with Kafka's messages: `upgrade
  --metadata 4.3 --dry-run` (the deprecated flag, which names metadata.version alone) succeeds; `downgrade
  --metadata 4.2 --dry-run` is refused as an unsupported metadata.version downgrade; an unknown feature is refused
  as not supported by controller 1; an upgrade to the current level, dry run or not, succeeds and leaves every
  finalized level as it was.
  Where Skein differs, by design, the test says what each broker answers: Skein finalizes no share.version,
  streams.version or eligible.leader.replicas.version (Kafka 4.3.1 finalizes them at 1) and supports only
  kraft.version 0 (Kafka 0-1), so `upgrade --release-version 4.3`, which sets every feature of the release, is
  refused on Skein with Kafka's message for an unsupported level of kraft.version; and Skein's levels are fixed, so
  `downgrade --feature transaction.version=1 --dry-run`, which Kafka accepts, is refused with
  INVALID_UPDATE_VERSION saying that transaction.version stays at level 2.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from support.brokers import BROKER_KINDS, make_broker, skein_binary
from support.kafka_clients import create_topic, eventually, unique_topic_name
from support.kafka_tools import run_kafka_tool, tool_output

CLIENT_TIMEOUT_SECONDS = 30
# How long a change may take to show in what a tool describes (Kafka's brokers answer from a metadata cache
# that follows the controller).
EFFECT_SECONDS = 10

TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
GET_OFFSET_SHELL = "org.apache.kafka.tools.GetOffsetShell"
DELETE_RECORDS_COMMAND = "org.apache.kafka.tools.DeleteRecordsCommand"
LOG_DIRS_COMMAND = "org.apache.kafka.tools.LogDirsCommand"
TRANSACTIONS_COMMAND = "org.apache.kafka.tools.TransactionsCommand"
METADATA_QUORUM_COMMAND = "org.apache.kafka.tools.MetadataQuorumCommand"
FEATURE_COMMAND = "org.apache.kafka.tools.FeatureCommand"

NODE_ID = "1"
# Kafka's Uuid text form: 16 bytes in URL-safe base64 without padding.
UUID_TEXT = re.compile(r"^[A-Za-z0-9_-]{22}$")


class CliBroker:
    """The module's started broker, with what kafka-topics --list --exclude-internal printed right after it
    started."""

    def __init__(self, broker, fresh_topic_list: str):
        self.broker = broker
        self.bootstrap = broker.bootstrap
        self.fresh_topic_list = fresh_topic_list

    def tool(self, main_class: str, *arguments: str) -> str:
        """The tool's stdout, run against this broker; asserts that it exited 0."""
        return self.run(main_class, *arguments).stdout

    def run(self, main_class: str, *arguments: str):
        result = run_kafka_tool(main_class, "--bootstrap-server", self.bootstrap, *arguments)
        assert result.returncode == 0, tool_output(result)
        return result


@pytest.fixture(scope="module", params=BROKER_KINDS)
def broker(request):
    if request.param == "skein" and not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
    with make_broker(request.param) as started:
        # Internal topics left out: Skein creates __consumer_offsets at start-up (group_log.rs), Kafka at the
        # first coordinator lookup.
        listing = run_kafka_tool(TOPIC_COMMAND, "--bootstrap-server", started.bootstrap, "--list",
                                 "--exclude-internal")
        assert listing.returncode == 0, tool_output(listing)
        yield CliBroker(started, listing.stdout)


# ------------------------------------------------------------------------------------------ kafka-topics


def test_fresh_broker_lists_no_topics(broker):
    # An empty listing is one empty line.
    assert broker.fresh_topic_list == "\n"


def test_topics_tool_creates_lists_describes_alters_and_deletes(broker):
    topic = unique_topic_name("cli-topic")
    created = broker.tool(TOPIC_COMMAND, "--create", "--topic", topic, "--partitions", "2",
                          "--replication-factor", "1", "--config", "retention.ms=123456",
                          "--config", "cleanup.policy=delete")
    assert created == f"Created topic {topic}.\n"
    assert topic in topic_list(broker)

    header, partitions = describe_topic(broker, topic, 2)
    assert set(header) == {"Topic", "TopicId", "PartitionCount", "ReplicationFactor", "Configs"}, header
    assert header["Topic"] == topic
    assert UUID_TEXT.match(header["TopicId"]), header
    assert (header["PartitionCount"], header["ReplicationFactor"]) == ("2", "1")
    # Configs lists every config not at its default: the topic's own, and broker-level overrides (the Kafka
    # reference's server.properties sets min.insync.replicas=1).
    configs = dict(pair.split("=", 1) for pair in header["Configs"].split(","))
    assert {key: configs.get(key) for key in ("retention.ms", "cleanup.policy")} == \
        {"retention.ms": "123456", "cleanup.policy": "delete"}, header["Configs"]
    assert partitions == [partition_line(topic, p) for p in range(2)]

    assert broker.tool(TOPIC_COMMAND, "--alter", "--topic", topic, "--partitions", "3") == ""
    header_after, partitions_after = describe_topic(broker, topic, 3)
    assert header_after == {**header, "PartitionCount": "3"}
    assert partitions_after == [partition_line(topic, p) for p in range(3)]

    assert broker.tool(TOPIC_COMMAND, "--delete", "--topic", topic) == ""
    eventually(lambda: _assert_not_in(topic, topic_list(broker)), EFFECT_SECONDS)


def topic_list(broker) -> list[str]:
    return broker.tool(TOPIC_COMMAND, "--list").splitlines()


def describe_topic(broker, topic: str, partitions: int) -> tuple[dict, list[dict]]:
    """kafka-topics --describe of the topic once it shows `partitions` partitions: the topic line and the
    partition lines as {key: value} (tab-separated `Key: value` fields; a value may be empty)."""

    def described():
        lines = broker.tool(TOPIC_COMMAND, "--describe", "--topic", topic).splitlines()
        assert len(lines) == 1 + partitions, lines
        assert not lines[0].startswith("\t") and all(line.startswith("\t") for line in lines[1:]), lines
        return _fields(lines[0]), [_fields(line) for line in lines[1:]]

    return eventually(described, EFFECT_SECONDS)


def _fields(line: str) -> dict:
    fields = {}
    for field in line.strip("\t").split("\t"):
        key, value = field.split(":", 1)
        fields[key] = value.strip()
    return fields


def partition_line(topic: str, partition: int) -> dict:
    return {"Topic": topic, "Partition": str(partition), "Leader": NODE_ID, "Replicas": NODE_ID, "Isr": NODE_ID,
            "Elr": "", "LastKnownElr": ""}


def _assert_not_in(item, items) -> None:
    assert item not in items, items


# ------------------------------------------------------------------------------------------ kafka-consumer-groups

DESCRIBE_COLUMNS = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID",
                    "HOST", "CLIENT-ID"]
RESET_COLUMNS = ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]


def test_consumer_groups_tool_lists_describes_resets_and_deletes(broker):
    topic = create_topic(broker.bootstrap, unique_topic_name("cli-groups"), partitions=2)
    produce(broker.bootstrap, topic, {0: 10, 1: 4})
    group = unique_topic_name("cli-group")
    commit_in_group(broker.bootstrap, group, topic, {0: 7, 1: 2})

    assert group in broker.tool(CONSUMER_GROUP_COMMAND, "--list").splitlines()

    def described(offsets: dict[int, int]) -> None:
        result = broker.run(CONSUMER_GROUP_COMMAND, "--describe", "--group", group)
        rows = [[group, topic, str(p), str(offset), str(end), str(end - offset), "-", "-", "-"]
                for p, (offset, end) in sorted({p: (o, {0: 10, 1: 4}[p]) for p, o in offsets.items()}.items())]
        assert table(result.stdout) == (DESCRIBE_COLUMNS, rows), result.stdout
        assert result.stderr.strip() == f"Consumer group '{group}' has no active members.", result.stderr

    described({0: 7, 1: 2})

    def reset(*how: str) -> tuple[list[str], list[list[str]]]:
        return table(broker.tool(CONSUMER_GROUP_COMMAND, "--reset-offsets", "--group", group, "--topic", topic,
                                 *how, "--execute"))

    def new_offsets(offsets: dict[int, int]) -> tuple[list[str], list[list[str]]]:
        return RESET_COLUMNS, [[group, topic, str(p), str(offset)] for p, offset in sorted(offsets.items())]

    assert reset("--to-earliest") == new_offsets({0: 0, 1: 0})
    assert reset("--to-offset", "3") == new_offsets({0: 3, 1: 3})
    # A shift past the log end stops at the log end (partition 1 has 4 records).
    assert reset("--shift-by", "2") == new_offsets({0: 5, 1: 4})
    described({0: 5, 1: 4})

    deleted = broker.tool(CONSUMER_GROUP_COMMAND, "--delete-offsets", "--group", group, "--topic", f"{topic}:0")
    message, _, status = deleted.partition("\n")
    assert message == f"Request succeeded for deleting offsets from group {group}.", deleted
    assert table(status) == (["TOPIC", "PARTITION", "STATUS"], [[topic, "0", "Successful"]]), deleted
    described({1: 4})

    assert broker.tool(CONSUMER_GROUP_COMMAND, "--delete", "--group", group) == \
        f"Deletion of requested consumer groups ('{group}') was successful.\n"
    assert group not in broker.tool(CONSUMER_GROUP_COMMAND, "--list").splitlines()


def produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, count in counts.items():
        for index in range(count):
            producer.produce(topic, f"record-{partition}-{index}".encode(), partition=partition)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0


def commit_in_group(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """A consumer joins `group` subscribed to `topic`, is assigned every partition, commits `offsets` and
    leaves."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while len(consumer.assignment()) < len(offsets):
            assert time.monotonic() < deadline, f"not assigned {topic} within {CLIENT_TIMEOUT_SECONDS}s"
            message = consumer.poll(0.2)
            if message is not None and message.error() is not None:
                raise KafkaException(message.error())
        consumer.commit(offsets=[TopicPartition(topic, p, offset) for p, offset in offsets.items()],
                        asynchronous=False)
    finally:
        consumer.close()


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """A whitespace-aligned table a tool printed (blank lines around it): its header and its rows, sorted."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    assert lines, text
    return lines[0], sorted(lines[1:])


# ------------------------------------------------------------------------------------------ kafka-get-offsets,
# kafka-delete-records, kafka-log-dirs


def test_get_offsets_and_delete_records_tools(broker, tmp_path: Path):
    topic = create_topic(broker.bootstrap, unique_topic_name("cli-offsets"), partitions=2)
    produce(broker.bootstrap, topic, {0: 10, 1: 4})

    assert broker.tool(GET_OFFSET_SHELL, "--topic", topic, "--time", "-1") == f"{topic}:0:10\n{topic}:1:4\n"
    assert broker.tool(GET_OFFSET_SHELL, "--topic", topic, "--time", "-2") == f"{topic}:0:0\n{topic}:1:0\n"

    offsets_file = tmp_path / "offsets.json"
    offsets_file.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "offset": 4}]}))
    assert broker.tool(DELETE_RECORDS_COMMAND, "--offset-json-file", str(offsets_file)) == (
        "Executing records delete operation\n"
        "Records delete operation completed:\n"
        f"partition: {topic}-0\tlow_watermark: 4\n"
    )
    assert broker.tool(GET_OFFSET_SHELL, "--topic", topic, "--time", "-2") == f"{topic}:0:4\n{topic}:1:0\n"
    assert broker.tool(GET_OFFSET_SHELL, "--topic", topic, "--time", "-1") == f"{topic}:0:10\n{topic}:1:4\n"


def test_log_dirs_tool_describes_the_topic(broker):
    topic = create_topic(broker.bootstrap, unique_topic_name("cli-log-dirs"), partitions=2)
    produce(broker.bootstrap, topic, {0: 5, 1: 3})

    lines = broker.tool(LOG_DIRS_COMMAND, "--describe", "--topic-list", topic).splitlines()
    assert lines[:2] == ["Querying brokers for log directories information",
                         f"Received log directory information from brokers {NODE_ID}"], lines
    assert len(lines) == 3, lines
    described = json.loads(lines[2])
    assert described["version"] == 1, described
    assert [entry["broker"] for entry in described["brokers"]] == [int(NODE_ID)], described
    log_dirs = described["brokers"][0]["logDirs"]
    assert len(log_dirs) == 1 and log_dirs[0]["error"] is None and log_dirs[0]["logDir"], described
    partitions = sorted(log_dirs[0]["partitions"], key=lambda p: p["partition"])
    assert [{**p, "size": p["size"] > 0} for p in partitions] == [
        {"partition": f"{topic}-{p}", "size": True, "offsetLag": 0, "isFuture": False} for p in range(2)
    ], described


# ------------------------------------------------------------------------------------------ kafka-transactions


def test_transactions_tool_lists_and_describes_a_committed_transaction(broker):
    topic = create_topic(broker.bootstrap, unique_topic_name("cli-txn"), partitions=1)
    transactional_id = unique_topic_name("cli-txn-id")
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": transactional_id})
    producer.init_transactions(CLIENT_TIMEOUT_SECONDS)
    began_ms = int(time.time() * 1000)
    producer.begin_transaction()
    producer.produce(topic, b"in a transaction")
    producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)
    committed_ms = int(time.time() * 1000)

    header, rows = tab_table(broker.tool(TRANSACTIONS_COMMAND, "list"))
    assert header == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"], rows
    listed = [row for row in rows if row[0] == transactional_id]
    assert len(listed) == 1 and listed[0][1] == NODE_ID and listed[0][3] == "CompleteCommit", rows
    producer_id = listed[0][2]
    assert producer_id.isdigit(), rows
    # --transactional-id-pattern (ListTransactions v2, KIP-1152): the whole transactional id must match.
    _, rows = tab_table(broker.tool(TRANSACTIONS_COMMAND, "list", "--transactional-id-pattern",
                                    transactional_id[:-2] + ".."))
    assert [row[0] for row in rows] == [transactional_id], rows
    _, rows = tab_table(broker.tool(TRANSACTIONS_COMMAND, "list", "--transactional-id-pattern", transactional_id[1:]))
    assert rows == [], rows

    described_ms = int(time.time() * 1000)
    header, rows = tab_table(broker.tool(TRANSACTIONS_COMMAND, "describe", "--transactional-id", transactional_id))
    assert header == ["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                      "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                      "TopicPartitions"], header
    assert len(rows) == 1, rows
    described = dict(zip(header, rows[0]))
    start, duration = described.pop("CurrentTransactionStartTimeMs"), described.pop("TransactionDurationMs")
    assert described == {"CoordinatorId": NODE_ID, "TransactionalId": transactional_id, "ProducerId": producer_id,
                         "ProducerEpoch": "0", "TransactionState": "CompleteCommit",
                         "TransactionTimeoutMs": "60000", "TopicPartitions": ""}, rows
    # After the commit, the start time of the transaction that completed, and the time since it.
    assert start.isdigit() and began_ms - 1000 <= int(start) <= committed_ms, (start, began_ms, committed_ms)
    assert duration.isdigit() and int(duration) <= int(time.time() * 1000) - int(start) + 1000, (duration, start)
    assert int(duration) >= described_ms - int(start) - 1000, (duration, start, described_ms)


def tab_table(text: str) -> tuple[list[str], list[list[str]]]:
    """A table of tab-separated, space-padded cells (TransactionsCommand's): its header and rows."""
    lines = [[cell.strip() for cell in line.rstrip("\t").split("\t")] for line in text.splitlines() if line.strip()]
    assert lines, text
    return lines[0], lines[1:]


# ------------------------------------------------------------------------------------------ kafka-metadata-quorum


def test_metadata_quorum_tool_describes_status(broker):
    output = broker.tool(METADATA_QUORUM_COMMAND, "describe", "--status")
    status = {}
    for line in output.splitlines():
        key, value = line.split(":", 1)
        status[key] = value.strip()
    assert list(status) == ["ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag",
                            "MaxFollowerLagTimeMs", "CurrentVoters", "CurrentObservers"], output

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    cluster = admin.describe_cluster(request_timeout=CLIENT_TIMEOUT_SECONDS).result(timeout=CLIENT_TIMEOUT_SECONDS)
    assert status["ClusterId"] == cluster.cluster_id, output
    assert status["LeaderId"] == NODE_ID, output
    assert status["LeaderEpoch"].isdigit() and int(status["LeaderEpoch"]) >= 1, output
    assert status["HighWatermark"].isdigit() and int(status["HighWatermark"]) > 0, output
    assert (status["MaxFollowerLag"], status["MaxFollowerLagTimeMs"]) == ("0", "0"), output
    voters = json.loads(status["CurrentVoters"])
    assert [voter["id"] for voter in voters] == [int(NODE_ID)], output
    assert all(re.match(r"^[A-Z_]+://[^:/]+:\d+$", endpoint) for endpoint in voters[0]["endpoints"]), output
    assert json.loads(status["CurrentObservers"]) == [], output


# ------------------------------------------------------------------------------------------ kafka-features

DESCRIBE_FEATURE_KEYS = ["Feature", "SupportedMinVersion", "SupportedMaxVersion", "FinalizedVersionLevel", "Epoch"]
# What `describe` prints for the features both brokers have: (SupportedMinVersion, SupportedMaxVersion,
# FinalizedVersionLevel).
COMMON_FEATURES = {
    "group.version": ("0", "1", "1"),
    "metadata.version": ("3.3-IV3", "4.3-IV0", "4.3-IV0"),
    "transaction.version": ("0", "2", "2"),
}
# The rest, per broker. Kafka 4.3.1 finalizes share.version, streams.version and eligible.leader.replicas.version
# at 1 by default and supports kraft.version 0-1; Skein has none of the first three and supports kraft.version 0
# only. FeatureCommand prints FinalizedVersionLevel 0 for a feature ApiVersions does not finalize, as Skein's
# kraft.version.
OTHER_FEATURES = {
    "kafka": {
        "eligible.leader.replicas.version": ("0", "1", "1"),
        "kraft.version": ("0", "1", "0"),
        "share.version": ("0", "1", "1"),
        "streams.version": ("0", "1", "1"),
    },
    "skein": {
        "kraft.version": ("0", "0", "0"),
    },
}
UPDATE_FAILED = "The update failed for all features since the following feature had an error: "
# The deprecated `--metadata` flag says so on stdout before the result.
METADATA_FLAG_DEPRECATED = " `metadata` flag is deprecated and may be removed in a future release."


def test_features_tool_describes_the_finalized_features(broker):
    features = described_features(broker)
    epochs = {fields[3] for fields in features.values()}
    assert len(epochs) == 1 and epochs.pop().isdigit(), features
    levels = {name: fields[:3] for name, fields in features.items()}
    assert {name: levels.get(name) for name in COMMON_FEATURES} == COMMON_FEATURES, features
    assert {name: level for name, level in levels.items() if name not in COMMON_FEATURES} == \
        OTHER_FEATURES[broker.broker.kind], features


def test_features_tool_checks_upgrades_and_downgrades(broker):
    kind = broker.broker.kind
    levels_before = {name: fields[:3] for name, fields in described_features(broker).items()}

    assert_features_tool(broker, ["upgrade", "--metadata", "4.3", "--dry-run"], 0,
                         [METADATA_FLAG_DEPRECATED, "metadata.version can be upgraded to 30."])

    release = ["upgrade", "--release-version", "4.3", "--dry-run"]
    # --release-version sets every feature to its level in the release (kafka-features version-mapping):
    # metadata.version 30, kraft.version 1 and every other feature at its highest level.
    release_levels = {"eligible.leader.replicas.version": 1, "group.version": 1, "kraft.version": 1,
                      "metadata.version": 30, "share.version": 1, "streams.version": 1, "transaction.version": 2}
    if kind == "kafka":
        assert_features_tool(broker, release, 0,
                             [f"{name} can be upgraded to {level}." for name, level in release_levels.items()])
    else:
        # Skein supports kraft.version 0 only, and Kafka's controller refuses a level beyond a feature's supported
        # range with this message (a range of 0-0 reads "does not support this feature"); the request as a whole
        # fails, so the tool reports every feature of it as failed.
        reason = "Invalid update version 1 for feature kraft.version. Local controller 1 does not support this feature."
        assert_features_tool(broker, release, 1,
                             [f"Can not upgrade {name} to {level}. {UPDATE_FAILED}{reason}"
                              for name, level in release_levels.items()],
                             failed=(len(release_levels), len(release_levels)))

    assert_features_tool(broker, ["downgrade", "--metadata", "4.2", "--dry-run"], 1,
                         [METADATA_FLAG_DEPRECATED,
                          f"Can not downgrade metadata.version to 29. {UPDATE_FAILED}Unsupported metadata.version "
                          "downgrade from 30 to 29. Refusing to perform the requested downgrade because it might "
                          "delete metadata information."],
                         failed=(1, 1))

    assert_features_tool(broker, ["upgrade", "--feature", "no.such.feature=1", "--dry-run"], 1,
                         [f"Can not upgrade no.such.feature to 1. {UPDATE_FAILED}Invalid update version 1 for "
                          "feature no.such.feature. Local controller 1 does not support this feature."],
                         failed=(1, 1))

    downgrade = ["downgrade", "--feature", "transaction.version=1", "--dry-run"]
    if kind == "kafka":
        assert_features_tool(broker, downgrade, 0, ["transaction.version can be downgraded to 1."])
    else:
        # Skein's feature levels are fixed: a change Kafka's controller would accept is refused.
        assert_features_tool(broker, downgrade, 1,
                             [f"Can not downgrade transaction.version to 1. {UPDATE_FAILED}Invalid update version 1 "
                              "for feature transaction.version. Skein's feature levels are fixed: "
                              "transaction.version stays at level 2."],
                             failed=(1, 1))

    # An update to the current level succeeds, dry run or not, and changes no level.
    assert_features_tool(broker, ["upgrade", "--feature", "transaction.version=2", "--dry-run"], 0,
                         ["transaction.version can be upgraded to 2."])
    assert_features_tool(broker, ["upgrade", "--feature", "transaction.version=2"], 0,
                         ["transaction.version was upgraded to 2."])
    assert {name: fields[:3] for name, fields in described_features(broker).items()} == levels_before


def described_features(broker) -> dict[str, tuple[str, ...]]:
    """kafka-features describe: for each feature, in the printed (name) order, (SupportedMinVersion,
    SupportedMaxVersion, FinalizedVersionLevel, Epoch)."""
    features = {}
    for line in broker.tool(FEATURE_COMMAND, "describe").splitlines():
        fields = re.findall(r"(\w+): (\S+)", line)
        assert [key for key, _ in fields] == DESCRIBE_FEATURE_KEYS, line
        features[fields[0][1]] = tuple(value for _, value in fields[1:])
    assert list(features) == sorted(features), features
    return features


def assert_features_tool(broker, arguments: list[str], exit_code: int, lines: list[str],
                         failed: tuple[int, int] | None = None) -> subprocess.CompletedProcess:
    """Runs kafka-features with `arguments` and asserts its exit code and stdout lines; for a refused update,
    `failed` is the (failed, all) operation counts its last stderr line reports."""
    result = run_kafka_tool(FEATURE_COMMAND, "--bootstrap-server", broker.bootstrap, *arguments)
    assert (result.returncode, result.stdout.splitlines()) == (exit_code, lines), tool_output(result)
    if failed is not None:
        assert result.stderr.splitlines()[-1:] == [f"{failed[0]} out of {failed[1]} operation(s) failed."], \
            tool_output(result)
    return result
