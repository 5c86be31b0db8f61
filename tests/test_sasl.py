"""SASL authentication (SASL_PLAINTEXT and SASL_SSL listeners; PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with stock
clients, against Apache Kafka (the reference) and Skein with the same listeners and users.

Users are SCRAM credentials created with AlterUserScramCredentials over the PLAINTEXT listener. Kafka's PLAIN
reads its users from the listener's JAAS config (given the same password here); Skein checks a PLAIN password
against the user's SCRAM credential, its one store of users.

Shown for both brokers: confluent-kafka with each mechanism, kafka-python and the Java console tools (SCRAM)
produce and consume after authenticating; a wrong password or an unknown user gets SASL_AUTHENTICATION_FAILED
with Kafka's message and the connection closed; a request other than ApiVersions or SaslHandshake before
authentication closes the connection unanswered, and so does a frame larger than sasl.server.max.receive.size;
with connections.max.reauth.ms (KIP-368) clients re-authenticate on their connections and keep working, and a
connection whose session ran out is closed at its next request.
"""

from __future__ import annotations

import os
import random
import re
import socket
import struct
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from support.brokers import REPO_ROOT, BROKER_KINDS, free_port, make_broker, metric_value
from support.certificates import make_certificates
from support.frames import Mutator
from support.kafka_clients import create_topic, unique_topic_name
from support.kafka_tools import run_kafka_tool, tool_output
from support.mutation_run import MutationRun

CLIENT_TIMEOUT_SECONDS = 30
REFUSED_CLIENT_SECONDS = 5
RECORDS = 10
SESSION_SECONDS = 4
USER, PASSWORD = "alice", "alice-secret"
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"

# Metadata v1, correlation id 7, client id "client1", all topics: not allowed before authentication.
METADATA_V1 = b"\x00\x00\x00\x15\x00\x03\x00\x01\x00\x00\x00\x07\x00\x07client1\xff\xff\xff\xff"


class SaslBroker:
    """A broker with PLAINTEXT (`plaintext`), SASL_PLAINTEXT (`sasl`) and SASL_SSL (`sasl_ssl`) listeners, and
    user alice with SCRAM-SHA-256 and SCRAM-SHA-512 credentials."""

    def __init__(self, kind: str, certificates):
        self.kind = kind
        self.broker = make_broker(kind)
        self.plaintext = self.broker.bootstrap
        self.sasl = f"127.0.0.1:{free_port()}"
        self.sasl_ssl = f"127.0.0.1:{free_port()}"
        config = {
            "listener.security.protocol.map":
                "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": ",".join(MECHANISMS),
            # KIP-368: sessions last SESSION_SECONDS; clients re-authenticate on their connections.
            "connections.max.reauth.ms": SESSION_SECONDS * 1000,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(certificates.server.bundle),
        }
        listeners = f"PLAINTEXT://{self.plaintext},SASL_PLAINTEXT://{self.sasl},SASL_SSL://{self.sasl_ssl}"
        if kind == "kafka":
            config["listeners"] = f"{listeners},CONTROLLER://127.0.0.1:{self.broker.controller_port}"
            config["advertised.listeners"] = listeners
            plain = f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{USER}="{PASSWORD}";'
            scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            for listener in ("sasl_plaintext", "sasl_ssl"):
                config[f"listener.name.{listener}.plain.sasl.jaas.config"] = plain
                for mechanism in ("scram-sha-256", "scram-sha-512"):
                    config[f"listener.name.{listener}.{mechanism}.sasl.jaas.config"] = scram
        else:
            config["listeners"] = listeners
        self.broker.config.update(config)

    def __enter__(self) -> "SaslBroker":
        self.broker.start()
        admin = AdminClient({"bootstrap.servers": self.plaintext})
        for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
            futures = admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(USER, ScramCredentialInfo(mechanism, 4096), PASSWORD.encode())],
                request_timeout=CLIENT_TIMEOUT_SECONDS)
            for future in futures.values():
                future.result(timeout=CLIENT_TIMEOUT_SECONDS)
        return self

    def __exit__(self, *exc_info) -> None:
        self.broker.close()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module", params=BROKER_KINDS)
def broker(request, certificates):
    with SaslBroker(request.param, certificates) as started:
        yield started


def sasl_config(bootstrap: str, mechanism: str, user: str = USER, password: str = PASSWORD, ca=None) -> dict:
    config = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_SSL" if ca else "SASL_PLAINTEXT",
              "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
    if ca is not None:
        config["ssl.ca.location"] = str(ca)
    return config


def produce_and_consume(config: dict, topic: str, tag: str) -> list[bytes]:
    producer = Producer({**config, "acks": "all"})
    for i in range(RECORDS):
        producer.produce(topic, value=f"{tag}-{i}".encode(), partition=0)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0, f"records left unsent ({tag})"
    end = producer.list_topics(topic, timeout=CLIENT_TIMEOUT_SECONDS)
    assert topic in end.topics
    consumer = Consumer({**config, "group.id": f"g-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=CLIENT_TIMEOUT_SECONDS)
        consumer.assign([TopicPartition(topic, 0, high - RECORDS)])
        values = []
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while len(values) < RECORDS and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            values.append(message.value())
        return values
    finally:
        consumer.close()


def authentication_errors(config: dict) -> list[str]:
    """The authentication errors a confluent-kafka client reports (Kafka's message, without librdkafka's
    prefix and timing)."""
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append, "reconnect.backoff.ms": 500})
    # Until the client reports the refusal (it does within a second or so), at most REFUSED_CLIENT_SECONDS.
    deadline = time.monotonic() + REFUSED_CLIENT_SECONDS
    while time.monotonic() < deadline and not any(e.code() == KafkaError._AUTHENTICATION for e in errors):
        producer.poll(0.2)
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=1)
    messages = []
    for error in errors:
        if error.code() == KafkaError._AUTHENTICATION:
            text = re.sub(r" \(after \d+ms in state \w+\)", "", error.str())
            messages.append(re.sub(r"^.*SASL authentication error: ", "", text))
    return sorted(set(messages))


def sasl_failures(broker: SaslBroker) -> float | None:
    """Skein's count of failed authentications (None for Kafka)."""
    if broker.kind != "skein":
        return None
    return metric_value(broker.broker, "skein_sasl_authentication_failures_total") or 0.0


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_authenticates_with_each_mechanism(broker, mechanism):
    topic = unique_topic_name("sasl")
    create_topic(broker.plaintext, topic, partitions=1)
    assert produce_and_consume(sasl_config(broker.sasl, mechanism), topic, mechanism) == \
        [f"{mechanism}-{i}".encode() for i in range(RECORDS)]


def test_sasl_ssl_with_scram(broker, certificates):
    topic = unique_topic_name("sasl-ssl")
    create_topic(broker.plaintext, topic, partitions=1)
    config = sasl_config(broker.sasl_ssl, "SCRAM-SHA-512", ca=certificates.ca)
    metadata = Producer(config).list_topics(timeout=CLIENT_TIMEOUT_SECONDS)
    assert [b.port for b in metadata.brokers.values()] == [int(broker.sasl_ssl.rsplit(":", 1)[1])]
    assert produce_and_consume(config, topic, "tls") == [f"tls-{i}".encode() for i in range(RECORDS)]


def test_kafka_python_and_java_clients_authenticate_with_scram(broker, tmp_path):
    topic = unique_topic_name("sasl-clients")
    create_topic(broker.plaintext, topic, partitions=1)
    settings = dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                    sasl_plain_username=USER, sasl_plain_password=PASSWORD)
    producer = KafkaProducer(bootstrap_servers=broker.sasl, acks="all", **settings)
    for i in range(RECORDS):
        producer.send(topic, value=f"kafka-python-{i}".encode(), partition=0)
    producer.flush(timeout=CLIENT_TIMEOUT_SECONDS)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.sasl, enable_auto_commit=False, consumer_timeout_ms=10_000,
                             **settings)
    consumer.assign([KpTopicPartition(topic, 0)])
    consumer.seek(KpTopicPartition(topic, 0), 0)
    values = [record.value for _, record in zip(range(RECORDS), consumer)]
    consumer.close()
    assert values == [f"kafka-python-{i}".encode() for i in range(RECORDS)]

    client_properties = tmp_path / "sasl-client.properties"
    client_properties.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{USER}" password="{PASSWORD}";\n')
    lines = [f"java-{i}" for i in range(RECORDS)]
    produced = run_kafka_tool(CONSOLE_PRODUCER, "--bootstrap-server", broker.sasl, "--topic", topic,
                              "--command-config", str(client_properties), "--producer-property", "acks=all",
                              input_text="\n".join(lines) + "\n")
    assert produced.returncode == 0, tool_output(produced)
    consumed = run_kafka_tool(CONSOLE_CONSUMER, "--bootstrap-server", broker.sasl, "--topic", topic,
                              "--partition", "0", "--offset", str(RECORDS), "--max-messages", str(RECORDS),
                              "--timeout-ms", "30000", "--command-config", str(client_properties))
    assert consumed.returncode == 0, tool_output(consumed)
    assert consumed.stdout.split() == lines, tool_output(consumed)


def test_wrong_credentials_are_refused_with_kafkas_messages(broker):
    before = sasl_failures(broker)
    scram_failure = "Authentication failed during authentication due to invalid credentials with SASL mechanism {}"
    cases = {
        ("PLAIN", USER, "wrong"): "Authentication failed: Invalid username or password",
        ("PLAIN", "mallory", PASSWORD): "Authentication failed: Invalid username or password",
        ("SCRAM-SHA-256", USER, "wrong"): scram_failure.format("SCRAM-SHA-256"),
        ("SCRAM-SHA-512", "mallory", PASSWORD): scram_failure.format("SCRAM-SHA-512"),
    }
    for (mechanism, user, password), message in cases.items():
        seen = authentication_errors(sasl_config(broker.sasl, mechanism, user, password))
        assert seen == [message], (mechanism, user, seen)
    if before is not None:
        assert sasl_failures(broker) >= before + len(cases)
    # Right after, the right password still works: nothing is locked.
    assert Producer(sasl_config(broker.sasl, "SCRAM-SHA-256")).list_topics(timeout=CLIENT_TIMEOUT_SECONDS).brokers


def test_requests_before_authentication_close_the_connection(broker):
    with socket.create_connection(tuple_address(broker.sasl), timeout=10) as raw:
        raw.sendall(METADATA_V1)
        try:
            reply = raw.recv(4096)
        except ConnectionResetError:
            reply = b""
    assert reply == b"", f"answered before authentication: {reply!r}"
    assert Producer(sasl_config(broker.sasl, "PLAIN")).list_topics(timeout=CLIENT_TIMEOUT_SECONDS).brokers


def tuple_address(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


# ------------------------------------------------------------------------------------------ raw SASL exchanges


def raw_request(sock: socket.socket, api_key: int, version: int, correlation_id: int, body: bytes) -> bytes | None:
    """Sends one request with a v1 header (client id "raw") and returns the response body after the correlation
    id, or None when the broker closed the connection."""
    header = struct.pack(">hhih", api_key, version, correlation_id, 3) + b"raw"
    frame = header + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    prefix = _read_exactly(sock, 4)
    if prefix is None:
        return None
    response = _read_exactly(sock, struct.unpack(">i", prefix)[0])
    if response is None:
        return None
    assert struct.unpack(">i", response[:4])[0] == correlation_id
    return response[4:]


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        try:
            chunk = sock.recv(count - len(data))
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        data += chunk
    return data


def plain_login(sock: socket.socket, user: str, password: str) -> tuple[int, int]:
    """SaslHandshake v1 (PLAIN) and SaslAuthenticate v1: (error code, session lifetime ms)."""
    handshake = raw_request(sock, 17, 1, 1, struct.pack(">h", 5) + b"PLAIN")
    assert handshake is not None and struct.unpack(">h", handshake[:2])[0] == 0, handshake
    token = b"\0" + user.encode() + b"\0" + password.encode()
    answer = raw_request(sock, 36, 1, 2, struct.pack(">i", len(token)) + token)
    assert answer is not None
    error_code = struct.unpack(">h", answer[:2])[0]
    message_length = struct.unpack(">h", answer[2:4])[0]
    rest = answer[4 + max(message_length, 0):]
    auth_length = struct.unpack(">i", rest[:4])[0]
    lifetime = struct.unpack(">q", rest[4 + auth_length:12 + auth_length])[0]
    return error_code, lifetime


def metadata_v1(sock: socket.socket, correlation_id: int) -> bytes | None:
    return raw_request(sock, 3, 1, correlation_id, struct.pack(">i", -1))


def test_a_session_past_its_lifetime_is_closed_at_the_next_request(broker):
    with socket.create_connection(tuple_address(broker.sasl), timeout=10) as sock:
        assert plain_login(sock, USER, PASSWORD) == (0, SESSION_SECONDS * 1000)
        assert metadata_v1(sock, 3) is not None, "not served right after authenticating"
        time.sleep(SESSION_SECONDS + 1)
        assert metadata_v1(sock, 4) is None, "served after the session expired"


def test_clients_reauthenticate_and_keep_working(broker):
    """A producer sends across three session lifetimes; librdkafka re-authenticates (KIP-368) and nothing
    fails."""
    topic = unique_topic_name("reauth")
    create_topic(broker.plaintext, topic, partitions=1)
    handshakes = 'skein_requests_total{api="SaslHandshake",version="1"}'
    if broker.kind == "skein":
        before = (metric_value(broker.broker, handshakes) or 0.0,
                  metric_value(broker.broker, "skein_connections_accepted_total"))
    errors: list[KafkaError] = []
    producer = Producer({**sasl_config(broker.sasl, "SCRAM-SHA-512"), "acks": "all", "error_cb": errors.append})
    delivered = []
    deadline = time.monotonic() + 3 * SESSION_SECONDS
    i = 0
    while time.monotonic() < deadline:
        producer.produce(topic, value=str(i).encode(), partition=0,
                         on_delivery=lambda err, msg: delivered.append(err))
        producer.poll(0.5)
        i += 1
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
    assert len(delivered) == i and all(err is None for err in delivered), delivered
    assert not errors, [str(e) for e in errors]
    if broker.kind == "skein":
        # More handshakes than new connections: sessions were renewed on connections already open.
        new_handshakes = (metric_value(broker.broker, handshakes) or 0.0) - before[0]
        new_connections = metric_value(broker.broker, "skein_connections_accepted_total") - before[1]
        assert new_handshakes >= new_connections + 2, (new_handshakes, new_connections)


def test_an_oversized_frame_before_authentication_closes_the_connection(broker):
    """sasl.server.max.receive.size (512 KiB): a larger frame before authentication is refused unread."""
    with socket.create_connection(tuple_address(broker.sasl), timeout=10) as sock:
        sock.sendall(struct.pack(">i", 600_000) + b"\x00" * 1024)
        assert _read_exactly(sock, 4) is None


# ------------------------------------------------------------------------------------------ hostile input

SASL_MUTATION_FRAMES = int(os.environ.get("SKEIN_SASL_MUTATION_FRAMES") or 20_000)
SASL_MUTATION_SEED = int(os.environ.get("SKEIN_MUTATION_SEED") or random.SystemRandom().randrange(2**32))
# Served before authentication; every other api must never be counted as served on the SASL listener.
BEFORE_AUTHENTICATION = {"ApiVersions", "SaslHandshake", "SaslAuthenticate"}


def served_apis(broker: SaslBroker) -> dict[str, float]:
    with urllib.request.urlopen(f"{broker.broker.metrics_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    served: dict[str, float] = {}
    for api, count in re.findall(r'^skein_requests_total\{api="(\w+)",version="[^"]*"\} (\S+)$', text, re.MULTILINE):
        served[api] = served.get(api, 0.0) + float(count)
    return served


def test_mutated_frames_on_an_unauthenticated_sasl_listener(certificates):
    """Mutants of a request of every api and version Skein serves (the fuzz seeds, fuzz/corpus/request_decode)
    sent unauthenticated to a SASL listener: the broker neither crashes nor serves anything but ApiVersions,
    SaslHandshake and SaslAuthenticate, and still authenticates a real client afterwards. (Skein only: the check
    reads its request counters; SKEIN_SASL_MUTATION_FRAMES sets the count.)"""
    seeds = sorted((REPO_ROOT / "fuzz" / "corpus" / "request_decode").iterdir())
    corpus = [path.read_bytes() for path in seeds if path.is_file()]
    assert len(corpus) > 100, "the request_decode seed corpus is missing"
    print(f"\nSASL mutation seed {SASL_MUTATION_SEED}, {SASL_MUTATION_FRAMES} frames over {len(corpus)} seeds")
    with SaslBroker("skein", certificates) as broker:
        before = served_apis(broker)
        host, port = tuple_address(broker.sasl)
        mutator = Mutator(corpus, SASL_MUTATION_SEED)
        run = MutationRun(host, port, broker.broker.pid, broker.broker.is_running, mutator.mutant,
                          SASL_MUTATION_FRAMES, workers=4, log_tail=broker.broker.log_tail, corpus=corpus)
        stats = run.run()
        print(f"sent={stats.sent} answered={stats.answered} responses={stats.responses} "
              f"closed_by_broker={stats.closed_by_broker} rss_peak_mib={stats.rss_peak >> 20}")
        assert stats.sent == SASL_MUTATION_FRAMES
        assert stats.malformed_responses == 0, stats.malformed_samples
        assert stats.closed_by_broker > 0, "no mutant was refused: they never reached the SASL state machine"
        after = served_apis(broker)
        served = {api: after[api] - before.get(api, 0.0) for api in after
                  if after[api] != before.get(api, 0.0) and api not in BEFORE_AUTHENTICATION}
        assert not served, f"served before authentication: {served}"
        assert broker.broker.is_running()
        assert Producer(sasl_config(broker.sasl, "SCRAM-SHA-256")).list_topics(timeout=CLIENT_TIMEOUT_SECONDS).brokers


def test_sasl_requests_on_a_plaintext_listener_get_illegal_sasl_state(broker):
    """Where no SASL is expected (a PLAINTEXT listener), both requests are answered ILLEGAL_SASL_STATE (34) with
    Kafka's message, and the connection stays usable."""
    with socket.create_connection(tuple_address(broker.plaintext), timeout=10) as sock:
        handshake = raw_request(sock, 17, 1, 1, struct.pack(">h", 5) + b"PLAIN")
        assert handshake == struct.pack(">hi", 34, 0), handshake
        token = b"\0" + USER.encode() + b"\0" + PASSWORD.encode()
        answer = raw_request(sock, 36, 1, 2, struct.pack(">i", len(token)) + token)
        assert answer is not None
        message_length = struct.unpack(">h", answer[2:4])[0]
        assert struct.unpack(">h", answer[:2])[0] == 34, answer
        assert answer[4:4 + message_length] == b"SaslAuthenticate request received after successful authentication"
        assert metadata_v1(sock, 3) is not None, "the connection was not kept"


def test_delegation_token_requests_on_a_sasl_listener_find_the_feature_disabled(broker):
    """Neither broker has delegation tokens configured (no delegation.token.secret.key): an authenticated client's
    DescribeDelegationToken gets DELEGATION_TOKEN_AUTH_DISABLED (61); on the PLAINTEXT listener the same request
    gets DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (64), as token requests need an authenticated channel."""
    describe_all_tokens = struct.pack(">i", -1)  # DescribeDelegationToken v1: owners null
    with socket.create_connection(tuple_address(broker.sasl), timeout=10) as sock:
        assert plain_login(sock, USER, PASSWORD)[0] == 0
        answer = raw_request(sock, 41, 1, 3, describe_all_tokens)
        assert answer is not None and struct.unpack(">h", answer[:2])[0] == 61, answer
    with socket.create_connection(tuple_address(broker.plaintext), timeout=10) as sock:
        answer = raw_request(sock, 41, 1, 1, describe_all_tokens)
        assert answer is not None and struct.unpack(">h", answer[:2])[0] == 64, answer
