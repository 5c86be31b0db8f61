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

from support.brokers import BROKER_KINDS, make_broker, skein_binary
from support.kafka_clients import create_topic, unique_topic_name


def pytest_configure(config):
    # A stage timeout (tests/run-all) sends SIGTERM. Turn it into KeyboardInterrupt so pytest stops
    # and the fixture finalizers stop the brokers and remove their temp dirs.
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"received signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


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
