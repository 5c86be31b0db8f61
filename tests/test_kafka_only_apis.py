"""The APIs Apache Kafka 4.3.1 serves that Skein did not (AlterReplicaLogDirs, the delegation token APIs,
UpdateFeatures, UnregisterBroker, ListConfigResources, the share group APIs of KIP-932, AddRaftVoter,
RemoveRaftVoter, the share coordinator's state APIs and the streams group APIs of KIP-1071), each run against
Apache Kafka (the reference) and Skein with the same assertions: Kafka's answers, pinned below, error code by error
code and message by message.

A single-node broker is the situation pinned: a PLAINTEXT listener without SASL (so no delegation token
requests), no delegation.token.secret.key, a static controller quorum (kraft.version 0, so voters cannot be added
or removed). Kafka's answers depend on two things more, and each Skein assertion is compared with the Kafka
situation that matches Skein:
- share and streams groups: Kafka's defaults share.version 1 and streams.version 1 (both kinds of groups
  enabled; new share groups start at the latest offset), or both at 0 (storage formatted with
  `--feature share.version=0 --feature streams.version=0`), which is Skein's: Kafka then still advertises every
  share group and streams group API and answers them UNSUPPORTED_VERSION (the share coordinator's state APIs
  NOT_COORDINATOR). The groups-off variant is a second Kafka broker, so it runs in long mode (SKEIN_LONG=1).
- config resources: ListConfigResources is asked first while the broker has no group config and no client
  metrics subscription, and again after ApiProbe's Admin mode configured a group and created a client metrics
  subscription (so that there is one of each to list).
Skein answers the share and streams group APIs as Kafka with both features at 0; where Kafka serves a newer version
than Skein's codec knows (SKEIN_VERSIONS), Skein's answers are compared at the versions it serves. Skein's feature
levels are fixed (Kafka 4.3's metadata.version 30 among them), so UpdateFeatures gets Kafka's answers for every case
probed: each either changes nothing or is refused by Kafka's own checks.

tests/support/java/ApiProbe.java sends the requests: over a plain socket, built with Kafka's own message
classes, each at the highest version both the broker advertises and kafka-clients 4.3.1 knows, and again at
the lowest where that differs. It prints one line per request (`API_KEY VERSION CASE -> OUTCOME`: the
response's top-level error, its per-item errors in order with their messages, and the few fields the case is
about). Before it, the module creates a one-partition topic with 3 records and a consumer group with a committed
offset, and ApiProbe's Admin mode sends the unconfigured ListConfigResources cases, configures and runs
the user-level calls (Admin.alterReplicaLogDirs, describeFeatures, listConfigResources, createDelegationToken).

What depends on the broker itself (its id, the cluster id, its log dir, its topics, its feature levels) is
taken from the broker under test (the probe's `context` lines), never from Kafka's run. The last request
unregisters the broker itself, so each situation gets a broker of its own for this module.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import pytest

from support.brokers import LONG_MODE, KafkaBroker, SkeinBroker, _die_with_parent, skein_binary
from support.java_programs import java_program_command
from support.kafka_clients import commit_in_group, create_topic, produce, unique_topic_name

JAVA_TIMEOUT_SECONDS = 180
# Records in the topic before the probe; the share sessions' records follow them.
SETUP_RECORDS = 3
# The consumer group's committed offset.
COMMITTED_OFFSET = 2

# Names ApiProbe uses (ApiProbe.java).
UNKNOWN_TOPIC = "api-probe-no-such-topic"
UNKNOWN_PARTITION = 7
UNKNOWN_FEATURE = "api.probe.unknown.feature"
UNKNOWN_SHARE_GROUP = "api-probe-no-such-share-group"
UNKNOWN_STREAMS_GROUP = "api-probe-no-such-streams-group"
NEW_SHARE_GROUP = "api-probe-altered-share-group"
UNKNOWN_BROKER_ID = 4711
# A static quorum's voter has no directory id: Uuid.ZERO in Kafka's text form.
ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"

# What Kafka 4.3.1 advertises in ApiVersions for each probed API (kafka-clients 4.3.1 knows the same ranges), with
# share and streams groups on or off (share.version and streams.version 1 or 0). Skein advertises the same ranges
# (the streams group APIs 88 and 89 among them, at 0-0), except where SKEIN_VERSIONS says otherwise.
KAFKA_VERSIONS = {
    34: (1, 2), 38: (1, 3), 39: (1, 2), 40: (1, 2), 41: (1, 3), 57: (0, 2), 64: (0, 0), 74: (0, 1), 76: (1, 1),
    77: (1, 1), 78: (1, 2), 79: (1, 2), 80: (0, 1), 81: (0, 0), 83: (0, 0), 84: (0, 0), 85: (0, 1), 86: (0, 0),
    87: (0, 1), 88: (0, 0), 89: (0, 0), 90: (0, 1), 91: (0, 0), 92: (0, 0),
}
# Where Skein advertises less than Kafka: the kafka-protocol codec it uses knows AddRaftVoter v0 only (v1 adds
# ack_when_committed, which a static quorum has no use for), and not the newest version of five share group APIs;
# the answers at the versions it serves are Kafka's.
SKEIN_VERSIONS = {80: (0, 0), 78: (1, 1), 79: (1, 1), 85: (0, 0), 87: (0, 0), 90: (0, 0)}
API_NAMES = {
    34: "AlterReplicaLogDirs", 38: "CreateDelegationToken", 39: "RenewDelegationToken", 40: "ExpireDelegationToken",
    41: "DescribeDelegationToken", 57: "UpdateFeatures", 64: "UnregisterBroker", 74: "ListConfigResources",
    76: "ShareGroupHeartbeat", 77: "ShareGroupDescribe", 78: "ShareFetch", 79: "ShareAcknowledge",
    80: "AddRaftVoter", 81: "RemoveRaftVoter", 83: "InitializeShareGroupState", 84: "ReadShareGroupState",
    85: "WriteShareGroupState", 86: "DeleteShareGroupState", 87: "ReadShareGroupStateSummary",
    88: "StreamsGroupHeartbeat", 89: "StreamsGroupDescribe", 90: "DescribeShareGroupOffsets",
    91: "AlterShareGroupOffsets", 92: "DeleteShareGroupOffsets",
}
METADATA_API = 3
API_PARAMS = dict(argnames="api_key", argvalues=sorted(API_NAMES),
                  ids=[f"{key}-{API_NAMES[key]}" for key in sorted(API_NAMES)])


@dataclass(frozen=True)
class Situation:
    """A broker probed: its kind, the feature levels Kafka's storage is formatted with (else the defaults),
    whether share groups are on (share.version 1) and whether streams groups are on (streams.version 1)."""

    kind: str
    features: tuple[tuple[str, int], ...]
    share_groups: bool
    streams_groups: bool


KAFKA_GROUPS_OFF = "kafka-share.version=0-streams.version=0"
SITUATIONS = {
    "kafka": Situation("kafka", (), share_groups=True, streams_groups=True),
    KAFKA_GROUPS_OFF: Situation("kafka", (("share.version", 0), ("streams.version", 0)), share_groups=False,
                                streams_groups=False),
    # Skein finalizes neither share.version nor streams.version.
    "skein": Situation("skein", (), share_groups=False, streams_groups=False),
}

DELEGATION_TOKEN_NOT_ALLOWED_MESSAGE = ("Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels "
                                        "and on delegation token authenticated channels.")


@dataclass
class Probed:
    """One broker's answers: ApiProbe's request lines {"KEY VERSION CASE": outcome}, its context and the
    Admin calls' outcomes, plus the names the module created."""

    situation: Situation
    topic: str
    group: str
    configured_group: str
    client_metrics: str
    share_group: str
    streams_group: str
    context: dict[str, str]
    outcomes: dict[str, str]
    admin: dict[str, str]

    @property
    def broker_id(self) -> int:
        return int(self.context["broker-id"])


@pytest.fixture(scope="module", params=list(SITUATIONS))
def probed(request):
    situation = SITUATIONS[request.param]
    if request.param == KAFKA_GROUPS_OFF and not LONG_MODE:
        pytest.skip("the Apache Kafka reference with share.version=0 and streams.version=0 (a second Kafka broker) "
                    "runs in long mode (SKEIN_LONG=1)")
    if situation.kind == "skein" and not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
    probe = java_program_command("ApiProbe")
    broker = KafkaBroker(features=dict(situation.features)) if situation.kind == "kafka" else SkeinBroker()
    try:
        broker.start()
        topic = create_topic(broker.bootstrap, unique_topic_name("api-probe"), partitions=1)
        produce(broker.bootstrap, topic, SETUP_RECORDS)
        group = unique_topic_name("api-probe-group")
        commit_in_group(broker.bootstrap, group, topic, COMMITTED_OFFSET)
        configured_group = f"{group}-configured"
        client_metrics = f"{topic}-metrics"
        share_group = f"{topic}-share"
        streams_group = f"{topic}-streams"

        lines = run_java(probe + ["--admin", broker.bootstrap, topic, configured_group, client_metrics])
        lines += run_java(probe + [broker.bootstrap, topic, share_group, streams_group])
        context, outcomes, admin = {}, {}, {}
        for line in lines:
            if line.startswith("admin."):
                key, separator, value = line.removeprefix("admin.").partition("=")
                assert separator and key not in admin, f"unexpected line: {line}"
                admin[key] = value
            elif line.startswith("context "):
                key, separator, value = line.removeprefix("context ").partition("=")
                assert separator and key not in context, f"unexpected line: {line}"
                context[key] = value
            else:
                request_key, separator, outcome = line.partition(" -> ")
                assert separator and re.fullmatch(r"\d+ \d+ \S+", request_key), f"unexpected line: {line}"
                assert request_key not in outcomes, f"{request_key} twice"
                outcomes[request_key] = normalized(outcome)
        yield Probed(situation, topic, group, configured_group, client_metrics, share_group, streams_group, context,
                     outcomes, admin)
    finally:
        # Unregistered, Kafka's broker cannot shut down in an orderly way (its controlled shutdown waits for a
        # registration that is gone): killed.
        broker.kill()
        broker.close()


def run_java(command: list[str]) -> list[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=JAVA_TIMEOUT_SECONDS,
                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    assert result.returncode == 0, f"{command[-4:]} exited {result.returncode}\n{result.stdout}{result.stderr}"
    return result.stdout.splitlines()




def normalized(outcome: str) -> str:
    """A share or streams member's epoch is the group's epoch of the moment, a count of the coordinator's own
    steps (Kafka answers a share member's join with 2 and its assignment with 3, a streams member's with 1 and 2):
    a positive epoch reads `<epoch>`; -1 (left) stays."""
    return re.sub(r"memberEpoch=[1-9]\d*", "memberEpoch=<epoch>", outcome)


def listed(items) -> str:
    return "[" + ", ".join(items) + "]"


def bracketed_names(text: str) -> list[str]:
    """`[a, b]` as ["a", "b"]."""
    inner = text.strip()[1:-1]
    return [item for item in inner.split(", ") if item]


def feature_levels(text: str) -> dict[str, str]:
    """`{a=1, b=0-2}` or `[a=1, b=0-2]` as {"a": "1", "b": "0-2"}."""
    return dict(item.split("=", 1) for item in bracketed_names(text))


def offsets_range(text: str) -> tuple[int, int]:
    first, last = text.split("..")
    return int(first), int(last)


# ---------------------------------------------------------------------------------------------- Kafka's answers


def kafka_answers(p: Probed) -> dict[str, str]:
    """What Apache Kafka 4.3.1 answers to every request ApiProbe sends, with the broker's own ids, names, dirs
    and feature levels taken from the broker under test."""
    t = p.topic
    broker_id = p.broker_id
    finalized = {name: int(level) for name, level in feature_levels(p.context["finalized-features"]).items()}
    supported = feature_levels(p.context["supported-features"])
    # metadata.version: the finalized level and the supported range (-1 where the broker reports none).
    current_mv = finalized.get("metadata.version", -1)
    min_mv, max_mv = (int(level) for level in supported["metadata.version"].split("-")) \
        if "metadata.version" in supported else (-1, -1)
    answers: dict[str, str] = {}

    # 34 AlterReplicaLogDirs: moving a replica to the dir it is in succeeds (nothing to move); a dir the broker
    # does not have is LOG_DIR_NOT_FOUND, checked first (so also for a partition that does not exist); a topic
    # that does not exist, or a partition index the topic does not have, is UNKNOWN_TOPIC_OR_PARTITION (not
    # REPLICA_NOT_AVAILABLE). The response has no error messages.
    for v in (2, 1):
        answers[f"34 {v} same-dir"] = f"[{t}-0 NONE(0)]"
        answers[f"34 {v} nonexistent-dir"] = f"[{t}-0 LOG_DIR_NOT_FOUND(57)]"
        answers[f"34 {v} unknown-partition"] = f"[{UNKNOWN_TOPIC}-0 UNKNOWN_TOPIC_OR_PARTITION(3)]"
        answers[f"34 {v} unknown-partition-index"] = f"[{t}-{UNKNOWN_PARTITION} UNKNOWN_TOPIC_OR_PARTITION(3)]"
        answers[f"34 {v} nonexistent-dir-unknown-partition"] = f"[{UNKNOWN_TOPIC}-0 LOG_DIR_NOT_FOUND(57)]"

    # 38-41 delegation tokens: on a PLAINTEXT channel (and on SSL without client auth, and on a token-authenticated
    # channel) Kafka refuses every token request with DELEGATION_TOKEN_REQUEST_NOT_ALLOWED before it even looks
    # whether tokens are enabled (delegation.token.secret.key unset would be DELEGATION_TOKEN_AUTH_DISABLED).
    # CreateDelegationToken still names the owner and (v3+) the requester: the unauthenticated User:ANONYMOUS;
    # token id "", empty HMAC. Renew and Expire answer expiry -1; Describe answers no tokens.
    answers["38 3 create"] = ('DELEGATION_TOKEN_REQUEST_NOT_ALLOWED(64) principal=User:ANONYMOUS '
                              'requester=User:ANONYMOUS tokenId="" hmacBytes=0')
    answers["38 1 create"] = 'DELEGATION_TOKEN_REQUEST_NOT_ALLOWED(64) principal=User:ANONYMOUS tokenId="" hmacBytes=0'
    for v in (2, 1):
        answers[f"39 {v} renew"] = "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED(64) expiry=-1"
        answers[f"40 {v} expire"] = "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED(64) expiry=-1"
    for v in (3, 1):
        answers[f"41 {v} describe-all"] = "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED(64) tokens=0"
        answers[f"41 {v} describe-owner"] = "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED(64) tokens=0"

    # 57 UpdateFeatures (forwarded to the controller, which validates every update first): one invalid update
    # fails the whole request with a top-level INVALID_UPDATE_VERSION and the message below, and then v0/v1 list
    # no per-feature results. A valid request answers NONE, and v0/v1 then list each feature as NONE with the
    # message "NONE" (v2 has no per-feature results). Setting metadata.version to its current level is valid
    # (a no-op), validate-only or not; a level above the supported range, a feature the controller does not know
    # and a metadata.version downgrade (even a "safe" one) are refused; share.version to 0 (disabling share
    # groups) passes validation (validate-only: nothing changes).
    failed = "The update failed for all features since the following feature had an error: "
    unknown = (f'INVALID_UPDATE_VERSION(95) "{failed}Invalid update version 1 for feature {UNKNOWN_FEATURE}. '
               f'Local controller {broker_id} does not support this feature." []')
    for v in (2, 0):
        answers[f"57 {v} upgrade-unknown-feature"] = unknown
    answers["57 2 metadata.version-to-current"] = "NONE(0) []"
    answers["57 0 metadata.version-to-current"] = 'NONE(0) [metadata.version NONE(0) "NONE"]'
    answers["57 2 validate-only-metadata.version-to-current"] = "NONE(0) []"
    answers["57 1 validate-only-metadata.version-to-current"] = 'NONE(0) [metadata.version NONE(0) "NONE"]'
    for v in (2, 1):
        answers[f"57 {v} validate-only-unknown-feature"] = unknown
        answers[f"57 {v} validate-only-metadata.version-above-supported"] = (
            f'INVALID_UPDATE_VERSION(95) "{failed}Invalid update version {max_mv + 1} for feature metadata.version. '
            f'Local controller {broker_id} only supports versions {min_mv}-{max_mv}" []')
        answers[f"57 {v} validate-only-metadata.version-safe-downgrade"] = (
            f'INVALID_UPDATE_VERSION(95) "{failed}Unsupported metadata.version downgrade from {current_mv} to '
            f'{current_mv - 1}. Refusing to perform the requested downgrade because it might delete metadata '
            f'information." []')
    answers["57 2 validate-only-share.version-to-0"] = "NONE(0) []"
    answers["57 1 validate-only-share.version-to-0"] = 'NONE(0) [share.version NONE(0) "NONE"]'

    # 74 ListConfigResources: v0 (the former ListClientMetricsResources) lists the client metrics subscriptions.
    # v1 lists, per requested type (no type: every type), the resources that have configs: every topic the broker
    # has (internal ones included), the groups with a dynamic group config (not every group: the consumer group
    # with only committed offsets is not listed), the client metrics subscriptions, and the broker itself as BROKER
    # and as BROKER_LOGGER. A type that is not a config resource type (UNKNOWN, 0) is UNSUPPORTED_VERSION with
    # nothing listed. (Entries sorted here; Kafka lists them type by type.) The "unconfigured-" cases run before
    # any group config or client metrics subscription exists: no GROUP or CLIENT_METRICS resource, v0 lists none.
    def config_resources(prefix: str, configured: bool) -> None:
        topics = [f"TOPIC:{name}" for name in bracketed_names(p.context[f"{prefix}topics"])]
        group_metrics_broker = [f"BROKER:{broker_id}"]
        if configured:
            group_metrics_broker += [f"CLIENT_METRICS:{p.client_metrics}", f"GROUP:{p.configured_group}"]
        answers[f"74 0 {prefix}no-types"] = f"NONE(0) [{p.client_metrics}]" if configured else "NONE(0) []"
        answers[f"74 1 {prefix}no-types"] = "NONE(0) " + listed(
            sorted(group_metrics_broker + [f"BROKER_LOGGER:{broker_id}"] + topics))
        answers[f"74 1 {prefix}topic-group-client_metrics-broker"] = "NONE(0) " + listed(
            sorted(group_metrics_broker + topics))
        answers[f"74 1 {prefix}broker_logger"] = f"NONE(0) [BROKER_LOGGER:{broker_id}]"
        answers[f"74 1 {prefix}unknown-type"] = "UNSUPPORTED_VERSION(35) []"

    config_resources("unconfigured-", configured=False)
    config_resources("", configured=True)

    answers.update(share_group_answers(p) if p.situation.share_groups else share_groups_off_answers(p))
    answers.update(streams_group_answers(p) if p.situation.streams_groups else streams_groups_off_answers(p))

    # 80 AddRaftVoter, 81 RemoveRaftVoter: a static quorum (controller.quorum.voters) has kraft.version 0, which
    # cannot change voters: UNSUPPORTED_VERSION with the message below. RemoveRaftVoter first checks its request:
    # the voter's directory id must not be zero (a static voter's is), else INVALID_REQUEST; and the cluster id
    # must be the cluster's, else INCONSISTENT_CLUSTER_ID.
    for v in (1, 0):
        answers[f"80 {v} new-voter"] = (
            'UNSUPPORTED_VERSION(35) "Cluster doesn\'t support adding voter because the kraft.version feature is 0"')
    answers["81 0 only-voter"] = 'INVALID_REQUEST(42) "Remove voter request didn\'t include a valid voter"'
    answers["81 0 only-voter-random-directory-id"] = (
        'UNSUPPORTED_VERSION(35) "Cluster doesn\'t support removing voter because the kraft.version feature is 0"')
    answers["81 0 wrong-cluster-id"] = (
        f'INCONSISTENT_CLUSTER_ID(104) "The given id "api-probe-cluster" doesn\'t match the cluster id '
        f'"{p.context["cluster-id"]}""')

    # 64 UnregisterBroker (forwarded to the controller): an id that is not registered is BROKER_ID_NOT_REGISTERED;
    # the broker's own id is NONE with the message "" (not null), and the registration is gone at once: Metadata
    # lists no broker and the topic's partition has no leader (LEADER_NOT_AVAILABLE), and stays so (the broker's
    # heartbeats are refused until it restarts).
    answers["64 0 unknown-broker"] = (
        f'BROKER_ID_NOT_REGISTERED(102) "Broker ID {UNKNOWN_BROKER_ID} is not currently registered"')
    answers["64 0 self"] = 'NONE(0) ""'
    return answers


def share_group_answers(p: Probed) -> dict[str, str]:
    """What Apache Kafka 4.3.1 answers to the share group APIs (76-79, 83-87, 90-92) with share groups on
    (share.version 1, the default)."""
    t = p.topic
    answers: dict[str, str] = {}

    # 76 ShareGroupHeartbeat: a new member (its client-made member id, epoch 0) joins a new share group: NONE, its
    # own member id back, a positive epoch, heartbeat interval 5000 ms (group.share.heartbeat.interval.ms); the
    # assignment (the simple assignor: the topic's only partition) comes with a later heartbeat. A member id the
    # group does not have is UNKNOWN_MEMBER_ID; epoch -1 leaves (epoch -1, interval 0 back).
    s = p.share_group
    answers["76 1 join"] = "NONE(0) memberId=sent memberEpoch=<epoch> heartbeatIntervalMs=5000"
    answers["76 1 assignment"] = f"NONE(0) memberId=sent memberEpoch=<epoch> heartbeatIntervalMs=5000 assignment=[{t}:[0]]"
    answers["76 1 unknown-member"] = f'UNKNOWN_MEMBER_ID(25) "Member <unknown-member-id> is not a member of group {s}."'
    answers["76 1 leave"] = "NONE(0) memberId=sent memberEpoch=-1 heartbeatIntervalMs=0"

    # 77 ShareGroupDescribe: a group that does not exist is GROUP_ID_NOT_FOUND "Group G not found."; the joined
    # group is Stable with its member, assignor "simple"; after the member left it is Empty. AlterShareGroupOffsets
    # on an unknown group created it (Empty).
    not_found = f'{UNKNOWN_SHARE_GROUP} GROUP_ID_NOT_FOUND(69) "Group {UNKNOWN_SHARE_GROUP} not found."'
    answers["77 1 before-join"] = f'[{s} GROUP_ID_NOT_FOUND(69) "Group {s} not found."]'
    answers["77 1 after-join"] = listed(sorted([f"{s} NONE(0) state=Stable members=1 assignor=simple", not_found]))
    answers["77 1 after-leave"] = listed(sorted([f"{s} NONE(0) state=Empty members=0 assignor=simple",
                                                 f"{NEW_SHARE_GROUP} NONE(0) state=Empty members=0 assignor=simple"]))

    # 78 ShareFetch and 79 ShareAcknowledge, one share session per ShareFetch version. Opening the session
    # (epoch 0) answers the partition with nothing acquired: a new share group starts at the latest offset
    # (share.auto.offset.reset=latest), so the module's first records are never delivered. The records produced
    # next are acquired by the next fetch (delivery count 1), with the acquisition lock of 30000 ms
    # (group.share.record.lock.duration.ms). Accepting them is NONE, and accepting them again too (they are
    # below the share partition's start offset by then); accepting an offset never acquired is
    # INVALID_RECORD_STATE on the partition; a wrong session epoch is INVALID_SHARE_SESSION_EPOCH (top level,
    # no partitions); a member without a session is SHARE_SESSION_NOT_FOUND (lock 0, no partitions); epoch -1
    # closes the session (NONE, no partitions).
    for v in (2, 1):
        first, last = offsets_range(p.context[f"produced-{v}"])
        answers[f"78 {v} open-session"] = f"NONE(0) lockMs=30000 [{t}-0 NONE(0) ack=NONE(0) acquired=[]]"
        answers[f"78 {v} acquire"] = f"NONE(0) lockMs=30000 [{t}-0 NONE(0) ack=NONE(0) acquired=[{first}..{last}x1]]"
        answers[f"79 {v} accept"] = f"NONE(0) [{t}-0 NONE(0)]"
        answers[f"79 {v} accept-again"] = f"NONE(0) [{t}-0 NONE(0)]"
        answers[f"79 {v} accept-not-acquired"] = (
            f'NONE(0) [{t}-0 INVALID_RECORD_STATE(121) "Batch record not found. The request batch offsets are not '
            f'found in the cache."]')
        answers[f"79 {v} wrong-epoch"] = "INVALID_SHARE_SESSION_EPOCH(123) []"
        answers[f"78 {v} unknown-session"] = "SHARE_SESSION_NOT_FOUND(122) lockMs=0 []"
        answers[f"78 {v} close-session"] = "NONE(0) lockMs=30000 []"

    # 90 DescribeShareGroupOffsets, 91 AlterShareGroupOffsets, 92 DeleteShareGroupOffsets. With the member still
    # in the group the start offset is where the last session's records begin (the share partition moves it past
    # acknowledged records lazily), lag 0 (v1: every record after it is acknowledged); a group that does not
    # exist answers NONE with start -1 (lag -1), as does a topic without share state. Altering or deleting the
    # offsets of a group with a member is NON_EMPTY_GROUP "The group is not empty."; once the member left, the
    # alter to offset 1 is NONE and describes start 1, lag = end offset - 1; delete is NONE and the offset is
    # gone (-1). Altering an unknown group creates it (NONE); deleting an unknown group's offsets is
    # GROUP_ID_NOT_FOUND.
    last_session_first, last_session_last = offsets_range(p.context["produced-1"])
    log_end = last_session_last + 1

    def offset(v: int, start: int, lag: int) -> str:
        # v1 added the lag.
        return f"{t}-0 NONE(0) start={start}" + (f" lag={lag}" if v >= 1 else "")

    for v in (1, 0):
        answers[f"90 {v} member-active"] = listed(sorted([f"{s} NONE(0) [{offset(v, last_session_first, 0)}]",
                                                          f"{UNKNOWN_SHARE_GROUP} NONE(0) [{offset(v, -1, -1)}]"]))
        answers[f"90 {v} all-topics"] = f"[{s} NONE(0) [{offset(v, last_session_first, 0)}]]"
        answers[f"90 {v} after-alter"] = f"[{s} NONE(0) [{offset(v, 1, log_end - 1)}]]"
        answers[f"90 {v} after-delete"] = f"[{s} NONE(0) [{offset(v, -1, -1)}]]"
    answers["91 0 member-active"] = 'NON_EMPTY_GROUP(68) "The group is not empty." []'
    answers["91 0 group-empty"] = f"NONE(0) [{t}-0 NONE(0)]"
    answers["91 0 unknown-group"] = f"NONE(0) [{t}-0 NONE(0)]"
    answers["92 0 member-active"] = 'NON_EMPTY_GROUP(68) "The group is not empty." []'
    answers["92 0 group-empty"] = f"NONE(0) [{t} NONE(0)]"
    answers["92 0 unknown-group"] = f'GROUP_ID_NOT_FOUND(69) "Group {UNKNOWN_SHARE_GROUP} not found." []'

    # 83-87 the share coordinator's state of (group, topic, partition 0); no authorizer, so allowed. Before any
    # initialization the summary is NONE with start -1 (state and leader epoch 0), while a full read is
    # INVALID_REQUEST "Read operation on uninitialized share partition not allowed." (state epoch 0, start 0).
    # Initialize (state epoch 1, start 2) is NONE and a read then shows it; Write (start 2, one batch 2..2
    # ACKNOWLEDGED (2) with delivery count 1) is NONE and a read shows the batch; the summary has no delivery-complete
    # count (-1: the last write was v0, which has none); Delete is NONE and the partition is uninitialized again.
    uninitialized = (f'[{t}-0 INVALID_REQUEST(42) "Read operation on uninitialized share partition not allowed." '
                     f'stateEpoch=0 start=0 batches=[]]')
    answers["87 1 before-initialize"] = f"[{t}-0 NONE(0) stateEpoch=0 leaderEpoch=0 start=-1 deliveryComplete=-1]"
    answers["87 0 before-initialize"] = f"[{t}-0 NONE(0) stateEpoch=0 leaderEpoch=0 start=-1]"
    answers["84 0 before-initialize"] = uninitialized
    answers["83 0 initialize"] = f"[{t}-0 NONE(0)]"
    answers["84 0 after-initialize"] = f"[{t}-0 NONE(0) stateEpoch=1 start=2 batches=[]]"
    answers["85 1 write"] = f"[{t}-0 NONE(0)]"
    answers["85 0 write"] = f"[{t}-0 NONE(0)]"
    answers["84 0 after-write"] = f"[{t}-0 NONE(0) stateEpoch=1 start=2 batches=[2..2:2x1]]"
    answers["87 1 after-write"] = f"[{t}-0 NONE(0) stateEpoch=1 leaderEpoch=0 start=2 deliveryComplete=-1]"
    answers["87 0 after-write"] = f"[{t}-0 NONE(0) stateEpoch=1 leaderEpoch=0 start=2]"
    answers["86 0 delete"] = f"[{t}-0 NONE(0)]"
    answers["84 0 after-delete"] = uninitialized
    return answers


def share_groups_off_answers(p: Probed) -> dict[str, str]:
    """What Apache Kafka 4.3.1 answers to the share group APIs with share groups off (storage formatted with
    share.version=0). It still advertises them all, and answers every share group request UNSUPPORTED_VERSION:
    without a message, except AlterShareGroupOffsets and DeleteShareGroupOffsets (the error's default message);
    ShareGroupDescribe and DescribeShareGroupOffsets per group (no partitions); ShareFetch with lock 0 and no
    partitions. Nothing joins, so there is no assignment heartbeat. The share coordinator has no state topic
    (__share_group_state is created for the first share group, and there is none): its state APIs answer the
    partition NOT_COORDINATOR "Unable to ...: This is not the correct coordinator." with state epoch 0, start
    offset 0 (the summary: leader epoch 0, and v1 no delivery-complete count, -1) and no batches."""
    t, s = p.topic, p.share_group
    unsupported = "UNSUPPORTED_VERSION(35)"
    answers: dict[str, str] = {}
    answers["77 1 before-join"] = f"[{s} {unsupported}]"
    for case in ("join", "unknown-member", "leave"):
        answers[f"76 1 {case}"] = unsupported
    answers["77 1 after-join"] = listed(sorted([f"{s} {unsupported}", f"{UNKNOWN_SHARE_GROUP} {unsupported}"]))
    answers["77 1 after-leave"] = listed(sorted([f"{s} {unsupported}", f"{NEW_SHARE_GROUP} {unsupported}"]))
    for v in (2, 1):
        for case in ("open-session", "acquire", "unknown-session", "close-session"):
            answers[f"78 {v} {case}"] = f"{unsupported} lockMs=0 []"
        for case in ("accept", "accept-again", "accept-not-acquired", "wrong-epoch"):
            answers[f"79 {v} {case}"] = f"{unsupported} []"
    for v in (1, 0):
        answers[f"90 {v} member-active"] = listed(sorted([f"{s} {unsupported} []",
                                                          f"{UNKNOWN_SHARE_GROUP} {unsupported} []"]))
        for case in ("all-topics", "after-alter", "after-delete"):
            answers[f"90 {v} {case}"] = f"[{s} {unsupported} []]"
    for api_key in (91, 92):
        for case in ("member-active", "group-empty", "unknown-group"):
            answers[f"{api_key} 0 {case}"] = f'{unsupported} "The version of API is not supported." []'

    def not_coordinator(what: str) -> str:
        return f'{t}-0 NOT_COORDINATOR(16) "Unable to {what}: This is not the correct coordinator."'

    for case in ("before-initialize", "after-initialize", "after-write", "after-delete"):
        answers[f"84 0 {case}"] = f"[{not_coordinator('read share group state')} stateEpoch=0 start=0 batches=[]]"
    for case in ("before-initialize", "after-write"):
        summary = f"{not_coordinator('read share group state summary')} stateEpoch=0 leaderEpoch=0 start=0"
        answers[f"87 1 {case}"] = f"[{summary} deliveryComplete=-1]"
        answers[f"87 0 {case}"] = f"[{summary}]"
    answers["83 0 initialize"] = f"[{not_coordinator('initialize share group state')}]"
    for v in (1, 0):
        answers[f"85 {v} write"] = f"[{not_coordinator('write share group state')}]"
    answers["86 0 delete"] = f"[{not_coordinator('delete share group state')}]"
    return answers


def streams_group_answers(p: Probed) -> dict[str, str]:
    """What Apache Kafka 4.3.1 answers to the streams group APIs (88, 89) with streams groups on (streams.version 1,
    the default).

    88 StreamsGroupHeartbeat: a new member (its client-made member id, epoch 0, a topology of one subtopology "0"
    reading the topic) joins a new streams group: NONE, its own member id back, a positive epoch, heartbeat
    interval 5000 ms (group.streams.heartbeat.interval.ms), acceptable recovery lag and task offset interval 0,
    endpoint information epoch 0, no tasks yet (empty lists) and the status ASSIGNMENT_DELAYED: the group's
    initial rebalance delay (group.streams.initial.rebalance.delay.ms, 3000 ms) starts with the join that created
    it. Once it is over, a heartbeat assigns the member the active task of subtopology 0, partition 0, with no
    status left. Epoch -1 leaves: epoch -1, interval 0, the task lists null (unchanged), status empty.
    89 StreamsGroupDescribe (while the member is assigned): the group is Stable with its member and its topology
    (epoch 0, subtopology 0 reading the topic); a group that does not exist is GROUP_ID_NOT_FOUND "Group G not
    found."."""
    t, g = p.topic, p.streams_group
    member = ("NONE(0) memberId=sent memberEpoch=<epoch> heartbeatIntervalMs=5000 acceptableRecoveryLag=0 "
              "taskOffsetIntervalMs=0 endpointInformationEpoch=0")
    delayed = 'ASSIGNMENT_DELAYED(5) "Assignment delayed due to the configured initial rebalance delay."'
    return {
        "88 0 join": f"{member} status=[{delayed}] active=[] standby=[] warmup=[]",
        "88 0 assignment": f"{member} status=[] active=[0:[0]] standby=[] warmup=[]",
        "89 0 after-join": listed(sorted([
            f"{g} NONE(0) state=Stable members=1 topology=0:[0<-[{t}]]",
            f'{UNKNOWN_STREAMS_GROUP} GROUP_ID_NOT_FOUND(69) "Group {UNKNOWN_STREAMS_GROUP} not found."'])),
        "88 0 leave": ("NONE(0) memberId=sent memberEpoch=-1 heartbeatIntervalMs=0 acceptableRecoveryLag=0 "
                       "taskOffsetIntervalMs=0 endpointInformationEpoch=0 status=[] active=null standby=null "
                       "warmup=null"),
    }


def streams_groups_off_answers(p: Probed) -> dict[str, str]:
    """What Apache Kafka 4.3.1 answers to the streams group APIs with streams groups off (storage formatted with
    streams.version=0): it still advertises both (v0) and refuses them before any other check, UNSUPPORTED_VERSION
    without a message: StreamsGroupHeartbeat at the top level (the join and the leave alike; nothing joins, so
    there is no assignment heartbeat), StreamsGroupDescribe per group asked for."""
    unsupported = "UNSUPPORTED_VERSION(35)"
    return {
        "88 0 join": unsupported,
        "89 0 after-join": listed(sorted([f"{p.streams_group} {unsupported}",
                                          f"{UNKNOWN_STREAMS_GROUP} {unsupported}"])),
        "88 0 leave": unsupported,
    }


def kafka_after_unregister(p: Probed) -> str:
    """Metadata of the topic after the broker unregistered itself (see UnregisterBroker above)."""
    return f"brokers=[] {p.topic} NONE(0) [0 LEADER_NOT_AVAILABLE(5) leader=-1]"


# ---------------------------------------------------------------------------------------------- the tests


@pytest.mark.parametrize(**API_PARAMS)
def test_probed_apis_advertised_as_kafka(probed, api_key):
    advertised = {int(key): versions for key, versions in
                  (item.split(":") for item in bracketed_names(probed.context["advertised"]))}
    assert set(advertised) == set(KAFKA_VERSIONS)
    versions = SKEIN_VERSIONS if probed.situation.kind == "skein" else KAFKA_VERSIONS
    low, high = versions.get(api_key, KAFKA_VERSIONS[api_key])
    assert advertised[api_key] == f"{low}-{high}"


@pytest.mark.parametrize(**API_PARAMS)
def test_answers_as_kafka(probed, api_key):
    expected = {key: value for key, value in kafka_answers(probed).items() if int(key.split()[0]) == api_key}
    if probed.situation.kind == "skein" and api_key in SKEIN_VERSIONS:
        low, high = SKEIN_VERSIONS[api_key]
        expected = {key: value for key, value in expected.items() if low <= int(key.split()[1]) <= high}
    answered = {key: value for key, value in probed.outcomes.items() if int(key.split()[0]) == api_key}
    assert answered == expected


def test_every_request_checked(probed):
    """Each line ApiProbe printed is one of the answers above (or the Metadata after the unregistration)."""
    unchecked = set(probed.outcomes) - set(kafka_answers(probed))
    assert {key.split()[0] for key in unchecked} <= {str(METADATA_API)}, unchecked


def test_unregistered_broker_leaves_the_metadata(probed):
    after = [value for key, value in probed.outcomes.items() if re.fullmatch(r"3 \d+ after-unregister-self", key)]
    assert after == [kafka_after_unregister(probed)]


def test_probe_context_as_kafka(probed):
    """What the probe learnt, where Kafka's single node is known: a static quorum whose only voter is the node
    itself, without a directory id; the topic in the log dir DescribeLogDirs reports; the share records after
    the module's records."""
    assert probed.context["voter-id"] == str(probed.broker_id)
    assert probed.context["voter-directory-id"] == ZERO_UUID
    assert probed.context["log-dir"] not in ("", "null")
    assert {probed.topic, "__consumer_offsets"} <= set(bracketed_names(probed.context["topics"]))
    # One share session per ShareFetch version served, highest first, each after two records.
    low, high = SKEIN_VERSIONS.get(78, KAFKA_VERSIONS[78]) if probed.situation.kind == "skein" else KAFKA_VERSIONS[78]
    produced = {key: value for key, value in probed.context.items() if key.startswith("produced-")}
    assert produced == {f"produced-{version}": f"{SETUP_RECORDS + 2 * i}..{SETUP_RECORDS + 2 * i + 1}"
                        for i, version in enumerate(range(high, low - 1, -1))}


# -- Admin API (kafka-clients 4.3.1)


def test_admin_alter_replica_log_dirs(probed):
    # The replica's own dir: success. A dir the broker does not have: LOG_DIR_NOT_FOUND as the client's
    # LogDirNotFoundException (the error code's default message: the response has none).
    assert probed.admin["log-dir"] == probed.context["log-dir"]
    assert probed.admin["alter-replica-log-dirs.same-dir"] == "ok"
    assert probed.admin["alter-replica-log-dirs.nonexistent-dir"] == \
        "error:LogDirNotFoundException: The user-specified log directory is not found in the broker config."


def test_admin_describe_features(probed):
    """Admin.describeFeatures (ApiVersions): Kafka finalizes metadata.version at one level within its supported
    range, share.version 1 and streams.version 1 (share and streams groups on; with both formatted at 0, and on
    Skein, neither is finalized), group.version 1 (KIP-848 groups) and transaction.version 2. A static quorum's
    kraft.version is 0, so it is not finalized: the reason AddRaftVoter answers UNSUPPORTED_VERSION; Kafka supports
    raising it (0-1), Skein's quorum is static only (0-0). Skein keeps its own metadata log and names Kafka 4.3's
    metadata.version (30 within 7-30), fixed. (Kafka also finalizes eligible.leader.replicas.version 1, a feature
    of no API of this module.)"""
    finalized = feature_levels(probed.admin["describe-features.finalized"])
    supported = feature_levels(probed.admin["describe-features.supported"])
    share_version = "1-1" if probed.situation.share_groups else None
    streams_version = "1-1" if probed.situation.streams_groups else None
    names = ("share.version", "streams.version", "group.version", "transaction.version")
    assert {name: finalized.get(name) for name in names} == {
        "share.version": share_version, "streams.version": streams_version, "group.version": "1-1",
        "transaction.version": "2-2"}, finalized
    assert "kraft.version" not in finalized, finalized
    assert "metadata.version" in finalized, finalized
    low, high = finalized["metadata.version"].split("-")
    supported_low, supported_high = supported["metadata.version"].split("-")
    assert low == high and int(supported_low) <= int(high) <= int(supported_high), (finalized, supported)
    if probed.situation.kind == "kafka":
        assert supported.get("kraft.version") == "0-1", supported
    else:
        assert (finalized["metadata.version"], supported["metadata.version"]) == ("30-30", "7-30")
        assert supported.get("kraft.version") == "0-0", supported
    # The same levels as the probe's ApiVersions.
    assert {name: levels.split("-")[1] for name, levels in finalized.items()} == \
        feature_levels(probed.context["finalized-features"])


def test_admin_list_config_resources_unconfigured(probed):
    # Before any group config or client metrics subscription: every type lists the topics and the broker as
    # BROKER and BROKER_LOGGER; the four types asked for, the topics and BROKER. The consumer group with committed
    # offsets and no config is no config resource.
    broker_id = probed.broker_id
    topics = [f"TOPIC:{name}" for name in bracketed_names(probed.context["unconfigured-topics"])]
    assert probed.admin["list-config-resources.unconfigured.topic-group-client_metrics-broker"] == \
        listed(sorted([f"BROKER:{broker_id}"] + topics))
    assert probed.admin["list-config-resources.unconfigured.all"] == \
        listed(sorted([f"BROKER:{broker_id}", f"BROKER_LOGGER:{broker_id}"] + topics))


def test_admin_list_config_resources(probed):
    # The group config and the client metrics subscription are accepted; then every type is listed (no types
    # given), or the four asked for, as ListConfigResources v1 above.
    assert probed.admin["configure-group"] == "ok"
    assert probed.admin["configure-client-metrics"] == "ok"
    broker_id = probed.broker_id
    topics = [f"TOPIC:{name}" for name in bracketed_names(probed.context["topics"])]
    four = [f"BROKER:{broker_id}", f"CLIENT_METRICS:{probed.client_metrics}", f"GROUP:{probed.configured_group}"] + topics
    assert probed.admin["list-config-resources.topic-group-client_metrics-broker"] == listed(sorted(four))
    assert probed.admin["list-config-resources.all"] == listed(sorted(four + [f"BROKER_LOGGER:{broker_id}"]))
    # The consumer group with committed offsets and no config is no config resource.
    assert f"GROUP:{probed.group}" not in bracketed_names(probed.admin["list-config-resources.all"])


def test_admin_delegation_tokens(probed):
    # DELEGATION_TOKEN_REQUEST_NOT_ALLOWED surfaces as UnsupportedByAuthenticationException.
    expected = f"error:UnsupportedByAuthenticationException: {DELEGATION_TOKEN_NOT_ALLOWED_MESSAGE}"
    assert probed.admin["create-delegation-token"] == expected
    assert probed.admin["describe-delegation-token"] == expected
