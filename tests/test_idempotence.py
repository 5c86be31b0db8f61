"""The idempotent producer: retries the broker has already stored must not be stored again, and a
producer's records stay in send order per partition, across broker crashes.

(a) confluent-kafka (librdkafka) with enable.idempotence=true and 5 requests in flight sends 100,000
    numbered messages while the test SIGKILLs and restarts the broker twice; librdkafka resends every
    request that was in flight with the same producer id, epoch and sequence numbers, and the broker must
    answer a batch it had already stored with the batch's original offset instead of storing it again.
    Every message must then be in the log exactly once, at the offset its acknowledgement named, in send
    order. (With enable.idempotence=false the same run stores some resent messages twice, against Apache
    Kafka too: the test can tell.)
(b) the Java client and kafka-python, idempotent, through the conformance scenario `idempotent-produce`.
Everything runs against Apache Kafka (the oracle) and against Skein.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections import Counter

import pytest
from confluent_kafka import Producer

from support.brokers import BROKER_KINDS, REPO_ROOT, skip_kafka_reference_outside_long_mode
from support.kafka_clients import high_watermarks, read_partitions

PARTITIONS = 3
TOTAL_MESSAGES = 100_000
# SIGKILL the broker once this many messages are acknowledged (the second kill comes after the first
# restart), so both crashes land mid-stream with requests in flight.
KILL_AT_ACKNOWLEDGED = (25_000, 60_000)
# Generous enough that librdkafka keeps retrying through both restarts; bounded so a broker that never
# answers makes the deliveries fail instead of hanging the test.
MESSAGE_TIMEOUT_MS = 90_000
BROKER_RESTART_TIMEOUT_SECONDS = 60
# Bounds of the phases; with broker start-up they stay within the test's 300 s timeout.
PRODUCE_PHASE_SECONDS = 150
FLUSH_SECONDS = 60
READ_BACK_TIMEOUT_SECONDS = 45
# librdkafka log lines kept for the failure message (the interesting ones: errors, retries, epoch bumps).
KEPT_LOG_LINES = 40


def message_partition(message_id: int) -> int:
    return message_id % PARTITIONS


class LogRecorder(logging.Handler):
    """Keeps librdkafka's log lines (warnings and worse), so a failure can show the broker errors.
    Refused connections while the broker is down are expected and left out."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if "Connection refused" not in line:
            self.lines.append(line)


def recording_logger(name: str) -> tuple[logging.Logger, LogRecorder]:
    recorder = LogRecorder()
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers = [recorder]
    logger.setLevel(logging.WARNING)
    return logger, recorder


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_idempotent_producer_survives_two_broker_kills_without_duplicates(kind, start_broker, new_topic):
    skip_kafka_reference_outside_long_mode(kind)
    broker = start_broker(kind)
    topic = new_topic(broker, partitions=PARTITIONS)

    acknowledged: dict[int, tuple[int, int]] = {}  # message id -> (partition, offset) from its delivery report
    failed: dict[int, str] = {}  # message id -> error
    client_errors: list[str] = []
    # Messages librdkafka transmitted more than once (statistics: per partition, transmitted minus produced).
    resent_messages = [0]

    def on_delivery(error, message):
        message_id = int(message.value())
        if error is None:
            if message_id in acknowledged:
                client_errors.append(f"message {message_id} acknowledged twice")
            acknowledged[message_id] = (message.partition(), message.offset())
        else:
            failed[message_id] = f"{error.name()} ({error.code()}): {error.str()}"

    def on_error(error):
        # Connection errors while the broker is down are expected; a fatal error ends the producer.
        if error.fatal():
            client_errors.append(f"FATAL {error.name()} ({error.code()}): {error.str()}")

    def on_statistics(stats_json: str):
        partitions = json.loads(stats_json).get("topics", {}).get(topic, {}).get("partitions", {})
        resent = sum(max(0, partitions[str(p)]["txmsgs"] - partitions[str(p)]["msgs"])
                     for p in range(PARTITIONS) if str(p) in partitions)
        resent_messages[0] = max(resent_messages[0], resent)

    logger, log_recorder = recording_logger(f"librdkafka-idempotence-{kind}")
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "max.in.flight.requests.per.connection": 5,
        "retries": 2_147_483_647,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
        # One message per batch and request, and the whole stream handed to librdkafka at once: the
        # broker works through 100,000 requests for several seconds with 5 always in flight, so each
        # kill cuts requests off mid-stream, even on a broker much faster than this loop.
        "linger.ms": 0,
        "batch.num.messages": 1,
        "queue.buffering.max.messages": 2 * TOTAL_MESSAGES,
        "retry.backoff.ms": 100,
        "retry.backoff.max.ms": 1000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
        "statistics.interval.ms": 500,
        "stats_cb": on_statistics,
        "error_cb": on_error,
        "logger": logger,
    })

    kills: list[dict] = []
    next_id = 0
    deadline = time.monotonic() + PRODUCE_PHASE_SECONDS

    def progress() -> str:
        return (f"{next_id} sent, {len(acknowledged)} acknowledged, {len(failed)} failed "
                f"(first {sorted(failed.items())[:3]}), kills {kills}, client errors {client_errors[:5]}")

    def librdkafka_log() -> str:
        return "librdkafka log (last lines):\n" + "\n".join(log_recorder.lines[-KEPT_LOG_LINES:])

    while next_id < TOTAL_MESSAGES or len(kills) < len(KILL_AT_ACKNOWLEDGED):
        assert time.monotonic() < deadline, (
            f"produce phase exceeded {PRODUCE_PHASE_SECONDS} s: {progress()}\n{librdkafka_log()}")
        assert not client_errors, f"producer failed: {progress()}\n{librdkafka_log()}"
        if len(kills) < len(KILL_AT_ACKNOWLEDGED) and len(acknowledged) >= KILL_AT_ACKNOWLEDGED[len(kills)]:
            unresolved = next_id - len(acknowledged) - len(failed)
            assert broker.kill() == -9
            kills.append({"acknowledged": len(acknowledged), "sent": next_id, "unresolved": unresolved})
            # Restarted from this thread: the broker process dies with the thread that started it
            # (PR_SET_PDEATHSIG). librdkafka's own threads keep retrying meanwhile.
            broker.start(timeout=BROKER_RESTART_TIMEOUT_SECONDS)
        if next_id < TOTAL_MESSAGES:
            try:
                producer.produce(topic, value=str(next_id).encode(), partition=message_partition(next_id),
                                 on_delivery=on_delivery)
                next_id += 1
            except BufferError:
                producer.poll(0.05)  # local queue full: serve delivery reports first
            if next_id % 1000 == 0:
                producer.poll(0)
        else:
            producer.poll(0.01)

    unreported = producer.flush(FLUSH_SECONDS)
    producer.poll(1.0)  # one more statistics report after the last deliveries
    print(f"{kind}: {next_id} sent, {len(acknowledged)} acknowledged, {len(failed)} failed, kills {kills}, "
          f"{resent_messages[0]} messages sent again after the kills")

    assert unreported == 0, f"{unreported} messages without a delivery report: {progress()}\n{librdkafka_log()}"
    # Both kills hit a live stream: messages were sent but not yet acknowledged, and more came after.
    for kill in kills:
        assert kill["unresolved"] > 0 and kill["acknowledged"] < TOTAL_MESSAGES, f"kill not mid-stream: {kills}"
    assert not client_errors, f"producer failed: {progress()}\n{librdkafka_log()}"
    first_failures = sorted(failed.items())[:10]
    assert not failed, f"{len(failed)} messages failed, first {first_failures}\n{librdkafka_log()}"
    assert len(acknowledged) == TOTAL_MESSAGES
    # The crashes cut requests off: librdkafka resent their batches (same producer id, epoch and sequence
    # numbers), which the broker must not store a second time if it had stored them before the kill.
    assert resent_messages[0] > 0, f"no message was sent twice, so no duplicate could arise: {kills}"

    stored = read_partitions(broker.bootstrap, topic, PARTITIONS, timeout=READ_BACK_TIMEOUT_SECONDS)
    for partition in range(PARTITIONS):
        ids = [int(message.value()) for message in stored[partition]]
        offsets = [message.offset() for message in stored[partition]]
        assert offsets == list(range(len(ids))), f"partition {partition}: offsets not 0, 1, 2, ..."
        duplicates = sorted(i for i, times in Counter(ids).items() if times > 1)
        assert not duplicates, f"partition {partition}: {len(duplicates)} messages stored twice, first {duplicates[:10]}"
        wrong_partition = [i for i in ids if message_partition(i) != partition]
        assert not wrong_partition, f"partition {partition} holds messages of other partitions: {wrong_partition[:10]}"
        # Ids sent to a partition increase in send order, so the log must hold them increasing too.
        reordered = [(offset, ids[offset - 1], ids[offset]) for offset in range(1, len(ids)) if ids[offset] <= ids[offset - 1]]
        assert not reordered, f"partition {partition} out of send order at (offset, previous id, id): {reordered[:10]}"
        assert ids == list(range(partition, TOTAL_MESSAGES, PARTITIONS)), f"partition {partition}: messages missing"
        moved = [(i, acknowledged[i], (partition, offset)) for offset, i in enumerate(ids)
                 if acknowledged[i] != (partition, offset)]
        assert not moved, f"acknowledged at one offset, stored at another (id, acked, stored): {moved[:10]}"
    # Nothing after the last message either.
    expected_counts = [len(range(partition, TOTAL_MESSAGES, PARTITIONS)) for partition in range(PARTITIONS)]
    assert high_watermarks(broker.bootstrap, topic) == expected_counts


# ---------------------------------------------------------------------------------------------------
# (b) other clients' idempotent producers, through the conformance scenario.

DRIVER_CLIENTS = ["java", "kafka-python"]
DRIVER_SETUP_TIMEOUT_SECONDS = 600
DRIVER_TIMEOUT_SECONDS = 180


@pytest.fixture(scope="module")
def built_drivers():
    """Runs each driver's setup once (a quick no-op when it is up to date), so the driver matches its source."""
    for client in DRIVER_CLIENTS:
        setup = REPO_ROOT / "conformance" / client / "setup"
        result = subprocess.run([str(setup)], cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=DRIVER_SETUP_TIMEOUT_SECONDS)
        assert result.returncode == 0, f"{setup} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("client", DRIVER_CLIENTS)
def test_idempotent_producer_of_other_clients_reads_back_once(client, broker, new_topic, built_drivers):
    topic = new_topic(broker, partitions=PARTITIONS)
    driver = REPO_ROOT / "conformance" / client / "run"
    result = subprocess.run(
        [str(driver), "--bootstrap", broker.bootstrap, "--scenario", "idempotent-produce", "--topic", topic],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=DRIVER_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, (
        f"{client} idempotent-produce exited {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-5000:]}"
    )
    # 10000 messages, message i in partition i % 3; the driver checked every one of them byte for byte.
    assert high_watermarks(broker.bootstrap, topic) == [3334, 3333, 3333]
