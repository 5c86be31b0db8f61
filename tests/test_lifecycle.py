"""Broker lifecycle: data survives a graceful restart and a SIGKILL; start-up rejects bad config;
the metrics endpoint answers. Restart and kill tests run against Apache Kafka too (the oracle)."""

from __future__ import annotations

import subprocess
import time

import pytest
from confluent_kafka import Producer

from support.brokers import (BROKER_KINDS, REPO_ROOT, BrokerError, SkeinBroker, http_get_status,
                             skip_kafka_reference_outside_long_mode)
from support.kafka_clients import high_watermarks, read_partitions

CONFLUENT_KAFKA_DRIVER = REPO_ROOT / "conformance" / "confluent-kafka" / "run"
DRIVER_TIMEOUT_SECONDS = 300


def run_driver(bootstrap: str, scenario: str, topic: str, count: int) -> subprocess.CompletedProcess:
    if not CONFLUENT_KAFKA_DRIVER.is_file():
        pytest.fail(f"conformance driver missing: {CONFLUENT_KAFKA_DRIVER}")
    return subprocess.run(
        [str(CONFLUENT_KAFKA_DRIVER), "--bootstrap", bootstrap, "--scenario", scenario,
         "--topic", topic, "--count", str(count)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DRIVER_TIMEOUT_SECONDS,
    )


def assert_driver_passed(result: subprocess.CompletedProcess, phase: str) -> None:
    assert result.returncode == 0, (
        f"driver {phase} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_graceful_restart_keeps_every_message(kind, start_broker, new_topic):
    count = 10000
    broker = start_broker(kind)
    topic = new_topic(broker, partitions=3)

    assert_driver_passed(run_driver(broker.bootstrap, "produce", topic, count), "produce")
    assert broker.stop() == broker.clean_exit_code, broker.log_tail()
    broker.start()

    # Messages go to partition i % 3, so after the restart the logs end exactly here.
    assert high_watermarks(broker.bootstrap, topic) == [3334, 3333, 3333]
    assert_driver_passed(run_driver(broker.bootstrap, "verify", topic, count), "verify")


# acks=all, no retries and no idempotence: the client never sends a message twice, so every message
# it saw acknowledged must be in the log exactly once, at the offset the acknowledgement named.
KILL_AFTER_ACKS = 5000
MESSAGES_AFTER_KILL = 500
PRODUCE_PHASE_TIMEOUT_SECONDS = 60
# Cap on sent-but-unresolved messages, so the kill lands among requests in flight rather than
# behind a long client-side queue.
MAX_OUTSTANDING = 1000


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_sigkill_during_acks_all_produce_loses_no_acknowledged_message(kind, start_broker, new_topic):
    skip_kafka_reference_outside_long_mode(kind)
    broker = start_broker(kind)
    topic = new_topic(broker, partitions=3)

    acknowledged: dict[int, tuple[int, int]] = {}  # message id → (partition, offset)
    failed_ids: list[int] = []

    def on_delivery(error, message):
        message_id = int(message.value())
        if error is None:
            acknowledged[message_id] = (message.partition(), message.offset())
        else:
            failed_ids.append(message_id)

    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "retries": 0,
        "linger.ms": 2,
        "message.timeout.ms": 10000,
        "log_level": 0,  # the connection errors after the kill are expected
    })

    sent_count = 0
    sent_at_kill = None
    deadline = time.monotonic() + PRODUCE_PHASE_TIMEOUT_SECONDS
    while sent_at_kill is None or sent_count < sent_at_kill + MESSAGES_AFTER_KILL:
        assert time.monotonic() < deadline, (
            f"produce phase did not finish in {PRODUCE_PHASE_TIMEOUT_SECONDS}s: "
            f"{len(acknowledged)} acknowledged, {len(failed_ids)} failed, {sent_count} sent"
        )
        if sent_count - len(acknowledged) - len(failed_ids) >= MAX_OUTSTANDING:
            producer.poll(0.01)
            continue
        try:
            producer.produce(topic, value=str(sent_count).encode(), partition=sent_count % 3,
                             on_delivery=on_delivery)
            sent_count += 1
        except BufferError:
            producer.poll(0.05)  # local queue full: let deliveries drain
        producer.poll(0)
        if sent_at_kill is None and len(acknowledged) >= KILL_AFTER_ACKS:
            assert broker.kill() == -9
            sent_at_kill = sent_count

    assert producer.flush(30) == 0, "some deliveries were never reported"
    assert len(acknowledged) + len(failed_ids) == sent_count
    assert len(acknowledged) >= KILL_AFTER_ACKS
    # Most of what was sent after the kill had no broker to go to.
    assert len(failed_ids) >= MESSAGES_AFTER_KILL // 2, (len(failed_ids), sent_count)

    print(f"{kind}: sent {sent_count}, acknowledged {len(acknowledged)}, failed {len(failed_ids)}, "
          f"killed after sending {sent_at_kill}")
    broker.start()
    stored = read_partitions(broker.bootstrap, topic)
    stored_position: dict[int, tuple[int, int]] = {}
    for partition, messages in stored.items():
        for message in messages:
            message_id = int(message.value())
            assert message_id not in stored_position, f"message {message_id} stored twice"
            assert message_id % 3 == partition
            stored_position[message_id] = (partition, message.offset())
        ids = [int(m.value()) for m in messages]
        assert ids == sorted(ids), f"partition {partition} out of send order"

    print(f"{kind}: {len(stored_position)} messages stored after restart")
    missing = sorted(set(acknowledged) - set(stored_position))
    assert not missing, f"{len(missing)} acknowledged messages lost, first {missing[:10]}"
    moved = {i: (acknowledged[i], stored_position[i]) for i in acknowledged if acknowledged[i] != stored_position[i]}
    assert not moved, f"acknowledged offsets changed: {list(moved.items())[:10]}"


def test_skein_rejects_unknown_config_key_at_startup():
    unknown_key = "no.such.broker.setting"
    broker = SkeinBroker(config={"num.partitions": 3, unknown_key: 1})
    if not broker.binary.is_file():
        broker.close()
        pytest.skip(f"skein binary not built: {broker.binary} (run `cargo build --release`)")
    try:
        with pytest.raises(BrokerError) as raised:
            broker.start(timeout=30)
        assert raised.value.exit_code not in (None, 0), str(raised.value)
        assert unknown_key in broker.log_path.read_text(errors="replace"), broker.log_tail()
    finally:
        broker.close()


def test_skein_metrics_listener_answers_health(skein):
    assert http_get_status(f"{skein.metrics_url}/health") == 200
    assert http_get_status(f"{skein.metrics_url}/ready") == 200
