"""ACL authorization (Kafka's StandardAuthorizer semantics) with stock clients, against Apache Kafka (the
reference) and Skein configured alike: authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer,
super.users=User:ANONYMOUS;User:admin, allow.everyone.if.no.acl.found=false.

Each broker has a PLAINTEXT listener (principal User:ANONYMOUS, a super user: the test's own administration and
Kafka's controller traffic go through it) and a SASL_PLAINTEXT listener where users alice and bob (SCRAM
credentials created over PLAINTEXT) are ordinary principals and admin is a super user. ACLs are managed with
confluent-kafka's AdminClient over PLAINTEXT; every test starts and ends with no ACLs. Kafka applies an ACL
change asynchronously (controller commit, then the broker's metadata cache), so a test waits until DescribeAcls
shows it and retries the effect for up to ACL_EFFECT_SECONDS.

Shown for both brokers:
- CreateAcls / DescribeAcls / DeleteAcls: literal, prefixed, wildcard, DENY, host-specific bindings on topics,
  groups, transactional ids and the cluster; describe filters (ANY, MATCH, LITERAL, PREFIXED, by principal,
  operation, permission, host) return exactly the matching set; a delete filter returns what it matched and
  only that goes. Invalid creations sent raw: CLUSTER not named kafka-cluster, an empty name, a principal
  without a colon get INVALID_REQUEST with Kafka's message, one creation at a time; a filter-only value (pattern
  type MATCH or ANY, resource type, operation or permission ANY) fails the whole request (UNKNOWN_SERVER_ERROR
  for every creation, nothing created), an UNKNOWN (0) value closes the connection. alice without cluster ACLs
  gets CLUSTER_AUTHORIZATION_FAILED from all three (DescribeAcls seen with kafka-python: librdkafka drops it);
  cluster DESCRIBE allows DescribeAcls, cluster ALTER all three.
- Produce: TOPIC_AUTHORIZATION_FAILED without WRITE (with or without DESCRIBE); a literal or prefixed WRITE lets
  records in; a DENY beats the ALLOWs; an idempotent producer needs only topic WRITE (KIP-679).
- Consume in a group: READ on the topic but not the group gets GROUP_AUTHORIZATION_FAILED; with both, records
  are consumed and the committed offset is there (and refused to bob).
- Metadata: a listing of all topics shows exactly those alice may DESCRIBE (READ, WRITE, ALTER imply it;
  prefixed, wildcard-principal and matching-host ACLs count, a DENY or another host's ACL does not); an explicit
  request for another topic, existing or not, gets TOPIC_AUTHORIZATION_FAILED; a missing topic she may describe
  is UNKNOWN_TOPIC_OR_PART to a consumer but TOPIC_AUTHORIZATION_FAILED when auto-creation (CREATE) is asked
  for; a wildcard `*` topic ACL shows everything.
- Admin APIs as alice: create topics (CREATE on the topic or the cluster), delete topics, describe configs
  (topic: DESCRIBE_CONFIGS, implied by ALTER_CONFIGS; broker: cluster DESCRIBE_CONFIGS), create partitions
  (ALTER), delete records (DELETE), list groups (filtered by DESCRIBE), describe and delete groups, SCRAM
  credentials: refused with Kafka's codes without the ACL, allowed with it.
- Transactions: init_transactions without WRITE on the transactional id fails fatally with
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED; with it, a topic she may not write fails the commit with
  TOPIC_AUTHORIZATION_FAILED (abortable); with topic WRITE a transaction commits.
- Super users need no ACL, and a DENY for User:* does not stop them. With allow.everyone.if.no.acl.found=true
  (a second broker) a topic without any ACL is open to everyone and one with any ACL is not.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ConfigResource, NewPartitions, NewTopic, ResourcePatternType, ResourceType,
                                   ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion)
from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient
from kafka.admin import ResourcePatternFilter
from kafka.admin import ResourceType as KpResourceType
from kafka.errors import ClusterAuthorizationFailedError, NoError
from kafka.errors import KafkaError as KafkaPythonError

from support.brokers import BROKER_KINDS, free_port, make_broker, skein_binary
from support.frames import frame, request_header
from support.kafka_clients import create_topic, eventually, expect, read_partitions, read_to_end, unique_topic_name
from support.kafka_tools import run_kafka_tool, tool_output

CLIENT_TIMEOUT_SECONDS = 30
# How long an ACL change may take to show in what a client is allowed to do.
ACL_EFFECT_SECONDS = 10
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
USERS = {"alice": "alice-secret", "bob": "bob-secret", "admin": "admin-secret"}
ALICE, BOB = "User:alice", "User:bob"
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# librdkafka calls Kafka's CLUSTER resource type BROKER (both are 4 on the wire).
CLUSTER = ResourceType.BROKER
CLUSTER_NAME = "kafka-cluster"

ALL_ACLS = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                            AclPermissionType.ANY)


class AclBroker:
    """A broker with the StandardAuthorizer, a PLAINTEXT listener (`plaintext`, User:ANONYMOUS, super user) and a
    SASL_PLAINTEXT one (`sasl`), and users alice, bob and admin (super user) with SCRAM-SHA-256 and SCRAM-SHA-512
    credentials (and, for Kafka's PLAIN, the same passwords in the listener's JAAS config)."""

    def __init__(self, kind: str, allow_everyone: bool = False):
        self.kind = kind
        self.broker = make_broker(kind)
        self.plaintext = self.broker.bootstrap
        self.sasl = f"127.0.0.1:{free_port()}"
        config = {
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": ",".join(MECHANISMS),
            "authorizer.class.name": STANDARD_AUTHORIZER,
            "super.users": "User:ANONYMOUS;User:admin",
            "allow.everyone.if.no.acl.found": allow_everyone,
        }
        listeners = f"PLAINTEXT://{self.plaintext},SASL_PLAINTEXT://{self.sasl}"
        if kind == "kafka":
            config["listeners"] = f"{listeners},CONTROLLER://127.0.0.1:{self.broker.controller_port}"
            config["advertised.listeners"] = listeners
            users = " ".join(f'user_{user}="{password}"' for user, password in USERS.items())
            config["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = \
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            for mechanism in ("scram-sha-256", "scram-sha-512"):
                config[f"listener.name.sasl_plaintext.{mechanism}.sasl.jaas.config"] = \
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        else:
            config["listeners"] = listeners
        self.broker.config.update(config)
        self.admin = None

    def __enter__(self) -> "AclBroker":
        self.broker.start()
        self.admin = AdminClient({"bootstrap.servers": self.plaintext})
        # A user's credential may be altered once per request: one request per mechanism.
        for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
            upsertions = [UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, 4096), password.encode())
                          for user, password in USERS.items()]
            futures = self.admin.alter_user_scram_credentials(upsertions, request_timeout=CLIENT_TIMEOUT_SECONDS)
            for future in futures.values():
                future.result(timeout=CLIENT_TIMEOUT_SECONDS)
        return self

    def __exit__(self, *exc_info) -> None:
        self.broker.close()

    def client(self, user: str, **extra) -> dict:
        """Client config for `user` over SASL_PLAINTEXT (SCRAM-SHA-256)."""
        return {"bootstrap.servers": self.sasl, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": user, "sasl.password": USERS[user], **extra}

    def admin_as(self, user: str) -> AdminClient:
        return AdminClient(self.client(user))

    def acls(self, acl_filter: AclBindingFilter = ALL_ACLS) -> set[tuple]:
        """The bindings DescribeAcls returns for `acl_filter` (over PLAINTEXT), as `binding_key` tuples."""
        bindings = self.admin.describe_acls(acl_filter, request_timeout=CLIENT_TIMEOUT_SECONDS)
        return {binding_key(b) for b in bindings.result(timeout=CLIENT_TIMEOUT_SECONDS)}

    def grant(self, *bindings: AclBinding) -> None:
        """Creates the bindings and waits until DescribeAcls shows them."""
        futures = self.admin.create_acls(list(bindings), request_timeout=CLIENT_TIMEOUT_SECONDS)
        assert {binding_key(b): f.result(timeout=CLIENT_TIMEOUT_SECONDS) for b, f in futures.items()} == \
            {binding_key(b): None for b in bindings}
        wanted = {binding_key(b) for b in bindings}
        eventually(lambda: _assert_subset(wanted, self.acls()), ACL_EFFECT_SECONDS)

    def revoke(self, *filters: AclBindingFilter) -> set[tuple]:
        """Deletes what the filters match, waits until DescribeAcls no longer shows it; returns what was deleted."""
        futures = self.admin.delete_acls(list(filters), request_timeout=CLIENT_TIMEOUT_SECONDS)
        deleted = {binding_key(b) for f in futures.values() for b in f.result(timeout=CLIENT_TIMEOUT_SECONDS)}
        eventually(lambda: _assert_disjoint(deleted, self.acls()), ACL_EFFECT_SECONDS)
        return deleted



def _assert_subset(wanted: set, seen: set) -> None:
    assert wanted <= seen, f"missing {wanted - seen}"


def _assert_disjoint(gone: set, seen: set) -> None:
    assert not gone & seen, f"still there: {gone & seen}"


def binding_key(binding: AclBinding) -> tuple:
    return (binding.restype.name, binding.name, binding.resource_pattern_type.name, binding.principal,
            binding.host, binding.operation.name, binding.permission_type.name)


def acl(restype: ResourceType, name: str, principal: str, operation: AclOperation, permission: str = "ALLOW",
        pattern: str = "LITERAL", host: str = "*") -> AclBinding:
    return AclBinding(restype, name, ResourcePatternType[pattern], principal, host, operation,
                      AclPermissionType[permission])


def acl_filter(restype: ResourceType = ResourceType.ANY, name: str | None = None, pattern: str = "ANY",
               principal: str | None = None, host: str | None = None, operation: AclOperation = AclOperation.ANY,
               permission: str = "ANY") -> AclBindingFilter:
    return AclBindingFilter(restype, name, ResourcePatternType[pattern], principal, host, operation,
                            AclPermissionType[permission])



def outcome(future) -> str | None:
    """None when the future succeeded, else the name of its Kafka error."""
    try:
        future.result(timeout=CLIENT_TIMEOUT_SECONDS)
    except KafkaException as raised:
        return raised.args[0].name()
    return None


def outcomes(futures: dict) -> dict:
    return {key: outcome(future) for key, future in futures.items()}


@pytest.fixture(scope="module", params=BROKER_KINDS)
def acl_broker(request):
    if request.param == "skein" and not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
    with AclBroker(request.param) as started:
        yield started


@pytest.fixture
def broker(acl_broker):
    """The module's broker, with no ACLs before and after the test."""
    assert acl_broker.acls() == set()
    yield acl_broker
    acl_broker.revoke(ALL_ACLS)
    assert acl_broker.acls() == set()


# ------------------------------------------------------------------------------------------ the ACL admin APIs


def test_create_describe_and_delete_acls(broker):
    p = unique_topic_name("acl")
    orders, group = f"{p}-orders", f"{p}-group"
    literal_read = acl(ResourceType.TOPIC, orders, ALICE, AclOperation.READ)
    prefixed_write = acl(ResourceType.TOPIC, f"{p}-", BOB, AclOperation.WRITE, pattern="PREFIXED")
    wildcard_describe = acl(ResourceType.TOPIC, "*", ALICE, AclOperation.DESCRIBE)
    deny_read = acl(ResourceType.TOPIC, orders, BOB, AclOperation.READ, permission="DENY")
    host_group = acl(ResourceType.GROUP, group, ALICE, AclOperation.READ, host="127.0.0.1")
    cluster_create = acl(CLUSTER, CLUSTER_NAME, BOB, AclOperation.CREATE)
    txn_write = acl(ResourceType.TRANSACTIONAL_ID, f"{p}-tx", ALICE, AclOperation.WRITE)
    bindings = [literal_read, prefixed_write, wildcard_describe, deny_read, host_group, cluster_create, txn_write]
    broker.grant(*bindings)
    k = binding_key

    assert broker.acls() == {k(b) for b in bindings}
    # MATCH: the literal, prefixed and wildcard bindings that apply to the named topic.
    assert broker.acls(acl_filter(ResourceType.TOPIC, orders, "MATCH")) == \
        {k(literal_read), k(prefixed_write), k(wildcard_describe), k(deny_read)}
    assert broker.acls(acl_filter(ResourceType.TOPIC, f"{p}-other", "MATCH")) == \
        {k(prefixed_write), k(wildcard_describe)}
    assert broker.acls(acl_filter(ResourceType.TOPIC, orders, "LITERAL")) == {k(literal_read), k(deny_read)}
    assert broker.acls(acl_filter(ResourceType.TOPIC, "*", "LITERAL")) == {k(wildcard_describe)}
    assert broker.acls(acl_filter(ResourceType.TOPIC, pattern="PREFIXED")) == {k(prefixed_write)}
    assert broker.acls(acl_filter(ResourceType.TOPIC, orders, "PREFIXED")) == set()
    assert broker.acls(acl_filter(ResourceType.TOPIC)) == \
        {k(literal_read), k(prefixed_write), k(wildcard_describe), k(deny_read)}
    assert broker.acls(acl_filter(principal=BOB)) == {k(prefixed_write), k(deny_read), k(cluster_create)}
    assert broker.acls(acl_filter(operation=AclOperation.READ)) == {k(literal_read), k(deny_read), k(host_group)}
    assert broker.acls(acl_filter(permission="DENY")) == {k(deny_read)}
    assert broker.acls(acl_filter(host="127.0.0.1")) == {k(host_group)}
    assert broker.acls(acl_filter(CLUSTER)) == {k(cluster_create)}
    assert broker.acls(acl_filter(ResourceType.TRANSACTIONAL_ID, principal=ALICE)) == {k(txn_write)}
    assert broker.acls(acl_filter(ResourceType.GROUP, principal=BOB)) == set()

    # A delete filter returns the bindings it matched, and only those go.
    deleted = broker.revoke(acl_filter(principal=BOB))
    assert deleted == {k(prefixed_write), k(deny_read), k(cluster_create)}
    assert broker.acls() == {k(literal_read), k(wildcard_describe), k(host_group), k(txn_write)}
    # Two filters in one request, one matching nothing.
    futures = broker.admin.delete_acls(
        [acl_filter(ResourceType.TOPIC, orders, "MATCH", operation=AclOperation.READ),
         acl_filter(ResourceType.GROUP, f"{p}-none")], request_timeout=CLIENT_TIMEOUT_SECONDS)
    results = [{k(b) for b in f.result(timeout=CLIENT_TIMEOUT_SECONDS)} for f in futures.values()]
    assert sorted(results, key=len) == [set(), {k(literal_read)}]
    eventually(lambda: expect(broker.acls(), {k(wildcard_describe), k(host_group), k(txn_write)}), ACL_EFFECT_SECONDS)
    # Creating a binding that exists already is accepted and leaves one copy.
    broker.grant(host_group)
    assert broker.acls() == {k(wildcard_describe), k(host_group), k(txn_write)}


CREATE_ACLS = 30
INVALID_REQUEST, UNKNOWN_SERVER_ERROR = 42, -1
# Wire values (CreateAcls v1) of the enums below.
RESOURCE = {"ANY": 1, "TOPIC": 2, "GROUP": 3, "CLUSTER": 4, "UNKNOWN": 0}
PATTERN = {"ANY": 1, "MATCH": 2, "LITERAL": 3, "PREFIXED": 4, "UNKNOWN": 0}
OPERATION = {"ANY": 1, "ALL": 2, "READ": 3, "WRITE": 4, "UNKNOWN": 0}
PERMISSION = {"ANY": 1, "DENY": 2, "ALLOW": 3, "UNKNOWN": 0}


ACL_COMMAND = "org.apache.kafka.tools.AclCommand"


def acl_tool(broker: AclBroker, *arguments: str) -> list[str]:
    """Runs kafka-acls against the broker's PLAINTEXT listener (a super user); the lines naming resource
    patterns and ACLs, in order (what differs between runs, such as timing, is left out)."""
    result = run_kafka_tool(ACL_COMMAND, "--bootstrap-server", broker.plaintext, *arguments)
    assert result.returncode == 0, tool_output(result)
    return [line.strip() for line in result.stdout.splitlines() if "ResourcePattern(" in line or "principal=" in line]


def test_the_kafka_acls_tool(broker):
    """kafka-acls adds, lists and removes ACLs with the same output from both brokers."""
    topic, group = unique_topic_name("acl-tool"), unique_topic_name("acl-tool-group")
    pattern = f"ResourcePattern(resourceType=TOPIC, name={topic}, patternType=LITERAL)"
    read = "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)"
    write = "(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)"
    added = acl_tool(broker, "--add", "--allow-principal", ALICE, "--operation", "Read", "--operation", "Write",
                     "--topic", topic)
    assert added[0] == f"Adding ACLs for resource `{pattern}`:" and sorted(added[1:3]) == [read, write], added
    prefixed = f"ResourcePattern(resourceType=GROUP, name={group}, patternType=PREFIXED)"
    deny = "(principal=User:bob, host=*, operation=READ, permissionType=DENY)"
    added = acl_tool(broker, "--add", "--deny-principal", BOB, "--operation", "Read", "--group", group,
                     "--resource-pattern-type", "prefixed")
    assert added[:2] == [f"Adding ACLs for resource `{prefixed}`:", deny], added

    def listed(*arguments: str) -> list[str]:
        return acl_tool(broker, "--list", *arguments)

    eventually(lambda: expect(sorted(listed("--topic", topic)), sorted([f"Current ACLs for resource `{pattern}`:",
                                                                         read, write])), ACL_EFFECT_SECONDS)
    assert listed("--group", group, "--resource-pattern-type", "prefixed") == \
        [f"Current ACLs for resource `{prefixed}`:", deny]
    assert listed("--principal", BOB) == [f"Current ACLs for resource `{prefixed}`:", deny]
    acl_tool(broker, "--remove", "--force", "--allow-principal", ALICE, "--operation", "Write", "--topic", topic)
    eventually(lambda: expect(sorted(listed("--topic", topic)), sorted([f"Current ACLs for resource `{pattern}`:",
                                                                         read])), ACL_EFFECT_SECONDS)


def create_acls_raw(address: str, creations: list[tuple]) -> list[tuple[int, str | None]]:
    """CreateAcls v1 with the given creations (resource type, name, pattern type, principal, host, operation,
    permission type; enum names as in the tables above), sent unvalidated; (error code, message) per creation."""
    body = struct.pack(">i", len(creations))
    for restype, name, pattern, principal, host, operation, permission in creations:
        body += struct.pack(">b", RESOURCE[restype]) + _string(name) + struct.pack(">b", PATTERN[pattern])
        body += _string(principal) + _string(host)
        body += struct.pack(">bb", OPERATION[operation], PERMISSION[permission])
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_SECONDS) as sock:
        sock.sendall(frame(request_header(CREATE_ACLS, 1, 1, "acl-test", flexible=False) + body))
        response = _read(sock, struct.unpack(">i", _read(sock, 4))[0])
    assert struct.unpack(">i", response[:4])[0] == 1
    offset = 8  # correlation id, throttle time
    (count,) = struct.unpack(">i", response[offset:offset + 4])
    offset += 4
    results = []
    for _ in range(count):
        code, length = struct.unpack(">hh", response[offset:offset + 4])
        offset += 4
        message = None
        if length >= 0:
            message = response[offset:offset + length].decode()
            offset += length
        results.append((code, message))
    return results


def _string(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">h", len(data)) + data


class ConnectionClosed(Exception):
    pass


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionClosed(f"the broker closed the connection after {len(data)} of {count} bytes")
        data += chunk
    return data


def test_invalid_acl_creations(broker):
    """Creations a client library would refuse to send, sent raw over PLAINTEXT (a super user)."""
    topic = unique_topic_name("acl-invalid")
    valid = ("TOPIC", topic, "LITERAL", ALICE, "*", "READ", "ALLOW")
    # Checked one creation at a time: INVALID_REQUEST with Kafka's message; the rest of the request is served.
    results = create_acls_raw(broker.plaintext, [
        ("CLUSTER", "my-cluster", "LITERAL", ALICE, "*", "ALL", "ALLOW"),
        ("TOPIC", "", "LITERAL", ALICE, "*", "READ", "ALLOW"),
        ("TOPIC", topic, "LITERAL", "alice", "*", "READ", "ALLOW"),
        valid,
    ])
    assert results[:3] == [
        (INVALID_REQUEST, "The only valid name for the CLUSTER resource is kafka-cluster"),
        (INVALID_REQUEST, "Invalid empty resource name"),
        (INVALID_REQUEST, "Could not parse principal from `alice` (no colon is present separating the principal "
                          "type from the principal name)"),
    ]
    assert results[3][0] == 0 and results[3][1] in (None, ""), results[3]
    eventually(lambda: expect(broker.acls(), {valid}), ACL_EFFECT_SECONDS)

    # A filter-only value (pattern type MATCH or ANY, resource type, operation or permission type ANY) fails
    # the whole request in Kafka: UNKNOWN_SERVER_ERROR without a message for every creation, valid ones
    # included, and nothing is created.
    other = ("TOPIC", f"{topic}-other", "LITERAL", BOB, "*", "WRITE", "ALLOW")
    for bad in [("TOPIC", topic, "MATCH", ALICE, "*", "READ", "ALLOW"),
                ("TOPIC", topic, "ANY", ALICE, "*", "READ", "ALLOW"),
                ("TOPIC", topic, "LITERAL", ALICE, "*", "ANY", "ALLOW"),
                ("TOPIC", topic, "LITERAL", ALICE, "*", "READ", "ANY"),
                ("ANY", topic, "LITERAL", ALICE, "*", "READ", "ALLOW")]:
        assert (bad, create_acls_raw(broker.plaintext, [other, bad])) == \
            (bad, [(UNKNOWN_SERVER_ERROR, None), (UNKNOWN_SERVER_ERROR, None)])
    # An UNKNOWN (0) enum value does not even parse: the broker closes the connection.
    with pytest.raises(ConnectionClosed):
        create_acls_raw(broker.plaintext, [("UNKNOWN", topic, "LITERAL", ALICE, "*", "READ", "ALLOW")])
    assert broker.acls() == {valid}


def kafka_python_admin(broker: AclBroker, user: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.sasl, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="SCRAM-SHA-256", sasl_plain_username=user,
                            sasl_plain_password=USERS[user], request_timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000)


def kafka_python_call(call, *args):
    """call(*args), with a Kafka error turned into an AssertionError (for `eventually`)."""
    try:
        return call(*args)
    except KafkaPythonError as raised:
        raise AssertionError(repr(raised)) from raised


KP_ALL_ACLS = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY))


def test_acl_apis_need_cluster_rights(broker):
    alice = broker.admin_as("alice")
    binding = acl(ResourceType.TOPIC, unique_topic_name("acl-self"), ALICE, AclOperation.ALL)
    assert outcomes(alice.create_acls([binding], request_timeout=CLIENT_TIMEOUT_SECONDS)) == \
        {binding: "CLUSTER_AUTHORIZATION_FAILED"}
    assert outcomes(alice.delete_acls([ALL_ACLS], request_timeout=CLIENT_TIMEOUT_SECONDS)) == \
        {ALL_ACLS: "CLUSTER_AUTHORIZATION_FAILED"}
    # librdkafka (2.16) drops DescribeAcls' error code (an empty list); kafka-python reports it.
    kp_alice = kafka_python_admin(broker, "alice")
    try:
        with pytest.raises(ClusterAuthorizationFailedError):
            kp_alice.describe_acls(KP_ALL_ACLS)
        assert broker.acls() == set()
        # DESCRIBE on the cluster allows DescribeAcls; ALTER (which implies DESCRIBE) Create/DeleteAcls.
        describe = acl(CLUSTER, CLUSTER_NAME, ALICE, AclOperation.DESCRIBE)
        broker.grant(describe)
        acls, error = eventually(lambda: kafka_python_call(kp_alice.describe_acls, KP_ALL_ACLS), ACL_EFFECT_SECONDS)
        assert error is NoError and [(a.operation, a.resource_pattern.resource_name) for a in acls] == \
            [(ACLOperation.DESCRIBE, CLUSTER_NAME)]
        assert outcomes(alice.create_acls([binding], request_timeout=CLIENT_TIMEOUT_SECONDS)) == \
            {binding: "CLUSTER_AUTHORIZATION_FAILED"}
        broker.revoke(acl_filter(CLUSTER))
        broker.grant(acl(CLUSTER, CLUSTER_NAME, ALICE, AclOperation.ALTER))
        eventually(lambda: expect(outcomes(alice.create_acls([binding], request_timeout=CLIENT_TIMEOUT_SECONDS)),
                                         {binding: None}), ACL_EFFECT_SECONDS)
        assert {binding_key(b) for b in alice.describe_acls(
            acl_filter(ResourceType.TOPIC), request_timeout=CLIENT_TIMEOUT_SECONDS).result(
            timeout=CLIENT_TIMEOUT_SECONDS)} == {binding_key(binding)}
        deleted = alice.delete_acls([acl_filter(ResourceType.TOPIC)], request_timeout=CLIENT_TIMEOUT_SECONDS)
        assert [{binding_key(b) for b in f.result(timeout=CLIENT_TIMEOUT_SECONDS)} for f in deleted.values()] == \
            [{binding_key(binding)}]
    finally:
        kp_alice.close()


# ------------------------------------------------------------------------------------------ produce


def produce_as(broker: AclBroker, user: str, topic: str, values: list[bytes], **extra) -> list[str | None]:
    """Produces `values` to partition 0 as `user` with a fresh producer; each delivery report's error name (None
    for delivered)."""
    producer = Producer(broker.client(user, **{"acks": "all", "message.timeout.ms": 15000, **extra}))
    reports: list[str | None] = []
    for value in values:
        producer.produce(topic, value=value, partition=0,
                         on_delivery=lambda err, msg: reports.append(err.name() if err else None))
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
    return reports


def topic_values(broker: AclBroker, topic: str, partitions: int = 1) -> list[bytes]:
    """Every record value of the topic, read as the super user over PLAINTEXT."""
    messages = read_partitions(broker.plaintext, topic, partitions)
    return [m.value() for p in range(partitions) for m in messages[p]]


def refused(broker: AclBroker, user: str, topic: str, error: str = "TOPIC_AUTHORIZATION_FAILED", **extra) -> None:
    assert produce_as(broker, user, topic, [b"refused"], **extra) == [error]


def test_produce_needs_write(broker):
    p = unique_topic_name("acl-produce")
    topic, prefixed = f"{p}-a", f"{p}-b"
    for name in (topic, prefixed):
        create_topic(broker.plaintext, name, partitions=1)
    batch = [f"v{i}".encode() for i in range(5)]

    refused(broker, "alice", topic)  # no ACL at all: the topic's metadata is refused
    broker.grant(acl(ResourceType.TOPIC, topic, ALICE, AclOperation.DESCRIBE))
    refused(broker, "alice", topic)  # the topic is visible, the Produce is refused
    broker.grant(acl(ResourceType.TOPIC, topic, ALICE, AclOperation.WRITE))
    eventually(lambda: expect(produce_as(broker, "alice", topic, batch), [None] * len(batch)), ACL_EFFECT_SECONDS)
    assert topic_values(broker, topic) == batch
    refused(broker, "bob", topic)

    broker.grant(acl(ResourceType.TOPIC, f"{p}-", ALICE, AclOperation.WRITE, pattern="PREFIXED"))
    eventually(lambda: expect(produce_as(broker, "alice", prefixed, batch), [None] * len(batch)), ACL_EFFECT_SECONDS)
    assert topic_values(broker, prefixed) == batch

    # DENY beats ALLOW (here both the literal and the prefixed allow).
    broker.grant(acl(ResourceType.TOPIC, topic, ALICE, AclOperation.WRITE, permission="DENY"))
    eventually(lambda: refused(broker, "alice", topic), ACL_EFFECT_SECONDS)
    assert topic_values(broker, topic) == batch
    assert produce_as(broker, "alice", prefixed, [b"still"]) == [None]

    # An idempotent producer needs no IDEMPOTENT_WRITE on the cluster when it may write a topic (KIP-679).
    more = [f"idempotent-{i}".encode() for i in range(3)]
    assert produce_as(broker, "alice", prefixed, more, **{"enable.idempotence": True}) == [None] * len(more)
    assert topic_values(broker, prefixed) == batch + [b"still"] + more


# ------------------------------------------------------------------------------------------ consume in a group


def consume_as(broker: AclBroker, user: str, topic: str, group: str, count: int) -> tuple[list[bytes], str | None]:
    """Subscribes as `user` in `group` and reads `count` records, then commits synchronously; returns the values
    and the name of the first error the consumer reported (None if none)."""
    consumer = Consumer(broker.client(user, **{"group.id": group, "auto.offset.reset": "earliest",
                                               "enable.auto.commit": False}))
    values: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                return values, message.error().name()
            values.append(message.value())
        assert len(values) == count, values
        committed = consumer.commit(asynchronous=False)
        assert [(tp.topic, tp.partition, tp.offset, tp.error) for tp in committed] == [(topic, 0, count, None)]
        return values, None
    finally:
        consumer.close()


def test_consuming_in_a_group_needs_read_on_topic_and_group(broker):
    topic = create_topic(broker.plaintext, unique_topic_name("acl-consume"), partitions=1)
    group = unique_topic_name("acl-group")
    values = [f"c{i}".encode() for i in range(3)]
    producer = Producer({"bootstrap.servers": broker.plaintext, "acks": "all"})
    for value in values:
        producer.produce(topic, value=value, partition=0)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0

    broker.grant(acl(ResourceType.TOPIC, topic, ALICE, AclOperation.READ))
    assert consume_as(broker, "alice", topic, group, len(values)) == ([], "GROUP_AUTHORIZATION_FAILED")
    broker.grant(acl(ResourceType.GROUP, group, ALICE, AclOperation.READ))
    consumed = eventually(lambda: consume_as(broker, "alice", topic, group, len(values)), ACL_EFFECT_SECONDS)
    assert consumed == (values, None)

    offsets = broker.admin.list_consumer_group_offsets(
        [_group_request(group, topic)], request_timeout=CLIENT_TIMEOUT_SECONDS)[group].result(
        timeout=CLIENT_TIMEOUT_SECONDS)
    assert [(tp.topic, tp.partition, tp.offset) for tp in offsets.topic_partitions] == [(topic, 0, len(values))]
    # alice sees the group's committed offset too; bob, without the group, does not.
    consumer = Consumer(broker.client("alice", **{"group.id": group}))
    try:
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=CLIENT_TIMEOUT_SECONDS)
        assert [(tp.offset, tp.error) for tp in committed] == [(len(values), None)]
    finally:
        consumer.close()
    bob = broker.admin_as("bob")
    fetched = bob.list_consumer_group_offsets([_group_request(group, topic)], request_timeout=CLIENT_TIMEOUT_SECONDS)
    assert outcome(fetched[group]) == "GROUP_AUTHORIZATION_FAILED"


def _group_request(group: str, topic: str) -> ConsumerGroupTopicPartitions:
    return ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])


# ------------------------------------------------------------------------------------------ metadata


def test_metadata_shows_only_described_topics(broker):
    p = unique_topic_name("acl-meta")
    names = {case: create_topic(broker.plaintext, f"{p}-{case}", partitions=1)
             for case in ("describe", "read", "write", "alter", "prefixed", "local", "elsewhere", "denied", "none",
                          "bobs", "everyone")}
    broker.grant(
        acl(ResourceType.TOPIC, names["describe"], ALICE, AclOperation.DESCRIBE),
        acl(ResourceType.TOPIC, names["read"], ALICE, AclOperation.READ),
        acl(ResourceType.TOPIC, names["write"], ALICE, AclOperation.WRITE),
        acl(ResourceType.TOPIC, names["alter"], ALICE, AclOperation.ALTER),
        acl(ResourceType.TOPIC, f"{p}-pref", ALICE, AclOperation.DESCRIBE, pattern="PREFIXED"),
        acl(ResourceType.TOPIC, names["local"], ALICE, AclOperation.DESCRIBE, host="127.0.0.1"),
        acl(ResourceType.TOPIC, names["elsewhere"], ALICE, AclOperation.DESCRIBE, host="10.9.9.9"),
        acl(ResourceType.TOPIC, names["denied"], ALICE, AclOperation.READ),
        acl(ResourceType.TOPIC, names["denied"], ALICE, AclOperation.DESCRIBE, permission="DENY"),
        acl(ResourceType.TOPIC, names["bobs"], BOB, AclOperation.ALL),
        acl(ResourceType.TOPIC, names["everyone"], "User:*", AclOperation.DESCRIBE),
    )
    visible = {names[case] for case in ("describe", "read", "write", "alter", "prefixed", "local", "everyone")}

    def alice_lists() -> None:
        admin = broker.admin_as("alice")
        metadata = admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS)
        assert set(metadata.topics) == visible
        assert all(t.error is None and len(t.partitions) == 1 for t in metadata.topics.values())

    eventually(alice_lists, ACL_EFFECT_SECONDS)
    bob = broker.admin_as("bob")
    assert set(bob.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics) == {names["bobs"], names["everyone"]}

    alice = broker.admin_as("alice")
    for case in ("none", "elsewhere", "denied", "bobs"):
        topic = alice.list_topics(topic=names[case], timeout=CLIENT_TIMEOUT_SECONDS).topics[names[case]]
        assert (case, topic.error.name() if topic.error else None) == (case, "TOPIC_AUTHORIZATION_FAILED")
    # A topic that does not exist looks the same without DESCRIBE; with DESCRIBE (no CREATE) it is unknown.
    missing = unique_topic_name("acl-missing")
    assert alice.list_topics(topic=missing, timeout=CLIENT_TIMEOUT_SECONDS).topics[missing].error.name() == \
        "TOPIC_AUTHORIZATION_FAILED"
    # With DESCRIBE but not CREATE: a consumer's request (no auto-creation) gets UNKNOWN_TOPIC_OR_PART; one that
    # allows auto-creation (librdkafka's admin client and producer) gets TOPIC_AUTHORIZATION_FAILED.
    prefixed_missing = f"{p}-pref-missing"
    consumer = Consumer(broker.client("alice", **{"group.id": unique_topic_name("acl-meta-group")}))
    try:
        assert consumer.list_topics(topic=prefixed_missing, timeout=CLIENT_TIMEOUT_SECONDS).topics[
            prefixed_missing].error.name() == "UNKNOWN_TOPIC_OR_PART"
    finally:
        consumer.close()
    assert alice.list_topics(topic=prefixed_missing, timeout=CLIENT_TIMEOUT_SECONDS).topics[
        prefixed_missing].error.name() == "TOPIC_AUTHORIZATION_FAILED"
    assert prefixed_missing not in broker.admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics
    allowed = alice.list_topics(topic=names["read"], timeout=CLIENT_TIMEOUT_SECONDS).topics[names["read"]]
    assert allowed.error is None and list(allowed.partitions) == [0]

    # The authorized operations Metadata reports when asked (librdkafka's describe_topics, describe_cluster):
    # READ implies DESCRIBE; ALTER too; the cluster allows alice nothing, a super user everything.
    described = alice.describe_topics(TopicCollection([names["read"], names["alter"]]), request_timeout=10,
                                      include_authorized_operations=True)
    assert {name: sorted(op.name for op in future.result(timeout=CLIENT_TIMEOUT_SECONDS).authorized_operations)
            for name, future in described.items()} == \
        {names["read"]: ["DESCRIBE", "READ"], names["alter"]: ["ALTER", "DESCRIBE"]}
    cluster = alice.describe_cluster(include_authorized_operations=True, request_timeout=10).result(
        timeout=CLIENT_TIMEOUT_SECONDS)
    assert not cluster.authorized_operations, cluster.authorized_operations
    admin = broker.admin_as("admin")  # kept referenced until its future resolves
    cluster = admin.describe_cluster(include_authorized_operations=True, request_timeout=10).result(
        timeout=CLIENT_TIMEOUT_SECONDS)
    assert sorted(op.name for op in cluster.authorized_operations) == \
        ["ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "IDEMPOTENT_WRITE"]

    # DESCRIBE on the wildcard topic `*`: bob sees every topic (the internal ones included), except where a DENY
    # says otherwise.
    broker.grant(acl(ResourceType.TOPIC, "*", BOB, AclOperation.DESCRIBE),
                 acl(ResourceType.TOPIC, names["none"], BOB, AclOperation.DESCRIBE, permission="DENY"))
    everything = topic_names(broker)

    def bob_lists() -> None:
        admin = broker.admin_as("bob")
        assert set(admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics) == everything - {names["none"]}

    eventually(bob_lists, ACL_EFFECT_SECONDS)


# ------------------------------------------------------------------------------------------ admin APIs as alice


def test_create_and_delete_topics_need_create_and_delete(broker):
    p = unique_topic_name("acl-admin")

    def create(name: str) -> str | None:
        admin = broker.admin_as("alice")
        futures = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)],
                                      request_timeout=CLIENT_TIMEOUT_SECONDS)
        return outcome(futures[name])

    def delete(name: str) -> str | None:
        admin = broker.admin_as("alice")
        return outcome(admin.delete_topics([name], request_timeout=CLIENT_TIMEOUT_SECONDS)[name])

    assert create(f"{p}-a") == "TOPIC_AUTHORIZATION_FAILED"
    broker.grant(acl(ResourceType.TOPIC, f"{p}-a", ALICE, AclOperation.CREATE))
    eventually(lambda: expect(create(f"{p}-a"), None), ACL_EFFECT_SECONDS)
    assert create(f"{p}-b") == "TOPIC_AUTHORIZATION_FAILED"
    broker.grant(acl(CLUSTER, CLUSTER_NAME, ALICE, AclOperation.CREATE))
    eventually(lambda: expect(create(f"{p}-b"), None), ACL_EFFECT_SECONDS)
    eventually(lambda: _assert_subset({f"{p}-a", f"{p}-b"}, topic_names(broker)), ACL_EFFECT_SECONDS)

    assert delete(f"{p}-a") == "TOPIC_AUTHORIZATION_FAILED"
    assert delete(unique_topic_name("acl-missing")) == "TOPIC_AUTHORIZATION_FAILED"
    broker.grant(acl(ResourceType.TOPIC, f"{p}-a", ALICE, AclOperation.DELETE))
    eventually(lambda: expect(delete(f"{p}-a"), None), ACL_EFFECT_SECONDS)
    # CREATE on the cluster does not let her delete what she created.
    assert delete(f"{p}-b") == "TOPIC_AUTHORIZATION_FAILED"
    eventually(lambda: expect({f"{p}-a", f"{p}-b"} & topic_names(broker), {f"{p}-b"}), ACL_EFFECT_SECONDS)


def topic_names(broker: AclBroker) -> set[str]:
    """Every topic, as the super user sees them over PLAINTEXT."""
    return set(broker.admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics)


def test_configs_need_describe_configs(broker):
    topic = create_topic(broker.plaintext, unique_topic_name("acl-configs"), partitions=1)

    def describe(resource: ConfigResource):
        admin = broker.admin_as("alice")
        future = admin.describe_configs([resource], request_timeout=CLIENT_TIMEOUT_SECONDS)[resource]
        return outcome(future), future

    topic_resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    broker_resource = ConfigResource(ConfigResource.Type.BROKER, "1")
    assert describe(topic_resource)[0] == "TOPIC_AUTHORIZATION_FAILED"
    assert describe(broker_resource)[0] == "CLUSTER_AUTHORIZATION_FAILED"
    broker.grant(acl(ResourceType.TOPIC, topic, ALICE, AclOperation.ALTER_CONFIGS))  # implies DESCRIBE_CONFIGS
    _, future = eventually(lambda: _first_ok(describe(topic_resource)), ACL_EFFECT_SECONDS)
    assert future.result(timeout=CLIENT_TIMEOUT_SECONDS)["cleanup.policy"].value == "delete"
    assert describe(broker_resource)[0] == "CLUSTER_AUTHORIZATION_FAILED"
    broker.grant(acl(CLUSTER, CLUSTER_NAME, ALICE, AclOperation.DESCRIBE_CONFIGS))
    _, future = eventually(lambda: _first_ok(describe(broker_resource)), ACL_EFFECT_SECONDS)
    assert "num.partitions" in future.result(timeout=CLIENT_TIMEOUT_SECONDS)


def _first_ok(result):
    assert result[0] is None, result[0]
    return result


def test_partitions_and_records_need_alter_and_delete(broker):
    topic = create_topic(broker.plaintext, unique_topic_name("acl-parts"), partitions=1)
    producer = Producer({"bootstrap.servers": broker.plaintext, "acks": "all"})
    for i in range(3):
        producer.produce(topic, value=b"%d" % i, partition=0)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
    broker.grant(acl(ResourceType.TOPIC, topic, ALICE, AclOperation.DESCRIBE))

    def add_partition() -> str | None:
        admin = broker.admin_as("alice")
        futures = admin.create_partitions([NewPartitions(topic, 2)], request_timeout=CLIENT_TIMEOUT_SECONDS)
        return outcome(futures[topic])

    def delete_records() -> str | None:
        admin = broker.admin_as("alice")
        futures = admin.delete_records([TopicPartition(topic, 0, 1)], request_timeout=CLIENT_TIMEOUT_SECONDS)
        (future,) = futures.values()
        return outcome(future)

    assert add_partition() == "TOPIC_AUTHORIZATION_FAILED"
    assert delete_records() == "TOPIC_AUTHORIZATION_FAILED"
    broker.grant(acl(ResourceType.TOPIC, topic, ALICE, AclOperation.ALTER),
                 acl(ResourceType.TOPIC, topic, ALICE, AclOperation.DELETE))
    eventually(lambda: expect(add_partition(), None), ACL_EFFECT_SECONDS)
    eventually(lambda: expect(delete_records(), None), ACL_EFFECT_SECONDS)
    assert len(broker.admin.list_topics(topic, timeout=CLIENT_TIMEOUT_SECONDS).topics[topic].partitions) == 2
    consumer = Consumer({"bootstrap.servers": broker.plaintext, "group.id": unique_topic_name("acl-wm")})
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=CLIENT_TIMEOUT_SECONDS) == (1, 3)
    finally:
        consumer.close()


def test_groups_need_group_acls(broker):
    topic = create_topic(broker.plaintext, unique_topic_name("acl-groups"), partitions=1)
    p = unique_topic_name("acl-g")
    groups = [f"{p}-1", f"{p}-2"]
    for group in groups:  # an empty classic group with a committed offset
        consumer = Consumer({"bootstrap.servers": broker.plaintext, "group.id": group})
        try:
            consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
        finally:
            consumer.close()
    broker.grant(acl(ResourceType.GROUP, groups[0], ALICE, AclOperation.READ))  # implies DESCRIBE

    def listed() -> set[str]:
        admin = broker.admin_as("alice")
        result = admin.list_consumer_groups(request_timeout=CLIENT_TIMEOUT_SECONDS).result(
            timeout=CLIENT_TIMEOUT_SECONDS)
        assert not result.errors, result.errors
        return {g.group_id for g in result.valid}

    eventually(lambda: expect(listed(), {groups[0]}), ACL_EFFECT_SECONDS)
    alice = broker.admin_as("alice")
    described = alice.describe_consumer_groups(groups, request_timeout=CLIENT_TIMEOUT_SECONDS)
    assert outcome(described[groups[1]]) == "GROUP_AUTHORIZATION_FAILED"
    assert described[groups[0]].result(timeout=CLIENT_TIMEOUT_SECONDS).group_id == groups[0]
    deleted = alice.delete_consumer_groups([groups[1]], request_timeout=CLIENT_TIMEOUT_SECONDS)
    assert outcome(deleted[groups[1]]) == "GROUP_AUTHORIZATION_FAILED"
    broker.grant(acl(ResourceType.GROUP, groups[1], ALICE, AclOperation.DELETE))
    eventually(lambda: expect(outcome(alice.delete_consumer_groups(
        [groups[1]], request_timeout=CLIENT_TIMEOUT_SECONDS)[groups[1]]), None), ACL_EFFECT_SECONDS)
    everything = broker.admin.list_consumer_groups(request_timeout=CLIENT_TIMEOUT_SECONDS).result(
        timeout=CLIENT_TIMEOUT_SECONDS)
    names = {g.group_id for g in everything.valid}
    assert groups[0] in names and groups[1] not in names


def test_scram_credentials_need_cluster_rights(broker):
    upsertion = UserScramCredentialUpsertion("bob", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                             b"new-password")
    alice = broker.admin_as("alice")
    altered = alice.alter_user_scram_credentials([upsertion], request_timeout=CLIENT_TIMEOUT_SECONDS)
    assert outcomes(altered) == {"bob": "CLUSTER_AUTHORIZATION_FAILED"}
    # librdkafka (2.16) crashes on a DescribeUserScramCredentials error response; kafka-python reports it.
    kp_alice = kafka_python_admin(broker, "alice")
    try:
        with pytest.raises(ClusterAuthorizationFailedError):
            kp_alice.describe_user_scram_credentials(["alice"])
    finally:
        kp_alice.close()
    # bob's password is unchanged.
    assert Producer(broker.client("bob")).list_topics(timeout=CLIENT_TIMEOUT_SECONDS).brokers


# ------------------------------------------------------------------------------------------ transactions


def test_transactions_need_write_on_the_transactional_id(broker):
    topic = create_topic(broker.plaintext, unique_topic_name("acl-tx"), partitions=1)
    broker.grant(acl(ResourceType.TOPIC, topic, ALICE, AclOperation.DESCRIBE))
    settings = {"transactional.id": "tx-alice", "acks": "all"}
    producer = Producer(broker.client("alice", **settings))
    with pytest.raises(KafkaException) as raised:
        producer.init_transactions(CLIENT_TIMEOUT_SECONDS)
    assert (raised.value.args[0].name(), raised.value.args[0].fatal()) == \
        ("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", True)
    del producer

    broker.grant(acl(ResourceType.TRANSACTIONAL_ID, "tx-alice", ALICE, AclOperation.WRITE))
    producer = eventually(lambda: _initialized(Producer(broker.client("alice", **settings))), ACL_EFFECT_SECONDS)
    # The topic is visible but not writable: AddPartitionsToTxn refuses its partition, the record fails and the
    # commit with it (an abortable error). (Kafka then answers librdkafka's EndTxn(abort) INVALID_TXN_STATE, as
    # no partition joined the transaction, a fatal error: the producer is replaced instead.)
    reports: list[str | None] = []
    producer.begin_transaction()
    producer.produce(topic, value=b"refused", partition=0,
                     on_delivery=lambda err, msg: reports.append(err.name() if err else None))
    with pytest.raises(KafkaException) as raised:
        producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)
    error = raised.value.args[0]
    assert (error.name(), error.txn_requires_abort()) == ("TOPIC_AUTHORIZATION_FAILED", True), error
    assert reports == ["_PURGE_QUEUE"]  # librdkafka drops what the transaction still held
    del producer

    broker.grant(acl(ResourceType.TOPIC, topic, ALICE, AclOperation.WRITE))
    values = [f"tx-{i}".encode() for i in range(3)]
    producer = _initialized(Producer(broker.client("alice", **settings)))
    reports.clear()
    producer.begin_transaction()
    for value in values:
        producer.produce(topic, value=value, partition=0,
                         on_delivery=lambda err, msg: reports.append(err.name() if err else None))
    producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)
    assert reports == [None] * len(values)
    # The commit returns once the coordinator logged it; the markers that end the transaction follow.
    eventually(lambda: expect([m.value() for m in read_to_end(
        broker.plaintext, topic, partitions=1, isolation_level="read_committed")[0]], values), ACL_EFFECT_SECONDS)


def _initialized(producer: Producer) -> Producer:
    try:
        producer.init_transactions(CLIENT_TIMEOUT_SECONDS)
    except KafkaException as raised:
        raise AssertionError(raised.args[0].name()) from raised
    return producer


# ------------------------------------------------------------------------------------------ super users


def test_a_super_user_needs_no_acls(broker):
    topic = unique_topic_name("acl-super")
    group = unique_topic_name("acl-super-group")
    admin = broker.admin_as("admin")
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                                  request_timeout=CLIENT_TIMEOUT_SECONDS)
    assert outcome(futures[topic]) is None
    values = [b"s0", b"s1"]
    eventually(lambda: expect(produce_as(broker, "admin", topic, values), [None, None]), ACL_EFFECT_SECONDS)
    assert consume_as(broker, "admin", topic, group, len(values)) == (values, None)
    broker_resource = ConfigResource(ConfigResource.Type.BROKER, "1")
    assert outcome(admin.describe_configs([broker_resource], request_timeout=CLIENT_TIMEOUT_SECONDS)[
        broker_resource]) is None
    binding = acl(ResourceType.TOPIC, topic, BOB, AclOperation.READ)
    assert outcomes(admin.create_acls([binding], request_timeout=CLIENT_TIMEOUT_SECONDS)) == {binding: None}
    eventually(lambda: expect({binding_key(b) for b in admin.describe_acls(
        ALL_ACLS, request_timeout=CLIENT_TIMEOUT_SECONDS).result(timeout=CLIENT_TIMEOUT_SECONDS)},
        {binding_key(binding)}), ACL_EFFECT_SECONDS)
    # A DENY for everyone does not stop a super user.
    broker.grant(acl(ResourceType.TOPIC, topic, "User:*", AclOperation.ALL, permission="DENY"))
    assert produce_as(broker, "admin", topic, [b"s2"]) == [None]
    assert topic_values(broker, topic) == values + [b"s2"]


def test_allow_everyone_if_no_acl_found(acl_broker):
    """A second broker of the kind, with allow.everyone.if.no.acl.found=true."""
    with AclBroker(acl_broker.kind, allow_everyone=True) as broker:
        p = unique_topic_name("acl-open")
        open_topic, guarded = f"{p}-open", f"{p}-guarded"
        for name in (open_topic, guarded):
            create_topic(broker.plaintext, name, partitions=1)
        broker.grant(acl(ResourceType.TOPIC, guarded, BOB, AclOperation.WRITE))
        assert produce_as(broker, "alice", open_topic, [b"open"]) == [None]
        eventually(lambda: refused(broker, "alice", guarded), ACL_EFFECT_SECONDS)
        assert produce_as(broker, "bob", guarded, [b"bob"]) == [None]
        assert topic_values(broker, open_topic) == [b"open"]
        assert topic_values(broker, guarded) == [b"bob"]
        alice = broker.admin_as("alice")
        metadata = alice.list_topics(timeout=CLIENT_TIMEOUT_SECONDS)
        assert open_topic in metadata.topics and guarded not in metadata.topics
