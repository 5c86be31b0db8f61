"""TLS listeners (security protocol SSL) with stock clients, against Apache Kafka (the reference) and Skein.

Each broker runs two listeners: PLAINTEXT (for the test's own checks) and SSL, whose key store is a PEM file
holding the server's key and certificate chain (`ssl.keystore.type=PEM`, `ssl.keystore.location`). The
certificates are made for the run (support/certificates.py).

Shown for both brokers:
- confluent-kafka (librdkafka), kafka-python and Kafka's own command-line tools (the Java client) produce and
  consume over SSL, verifying the server's certificate and host name; Metadata gives an SSL client the SSL
  listener's address.
- A client that does not trust the server's certificate (another CA, or an expired certificate) gets no
  service; a plaintext client on the SSL port gets none either; the broker goes on serving others.
- `ssl.client.auth=required` (mutual TLS): a client with a certificate from the trusted CA is served; one
  without a certificate, or with a certificate from another CA, is refused in the handshake.
- `ssl.client.auth=requested`: a client without a certificate is served, one with an untrusted certificate is
  refused.

Skein alone: a key store file replaced by a renewed certificate is served to new connections without a restart.
"""

from __future__ import annotations

import socket
import ssl
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, ConfigResource,
                                  ConfigSource, ResourcePatternType, ResourceType)
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from support.brokers import BROKER_KINDS, BrokerError, free_port, make_broker, metric_value
from support.certificates import make_certificates
from support.kafka_clients import create_topic, eventually, expect, unique_topic_name
from support.kafka_tools import run_kafka_tool, tool_output

CLIENT_TIMEOUT_SECONDS = 30
# How long a client that cannot connect is given before the test looks at what it reported.
REFUSED_CLIENT_SECONDS = 5
RECORDS = 20

CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"


STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certificates"))


class TlsBroker:
    """A broker with a PLAINTEXT listener (`plaintext`) and an SSL one (`ssl`)."""

    def __init__(self, kind: str, keystore, client_auth: str, truststore=None, extra: dict | None = None):
        self.broker = make_broker(kind)
        self.ssl_port = free_port()
        self.plaintext = self.broker.bootstrap
        self.ssl = f"127.0.0.1:{self.ssl_port}"
        config = {
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.client.auth": client_auth,
        }
        if truststore is not None:
            config.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": str(truststore)})
        if kind == "kafka":
            controller = f"CONTROLLER://127.0.0.1:{self.broker.controller_port}"
            config["listeners"] = f"PLAINTEXT://{self.plaintext},SSL://{self.ssl},{controller}"
            config["advertised.listeners"] = f"PLAINTEXT://{self.plaintext},SSL://{self.ssl}"
        else:
            config["listeners"] = f"PLAINTEXT://{self.plaintext},SSL://{self.ssl}"
        self.broker.config.update({**config, **(extra or {})})

    def __enter__(self) -> "TlsBroker":
        self.broker.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.broker.close()


def ssl_client_config(bootstrap: str, ca, identity=None) -> dict:
    """confluent-kafka's settings for an SSL client (it checks the server's host name by default)."""
    config = {"bootstrap.servers": bootstrap, "security.protocol": "SSL", "ssl.ca.location": str(ca)}
    if identity is not None:
        config.update({"ssl.certificate.location": str(identity.cert), "ssl.key.location": str(identity.key)})
    return config


def produce_and_consume_confluent(bootstrap: str, topic: str, ca, identity=None) -> list[bytes]:
    producer = Producer({**ssl_client_config(bootstrap, ca, identity), "acks": "all"})
    for i in range(RECORDS):
        producer.produce(topic, value=f"confluent-{i}".encode(), partition=0)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0, "records left unsent over SSL"
    consumer = Consumer({**ssl_client_config(bootstrap, ca, identity), "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = []
        for message in iter_messages(consumer, RECORDS):
            values.append(message.value())
        return values
    finally:
        consumer.close()


def iter_messages(consumer, count: int):
    deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
    seen = 0
    while seen < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        seen += 1
        yield message


def connection_errors(config: dict) -> list[KafkaError]:
    """What a confluent-kafka client that cannot get service reports: the errors its error callback saw while
    list_topics failed."""
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append, "socket.timeout.ms": 3000,
                         "reconnect.backoff.ms": 200})
    # Until the client reports an SSL error (within a second or so), at most REFUSED_CLIENT_SECONDS.
    deadline = time.monotonic() + REFUSED_CLIENT_SECONDS
    while time.monotonic() < deadline and not any("SSL" in e.str() or "ssl" in e.str() for e in errors):
        producer.poll(0.2)
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=1)
    return errors


def assert_ssl_refused(config: dict) -> None:
    errors = connection_errors(config)
    codes = {error.code() for error in errors}
    assert codes & {KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}, \
        [str(e) for e in errors]
    assert any("SSL" in error.str() or "ssl" in error.str() for error in errors), [str(e) for e in errors]


def plaintext_still_serves(broker: TlsBroker) -> None:
    metadata = Producer({"bootstrap.servers": broker.plaintext}).list_topics(timeout=CLIENT_TIMEOUT_SECONDS)
    assert metadata.brokers, "the PLAINTEXT listener stopped serving"


def tls_handshake_failures(broker: TlsBroker) -> float | None:
    """Skein's count of failed handshakes (None for Kafka)."""
    if broker.broker.kind != "skein":
        return None
    return metric_value(broker.broker, "skein_tls_handshake_failures_total") or 0.0


# ------------------------------------------------------------------------------------------ server TLS


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_stock_clients_produce_and_consume_over_ssl(kind, certificates, tmp_path):
    with TlsBroker(kind, certificates.server.bundle, "none") as broker:
        topic = unique_topic_name("tls")
        create_topic(broker.plaintext, topic, partitions=1)

        # Metadata over SSL names the SSL listener (a client that got the PLAINTEXT port would fail its handshake).
        metadata = Producer(ssl_client_config(broker.ssl, certificates.ca)).list_topics(
            timeout=CLIENT_TIMEOUT_SECONDS)
        assert [(b.host, b.port) for b in metadata.brokers.values()] == [("127.0.0.1", broker.ssl_port)]

        assert produce_and_consume_confluent(broker.ssl, topic, certificates.ca) == \
            [f"confluent-{i}".encode() for i in range(RECORDS)]

        ssl_settings = dict(security_protocol="SSL", ssl_cafile=str(certificates.ca), ssl_check_hostname=True)
        producer = KafkaProducer(bootstrap_servers=broker.ssl, acks="all", **ssl_settings)
        for i in range(RECORDS):
            producer.send(topic, value=f"kafka-python-{i}".encode(), partition=0)
        producer.flush(timeout=CLIENT_TIMEOUT_SECONDS)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=broker.ssl, enable_auto_commit=False,
                                 consumer_timeout_ms=10_000, **ssl_settings)
        consumer.assign([KpTopicPartition(topic, 0)])
        consumer.seek(KpTopicPartition(topic, 0), RECORDS)
        values = [record.value for _, record in zip(range(RECORDS), consumer)]
        consumer.close()
        assert values == [f"kafka-python-{i}".encode() for i in range(RECORDS)]

        # The Java client (Kafka's console tools) with a PEM trust store.
        client_properties = tmp_path / "ssl-client.properties"
        client_properties.write_text(
            f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={certificates.ca}\n")
        lines = [f"java-{i}" for i in range(RECORDS)]
        produced = run_kafka_tool(
            CONSOLE_PRODUCER, "--bootstrap-server", broker.ssl, "--topic", topic, "--command-config",
            str(client_properties), "--producer-property", "acks=all", input_text="\n".join(lines) + "\n")
        assert produced.returncode == 0, tool_output(produced)
        consumed = run_kafka_tool(
            CONSOLE_CONSUMER, "--bootstrap-server", broker.ssl, "--topic", topic, "--partition", "0",
            "--offset", str(2 * RECORDS), "--max-messages", str(RECORDS), "--timeout-ms", "30000",
            "--command-config", str(client_properties))
        assert consumed.returncode == 0, tool_output(consumed)
        assert consumed.stdout.split() == lines, tool_output(consumed)


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_a_client_gets_nothing_from_a_server_it_does_not_trust(kind, certificates):
    """Another CA's certificate, an expired certificate, and a plaintext client on the SSL port: no service,
    and the broker goes on serving."""
    with TlsBroker(kind, certificates.server.bundle, "none") as broker:
        before = tls_handshake_failures(broker)
        assert_ssl_refused(ssl_client_config(broker.ssl, certificates.other_ca))
        if before is not None:
            assert tls_handshake_failures(broker) > before

        # A plaintext client on the SSL port: its ApiVersions bytes are not a TLS ClientHello.
        with socket.create_connection(("127.0.0.1", broker.ssl_port), timeout=10) as raw:
            raw.sendall(API_VERSIONS_V0)
            try:
                reply = raw.recv(4096)
            except ConnectionResetError:
                reply = b""
        # Nothing, or a TLS alert record (content type 21), never a Kafka response.
        assert reply == b"" or reply[0] == 21, f"not refused as TLS refuses: {reply!r}"
        plaintext_still_serves(broker)
        assert_ssl_works(broker, certificates)

    with TlsBroker(kind, certificates.expired_server.bundle, "none") as broker:
        assert_ssl_refused(ssl_client_config(broker.ssl, certificates.ca))
        plaintext_still_serves(broker)


def assert_ssl_works(broker: TlsBroker, certificates, identity=None) -> None:
    metadata = Producer(ssl_client_config(broker.ssl, certificates.ca, identity)).list_topics(
        timeout=CLIENT_TIMEOUT_SECONDS)
    assert metadata.brokers


# ------------------------------------------------------------------------------------------ mutual TLS


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_client_certificates_required(kind, certificates):
    with TlsBroker(kind, certificates.server.bundle, "required", truststore=certificates.ca) as broker:
        topic = unique_topic_name("mtls")
        create_topic(broker.plaintext, topic, partitions=1)
        assert produce_and_consume_confluent(broker.ssl, topic, certificates.ca, certificates.client) == \
            [f"confluent-{i}".encode() for i in range(RECORDS)]

        before = tls_handshake_failures(broker)
        assert_ssl_refused(ssl_client_config(broker.ssl, certificates.ca))
        assert_ssl_refused(ssl_client_config(broker.ssl, certificates.ca, certificates.stranger))
        if before is not None:
            assert tls_handshake_failures(broker) >= before + 2
        assert_ssl_works(broker, certificates, certificates.client)


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_the_client_certificate_is_the_principal(kind, certificates):
    """With an authorizer, an SSL client's principal is `User:` and its certificate's subject as
    ssl.principal.mapping.rules maps it: here the lower-cased CN, so an ACL for User:alice lets the client
    certificate of alice write one topic and not another."""
    extra = {"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": "User:ANONYMOUS",
             "ssl.principal.mapping.rules": "RULE:^.*CN=([a-zA-Z]*).*$/$1/L,DEFAULT"}
    with TlsBroker(kind, certificates.server.bundle, "required", truststore=certificates.ca, extra=extra) as broker:
        allowed, other = unique_topic_name("mtls-acl"), unique_topic_name("mtls-no-acl")
        for topic in (allowed, other):
            create_topic(broker.plaintext, topic, partitions=1)
        admin = AdminClient({"bootstrap.servers": broker.plaintext})
        binding = AclBinding(ResourceType.TOPIC, allowed, ResourcePatternType.LITERAL, "User:alice", "*",
                             AclOperation.ALL, AclPermissionType.ALLOW)
        for future in admin.create_acls([binding], request_timeout=CLIENT_TIMEOUT_SECONDS).values():
            assert future.result(timeout=CLIENT_TIMEOUT_SECONDS) is None

        def produce(topic: str) -> list[str | None]:
            outcomes: list[str | None] = []
            producer = Producer({**ssl_client_config(broker.ssl, certificates.ca, certificates.client),
                                 "acks": "all", "message.timeout.ms": 5000})
            producer.produce(topic, value=b"from alice", partition=0,
                             on_delivery=lambda err, _: outcomes.append(err.name() if err else None))
            producer.flush(CLIENT_TIMEOUT_SECONDS)
            return outcomes

        # Kafka's brokers see a new ACL shortly after its controller committed it.
        eventually(lambda: expect(produce(allowed), [None]), 10)
        assert produce(other) == ["TOPIC_AUTHORIZATION_FAILED"]


def raw_api_versions(port: int, ca, identity=None) -> bytes | str:
    """An ApiVersions v0 request over TLS from Python's ssl module (which, unlike librdkafka, sends its
    certificate whatever CAs the server names): the response bytes, or what went wrong."""
    context = ssl.create_default_context(cafile=str(ca))
    if identity is not None:
        context.load_cert_chain(str(identity.cert), str(identity.key))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(API_VERSIONS_V0)
                reply = tls.recv(4096)
                return reply if reply else "closed"
    except (ssl.SSLError, OSError) as err:
        return f"{type(err).__name__}: {err}"


# ApiVersions v0, correlation id 1, client id "client1".
API_VERSIONS_V0 = b"\x00\x00\x00\x11\x00\x12\x00\x00\x00\x00\x00\x01\x00\x07client1"


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_client_certificates_requested(kind, certificates):
    """A client may come without a certificate; one it presents must be trusted."""
    with TlsBroker(kind, certificates.server.bundle, "requested", truststore=certificates.ca) as broker:
        assert_ssl_works(broker, certificates)
        assert_ssl_works(broker, certificates, certificates.client)
        for identity in (None, certificates.client):
            reply = raw_api_versions(broker.ssl_port, certificates.ca, identity)
            assert isinstance(reply, bytes) and reply[4:8] == b"\x00\x00\x00\x01", reply
        before = tls_handshake_failures(broker)
        reply = raw_api_versions(broker.ssl_port, certificates.ca, certificates.stranger)
        assert not isinstance(reply, bytes), f"served a client with an untrusted certificate: {reply!r}"
        if before is not None:
            assert tls_handshake_failures(broker) > before
        plaintext_still_serves(broker)
        assert_security_settings_described(broker, certificates)


def assert_security_settings_described(broker: TlsBroker, certificates) -> None:
    """DescribeConfigs on the broker reports the ssl.* settings as Kafka does: set ones as static broker
    config, secrets (Kafka's PASSWORD type) without a value."""
    admin = AdminClient({"bootstrap.servers": broker.plaintext})
    resource = ConfigResource(ResourceType.BROKER, "1")
    entries = admin.describe_configs([resource], request_timeout=CLIENT_TIMEOUT_SECONDS)[resource].result(
        timeout=CLIENT_TIMEOUT_SECONDS)
    described = {name: (entries[name].value, entries[name].source, entries[name].is_sensitive)
                 for name in ("ssl.keystore.location", "ssl.truststore.location", "ssl.client.auth",
                              "ssl.key.password", "ssl.keystore.key", "ssl.enabled.protocols")}
    static, default = ConfigSource.STATIC_BROKER_CONFIG.value, ConfigSource.DEFAULT_CONFIG.value
    assert described == {
        "ssl.keystore.location": (str(certificates.server.bundle), static, False),
        "ssl.truststore.location": (str(certificates.ca), static, False),
        "ssl.client.auth": ("requested", static, False),
        "ssl.key.password": (None, default, True),
        "ssl.keystore.key": (None, default, True),
        "ssl.enabled.protocols": ("TLSv1.2,TLSv1.3", default, False),
    }


# ------------------------------------------------------------------------------------------ start-up


def test_skein_refuses_to_start_with_unusable_tls_settings(certificates, tmp_path):
    """Each is named in the message: a key store file that is missing, one whose key is not its certificate's,
    an encrypted key, and an SSL listener without a key store."""
    mismatched = tmp_path / "mismatched.pem"
    mismatched.write_bytes(certificates.client.key.read_bytes() + certificates.server.cert.read_bytes())
    cases = {
        "missing file": ({"ssl.keystore.location": str(tmp_path / "absent.pem")}, "cannot read"),
        "key of another certificate": ({"ssl.keystore.location": str(mismatched)},
                                       "private key does not match its certificate"),
        "key password": ({"ssl.keystore.location": str(certificates.server.bundle), "ssl.key.password": "x"},
                         "ssl.key.password"),
        "no key store": ({}, "an SSL listener needs ssl.keystore.location"),
    }
    for case, (settings, message) in cases.items():
        broker = TlsBroker("skein", certificates.server.bundle, "none").broker
        broker.config.pop("ssl.keystore.location")
        broker.config.update(settings)
        try:
            with pytest.raises(BrokerError) as raised:
                broker.start(timeout=30)
            assert raised.value.exit_code not in (None, 0), case
            log = broker.log_path.read_text(errors="replace")
            assert message in log, f"{case}: {message!r} not in\n{broker.log_tail()}"
        finally:
            broker.close()


def served_certificate_name(port: int, ca) -> str:
    """The common name of the certificate the SSL listener on `port` presents to a new connection."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            subject = dict(item for rdn in tls.getpeercert()["subject"] for item in rdn)
    return subject["commonName"]


def test_skein_serves_a_renewed_certificate_without_a_restart(certificates, tmp_path):
    """Skein rereads its key store when the file changes: after the PEM file is replaced by a renewed
    certificate, new connections get the renewed one (within a few seconds), and a connection opened before goes on
    being served. (Kafka reloads a key store only when told to through AlterConfigs, which Skein does not offer for
    listener settings, so this test is Skein's alone.)"""
    keystore = tmp_path / "keystore.pem"
    keystore.write_bytes(certificates.server.bundle.read_bytes())
    with TlsBroker("skein", keystore, client_auth="none") as broker:
        assert served_certificate_name(broker.ssl_port, certificates.ca) == "broker"
        context = ssl.create_default_context(cafile=str(certificates.ca))
        with socket.create_connection(("127.0.0.1", broker.ssl_port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as opened_before:
            replacement = tmp_path / "keystore.pem.new"
            replacement.write_bytes(certificates.renewed_server.bundle.read_bytes())
            replacement.replace(keystore)
            eventually(lambda: expect(served_certificate_name(broker.ssl_port, certificates.ca), "renewed-broker"),
                       10)
            opened_before.sendall(API_VERSIONS_V0)
            reply = opened_before.recv(4096)
            assert reply[4:8] == b"\x00\x00\x00\x01", reply  # the correlation id: answered
        plaintext_still_serves(broker)
