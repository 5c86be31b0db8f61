"""Client quotas (KIP-13 byte rates by client id and user, KIP-546 AlterClientQuotas and DescribeClientQuotas,
KIP-612 IP connection rates) with kafka-configs and confluent-kafka, against Apache Kafka (the reference) and Skein
configured alike: one PLAINTEXT broker per kind with quota.window.num=2 and quota.window.size.seconds=1, so a rate
is measured over the last one to two seconds and the burst a new client gets is about one second of its quota
(with Kafka's 11 windows it is ten seconds, and a throttled producer then runs in 11-second bursts that an 8-second
measurement cannot average). Every test starts and ends with no quotas (DescribeClientQuotas with an empty filter
returns nothing). Kafka applies an alteration asynchronously (controller commit, then the broker's metadata cache),
so a test waits until DescribeClientQuotas shows it, for up to QUOTA_EFFECT_SECONDS.

Shown for both brokers:
- kafka-configs sets producer_byte_rate and consumer_byte_rate for a client id, a user, a (user, client id) pair
  and the default client id, and connection_creation_rate for an IP; --describe prints Kafka's lines for each
  entity and lists all entities of a type (strict filters: a user's listing leaves out (user, client id) pairs);
  --delete-config removes one key and an entity without keys is no longer listed; with no user quotas,
  --describe --entity-type users prints nothing.
- Refusals: an unknown key, connection_creation_rate on a client id or a byte rate on an IP are refused by the
  tool itself (nothing is sent); a negative or fractional byte rate is refused by the broker with Kafka's
  message; deleting a key the entity does not have fails on what the broker describes.
- On the wire (AlterClientQuotas v0, DescribeClientQuotas v0): Kafka's validation errors per entity
  (INVALID_REQUEST with its message), validate_only stores nothing; the describe filters (exact name, default,
  any; strict or not; an empty filter) match what Kafka matches, and a bad filter fails the request with Kafka's
  code and message.
- Throttling, by client id. A producer over its producer_byte_rate is throttled to the quota (steady-state
  delivered rate within 10 %; the client sees the throttle time), loses nothing, and runs unthrottled again once
  the quota is deleted.
- A consumer over its consumer_byte_rate is throttled to it. Kafka answers a fetch that would take the client
  over its quota with an empty response and the throttle time, and the records are fetched again after it, so a
  consumer settles a little below its quota (0.87 to 0.91 of it in values here, on a quiet machine; 0.78 in full
  runs beside the other tests, where the consumer's own fetch turnaround on 2 busy cores adds to every throttle):
  the bounds are 0.75 to 1.10. Unthrottled, it would read many times its quota.
- Connections from an IP over its connection_creation_rate (KIP-612) are accepted and closed unanswered; another IP
  is served.
- A client over its request_percentage (KIP-124) is answered with a throttle time and muted for that long; another
  client id is not throttled.
- The broker-wide max.connection.creation.rate (KIP-612, set per broker at run time): connections over it are not
  refused but wait, so six opened one after another are all answered over more than three seconds.
- Controller mutations (KIP-599), on the wire in exact versions: a client id's controller_mutation_rate is a token
  bucket of partitions created (CreateTopics, validate_only included; CreatePartitions) or deleted (DeleteTopics).
  It holds 11 seconds of the rate (controller.quota.window.num, not quota.window.num) and starts full. From
  CreateTopics v6, CreatePartitions v3 and DeleteTopics v5 on, a topic is refused with THROTTLING_QUOTA_EXCEEDED
  (89, no message) once the bucket is below zero; a topic accepted just before may take it far below. Older
  versions accept everything. A response announces the time the bucket needs to get back to zero, and the
  connection is muted for that long. A client id without a quota is never refused.
"""

from __future__ import annotations

import json
import socket
import struct
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from support.brokers import BROKER_KINDS, make_broker, skein_binary
from support.frames import (ResponseReader, _compact_string, _read_uvarint, _skip_tagged_fields, _uvarint,
                            api_versions_request, frame, request_header)
from support.kafka_clients import create_topic, eventually, expect, unique_topic_name
from support.kafka_tools import run_kafka_tool, tool_output

CLIENT_TIMEOUT_SECONDS = 30
# How long a quota change may take to show in DescribeClientQuotas (and so in what clients get).
QUOTA_EFFECT_SECONDS = 10
CONFIG_COMMAND = "kafka.admin.ConfigCommand"
QUOTA_WINDOWS = {"quota.window.num": 2, "quota.window.size.seconds": 1}

RECORD = b"q" * 1024
PRODUCER_QUOTA = 256 * 1024  # bytes per second; an unthrottled producer here does tens of MB/s
CONSUMER_QUOTA = 512 * 1024
# A throttled client is measured after its initial burst, for MEASURE_SECONDS.
WARM_UP_SECONDS = 3
MEASURE_SECONDS = 8
UNTHROTTLED_SECONDS = 3
# Small batches and fetches, so that throttling acts in steps much finer than the measurement.
BATCH_BYTES = 16 * 1024
FETCH_BYTES = 32 * 1024
STATISTICS_INTERVAL_MS = 500

CLIENT_C1 = ("--entity-type", "clients", "--entity-name", "c1")
USER_ALICE = ("--entity-type", "users", "--entity-name", "alice")
ALICE_C1 = USER_ALICE + CLIENT_C1
DEFAULT_CLIENT = ("--entity-type", "clients", "--entity-default")
LOCALHOST = ("--entity-type", "ips", "--entity-name", "127.0.0.1")
BYTE_RATES = "producer_byte_rate=1048576,consumer_byte_rate=2097152"
BYTE_RATES_ARE = "consumer_byte_rate=2097152.0, producer_byte_rate=1048576.0"


@pytest.fixture(scope="module", params=BROKER_KINDS)
def quota_broker(request):
    if request.param == "skein" and not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
    with make_broker(request.param, dict(QUOTA_WINDOWS)) as started:
        yield started


@pytest.fixture
def broker(quota_broker):
    """The module's broker, with no quotas before and after the test."""
    assert describe_quotas(quota_broker.bootstrap, []) == (0, {}), "quotas left over"
    yield quota_broker
    remove_all_quotas(quota_broker.bootstrap)


# ------------------------------------------------------------------------------------------ kafka-configs


def test_configs_tool_sets_describes_and_deletes_quotas(broker):
    for entity_type in ("users", "clients", "ips"):
        assert describe_lines(broker, "--entity-type", entity_type) == []

    assert alter(broker, *CLIENT_C1, "--add-config", BYTE_RATES) == "Completed updating config for client c1."
    assert alter(broker, *USER_ALICE, "--add-config", BYTE_RATES) == "Completed updating config for user alice."
    # The tool names only the user when it altered a (user, client id) pair.
    assert alter(broker, *ALICE_C1, "--add-config", BYTE_RATES) == "Completed updating config for user alice."
    assert alter(broker, *DEFAULT_CLIENT, "--add-config", BYTE_RATES) == \
        "Completed updating default config for clients in the cluster."
    assert alter(broker, *LOCALHOST, "--add-config", "connection_creation_rate=100") == \
        "Completed updating config for ip 127.0.0.1."

    c1 = f"Quota configs for client-id 'c1' are {BYTE_RATES_ARE}"
    alice = f"Quota configs for user-principal 'alice' are {BYTE_RATES_ARE}"
    alice_c1 = f"Quota configs for user-principal 'alice', client-id 'c1' are {BYTE_RATES_ARE}"
    default_client = f"Quota configs for the default client-id are {BYTE_RATES_ARE}"
    localhost = "Quota configs for ip '127.0.0.1' are connection_creation_rate=100.0"
    assert describe_lines_eventually(broker, CLIENT_C1, [c1]) == [c1]
    assert describe_lines_eventually(broker, USER_ALICE, [alice]) == [alice]
    assert describe_lines_eventually(broker, ALICE_C1, [alice_c1]) == [alice_c1]
    assert describe_lines_eventually(broker, DEFAULT_CLIENT, [default_client]) == [default_client]
    assert describe_lines_eventually(broker, LOCALHOST, [localhost]) == [localhost]
    # Listings by entity type: only entities of exactly those types.
    assert describe_lines(broker, "--entity-type", "clients") == sorted([c1, default_client])
    assert describe_lines(broker, "--entity-type", "users") == [alice]
    assert describe_lines(broker, "--entity-type", "users", "--entity-type", "clients") == [alice_c1]
    assert describe_lines(broker, "--entity-type", "ips") == [localhost]

    assert alter(broker, *CLIENT_C1, "--delete-config", "producer_byte_rate") == \
        "Completed updating config for client c1."
    c1_consumer = "Quota configs for client-id 'c1' are consumer_byte_rate=2097152.0"
    assert describe_lines_eventually(broker, CLIENT_C1, [c1_consumer]) == [c1_consumer]
    assert alter(broker, *CLIENT_C1, "--delete-config", "consumer_byte_rate") == \
        "Completed updating config for client c1."
    assert describe_lines_eventually(broker, CLIENT_C1, []) == []
    assert describe_lines(broker, "--entity-type", "clients") == [default_client]
    assert describe_lines(broker, *ALICE_C1) == [alice_c1]


def test_configs_tool_refuses_invalid_quotas(broker):
    # Refused by the tool before it sends anything.
    for arguments, message in [
        ((*CLIENT_C1, "--add-config", "producer_byte_rate_x=1"),
         "Only quota configs can be added for 'clients' using --bootstrap-server. "
         "Unexpected config names: Set(producer_byte_rate_x)"),
        ((*CLIENT_C1, "--add-config", "connection_creation_rate=100"),
         "Only quota configs can be added for 'clients' using --bootstrap-server. "
         "Unexpected config names: Set(connection_creation_rate)"),
        ((*LOCALHOST, "--add-config", "producer_byte_rate=1024"),
         "Only connection quota configs can be added for 'ips' using --bootstrap-server. "
         "Unexpected config names: producer_byte_rate"),
        ((*CLIENT_C1, "--delete-config", "producer_byte_rate_x"),
         "Only quota configs can be deleted for 'clients' using --bootstrap-server. "
         "Unexpected config names: ArrayBuffer(producer_byte_rate_x)"),
    ]:
        assert refusal(broker, *arguments) == message
    # Refused by the broker (AlterClientQuotas answers INVALID_REQUEST with the message).
    assert refusal(broker, *CLIENT_C1, "--add-config", "producer_byte_rate=-5") == \
        "org.apache.kafka.common.errors.InvalidRequestException: Quota producer_byte_rate must be greater than 0"
    assert refusal(broker, *CLIENT_C1, "--add-config", "producer_byte_rate=1.5") == \
        "org.apache.kafka.common.errors.InvalidRequestException: producer_byte_rate cannot be a fractional value."
    # The tool describes the entity first and refuses to delete a key it does not have.
    assert refusal(broker, *CLIENT_C1, "--delete-config", "producer_byte_rate") == \
        "Invalid config(s): producer_byte_rate"
    assert describe_quotas(broker.bootstrap, []) == (0, {})


def alter(broker, *arguments: str) -> str:
    result = run_kafka_tool(CONFIG_COMMAND, "--bootstrap-server", broker.bootstrap, "--alter", *arguments)
    assert result.returncode == 0, tool_output(result)
    return result.stdout.strip()


def refusal(broker, *arguments: str) -> str:
    """The message kafka-configs --alter fails with: the first line of stderr, or for an exception the broker
    raised (printed with its stack trace), the last `Caused by:` line without that prefix."""
    result = run_kafka_tool(CONFIG_COMMAND, "--bootstrap-server", broker.bootstrap, "--alter", *arguments)
    assert result.returncode == 1 and result.stdout == "", tool_output(result)
    lines = result.stderr.strip().splitlines()
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    return causes[-1] if causes else lines[0]


def describe_lines(broker, *entity: str) -> list[str]:
    """What kafka-configs --describe prints for the entity, sorted: the tool prints entities, and each one's
    `key=value` list, in hash-map order."""
    result = run_kafka_tool(CONFIG_COMMAND, "--bootstrap-server", broker.bootstrap, "--describe", *entity)
    assert result.returncode == 0, tool_output(result)
    lines = []
    for line in result.stdout.splitlines():
        line = " ".join(line.split())
        if " are " in line:
            head, values = line.split(" are ", 1)
            line = f"{head} are {', '.join(sorted(values.split(', ')))}"
        lines.append(line)
    return sorted(lines)


def describe_lines_eventually(broker, entity: tuple, expected: list[str]) -> list[str]:
    """describe_lines once it is `expected`, within QUOTA_EFFECT_SECONDS (Kafka describes from its metadata
    cache, which may lag behind the alteration it answered)."""
    deadline = time.monotonic() + QUOTA_EFFECT_SECONDS
    while True:
        lines = describe_lines(broker, *entity)
        if lines == expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------ on the wire

DESCRIBE_CLIENT_QUOTAS, ALTER_CLIENT_QUOTAS = 48, 49
INVALID_REQUEST, UNSUPPORTED_VERSION = 42, 35
# DescribeClientQuotas match types: a name, the default entity, any entity of the type (the default included).
MATCH_EXACT, MATCH_DEFAULT, MATCH_ANY = 0, 1, 2
USER, CLIENT_ID, IP = "user", "client-id", "ip"


def test_quota_requests_on_the_wire(broker):
    rates = [("producer_byte_rate", 1024.0), ("consumer_byte_rate", 2048.0)]
    quotas = {
        entity([(CLIENT_ID, "c1")]): dict(rates),
        entity([(USER, "alice")]): dict(rates),
        entity([(USER, "alice"), (CLIENT_ID, "c1")]): dict(rates),
        entity([(CLIENT_ID, None)]): dict(rates),
        entity([(USER, None), (CLIENT_ID, None)]): {"request_percentage": 12.5},
        entity([(IP, "127.0.0.1")]): {"connection_creation_rate": 50.0},
    }
    for quota_entity, values in quotas.items():
        assert alter_quotas(broker.bootstrap, quota_entity, [(key, value, False) for key, value in values.items()]) \
            == (0, None)
    described = eventually(lambda: expect(describe_quotas(broker.bootstrap, []), (0, quotas)), QUOTA_EFFECT_SECONDS)
    assert described == (0, quotas)

    def matching(*entities):
        return 0, {e: quotas[e] for e in entities}

    c1, alice = entity([(CLIENT_ID, "c1")]), entity([(USER, "alice")])
    alice_c1 = entity([(USER, "alice"), (CLIENT_ID, "c1")])
    default_client, defaults = entity([(CLIENT_ID, None)]), entity([(USER, None), (CLIENT_ID, None)])
    localhost = entity([(IP, "127.0.0.1")])
    for components, strict, expected in [
        ([(USER, MATCH_EXACT, "alice")], False, matching(alice, alice_c1)),
        ([(USER, MATCH_EXACT, "alice")], True, matching(alice)),
        ([(CLIENT_ID, MATCH_EXACT, "c1")], False, matching(c1, alice_c1)),
        ([(CLIENT_ID, MATCH_EXACT, "c1")], True, matching(c1)),
        ([(CLIENT_ID, MATCH_DEFAULT, None)], False, matching(default_client, defaults)),
        ([(CLIENT_ID, MATCH_DEFAULT, None)], True, matching(default_client)),
        ([(CLIENT_ID, MATCH_ANY, None)], False, matching(c1, alice_c1, default_client, defaults)),
        ([(CLIENT_ID, MATCH_ANY, None)], True, matching(c1, default_client)),
        ([(USER, MATCH_ANY, None), (CLIENT_ID, MATCH_ANY, None)], True, matching(alice_c1, defaults)),
        ([(USER, MATCH_EXACT, "alice"), (CLIENT_ID, MATCH_DEFAULT, None)], False, matching()),
        ([(USER, MATCH_EXACT, "bob")], False, matching()),
        ([(IP, MATCH_ANY, None)], True, matching(localhost)),
        ([], True, matching()),
        ([(CLIENT_ID, MATCH_EXACT, "c1"), (CLIENT_ID, MATCH_ANY, None)], False,
         (INVALID_REQUEST, "Entity type client-id cannot appear more than once in the filter.")),
        ([(CLIENT_ID, 5, None)], False, (INVALID_REQUEST, "Unknown match type 5")),
        ([("bogus", MATCH_ANY, None)], False, (UNSUPPORTED_VERSION, "Unsupported entity type bogus")),
    ]:
        assert describe_quotas(broker.bootstrap, components, strict) == expected, (components, strict)

    # Refusals, each in a request of its own, with validate_only (nothing is stored either way).
    producer_rate = "producer_byte_rate"
    for components, ops, expected in [
        ([(CLIENT_ID, "c2")], [("producer_byte_rate_x", 1.0, False)],
         "Invalid configuration key producer_byte_rate_x"),
        ([(CLIENT_ID, "c2")], [("connection_creation_rate", 1.0, False)],
         "Invalid configuration key connection_creation_rate"),
        ([(USER, "bob")], [("connection_creation_rate", 1.0, False)],
         "Invalid configuration key connection_creation_rate"),
        ([(IP, "127.0.0.1")], [(producer_rate, 1024.0, False)], "Invalid configuration key producer_byte_rate"),
        ([(CLIENT_ID, "c2")], [(producer_rate, -1.0, False)], "Quota producer_byte_rate must be greater than 0"),
        ([(CLIENT_ID, "c2")], [(producer_rate, 0.0, False)], "Quota producer_byte_rate must be greater than 0"),
        ([(CLIENT_ID, "c2")], [(producer_rate, 1.5, False)], "producer_byte_rate cannot be a fractional value."),
        ([(CLIENT_ID, "c2")], [(producer_rate, 1e30, False)],
         "Proposed value for producer_byte_rate is too large for a LONG."),
        ([(IP, "127.0.0.1"), (USER, "bob")], [("connection_creation_rate", 1.0, False)],
         "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"),
        ([(IP, "not an ip")], [("connection_creation_rate", 1.0, False)],
         "not an ip is not a valid IP or resolvable host."),
        ([], [(producer_rate, 1024.0, False)], "Invalid empty client quota entity"),
        ([("bogus", "x")], [(producer_rate, 1024.0, False)], "Unhandled client quota entity type: bogus"),
        # Accepted: request_percentage is a fraction; removing a key an entity does not have is no error.
        ([(CLIENT_ID, "c2")], [("request_percentage", 1.5, False)], None),
        ([(CLIENT_ID, "c3")], [(producer_rate, 0.0, True)], None),
    ]:
        code = 0 if expected is None else INVALID_REQUEST
        assert alter_quotas(broker.bootstrap, entity(components), ops, validate_only=True) == (code, expected), \
            (components, ops)
    assert describe_quotas(broker.bootstrap, []) == (0, quotas)

    # Removing a key leaves the others; removing the last one removes the entity.
    assert alter_quotas(broker.bootstrap, c1, [("producer_byte_rate", 0.0, True)]) == (0, None)
    assert alter_quotas(broker.bootstrap, localhost, [("connection_creation_rate", 0.0, True)]) == (0, None)
    left = {**quotas, c1: {"consumer_byte_rate": 2048.0}}
    del left[localhost]
    described = eventually(lambda: expect(describe_quotas(broker.bootstrap, []), (0, left)), QUOTA_EFFECT_SECONDS)
    assert described == (0, left)


def entity(components) -> tuple:
    """A quota entity as a sorted tuple of (entity type, name or None for the default)."""
    return tuple(sorted(components, key=lambda c: (c[0], c[1] or "")))


def alter_quotas(bootstrap: str, quota_entity: tuple, ops: list[tuple[str, float, bool]],
                 validate_only: bool = False) -> tuple[int, str | None]:
    """AlterClientQuotas v0 for one entity with ops (key, value, remove): its (error code, error message)."""
    body = struct.pack(">i", 1) + _entity(quota_entity) + struct.pack(">i", len(ops))
    for key, value, remove in ops:
        body += _string(key) + struct.pack(">d?", value, remove)
    body += struct.pack(">?", validate_only)
    reader = _Reader(_exchange(bootstrap, ALTER_CLIENT_QUOTAS, body))
    reader.int32()  # throttle time
    assert reader.int32() == 1
    code, message = reader.int16(), reader.string()
    assert reader.entity() == quota_entity
    return code, message


def describe_quotas(bootstrap: str, components: list[tuple[str, int, str | None]],
                    strict: bool = False) -> tuple[int, dict] | tuple[int, str | None]:
    """DescribeClientQuotas v0 with the filter components (entity type, match type, match): (0, {entity: {key:
    value}}) or (error code, error message)."""
    body = struct.pack(">i", len(components))
    for entity_type, match_type, match in components:
        body += _string(entity_type) + struct.pack(">b", match_type) + _string(match)
    body += struct.pack(">?", strict)
    reader = _Reader(_exchange(bootstrap, DESCRIBE_CLIENT_QUOTAS, body))
    reader.int32()  # throttle time
    code, message = reader.int16(), reader.string()
    count = reader.int32()
    if code != 0:
        assert count == -1, count
        return code, message
    quotas = {}
    for _ in range(count):
        quota_entity = reader.entity()
        quotas[quota_entity] = {reader.string(): reader.float64() for _ in range(reader.int32())}
    return 0, quotas


def remove_all_quotas(bootstrap: str) -> None:
    code, quotas = describe_quotas(bootstrap, [])
    assert code == 0, quotas
    for quota_entity, values in quotas.items():
        code, message = alter_quotas(bootstrap, quota_entity, [(key, 0.0, True) for key in values])
        assert code == 0, (quota_entity, code, message)
    eventually(lambda: expect(describe_quotas(bootstrap, []), (0, {})), QUOTA_EFFECT_SECONDS)


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    data = value.encode()
    return struct.pack(">h", len(data)) + data


def _entity(quota_entity: tuple) -> bytes:
    return struct.pack(">i", len(quota_entity)) + b"".join(_string(t) + _string(n) for t, n in quota_entity)


def _exchange(bootstrap: str, api_key: int, body: bytes) -> bytes:
    """Sends one v0 request on a new connection; the response after its correlation id."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_SECONDS) as sock:
        sock.sendall(frame(request_header(api_key, 0, 7, "quota-test", flexible=False) + body))
        response = ResponseReader(sock).next_response(time.monotonic() + CLIENT_TIMEOUT_SECONDS)
    assert response is not None, "the broker closed the connection"
    assert struct.unpack(">i", response[:4])[0] == 7
    return response[4:]


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def _take(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += struct.calcsize(fmt)
        return value

    def int16(self) -> int:
        return self._take(">h")

    def int32(self) -> int:
        return self._take(">i")

    def float64(self) -> float:
        return self._take(">d")

    def string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        value = self.data[self.offset:self.offset + length].decode()
        self.offset += length
        return value

    def entity(self) -> tuple:
        return entity([(self.string(), self.string()) for _ in range(self.int32())])




# ------------------------------------------------------------------------------------------ throttling


class Throttles:
    """The largest throttle time librdkafka's statistics reported for any broker connection."""

    def __init__(self):
        self.max_ms = 0

    def __call__(self, text: str) -> None:
        for broker in json.loads(text)["brokers"].values():
            self.max_ms = max(self.max_ms, broker["throttle"]["max"])


def rate(events: list[tuple[float, int]], start: float, end: float) -> float:
    """Bytes per second of the (monotonic time, bytes) events in [start, end)."""
    return sum(size for at, size in events if start <= at < end) / (end - start)


def set_quota_and_wait(broker, client_id: str, key: str, value: int) -> None:
    assert alter(broker, "--entity-type", "clients", "--entity-name", client_id, "--add-config", f"{key}={value}") \
        == f"Completed updating config for client {client_id}."
    wanted = (0, {entity([(CLIENT_ID, client_id)]): {key: float(value)}})
    eventually(lambda: expect(describe_quotas(broker.bootstrap, [(CLIENT_ID, MATCH_EXACT, client_id)], True),
                              wanted), QUOTA_EFFECT_SECONDS)


def test_a_producer_over_its_quota_is_throttled_until_the_quota_is_removed(broker):
    topic = create_topic(broker.bootstrap, unique_topic_name("quota-produce"), partitions=1)
    client_id = unique_topic_name("throttled")
    set_quota_and_wait(broker, client_id, "producer_byte_rate", PRODUCER_QUOTA)
    throttles, errors = Throttles(), []
    producer = Producer({
        "bootstrap.servers": broker.bootstrap, "client.id": client_id, "acks": 1, "linger.ms": 5,
        "batch.size": BATCH_BYTES, "queue.buffering.max.kbytes": 64,  # little waits in the client's queue
        "statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": throttles, "error_cb": errors.append,
    })
    delivered: list[tuple[float, int]] = []
    failed: list[KafkaError] = []

    def report(error, message):
        if error is not None:
            failed.append(error)
        else:
            delivered.append((time.monotonic(), len(message.value())))

    def produce_for(seconds: float) -> int:
        """Produces RECORDs as fast as the client takes them for `seconds`; how many."""
        produced, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                producer.produce(topic, value=RECORD, partition=0, on_delivery=report)
                produced += 1
            except BufferError:  # the queue is full: wait for deliveries
                producer.poll(0.01)
            producer.poll(0)
        return produced

    start = time.monotonic()
    produced = produce_for(WARM_UP_SECONDS + MEASURE_SECONDS)
    throttled = rate(delivered, start + WARM_UP_SECONDS, start + WARM_UP_SECONDS + MEASURE_SECONDS)
    throttled_max_ms = throttles.max_ms

    assert alter(broker, "--entity-type", "clients", "--entity-name", client_id,
                 "--delete-config", "producer_byte_rate") == f"Completed updating config for client {client_id}."
    eventually(lambda: expect(describe_quotas(broker.bootstrap, []), (0, {})), QUOTA_EFFECT_SECONDS)
    start = time.monotonic()
    produced += produce_for(UNTHROTTLED_SECONDS)
    unthrottled = rate(delivered, start + 1, start + UNTHROTTLED_SECONDS)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
    print(f"\n{broker.kind}: producer_byte_rate {PRODUCER_QUOTA} B/s; delivered {throttled:.0f} B/s "
          f"({throttled / PRODUCER_QUOTA:.3f} of it) with the quota, max throttle {throttled_max_ms} ms; "
          f"{unthrottled:.0f} B/s ({unthrottled / PRODUCER_QUOTA:.1f}x) after it was deleted")

    assert 0.9 * PRODUCER_QUOTA <= throttled <= 1.1 * PRODUCER_QUOTA, throttled
    assert throttled_max_ms > 0
    assert unthrottled > 4 * PRODUCER_QUOTA, unthrottled
    assert failed == [] and not errors, (failed, [str(e) for e in errors])
    assert len(delivered) == produced
    assert count_records(broker.bootstrap, topic) == produced


def count_records(bootstrap: str, topic: str) -> int:
    """How many records partition 0 of the topic holds, read from the beginning (without keeping them)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic_name("quota-count"),
                         "enable.auto.commit": False, "enable.partition.eof": True})
    count = 0
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=0.5):
                if message.error() is None:
                    assert message.offset() == count, (message.offset(), count)
                    count += 1
                elif message.error().code() == KafkaError._PARTITION_EOF:
                    return count
                else:
                    raise KafkaException(message.error())
        raise TimeoutError(f"read {count} records of {topic} within {CLIENT_TIMEOUT_SECONDS}s without reaching its end")
    finally:
        consumer.close()


def test_a_consumer_over_its_quota_is_throttled(broker):
    topic = create_topic(broker.bootstrap, unique_topic_name("quota-consume"), partitions=1)
    # More than the consumer may read in the time: what limits it is the quota, not the topic's end.
    records = CONSUMER_QUOTA * (WARM_UP_SECONDS + MEASURE_SECONDS + 4) // len(RECORD)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "batch.size": BATCH_BYTES})
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, value=RECORD, partition=0)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0

    client_id = unique_topic_name("throttled-consumer")
    set_quota_and_wait(broker, client_id, "consumer_byte_rate", CONSUMER_QUOTA)
    throttles = Throttles()
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap, "client.id": client_id, "group.id": unique_topic_name("quota-group"),
        "enable.auto.commit": False, "statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": throttles,
        # Fetches of a few batches (the batches above are smaller), a small local queue.
        "fetch.max.bytes": FETCH_BYTES, "max.partition.fetch.bytes": FETCH_BYTES, "message.max.bytes": FETCH_BYTES,
        "queued.max.messages.kbytes": 64,
    })
    received: list[tuple[float, int]] = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        start = time.monotonic()
        end = start + WARM_UP_SECONDS + MEASURE_SECONDS
        while time.monotonic() < end:
            message = consumer.poll(0.1)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            assert message.offset() == len(received), (message.offset(), len(received))
            received.append((time.monotonic(), len(message.value())))
    finally:
        consumer.close()
    throttled = rate(received, start + WARM_UP_SECONDS, end)
    print(f"\n{broker.kind}: consumer_byte_rate {CONSUMER_QUOTA} B/s; consumed {throttled:.0f} B/s "
          f"({throttled / CONSUMER_QUOTA:.3f} of it), max throttle {throttles.max_ms} ms, "
          f"{len(received)} of {records} records")

    # The lower bound catches a throttle grossly too long (twice Kafka's would give about half the quota). It is
    # not tighter because the consuming Python loop slows too on a loaded 2-core machine: 0.69 was seen in a full
    # CI run, 0.84-0.97 alone, with the data still in the broker's memtable.
    assert 0.6 * CONSUMER_QUOTA <= throttled <= 1.1 * CONSUMER_QUOTA, throttled
    assert throttles.max_ms > 0
    assert len(received) < records


# ------------------------------------------------------------------------------------------ request quota

REQUEST_PERCENTAGE = 1  # percent of one request-handler thread
REQUEST_QUOTA_SECONDS = 30  # how long a client sending back to back may take to exceed it
METADATA_V4 = 4
MUTED_REQUESTS = 50


def metadata_round_trip(sock: socket.socket, reader: ResponseReader, correlation_id: int, client_id: str) -> int:
    """Sends Metadata v4 for every topic (no auto-creation) and answers the response's throttle_time_ms."""
    body = struct.pack(">i?", -1, False)
    sock.sendall(frame(request_header(3, METADATA_V4, correlation_id, client_id, flexible=False) + body))
    response = reader.next_response(time.monotonic() + CLIENT_TIMEOUT_SECONDS)
    assert response is not None, "the broker closed the connection"
    returned_id, throttle_ms = struct.unpack_from(">ii", response)
    assert returned_id == correlation_id
    return throttle_ms


def test_a_client_over_its_request_percentage_is_throttled_and_muted(broker):
    """KIP-124: a client id with request_percentage=1 that sends Metadata requests back to back is soon answered
    with throttle_time_ms > 0, and its connection is muted for that long: later requests are answered no sooner.
    A client id without a quota, on its own connection at the same time, is never throttled."""
    client_id = unique_topic_name("busy")
    set_quota_and_wait(broker, client_id, "request_percentage", REQUEST_PERCENTAGE)
    host, port = broker.bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_SECONDS) as busy, \
            socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_SECONDS) as free:
        busy_reader, free_reader = ResponseReader(busy), ResponseReader(free)
        deadline = time.monotonic() + REQUEST_QUOTA_SECONDS
        correlation_id, throttle_ms = 0, 0
        while throttle_ms == 0:
            assert time.monotonic() < deadline, f"not throttled after {correlation_id} requests"
            correlation_id += 1
            throttle_ms = metadata_round_trip(busy, busy_reader, correlation_id, client_id)
            assert metadata_round_trip(free, free_reader, correlation_id, "unthrottled") == 0
        # Each throttled response mutes the connection for its throttle time (Kafka counts it from just before the
        # response is sent, Skein from just after): over the next requests, the time taken is at least half the
        # throttle times announced before them.
        throttles, started = [throttle_ms], time.monotonic()
        for _ in range(MUTED_REQUESTS):
            correlation_id += 1
            throttles.append(metadata_round_trip(busy, busy_reader, correlation_id, client_id))
        muted_seconds = time.monotonic() - started
    assert muted_seconds >= sum(throttles[:-1]) / 1000 * 0.5, (throttles, muted_seconds)


# ------------------------------------------------------------------------------------------ connection rate

LIMITED_IP = "127.0.0.7"  # the test's connections come from addresses no other test uses
UNLIMITED_IP = "127.0.0.8"
CONNECTION_BURST = 6


def set_ip_quota_and_wait(broker, ip: str, rate: int) -> None:
    assert alter(broker, "--entity-type", "ips", "--entity-name", ip, "--add-config",
                 f"connection_creation_rate={rate}") == f"Completed updating config for ip {ip}."
    wanted = (0, {entity([(IP, ip)]): {"connection_creation_rate": float(rate)}})
    eventually(lambda: expect(describe_quotas(broker.bootstrap, [(IP, MATCH_EXACT, ip)], True), wanted),
               QUOTA_EFFECT_SECONDS)


def answered(sock: socket.socket, deadline: float) -> bool:
    """Whether the broker answers the request sent on `sock`, rather than closing the connection (a reset too:
    closing with the request unread resets it)."""
    try:
        return ResponseReader(sock).next_response(deadline) is not None
    except ConnectionError:
        return False


def test_connections_over_an_ip_connection_creation_rate_are_closed_unanswered(broker):
    """KIP-612: with connection_creation_rate=1 for an IP, of connections opened from it at once the first is
    served and the others are accepted but closed without an answer once their throttle time has passed; another
    IP is not limited."""
    set_ip_quota_and_wait(broker, LIMITED_IP, 1)
    host, port = broker.bootstrap.rsplit(":", 1)
    connections = [socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_SECONDS,
                                            source_address=(LIMITED_IP, 0)) for _ in range(CONNECTION_BURST)]
    try:
        for correlation_id, sock in enumerate(connections):
            sock.sendall(api_versions_request(correlation_id))
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        served = [answered(sock, deadline) for sock in connections]
    finally:
        for sock in connections:
            sock.close()
    assert served == [True] + [False] * (CONNECTION_BURST - 1)
    with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_SECONDS,
                                  source_address=(UNLIMITED_IP, 0)) as sock:
        sock.sendall(api_versions_request(1))
        assert answered(sock, time.monotonic() + CLIENT_TIMEOUT_SECONDS)


BROKER_ID = "1"  # both brokers' node.id here
BROKER_CONNECTION_RATE = 1  # connections per second
SEQUENTIAL_CONNECTIONS = 6


def serve_connections_one_by_one(broker, count: int) -> tuple[int, float]:
    """Opens `count` connections one after another, each sending ApiVersions and waiting for the answer before the
    next opens: (how many were answered, seconds from the first connect to the last answer)."""
    host, port = broker.bootstrap.rsplit(":", 1)
    started = time.monotonic()
    served = 0
    for correlation_id in range(count):
        with socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_SECONDS) as sock:
            sock.sendall(api_versions_request(correlation_id))
            served += answered(sock, time.monotonic() + CLIENT_TIMEOUT_SECONDS)
    return served, time.monotonic() - started


# KIP-612's connection creation rates set on the broker: broker-wide (the listeners but the inter-broker one) and for
# the PLAINTEXT listener alone (listener names are lower case in config keys), the one the test connects to.
CONNECTION_RATE_SETTINGS = ["max.connection.creation.rate", "listener.name.plaintext.max.connection.creation.rate"]


@pytest.mark.parametrize("setting", CONNECTION_RATE_SETTINGS, ids=["broker-wide", "listener"])
def test_a_connection_creation_rate_delays_new_connections(broker, setting):
    """KIP-612: with max.connection.creation.rate=1, or listener.name.plaintext.max.connection.creation.rate=1 (both
    dynamic per-broker settings), the listener takes on at most about one new connection a second: a connection
    over the rate is not refused but waits (Kafka's acceptor blocks for the throttle time, at most a quota window,
    1 s here), so six connections opened one after another are all answered, but over more than three seconds
    instead of at once. Once the setting is deleted they are answered without waiting."""
    entity = ("--entity-type", "brokers", "--entity-name", BROKER_ID)
    assert alter(broker, *entity, "--add-config", f"{setting}={BROKER_CONNECTION_RATE}") == \
        f"Completed updating config for broker {BROKER_ID}."
    try:
        # The first connections after the change may still come in unthrottled (the setting takes a moment to
        # apply, and a rate is measured over the window): a burst first, then the measured sequence.
        serve_connections_one_by_one(broker, 3)
        served, seconds = serve_connections_one_by_one(broker, SEQUENTIAL_CONNECTIONS)
        assert served == SEQUENTIAL_CONNECTIONS
        assert seconds >= (SEQUENTIAL_CONNECTIONS - 1) * 0.6, f"{SEQUENTIAL_CONNECTIONS} connections in {seconds:.2f} s"
    finally:
        assert alter(broker, *entity, "--delete-config", setting) == \
            f"Completed updating config for broker {BROKER_ID}."
    time.sleep(2.5)  # the window forgets the throttled connections
    served, _ = serve_connections_one_by_one(broker, SEQUENTIAL_CONNECTIONS)
    assert served == SEQUENTIAL_CONNECTIONS


# ------------------------------------------------------------------------------------------ controller mutations

# KIP-599: controller_mutation_rate (partitions created or deleted per second) limits CreateTopics, CreatePartitions and
# DeleteTopics by client id. Kafka keeps a token bucket per client: it holds at most controller.quota.window.num (11
# by default; the module's quota.window.num does not apply to it) x controller.quota.window.size.seconds (1) x the
# rate, starts full and refills at the rate. Each topic of a request takes its partitions from it: CreateTopics takes
# them in request order, CreatePartitions and DeleteTopics in no set order (Kafka goes through a hash set of them).
# From CreateTopics v6, CreatePartitions v3 and DeleteTopics v5 on the quota is strict: a topic is accepted while the
# bucket is not below zero (so one topic may take it below), and refused with THROTTLING_QUOTA_EXCEEDED (no message,
# nothing taken) once it is. Older versions are permissive: everything is accepted and taken. A response's
# throttle_time_ms is round(deficit / rate * 1000) for the bucket's deficit at the last refusal (strict) or after the
# last topic taken over (permissive), less the milliseconds since; 0 when there was none. Kafka mutes the connection
# for that long after the response.
CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37
THROTTLING_QUOTA_EXCEEDED = 89
MUTATION_RATE = 0.25  # partitions per second: a bucket empty by n partitions refills in 4n seconds
# Kafka's defaults for controller.quota.window.num and controller.quota.window.size.seconds (neither is set here).
CONTROLLER_QUOTA_WINDOWS, CONTROLLER_QUOTA_WINDOW_SECONDS = 11, 1
# What a bucket holds: 2.75 partitions (exact in binary, like every bucket level below).
MUTATION_BURST = CONTROLLER_QUOTA_WINDOWS * CONTROLLER_QUOTA_WINDOW_SECONDS * MUTATION_RATE
# The strict and permissive versions, and the newest one (Kafka 4.3.1's).
CREATE_TOPICS_PERMISSIVE, CREATE_TOPICS_STRICT, CREATE_TOPICS_NEWEST = 5, 6, 7
CREATE_PARTITIONS_PERMISSIVE, CREATE_PARTITIONS_STRICT = 2, 3
DELETE_TOPICS_PERMISSIVE, DELETE_TOPICS_STRICT, DELETE_TOPICS_NEWEST = 4, 5, 6
TOPIC_EFFECT_SECONDS = 10  # how long a created or deleted topic may take to show in Metadata


def throttle_limit_ms(deficit: float) -> int:
    """The throttle time for a bucket `deficit` partitions below zero: what a response announces at most (the bucket
    refills between the refusal and the response)."""
    return round(deficit / MUTATION_RATE * 1000)


def set_mutation_rate_and_wait(broker, client_id: str, rate: float = MUTATION_RATE) -> None:
    quota_entity = entity([(CLIENT_ID, client_id)])
    assert alter_quotas(broker.bootstrap, quota_entity, [("controller_mutation_rate", rate, False)]) == (0, None)
    wanted = (0, {quota_entity: {"controller_mutation_rate": rate}})
    eventually(lambda: expect(describe_quotas(broker.bootstrap, [(CLIENT_ID, MATCH_EXACT, client_id)], True), wanted),
               QUOTA_EFFECT_SECONDS)


class _FlexibleReader(_Reader):
    """Reads the fields of a response in a flexible version (compact strings and arrays, tagged fields)."""

    def int8(self) -> int:
        return self._take(">b")

    def boolean(self) -> bool:
        return self._take(">?")

    def uuid(self) -> bytes:
        self.offset += 16
        return self.data[self.offset - 16:self.offset]

    def length(self) -> int:
        """A compact array's length (-1 for null)."""
        value, self.offset = _read_uvarint(self.data, self.offset)
        return value - 1

    def string(self) -> str | None:
        length = self.length()
        if length < 0:
            return None
        self.offset += length
        return self.data[self.offset - length:self.offset].decode()

    def tagged_fields(self) -> None:
        self.offset = _skip_tagged_fields(self.data, self.offset)


def _compact_array(items: list[bytes]) -> bytes:
    return _uvarint(len(items) + 1) + b"".join(items)


# A topic's outcome: (name, error code, error message); the message is None where the version has no such field.
Outcome = tuple[str, int, str | None]


class MutationClient:
    """One connection to the broker sending CreateTopics, CreatePartitions and DeleteTopics in exactly the version
    asked for, as `client_id`. Each method answers (throttle_time_ms, the outcome of each topic sorted by name)."""

    def __init__(self, broker, client_id: str):
        host, port = broker.bootstrap.rsplit(":", 1)
        self.client_id = client_id
        self.sock = socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT_SECONDS)
        self.reader = ResponseReader(self.sock)
        self.correlation_id = 0

    def __enter__(self) -> "MutationClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.sock.close()

    def _exchange(self, api_key: int, version: int, body: bytes) -> _FlexibleReader:
        self.correlation_id += 1
        self.sock.sendall(frame(request_header(api_key, version, self.correlation_id, self.client_id, flexible=True)
                                + body))
        response = self.reader.next_response(time.monotonic() + CLIENT_TIMEOUT_SECONDS)
        assert response is not None, "the broker closed the connection"
        reader = _FlexibleReader(response)
        assert reader.int32() == self.correlation_id
        reader.tagged_fields()  # response header v1
        return reader

    def create_topics(self, version: int, topics: list[tuple[str, int]],
                      validate_only: bool = False) -> tuple[int, list[Outcome]]:
        """CreateTopics (v5-v7, the flexible ones) of (name, partitions) topics, replication factor 1."""
        assert 5 <= version <= 7, version
        body = _compact_array([_compact_string(name) + struct.pack(">ih", partitions, 1)
                               + _compact_array([]) + _compact_array([]) + b"\x00" for name, partitions in topics])
        body += struct.pack(">i?", CLIENT_TIMEOUT_SECONDS * 1000, validate_only) + b"\x00"
        reader = self._exchange(CREATE_TOPICS, version, body)
        throttle_ms = reader.int32()
        outcomes = []
        for _ in range(reader.length()):
            name = reader.string()
            if version >= 7:
                reader.uuid()
            outcomes.append((name, reader.int16(), reader.string()))
            reader.int32(), reader.int16()  # num_partitions, replication_factor
            for _ in range(max(reader.length(), 0)):  # configs
                reader.string(), reader.string(), reader.boolean(), reader.int8(), reader.boolean()
                reader.tagged_fields()
            reader.tagged_fields()
        return throttle_ms, sorted(outcomes)

    def create_partitions(self, version: int, topics: list[tuple[str, int]]) -> tuple[int, list[Outcome]]:
        """CreatePartitions (v2-v3, the flexible ones) taking each (name, count) topic to `count` partitions."""
        assert 2 <= version <= 3, version
        body = _compact_array([_compact_string(name) + struct.pack(">i", count) + b"\x00" + b"\x00"
                               for name, count in topics])  # assignments null, no tagged fields
        body += struct.pack(">i?", CLIENT_TIMEOUT_SECONDS * 1000, False) + b"\x00"
        reader = self._exchange(CREATE_PARTITIONS, version, body)
        throttle_ms = reader.int32()
        outcomes = []
        for _ in range(reader.length()):
            outcomes.append((reader.string(), reader.int16(), reader.string()))
            reader.tagged_fields()
        return throttle_ms, sorted(outcomes)

    def delete_topics(self, version: int, names: list[str]) -> tuple[int, list[Outcome]]:
        """DeleteTopics (v4-v6, the flexible ones) by name; v4 answers no error message."""
        assert 4 <= version <= 6, version
        if version >= 6:
            topics = [_compact_string(name) + bytes(16) + b"\x00" for name in names]  # by name: topic id zero
        else:
            topics = [_compact_string(name) for name in names]
        body = _compact_array(topics) + struct.pack(">i", CLIENT_TIMEOUT_SECONDS * 1000) + b"\x00"
        reader = self._exchange(DELETE_TOPICS, version, body)
        throttle_ms = reader.int32()
        outcomes = []
        for _ in range(reader.length()):
            name = reader.string()
            if version >= 6:
                reader.uuid()
            code = reader.int16()
            outcomes.append((name, code, reader.string() if version >= 5 else None))
            reader.tagged_fields()
        return throttle_ms, sorted(outcomes)

    def seconds_to_answer_metadata(self) -> float:
        """How long a Metadata request sent now takes to be answered (unthrottled by itself)."""
        self.correlation_id += 1
        started = time.monotonic()
        assert metadata_round_trip(self.sock, self.reader, self.correlation_id, self.client_id) == 0
        return time.monotonic() - started


def assert_outcomes(outcomes: list[Outcome], accepted: list[str] = (), refused: list[str] = ()) -> None:
    """The `accepted` topics have error code 0 and the `refused` ones THROTTLING_QUOTA_EXCEEDED with Kafka's null
    message (an accepted topic's message, null in Kafka too, is not what is tested here)."""
    wanted = sorted([(name, 0) for name in accepted] + [(name, THROTTLING_QUOTA_EXCEEDED) for name in refused])
    assert [(name, code) for name, code, _ in outcomes] == wanted, outcomes
    assert [message for _, code, message in outcomes if code == THROTTLING_QUOTA_EXCEEDED] == [None] * len(refused), \
        outcomes


def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int | None]:
    """Each topic's partition count as Metadata lists it (None for a topic that does not exist)."""
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics
    return {name: len(topics[name].partitions) if name in topics else None for name in names}


def wait_for_partition_counts(bootstrap: str, wanted: dict[str, int | None]) -> None:
    eventually(lambda: expect(partition_counts(bootstrap, list(wanted)), wanted), TOPIC_EFFECT_SECONDS)


def test_create_topics_over_the_controller_mutation_rate_are_refused(broker):
    """CreateTopics v6 and v7 (strict) from a client id with controller_mutation_rate=0.25: of one request's topics
    of 1, 1, 4, 1 and 2 partitions, the first three are created (the bucket goes 2.75, 1.75, 0.75, then -3.25) and
    the last two refused with THROTTLING_QUOTA_EXCEEDED, the response announcing the throttle time; a later request
    is refused too, within the 13 seconds the bucket takes to refill (the refused topics took nothing: the throttle
    time is still at most 13 s). A client id without a quota creates more at once, unthrottled. A refusal mutes the
    connection for its throttle time: a topic of 3 partitions then one of 1 from a new client id leave the bucket
    0.25 below zero, and a Metadata request after that response is answered about a second later."""
    client_id, other_client_id = unique_topic_name("mutator"), unique_topic_name("muted-mutator")
    set_mutation_rate_and_wait(broker, client_id)
    set_mutation_rate_and_wait(broker, other_client_id)
    topic = unique_topic_name("mutation")
    over = [(f"{topic}-{n}", partitions) for n, partitions in enumerate([1, 1, 4, 1, 2], 1)]
    names = [name for name, _ in over]
    with MutationClient(broker, client_id) as client:
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_NEWEST, over)
    assert_outcomes(outcomes, accepted=names[:3], refused=names[3:])
    assert 0 < throttle_ms <= throttle_limit_ms(1 + 1 + 4 - MUTATION_BURST), throttle_ms
    with MutationClient(broker, client_id) as client:
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_STRICT, [(f"{topic}-6", 1)])
    assert_outcomes(outcomes, refused=[f"{topic}-6"])
    assert 0 < throttle_ms <= throttle_limit_ms(1 + 1 + 4 - MUTATION_BURST), throttle_ms

    unlimited = [(f"{topic}-free-{n}", 6) for n in (1, 2)]
    with MutationClient(broker, unique_topic_name("unlimited")) as client:
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_NEWEST, unlimited)
    assert_outcomes(outcomes, accepted=[name for name, _ in unlimited])
    assert throttle_ms == 0

    with MutationClient(broker, other_client_id) as client:
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_NEWEST, [(f"{topic}-m1", 3), (f"{topic}-m2", 1)])
        assert_outcomes(outcomes, accepted=[f"{topic}-m1"], refused=[f"{topic}-m2"])
        assert 0 < throttle_ms <= throttle_limit_ms(3 - MUTATION_BURST), throttle_ms
        muted_seconds = client.seconds_to_answer_metadata()
    assert muted_seconds >= throttle_ms / 1000 * 0.5, (throttle_ms, muted_seconds)

    wait_for_partition_counts(broker.bootstrap, {
        **dict(over[:3]), **{name: None for name in names[3:]}, f"{topic}-6": None, **dict(unlimited),
        f"{topic}-m1": 3, f"{topic}-m2": None})


def test_validate_only_create_topics_count_against_the_controller_mutation_rate(broker):
    """A validate_only CreateTopics is counted as if it created the topics: 6 partitions validated take the bucket of a
    client with controller_mutation_rate=0.25 from 2.75 to -3.25 (accepted, strict: throttle time 0, as no topic
    was refused), and the next validate_only request, as well as a real one, is refused. Nothing is created."""
    client_id = unique_topic_name("validator")
    set_mutation_rate_and_wait(broker, client_id)
    topic = unique_topic_name("validated")
    with MutationClient(broker, client_id) as client:
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_NEWEST, [(f"{topic}-1", 6)], validate_only=True)
    assert_outcomes(outcomes, accepted=[f"{topic}-1"])
    assert throttle_ms == 0
    for validate_only in (True, False):
        with MutationClient(broker, client_id) as client:
            throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_NEWEST, [(f"{topic}-2", 1)], validate_only)
        assert_outcomes(outcomes, refused=[f"{topic}-2"])
        assert 0 < throttle_ms <= throttle_limit_ms(6 - MUTATION_BURST), (validate_only, throttle_ms)
    wait_for_partition_counts(broker.bootstrap, {f"{topic}-1": None, f"{topic}-2": None})


def test_create_topics_v5_over_the_controller_mutation_rate_are_throttled_not_refused(broker):
    """CreateTopics v5 (permissive): a client with controller_mutation_rate=0.25 is never refused. Two topics of 1
    partition leave a new client's bucket at 0.75 (throttle time 0). 3 partitions take another new client's bucket
    to -0.25: created, and the response announces up to a second and mutes the connection for that long; 3 more
    after that (more than the bucket ever holds) are created, with a throttle time again."""
    client_id, over_client_id = unique_topic_name("permissive"), unique_topic_name("permissive-over")
    set_mutation_rate_and_wait(broker, client_id)
    set_mutation_rate_and_wait(broker, over_client_id)
    topic = unique_topic_name("permitted")
    with MutationClient(broker, client_id) as client:
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_PERMISSIVE, [(f"{topic}-1", 1), (f"{topic}-2", 1)])
    assert_outcomes(outcomes, accepted=[f"{topic}-1", f"{topic}-2"])
    assert throttle_ms == 0
    with MutationClient(broker, over_client_id) as client:
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_PERMISSIVE, [(f"{topic}-3", 3)])
        assert_outcomes(outcomes, accepted=[f"{topic}-3"])
        assert 0 < throttle_ms <= throttle_limit_ms(3 - MUTATION_BURST), throttle_ms
        muted_seconds = client.seconds_to_answer_metadata()
        assert muted_seconds >= throttle_ms / 1000 * 0.5, (throttle_ms, muted_seconds)
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_PERMISSIVE, [(f"{topic}-4", 3)])
        assert_outcomes(outcomes, accepted=[f"{topic}-4"])
        assert 0 < throttle_ms <= throttle_limit_ms(3 + 3 - MUTATION_BURST), throttle_ms
    wait_for_partition_counts(broker.bootstrap, {f"{topic}-1": 1, f"{topic}-2": 1, f"{topic}-3": 3, f"{topic}-4": 3})


def test_create_partitions_over_the_controller_mutation_rate(broker):
    """CreatePartitions counts the partitions it adds. v3 (strict), controller_mutation_rate=0.25: taking a topic of
    1 partition to 3 leaves the bucket at 0.75, another to 6 takes it to -4.25 (both accepted with throttle time 0),
    and a request taking two more to 2 is refused for both. (Kafka takes a request's topics in no set order, so a
    request whose topics would not all get the same answer is not sent.) v2 (permissive), another client id: +2
    (0.75, throttle time 0), +3 (-2.25, a throttle time of up to 9 s) and +1 are all added."""
    strict_client, permissive_client = unique_topic_name("partitioner"), unique_topic_name("permissive-partitioner")
    set_mutation_rate_and_wait(broker, strict_client)
    set_mutation_rate_and_wait(broker, permissive_client)
    topic = unique_topic_name("growing")
    names = [f"{topic}-{n}" for n in range(1, 6)]
    with MutationClient(broker, unique_topic_name("unlimited")) as client:
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_NEWEST, [(name, 1) for name in names])
    assert_outcomes(outcomes, accepted=names)
    wait_for_partition_counts(broker.bootstrap, dict.fromkeys(names, 1))

    with MutationClient(broker, strict_client) as client:
        assert client.create_partitions(CREATE_PARTITIONS_STRICT, [(names[0], 3)]) == (0, [(names[0], 0, None)])
        assert client.create_partitions(CREATE_PARTITIONS_STRICT, [(names[1], 6)]) == (0, [(names[1], 0, None)])
        throttle_ms, outcomes = client.create_partitions(CREATE_PARTITIONS_STRICT, [(names[2], 2), (names[3], 2)])
    assert_outcomes(outcomes, refused=names[2:4])
    assert 0 < throttle_ms <= throttle_limit_ms(2 + 5 - MUTATION_BURST), throttle_ms

    with MutationClient(broker, permissive_client) as client:
        assert client.create_partitions(CREATE_PARTITIONS_PERMISSIVE, [(names[4], 3)]) == (0, [(names[4], 0, None)])
    with MutationClient(broker, permissive_client) as client:
        throttle_ms, outcomes = client.create_partitions(CREATE_PARTITIONS_PERMISSIVE, [(names[4], 6)])
    assert outcomes == [(names[4], 0, None)]
    assert 0 < throttle_ms <= throttle_limit_ms(2 + 3 - MUTATION_BURST), throttle_ms
    with MutationClient(broker, permissive_client) as client:
        throttle_ms, outcomes = client.create_partitions(CREATE_PARTITIONS_PERMISSIVE, [(names[4], 7)])
    assert outcomes == [(names[4], 0, None)]
    assert throttle_ms > 0
    wait_for_partition_counts(broker.bootstrap, dict(zip(names, [3, 6, 1, 1, 7])))


def test_delete_topics_over_the_controller_mutation_rate(broker):
    """DeleteTopics counts the partitions of the topics it deletes. v5 (strict), controller_mutation_rate=0.25:
    deleting a topic of 6 partitions takes the bucket to -3.25 (accepted, throttle time 0), then two topics of 1
    partition are refused in v5 and in v6. v4 (permissive), another client id: the topic of 6 partitions is deleted
    with a throttle time of up to 13 s, and one of 1 partition after it with a throttle time too. A client id without
    a quota then deletes the two refused topics, unthrottled."""
    strict_client, permissive_client = unique_topic_name("deleter"), unique_topic_name("permissive-deleter")
    set_mutation_rate_and_wait(broker, strict_client)
    set_mutation_rate_and_wait(broker, permissive_client)
    topic = unique_topic_name("doomed")
    topics = [(f"{topic}-{n}", partitions) for n, partitions in enumerate([6, 1, 1, 6, 1], 1)]
    names = [name for name, _ in topics]
    unlimited_client = unique_topic_name("unlimited")
    with MutationClient(broker, unlimited_client) as client:
        throttle_ms, outcomes = client.create_topics(CREATE_TOPICS_NEWEST, topics)
    assert_outcomes(outcomes, accepted=names)
    wait_for_partition_counts(broker.bootstrap, dict(topics))

    with MutationClient(broker, strict_client) as client:
        assert client.delete_topics(DELETE_TOPICS_STRICT, [names[0]]) == (0, [(names[0], 0, None)])
    for version in (DELETE_TOPICS_STRICT, DELETE_TOPICS_NEWEST):
        with MutationClient(broker, strict_client) as client:
            throttle_ms, outcomes = client.delete_topics(version, names[1:3])
        assert_outcomes(outcomes, refused=names[1:3])
        assert 0 < throttle_ms <= throttle_limit_ms(6 - MUTATION_BURST), (version, throttle_ms)

    with MutationClient(broker, permissive_client) as client:
        throttle_ms, outcomes = client.delete_topics(DELETE_TOPICS_PERMISSIVE, [names[3]])
    assert outcomes == [(names[3], 0, None)]  # v4 has no error message
    assert 0 < throttle_ms <= throttle_limit_ms(6 - MUTATION_BURST), throttle_ms
    with MutationClient(broker, permissive_client) as client:
        throttle_ms, outcomes = client.delete_topics(DELETE_TOPICS_PERMISSIVE, [names[4]])
    assert outcomes == [(names[4], 0, None)]
    assert throttle_ms > 0
    wait_for_partition_counts(broker.bootstrap, {names[0]: None, names[1]: 1, names[2]: 1, names[3]: None,
                                                 names[4]: None})

    with MutationClient(broker, unlimited_client) as client:
        throttle_ms, outcomes = client.delete_topics(DELETE_TOPICS_NEWEST, names[1:3])
    assert_outcomes(outcomes, accepted=names[1:3])
    assert throttle_ms == 0
    wait_for_partition_counts(broker.bootstrap, dict.fromkeys(names))
