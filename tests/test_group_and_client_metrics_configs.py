"""Group configs (KIP-848 group-level dynamic configs, config resource GROUP) and client metrics subscriptions
(KIP-714, config resource CLIENT_METRICS), driven by Kafka's own tools from the reference distribution's jars in
.tools/kafka (kafka-configs, kafka-client-metrics, kafka-consumer-groups) and by stock clients (kafka-python for
the wire-level answers, confluent-kafka for a KIP-848 consumer), against Apache Kafka (the reference) and Skein, one
broker per kind for the module, with the same assertions: what Apache Kafka 4.3.1 prints and answers.

The Apache Kafka reference run is long mode only (SKEIN_LONG=1); Skein's always runs.

Both brokers run with BROKER_CONFIG: group.consumer.min.session.timeout.ms lowered to 6000 (a group may then ask
for a 6 s session, and a session no longer than the heartbeat interval becomes reachable) and
group.consumer.heartbeat.interval.ms 5500 in the broker's own config (so a group's defaults name that broker
setting as a STATIC_BROKER_CONFIG synonym ahead of Kafka's default).

Shown for both brokers:
- A fresh broker: ListConfigResources names no GROUP and no CLIENT_METRICS resource.
- kafka-configs --entity-type groups: --alter --add-config consumer.session.timeout.ms=50000,
  consumer.heartbeat.interval.ms=6000 prints `Completed updating config for group G.`; --describe prints the two
  dynamic configs, each with its DYNAMIC_GROUP_CONFIG synonym followed by the broker's (STATIC_BROKER_CONFIG) and
  Kafka's (DEFAULT_CONFIG) ones; --describe --all prints every one of Kafka 4.3.1's 17 group config keys (the
  consumer.*, share.* and streams.* ones) with its value and synonyms (a key with no broker setting of another name,
  such as share.auto.offset.reset, names itself as its DEFAULT_CONFIG synonym). The source of each entry
  (kafka-python's DescribeConfigs, every entry): DYNAMIC_GROUP_CONFIG for the two set, STATIC_BROKER_CONFIG for the
  key the broker's config sets, DEFAULT_CONFIG for the rest; none read-only or sensitive, no documentation.
  --delete-config removes one (the other stays); once none is left the group, which never had members or offsets,
  is described as not existing.
- Refusals, each INVALID_CONFIG with Kafka's message and nothing changed: through the tool (exit 1, nothing on
  stdout, the exception on stderr) an unknown name, a session timeout below group.consumer.min.session.timeout.ms,
  and a session timeout not greater than the heartbeat interval; through kafka-python (error code and message) a
  session timeout above group.consumer.max.session.timeout.ms, a non-integer, the heartbeat interval's bounds, a
  negative value, bad share.* and streams.* values, APPEND to a non-list key, a check against the values the group
  already has, a request mixing a valid and an invalid entry (none of it applied); a SET without a value and an
  empty group name are INVALID_REQUEST. Deleting a key that is not set (even an unknown one) succeeds.
- A group that does not exist and has no configs: --describe prints Kafka's `doesn't exist` line, --describe
  --all every default. A group with committed offsets and no configs prints the `Dynamic configs` header alone.
- A group's configs outlive the group: after kafka-consumer-groups --delete of an empty group with committed
  offsets and a config, the group is no longer listed as a group but its config stays (described by name, and in
  the describe of every group).
- share.* and streams.* keys are accepted (share.record.lock.duration.ms=15000, streams.num.standby.replicas=1).
- The config takes effect: a confluent-kafka consumer with group.protocol=consumer in a child process, in a group
  whose consumer.session.timeout.ms is 6000, owns the topic's partitions; killed with SIGKILL, it leaves the group
  (AdminClient describe) within 30 s, while the broker's session timeout (45 s) would keep it longer. A raw
  ConsumerGroupHeartbeat join carries the group's consumer.heartbeat.interval.ms (7000) as heartbeat_interval_ms,
  and the broker's (5500) for a group without one.
- kafka-client-metrics: --alter --name S --metrics ... --interval 1000 --match client_id=app-.* prints `Altered
  client metrics config for S.`; --describe without a name describes it, --list lists it; a subscription given
  only --metrics is described with Kafka's defaults for the rest (interval.ms=300000, an empty match). Refusals
  with Kafka's message: through the tool (exit 1, the message on stdout, the logged exception on stderr)
  --interval 50 (INVALID_REQUEST) and --match foo=bar (INVALID_CONFIG); through kafka-python an interval above
  the maximum, a match without a value, a bad regex, an unknown key, APPEND to metrics and an empty name. --delete
  prints `Deleted client metrics config for S.` (also for one that does not exist), the listing is then an empty
  line and --describe --name S Kafka's `doesn't exist` line. kafka-configs --entity-type client-metrics describes
  a subscription with DYNAMIC_CLIENT_METRICS_CONFIG synonyms, and an unknown one with its own `doesn't exist`
  line (--all: the three defaults, without synonyms).
- After a broker restart (same data dir and port) a group config and a client metrics subscription are described
  exactly as before.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from support.brokers import (BROKER_KINDS, _die_with_parent, make_broker, skein_binary,
                             skip_kafka_reference_outside_long_mode)
from support.frames import ResponseReader, _compact_string, _read_uvarint, _uvarint, frame, request_header
from support.kafka_clients import commit_in_group, create_topic, eventually, produce, unique_topic_name
from support.kafka_tools import run_kafka_tool, tool_output

CONFIG_COMMAND = "kafka.admin.ConfigCommand"
CLIENT_METRICS_COMMAND = "org.apache.kafka.tools.ClientMetricsCommand"
CONSUMER_GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"

CLIENT_TIMEOUT_SECONDS = 30
# How long a change may take to show in what a tool describes (Kafka's broker answers from a metadata cache that
# follows its controller).
EFFECT_SECONDS = 10

BROKER_CONFIG = {
    # Kafka's default is 45000, the default session timeout itself.
    "group.consumer.min.session.timeout.ms": 6000,
    # Kafka's default is 5000; set here, it is a STATIC_BROKER_CONFIG synonym of the group's key.
    "group.consumer.heartbeat.interval.ms": 5500,
}

# Every group config of Kafka 4.3.1 with what describe reports for a group that does not set it: the value and the
# synonyms (the broker setting it derives from; STATIC_BROKER_CONFIG where BROKER_CONFIG sets it, then Kafka's
# default).
GROUP_DEFAULTS = {
    "consumer.assignment.interval.ms": ("1000", ["DEFAULT_CONFIG:group.consumer.assignment.interval.ms=1000"]),
    "consumer.heartbeat.interval.ms": ("5500", ["STATIC_BROKER_CONFIG:group.consumer.heartbeat.interval.ms=5500",
                                                "DEFAULT_CONFIG:group.consumer.heartbeat.interval.ms=5000"]),
    "consumer.session.timeout.ms": ("45000", ["DEFAULT_CONFIG:group.consumer.session.timeout.ms=45000"]),
    "share.assignment.interval.ms": ("1000", ["DEFAULT_CONFIG:group.share.assignment.interval.ms=1000"]),
    "share.auto.offset.reset": ("latest", ["DEFAULT_CONFIG:share.auto.offset.reset=latest"]),
    "share.delivery.count.limit": ("5", ["DEFAULT_CONFIG:group.share.delivery.count.limit=5"]),
    "share.heartbeat.interval.ms": ("5000", ["DEFAULT_CONFIG:group.share.heartbeat.interval.ms=5000"]),
    "share.isolation.level": ("read_uncommitted", ["DEFAULT_CONFIG:share.isolation.level=read_uncommitted"]),
    "share.partition.max.record.locks": ("2000", ["DEFAULT_CONFIG:group.share.partition.max.record.locks=2000"]),
    "share.record.lock.duration.ms": ("30000", ["DEFAULT_CONFIG:group.share.record.lock.duration.ms=30000"]),
    "share.renew.acknowledge.enable": ("true", ["DEFAULT_CONFIG:share.renew.acknowledge.enable=true"]),
    "share.session.timeout.ms": ("45000", ["DEFAULT_CONFIG:group.share.session.timeout.ms=45000"]),
    "streams.assignment.interval.ms": ("1000", ["DEFAULT_CONFIG:group.streams.assignment.interval.ms=1000"]),
    "streams.heartbeat.interval.ms": ("5000", ["DEFAULT_CONFIG:group.streams.heartbeat.interval.ms=5000"]),
    "streams.initial.rebalance.delay.ms": ("3000", ["DEFAULT_CONFIG:group.streams.initial.rebalance.delay.ms=3000"]),
    "streams.num.standby.replicas": ("0", ["DEFAULT_CONFIG:group.streams.num.standby.replicas=0"]),
    "streams.session.timeout.ms": ("45000", ["DEFAULT_CONFIG:group.streams.session.timeout.ms=45000"]),
}

INVALID_CONFIG = "org.apache.kafka.common.errors.InvalidConfigurationException"
INVALID_REQUEST = "org.apache.kafka.common.errors.InvalidRequestException"


class ConfigsBroker:
    """The module's started broker, with the GROUP and CLIENT_METRICS resources ListConfigResources named right
    after it started."""

    def __init__(self, broker, fresh_resources: dict):
        self.broker = broker
        self.bootstrap = broker.bootstrap
        self.fresh_resources = fresh_resources

    def run(self, main_class: str, *arguments: str) -> subprocess.CompletedProcess:
        return run_kafka_tool(main_class, "--bootstrap-server", self.bootstrap, *arguments)

    def tool(self, main_class: str, *arguments: str) -> str:
        """The tool's stdout, run against this broker; asserts that it exited 0."""
        result = self.run(main_class, *arguments)
        assert result.returncode == 0, tool_output(result)
        return result.stdout

    def groups(self, *arguments: str) -> str:
        return self.tool(CONFIG_COMMAND, "--entity-type", "groups", *arguments)

    def metrics(self, *arguments: str) -> str:
        return self.tool(CLIENT_METRICS_COMMAND, *arguments)


@pytest.fixture(scope="module", params=BROKER_KINDS)
def broker(request):
    # The Kafka reference run (about 70 s) is long mode only, to keep CI within its time; Skein's always runs.
    skip_kafka_reference_outside_long_mode(request.param)
    if request.param == "skein" and not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
    with make_broker(request.param, BROKER_CONFIG) as started:
        admin = KafkaAdminClient(bootstrap_servers=started.bootstrap)
        try:
            fresh = admin.list_config_resources(["GROUP", "CLIENT_METRICS"])
        finally:
            admin.close()
        yield ConfigsBroker(started, fresh)


@pytest.fixture
def admin(broker):
    """A kafka-python admin client (it speaks GROUP and CLIENT_METRICS config resources)."""
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000)
    yield client
    client.close()


def test_fresh_broker_has_no_group_configs_and_no_client_metrics(broker):
    assert broker.fresh_resources == {}


# ------------------------------------------------------------------------------------------ group configs


def group_line(key: str, override: str | None = None) -> str:
    """The describe line of one group config: its value and synonyms, the group's override first."""
    value, synonyms = GROUP_DEFAULTS[key]
    if override is not None:
        value, synonyms = override, [f"DYNAMIC_GROUP_CONFIG:{key}={override}", *synonyms]
    return f"  {key}={value} sensitive=false synonyms={{{', '.join(synonyms)}}}"


def described_group(group: str, overrides: dict[str, str], all_configs: bool = False) -> str:
    """What kafka-configs --describe [--all] prints for a group with these overrides (keys in name order)."""
    keys = sorted(GROUP_DEFAULTS if all_configs else overrides)
    header = f"{'All' if all_configs else 'Dynamic'} configs for group {group} are:"
    return "\n".join([header, *(group_line(key, overrides.get(key)) for key in keys)]) + "\n"


def missing_group(group: str) -> str:
    return f"The group '{group}' doesn't exist and doesn't have dynamic config.\n"


def completed_group(group: str) -> str:
    return f"Completed updating config for group {group}.\n"


def describe_group_eventually(broker, group: str, expected: str) -> None:
    eventually(lambda: _expect(broker.groups("--entity-name", group, "--describe"), expected), EFFECT_SECONDS)


def _expect(value, wanted):
    assert value == wanted, value
    return value


def dynamic_configs(admin, resource_type: ConfigResourceType, name: str) -> dict[str, str]:
    """The resource's dynamic configs (entries whose source is DYNAMIC_GROUP_CONFIG or DYNAMIC_CLIENT_METRICS_CONFIG)
    through kafka-python's DescribeConfigs: a quick check that a change took effect."""
    described = admin.describe_configs([ConfigResource(resource_type, name)], config_filter="all")
    entries = described.get(resource_type.name.lower(), {}).get(name, {})
    return {key: entry["value"] for key, entry in entries.items()
            if entry["config_source"] in ("DYNAMIC_GROUP_CONFIG", "DYNAMIC_CLIENT_METRICS_CONFIG")}


def wait_for_dynamic_configs(admin, resource_type: ConfigResourceType, name: str, expected: dict[str, str]) -> None:
    eventually(lambda: _expect(dynamic_configs(admin, resource_type, name), expected), EFFECT_SECONDS)


def configured_groups(admin) -> list[str]:
    """The groups ListConfigResources names (those with a dynamic config)."""
    return admin.list_config_resources(["GROUP"]).get("group", [])


def test_group_config_alter_describe_and_delete(broker, admin):
    group = unique_topic_name("configured-group")
    assert broker.groups("--entity-name", group, "--alter", "--add-config",
                         "consumer.session.timeout.ms=50000,consumer.heartbeat.interval.ms=6000") == \
        completed_group(group)
    overrides = {"consumer.session.timeout.ms": "50000", "consumer.heartbeat.interval.ms": "6000"}
    describe_group_eventually(broker, group, described_group(group, overrides))
    assert broker.groups("--entity-name", group, "--describe", "--all") == \
        described_group(group, overrides, all_configs=True)

    # The source of each entry, which the tool does not print.
    described = admin.describe_configs([ConfigResource(ConfigResourceType.GROUP, group)], include_synonyms=True,
                                       config_filter="all")
    entries = described.get("group", {}).get(group, {})
    assert {key: (entry["config_source"], entry["value"], entry["read_only"], entry["is_sensitive"],
                  entry["documentation"]) for key, entry in entries.items()} == {
        key: ("DYNAMIC_GROUP_CONFIG" if key in overrides
              else "STATIC_BROKER_CONFIG" if key == "consumer.heartbeat.interval.ms" else "DEFAULT_CONFIG",
              overrides.get(key, value), False, False, None)
        for key, (value, _) in GROUP_DEFAULTS.items()
    }, described

    assert broker.groups("--entity-name", group, "--alter", "--delete-config", "consumer.heartbeat.interval.ms") == \
        completed_group(group)
    wait_for_dynamic_configs(admin, ConfigResourceType.GROUP, group, {"consumer.session.timeout.ms": "50000"})

    # With no config left, a group that never had members or offsets does not exist.
    assert broker.groups("--entity-name", group, "--alter", "--delete-config", "consumer.session.timeout.ms") == \
        completed_group(group)
    describe_group_eventually(broker, group, missing_group(group))


def tool_refusal(result: subprocess.CompletedProcess) -> tuple:
    """kafka-configs' refusal: exit code, stdout, and the exception line after its `Error while executing config
    command with args ...` line (the stack trace below it is left out)."""
    lines = result.stderr.splitlines()
    first = lines[0] if lines else ""
    exception = lines[1] if len(lines) > 1 and first.startswith("Error while executing config command") else first
    return result.returncode, result.stdout, exception


def test_group_config_refusals_through_the_tool(broker, admin):
    group = unique_topic_name("refused-group")
    cases = {
        "consumer.foo=1": "Unknown group config name: consumer.foo",
        "consumer.session.timeout.ms=1000":
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms",
        # Both within the broker's bounds (session 6000 at its lowered minimum, heartbeat 6000 below its maximum).
        "consumer.session.timeout.ms=6000,consumer.heartbeat.interval.ms=6000":
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms",
    }
    refusals = {config: tool_refusal(broker.run(CONFIG_COMMAND, "--entity-type", "groups", "--entity-name", group,
                                                "--alter", "--add-config", config))
                for config in cases}
    assert refusals == {
        config: (1, "", f"java.util.concurrent.ExecutionException: {INVALID_CONFIG}: {message}")
        for config, message in cases.items()
    }
    assert group not in configured_groups(admin)


def alter_group(admin, group: str, configs: dict) -> str:
    """kafka-python's IncrementalAlterConfigs of one group: 'OK' or `[Error CODE] Name: message`."""
    result = admin.alter_configs([ConfigResource(ConfigResourceType.GROUP, group, configs)], raise_on_unknown=False,
                                 incremental=True)
    return result.get("group", {}).get(group, f"no answer for group {group}: {result}")


def test_group_config_refusals_on_the_wire(broker, admin):
    invalid = "[Error 40] InvalidConfigurationError: "
    refused = unique_topic_name("refused-group")
    cases = {
        "session above its maximum": ({"consumer.session.timeout.ms": "70000"},
            invalid + "consumer.session.timeout.ms must be less than or equal to "
                      "group.consumer.max.session.timeout.ms"),
        "not an integer": ({"consumer.session.timeout.ms": "abc"},
            invalid + "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT"),
        "heartbeat below its minimum": ({"consumer.heartbeat.interval.ms": "1000"},
            invalid + "consumer.heartbeat.interval.ms must be greater than or equal to "
                      "group.consumer.min.heartbeat.interval.ms"),
        "heartbeat above its maximum": ({"consumer.heartbeat.interval.ms": "20000"},
            invalid + "consumer.heartbeat.interval.ms must be less than or equal to "
                      "group.consumer.max.heartbeat.interval.ms"),
        "negative": ({"consumer.session.timeout.ms": "-1"},
            invalid + "Invalid value -1 for configuration consumer.session.timeout.ms: Value must be at least 1"),
        "share lock duration": ({"share.record.lock.duration.ms": "500"},
            invalid + "Invalid value 500 for configuration share.record.lock.duration.ms: Value must be at least 1000"),
        "share auto offset reset": ({"share.auto.offset.reset": "foo"},
            invalid + "Invalid value foo for configuration share.auto.offset.reset: Invalid value `foo` for "
                      "configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of "
                      "the format 'by_duration:<PnDTnHnMn.nS>'."),
        "share isolation level": ({"share.isolation.level": "x"},
            invalid + "Invalid value x for configuration share.isolation.level: String must be one of: "
                      "read_committed, read_uncommitted"),
        "streams standby replicas": ({"streams.num.standby.replicas": "5"},
            invalid + "streams.num.standby.replicas must be less than or equal to group.streams.max.standby.replicas"),
        "streams session": ({"streams.session.timeout.ms": "1000"},
            invalid + "streams.session.timeout.ms must be greater than or equal to "
                      "group.streams.min.session.timeout.ms"),
        "append to a non-list key": ({"consumer.session.timeout.ms": ("APPEND", "7000")},
            invalid + "Can't APPEND to key consumer.session.timeout.ms because its type is not LIST."),
        "set without a value": ({"consumer.session.timeout.ms": None},
            "[Error 42] InvalidRequestError: Null value not supported for : consumer.session.timeout.ms"),
        "empty group name": ({"consumer.session.timeout.ms": "50000"},
            "[Error 42] InvalidRequestError: Default group resources are not allowed."),
    }
    answers = {case: alter_group(admin, "" if case == "empty group name" else refused, configs)
               for case, (configs, _) in cases.items()}
    assert answers == {case: message for case, (_, message) in cases.items()}

    # Each request is checked against the group's values already set, and applies all of its entries or none.
    group = unique_topic_name("checked-group")
    assert alter_group(admin, group, {"consumer.session.timeout.ms": "6000"}) == "OK"
    assert alter_group(admin, group, {"consumer.heartbeat.interval.ms": "6000"}) == \
        invalid + "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
    assert alter_group(admin, group, {"consumer.session.timeout.ms": "7000", "consumer.foo": "1"}) == \
        invalid + "Unknown group config name: consumer.foo"
    # Deleting a key that is not set, known or not, succeeds and changes nothing.
    assert alter_group(admin, group, {"consumer.foo": ("DELETE", None),
                                      "consumer.heartbeat.interval.ms": ("DELETE", None)}) == "OK"
    wait_for_dynamic_configs(admin, ConfigResourceType.GROUP, group, {"consumer.session.timeout.ms": "6000"})
    assert refused not in configured_groups(admin)


def test_describing_a_group_that_does_not_exist(broker):
    group = unique_topic_name("no-such-group")
    assert broker.groups("--entity-name", group, "--describe") == missing_group(group)
    assert broker.groups("--entity-name", group, "--describe", "--all") == described_group(group, {}, all_configs=True)


def test_share_and_streams_keys_are_group_configs(broker):
    group = unique_topic_name("share-streams-group")
    assert broker.groups("--entity-name", group, "--alter", "--add-config",
                         "share.record.lock.duration.ms=15000,streams.num.standby.replicas=1") == completed_group(group)
    describe_group_eventually(broker, group, described_group(
        group, {"share.record.lock.duration.ms": "15000", "streams.num.standby.replicas": "1"}))


def test_group_config_outlives_the_group(broker, admin):
    topic = create_topic(broker.bootstrap, unique_topic_name("configured-offsets"), partitions=1)
    produce(broker.bootstrap, topic, 3)
    group = unique_topic_name("deleted-group")
    commit_in_group(broker.bootstrap, group, topic, 2)
    # A group with committed offsets and no config exists: the header, no config.
    assert broker.groups("--entity-name", group, "--describe") == f"Dynamic configs for group {group} are:\n"

    assert alter_group(admin, group, {"consumer.session.timeout.ms": "50000"}) == "OK"
    wait_for_dynamic_configs(admin, ConfigResourceType.GROUP, group, {"consumer.session.timeout.ms": "50000"})
    configured = described_group(group, {"consumer.session.timeout.ms": "50000"})

    assert broker.tool(CONSUMER_GROUP_COMMAND, "--delete", "--group", group) == \
        f"Deletion of requested consumer groups ('{group}') was successful.\n"
    listed = AdminClient({"bootstrap.servers": broker.bootstrap}).list_consumer_groups(request_timeout=10)
    assert group not in {g.group_id for g in listed.result(timeout=15).valid}
    # Kafka keeps the config of a deleted group: it is still described, alone and among every group's.
    assert broker.groups("--entity-name", group, "--describe") == configured
    assert described_blocks(broker.groups("--describe")).get(group) == configured


def described_blocks(text: str) -> dict[str, str]:
    """kafka-configs --describe of every group split by group: {group: its header and lines}."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("Dynamic configs for group "):
            current = line.removeprefix("Dynamic configs for group ").removesuffix(" are:")
            blocks[current] = []
        assert current is not None, text
        blocks[current].append(line)
    return {group: "\n".join(lines) + "\n" for group, lines in blocks.items()}


# ------------------------------------------------------------------------------------------ the config in effect

# Bound on the killed member leaving a group whose session is 6 s; with the broker's 45 s it would stay longer.
MEMBER_GONE_SECONDS = 30

# A KIP-848 group member in its own process, so that it can be SIGKILLed: prints its assignment when it changes.
MEMBER_SCRIPT = """
import json, sys, time
from confluent_kafka import Consumer
bootstrap, group_id, topic = sys.argv[1], sys.argv[2], sys.argv[3]
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "group.protocol": "consumer",
                     "client.id": "session-member", "auto.offset.reset": "earliest"})
consumer.subscribe([topic])
reported = None
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    consumer.poll(0.1)
    assignment = sorted(tp.partition for tp in consumer.assignment())
    if assignment != reported:
        print(json.dumps(assignment), flush=True)
        reported = assignment
"""


def group_members(admin: AdminClient, group: str) -> list:
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    return description.members


def test_group_session_timeout_applies_to_a_consumer_protocol_member(broker, admin):
    topic = create_topic(broker.bootstrap, unique_topic_name("session-topic"), partitions=2)
    group = unique_topic_name("session-group")
    assert broker.groups("--entity-name", group, "--alter", "--add-config", "consumer.session.timeout.ms=6000") == \
        completed_group(group)
    wait_for_dynamic_configs(admin, ConfigResourceType.GROUP, group, {"consumer.session.timeout.ms": "6000"})

    describer = AdminClient({"bootstrap.servers": broker.bootstrap})
    member = subprocess.Popen([sys.executable, "-c", MEMBER_SCRIPT, broker.bootstrap, group, topic],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                              preexec_fn=_die_with_parent)
    assignments: list[list[int]] = []

    def read_assignments() -> None:
        for line in member.stdout:
            assignments.append(json.loads(line))

    threading.Thread(target=read_assignments, daemon=True).start()
    try:
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while not assignments or assignments[-1] != [0, 1]:
            assert member.poll() is None, f"the member exited with {member.returncode}"
            assert time.monotonic() < deadline, f"member not assigned both partitions: {assignments}"
            time.sleep(0.2)
        assert len(group_members(describer, group)) == 1
    finally:
        member.send_signal(signal.SIGKILL)
        member.wait(timeout=CLIENT_TIMEOUT_SECONDS)
    killed = time.monotonic()

    while group_members(describer, group):
        assert time.monotonic() - killed < MEMBER_GONE_SECONDS, (
            f"the killed member is still in the group {MEMBER_GONE_SECONDS}s after SIGKILL: its 6 s "
            f"consumer.session.timeout.ms was not applied")
        time.sleep(0.5)


CONSUMER_GROUP_HEARTBEAT = 68


def consumer_group_heartbeat(bootstrap: str, group: str, member_id: str, member_epoch: int,
                             topic: str | None = None) -> dict:
    """One ConsumerGroupHeartbeat v1 (member id chosen by the client): a join (epoch 0) subscribed to `topic`, or a
    leave (epoch -1). Its answer: error code, message, member id and epoch, heartbeat_interval_ms."""
    body = request_header(CONSUMER_GROUP_HEARTBEAT, 1, 1, "group-config-probe", flexible=True)
    body += _compact_string(group) + _compact_string(member_id) + struct.pack(">i", member_epoch)
    body += b"\x00\x00"  # InstanceId, RackId: null
    body += struct.pack(">i", 30000 if member_epoch == 0 else -1)  # RebalanceTimeoutMs
    topics = [topic] if topic is not None else None
    body += b"\x00" if topics is None else _uvarint(len(topics) + 1) + b"".join(map(_compact_string, topics))
    body += b"\x00\x00"  # SubscribedTopicRegex, ServerAssignor: null
    body += _uvarint(1) if member_epoch == 0 else b"\x00"  # TopicPartitions: empty on a join, else null
    body += b"\x00"  # tagged fields
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_SECONDS) as sock:
        sock.sendall(frame(body))
        payload = ResponseReader(sock).next_response(time.monotonic() + CLIENT_TIMEOUT_SECONDS)
    assert payload is not None, "the broker closed the connection instead of answering ConsumerGroupHeartbeat"
    offset = 4 + 1  # correlation id, header tagged fields
    _throttle, error_code = struct.unpack_from(">ih", payload, offset)
    offset += 6
    answer = {"error_code": error_code}
    for field in ("error_message", "member_id"):
        length, offset = _read_uvarint(payload, offset)
        answer[field] = payload[offset:offset + length - 1].decode() if length else None
        offset += max(length - 1, 0)
    answer["member_epoch"], answer["heartbeat_interval_ms"] = struct.unpack_from(">ii", payload, offset)
    return answer


def test_heartbeat_response_carries_the_group_heartbeat_interval(broker, admin):
    topic = create_topic(broker.bootstrap, unique_topic_name("heartbeat-topic"), partitions=1)
    configured = unique_topic_name("heartbeat-group")
    assert broker.groups("--entity-name", configured, "--alter", "--add-config",
                         "consumer.heartbeat.interval.ms=7000") == completed_group(configured)
    wait_for_dynamic_configs(admin, ConfigResourceType.GROUP, configured, {"consumer.heartbeat.interval.ms": "7000"})
    unconfigured = unique_topic_name("heartbeat-default-group")

    intervals = {}
    for group in (configured, unconfigured):
        member_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        joined = consumer_group_heartbeat(broker.bootstrap, group, member_id, 0, topic)
        assert (joined["error_code"], joined["member_id"]) == (0, member_id), joined
        intervals[group] = joined["heartbeat_interval_ms"]
        left = consumer_group_heartbeat(broker.bootstrap, group, member_id, -1)
        assert (left["error_code"], left["member_epoch"]) == (0, -1), left
    # The group's override, and the broker's group.consumer.heartbeat.interval.ms for a group without one.
    assert intervals == {configured: 7000, unconfigured: 5500}


# ------------------------------------------------------------------------------------------ client metrics

METRICS = "org.apache.kafka.producer.,org.apache.kafka.consumer.coordinator.rebalance.latency.max"


def metrics_listing(broker) -> list[str]:
    """kafka-client-metrics --list, sorted (an empty listing is one empty line)."""
    return sorted(line for line in broker.metrics("--list").splitlines() if line)


def described_subscription(name: str, interval: str, match: str, metrics: str) -> str:
    return (f"Client metrics configs for {name} are:\n  interval.ms={interval}\n  match={match}\n"
            f"  metrics={metrics}\n")


def metrics_refusal(result: subprocess.CompletedProcess) -> tuple:
    """kafka-client-metrics' refusal: exit code, stdout and the first line of stderr (the logged exception)."""
    return result.returncode, result.stdout, result.stderr.splitlines()[0] if result.stderr else ""


def test_client_metrics_subscription_lifecycle(broker):
    # No other test of the module leaves a subscription behind before this one (the restart test runs last).
    name = unique_topic_name("subscription")
    assert broker.metrics("--alter", "--name", name, "--metrics", METRICS, "--interval", "1000",
                          "--match", "client_id=app-.*") == f"Altered client metrics config for {name}.\n"
    # Only --metrics given: the other settings are described with Kafka's defaults.
    every_metric = unique_topic_name("every-metric")
    assert broker.metrics("--alter", "--name", every_metric, "--metrics", "*") == \
        f"Altered client metrics config for {every_metric}.\n"
    described = described_subscription(name, "1000", "client_id=app-.*", METRICS)
    # --describe without a name describes every subscription (in the order ListConfigResources names them).
    eventually(lambda: _expect(sorted(subscription_blocks(broker.metrics("--describe"))),
                               sorted([described, described_subscription(every_metric, "300000", "", "*")])),
               EFFECT_SECONDS)
    assert metrics_listing(broker) == sorted([name, every_metric])

    # kafka-configs shows the settings that were set, with their source.
    assert broker.tool(CONFIG_COMMAND, "--entity-type", "client-metrics", "--entity-name", name, "--describe") == (
        f"Dynamic configs for client-metric {name} are:\n"
        "  interval.ms=1000 sensitive=false synonyms={DYNAMIC_CLIENT_METRICS_CONFIG:interval.ms=1000}\n"
        "  match=client_id=app-.* sensitive=false synonyms={DYNAMIC_CLIENT_METRICS_CONFIG:match=client_id=app-.*}\n"
        f"  metrics={METRICS} sensitive=false synonyms={{DYNAMIC_CLIENT_METRICS_CONFIG:metrics={METRICS}}}\n")

    for subscription in (name, every_metric):
        assert broker.metrics("--delete", "--name", subscription) == \
            f"Deleted client metrics config for {subscription}.\n"
    # An empty listing is one empty line.
    eventually(lambda: _expect(broker.metrics("--list"), "\n"), EFFECT_SECONDS)
    assert broker.metrics("--describe", "--name", name) == \
        f"The client metric resource {name} doesn't exist and doesn't have dynamic config.\n"


def subscription_blocks(text: str) -> list[str]:
    """kafka-client-metrics --describe of every subscription split by subscription."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("Client metrics configs for "):
            blocks.append([])
        assert blocks, text
        blocks[-1].append(line)
    return ["\n".join(lines) + "\n" for lines in blocks]


def alter_subscription(admin, name: str, configs: dict) -> str:
    """kafka-python's IncrementalAlterConfigs of one subscription: 'OK' or `[Error CODE] Name: message`."""
    result = admin.alter_configs([ConfigResource(ConfigResourceType.CLIENT_METRICS, name, configs)],
                                 raise_on_unknown=False, incremental=True)
    return result.get("client_metrics", {}).get(name, f"no answer for subscription {name}: {result}")


def test_client_metrics_refusals(broker, admin):
    name = unique_topic_name("refused-subscription")
    cases = {
        ("--interval", "50"): (INVALID_REQUEST,
                               "Invalid value 50 for interval.ms, interval must be between 100 and 3600000 (1 hour)"),
        ("--match", "foo=bar"): (INVALID_CONFIG, "Illegal client matching pattern: foo=bar"),
    }
    refusals = {arguments: metrics_refusal(broker.run(CLIENT_METRICS_COMMAND, "--alter", "--name", name, *arguments))
                for arguments in cases}
    assert refusals == {
        arguments: (1, f"Error while executing client metrics command : {message}\n", f"ERROR {exception}: {message}")
        for arguments, (exception, message) in cases.items()
    }
    # The same checks on the wire, and more of them.
    wire_cases = {
        "interval above its maximum": ({"interval.ms": "3600001"}, "[Error 42] InvalidRequestError: Invalid value "
                                       "3600001 for interval.ms, interval must be between 100 and 3600000 (1 hour)"),
        "match without a value": ({"match": "client_id"},
                                  "[Error 40] InvalidConfigurationError: Illegal client matching pattern: client_id"),
        "match with a bad regex": ({"match": "client_id=[a-"},
                                   "[Error 40] InvalidConfigurationError: Illegal client matching pattern: "
                                   "client_id=[a-"),
        "unknown key": ({"foo": "1"}, "[Error 42] InvalidRequestError: Unknown client metrics configuration: foo"),
        # metrics is a LIST config (DescribeConfigs says so), yet Kafka refuses APPEND to it.
        "append to metrics": ({"metrics": ("APPEND", "a.b")},
                              "[Error 40] InvalidConfigurationError: Can't APPEND to key metrics because its type is "
                              "not LIST."),
    }
    answers = {case: alter_subscription(admin, name, configs) for case, (configs, _) in wire_cases.items()}
    assert answers == {case: message for case, (_, message) in wire_cases.items()}
    assert alter_subscription(admin, "", {"interval.ms": "1000"}) == \
        "[Error 42] InvalidRequestError: Subscription name can't be empty"
    # Nothing was created; deleting what does not exist succeeds.
    assert name not in admin.list_config_resources(["CLIENT_METRICS"]).get("client_metrics", [])
    assert broker.metrics("--delete", "--name", name) == f"Deleted client metrics config for {name}.\n"


def test_kafka_configs_on_a_missing_client_metrics_subscription(broker):
    name = unique_topic_name("no-such-subscription")
    assert broker.tool(CONFIG_COMMAND, "--entity-type", "client-metrics", "--entity-name", name, "--describe") == \
        f"The client-metric '{name}' doesn't exist and doesn't have dynamic config.\n"
    assert broker.tool(CONFIG_COMMAND, "--entity-type", "client-metrics", "--entity-name", name, "--describe",
                       "--all") == (
        f"All configs for client-metric {name} are:\n"
        "  interval.ms=300000 sensitive=false synonyms={}\n"
        "  match= sensitive=false synonyms={}\n"
        "  metrics= sensitive=false synonyms={}\n")


# ------------------------------------------------------------------------------------------ restart (last: it
# restarts the module's broker)


def test_configs_survive_a_broker_restart(broker):
    group = unique_topic_name("restarted-group")
    overrides = {"consumer.session.timeout.ms": "50000", "share.auto.offset.reset": "earliest"}
    subscription = unique_topic_name("restarted-subscription")
    subscribed = {"metrics": METRICS, "interval.ms": "2000", "match": "client_software_name=apache-kafka-java"}
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000)
    try:
        assert alter_group(admin, group, overrides) == "OK"
        assert alter_subscription(admin, subscription, subscribed) == "OK"
        wait_for_dynamic_configs(admin, ConfigResourceType.GROUP, group, overrides)
        wait_for_dynamic_configs(admin, ConfigResourceType.CLIENT_METRICS, subscription, subscribed)
    finally:
        admin.close()

    broker.broker.restart()

    describe_group_eventually(broker, group, described_group(group, overrides))
    described = described_subscription(subscription, "2000", "client_software_name=apache-kafka-java", METRICS)
    eventually(lambda: _expect(broker.metrics("--describe", "--name", subscription), described), EFFECT_SECONDS)
