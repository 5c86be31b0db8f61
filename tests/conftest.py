"""Shared pytest fixtures: brokers (Skein and the Apache Kafka reference) and topics.

- `kafka`, `skein`: one started broker of that kind per test module (default config).
- `broker`: parametrized over ["kafka", "skein"], for differential tests (reuses the module's brokers).
- `start_broker(kind, config=None)`: a fresh broker only for this test, e.g. to restart or kill it.
- `new_topic(broker, partitions=3)`: creates a uniquely named topic and returns its name.
Skein tests skip (with the reason) while the skein binary has not been built.
"""

from __future__ import annotations

import signal

import pytest

from support.brokers import BROKER_KINDS, LONG_MODE, make_broker, skein_binary
from support.kafka_clients import create_topic, unique_topic_name


def pytest_configure(config):
    # A stage timeout (tests/run-all) sends SIGTERM. Turn it into KeyboardInterrupt so pytest stops
    # and the fixture finalizers stop the brokers and remove their temp dirs.
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"received signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


# Test files whose Apache Kafka reference runs only in long mode (SKEIN_LONG=1), to keep CI within its time: in a
# local run their Kafka variants took about 20 min of test time, 10 of wall time on two workers. Their Skein variants
# always run; a change to one of these tests is checked against Kafka by hand with SKEIN_LONG=1. Files not listed keep
# their Kafka run in CI, so the reference harness itself stays exercised there.
KAFKA_REFERENCE_IN_LONG_MODE_FILES = {
    "test_acls.py",
    "test_admin.py",
    "test_cli_tools.py",
    "test_cluster.py",
    "test_cluster_security.py",
    "test_groups.py",
    "test_groups_classic.py",
    "test_groups_consumer_protocol.py",
    "test_log_lifecycle.py",
    "test_quotas.py",
    "test_tls.py",
}


def _runs_against_kafka(item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return False
    for value in callspec.params.values():
        if value == "kafka" or (isinstance(value, tuple) and value and value[0] == "kafka"):
            return True
    return False


def pytest_collection_modifyitems(config, items):
    # Skipped at collection, so a skipped file's module-scoped Kafka broker is never started.
    if LONG_MODE:
        return
    skip = pytest.mark.skip(reason="this file's Apache Kafka reference runs in long mode (SKEIN_LONG=1)")
    for item in items:
        if item.path.name in KAFKA_REFERENCE_IN_LONG_MODE_FILES and _runs_against_kafka(item):
            item.add_marker(skip)


def skip_unless_broker_available(kind: str) -> None:
    if kind == "skein" and not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")


def _started_broker(kind: str, config: dict | None = None):
    skip_unless_broker_available(kind)
    broker = make_broker(kind, config)
    try:
        broker.start()
    except BaseException:
        broker.close()
        raise
    return broker


@pytest.fixture(scope="module")
def kafka():
    broker = _started_broker("kafka")
    yield broker
    broker.close()


@pytest.fixture(scope="module")
def skein():
    broker = _started_broker("skein")
    yield broker
    broker.close()


@pytest.fixture(scope="module", params=BROKER_KINDS)
def broker(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def start_broker():
    started = []

    def start(kind: str, config: dict | None = None):
        broker = _started_broker(kind, config)
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.close()


@pytest.fixture
def new_topic():
    def create(broker, partitions: int = 3, config: dict | None = None, prefix: str = "test") -> str:
        return create_topic(broker.bootstrap, unique_topic_name(prefix), partitions, config)

    return create
