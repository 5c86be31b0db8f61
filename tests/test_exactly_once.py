"""Exactly-once processing end to end: a consume-transform-produce application (tests/support/eos_app.py:
read_committed consumer, transactional producer, the consumed positions committed in each transaction
with send_offsets_to_transaction) processes 100,000 numbered records while the test SIGKILLs and restarts
the application four times and kill -9's and restarts the broker once. A read_committed consumer of the
output must then see every input number exactly once, in input order per partition. Runs against Apache
Kafka (the oracle) and Skein."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from support.brokers import BROKER_KINDS, _die_with_parent, skip_kafka_reference_outside_long_mode
from support.kafka_clients import create_topic, end_offsets, read_to_end, unique_topic_name

PARTITIONS = 3
TOTAL_MESSAGES = 100_000
# The interruptions, in order: SIGKILL and restart of the application, or kill -9 and restart of the broker.
INTERRUPTIONS = ["app", "app", "broker", "app", "app"]
# Each interruption comes once the application has committed a random number of transactions (within
# these bounds) since the previous one: it is processing, and the kill lands anywhere in a transaction.
# Counted in transactions rather than time, so on a fast broker too the input (500 transactions of
# eos_app.BATCH_SIZE records) outlasts the interruptions.
COMMITS_BEFORE_INTERRUPTION = (1, 20)
PROCESSING_DEADLINE_SECONDS = 270
# The application exits by itself on a fatal client error or when a client call is stuck (its watchdog,
# which librdkafka can need after the broker restart); it is restarted, up to this many times.
MAX_UNPLANNED_EXITS = 5
BROKER_RESTART_TIMEOUT_SECONDS = 90
APP_STOP_TIMEOUT_SECONDS = 30
READ_BACK_TIMEOUT_SECONDS = 120
# Same settings on both brokers (KafkaBroker adds Apache Kafka's single-node transaction log settings).
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 0}
EOS_APP = Path(__file__).resolve().parent / "support" / "eos_app.py"


def produce_input(bootstrap: str, topic: str, total: int = TOTAL_MESSAGES, partitions: int = PARTITIONS) -> None:
    """Record n (value: n in ASCII) to partition n % partitions for n below `total`, so each partition holds an
    increasing run; idempotent and acks=all."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    failures = []
    for n in range(total):
        while True:
            try:
                producer.produce(topic, value=str(n).encode(), partition=n % partitions,
                                 on_delivery=lambda error, message: error and failures.append(error))
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0, "the input was not delivered within 60s"
    assert failures == [], f"{len(failures)} input records failed, first {failures[:3]}"


class AppProcess:
    """eos_app.py as a child process; every run appends its output to one log file."""

    def __init__(self, arguments: list[str], log_path: Path):
        self.arguments = arguments
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.log_read_offset = 0

    def start(self) -> None:
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"==== start {time.strftime('%H:%M:%S')} ====\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(
                [sys.executable, str(EOS_APP), *self.arguments], stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )

    def exit_code(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=APP_STOP_TIMEOUT_SECONDS)

    def new_commits(self) -> int:
        """How many transactions the application reported committed since the last call."""
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self.log_read_offset)
            text = log_file.read()
        complete = text[:text.rfind(b"\n") + 1]  # a line still being written is read next time
        self.log_read_offset += len(complete)
        return sum(1 for line in complete.splitlines() if line.startswith(b"committed "))

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"---- last {lines} lines of {self.log_path} ----\n" + "\n".join(text[-lines:])


def committed_offsets(checker: Consumer, topic: str) -> list[int] | None:
    """The group's committed input offsets, or None while the broker does not answer."""
    try:
        committed = checker.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=5)
    except KafkaException:
        return None
    return [max(tp.offset, 0) for tp in sorted(committed, key=lambda tp: tp.partition)]


@pytest.mark.timeout(360)
@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_exactly_once_through_application_and_broker_kills(kind, start_broker, tmp_path):
    skip_kafka_reference_outside_long_mode(kind)
    broker = start_broker(kind, BROKER_CONFIG)
    input_topic = create_topic(broker.bootstrap, unique_topic_name("eos-in"), PARTITIONS)
    output_topic = create_topic(broker.bootstrap, unique_topic_name("eos-out"), PARTITIONS)
    group_id = unique_topic_name("eos-group")
    produce_input(broker.bootstrap, input_topic)
    input_ends = end_offsets(broker.bootstrap, input_topic, PARTITIONS)
    assert sum(input_ends) == TOTAL_MESSAGES

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    app = AppProcess([broker.bootstrap, input_topic, output_topic, group_id, unique_topic_name("eos-app")],
                     tmp_path / "eos_app.log")
    # Reads the group's offsets as they are committed (read_uncommitted: never waits for pending ones).
    checker = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group_id, "enable.auto.commit": False})
    interruptions_done: list[str] = []
    unplanned_exits: list[int] = []
    commits_since_interruption = 0
    commits_wanted = rng.randint(*COMMITS_BEFORE_INTERRUPTION)
    progress = 0
    started = time.monotonic()

    def details() -> str:
        return (f"seed {seed}, {time.monotonic() - started:.0f}s, group progress {progress}/{TOTAL_MESSAGES}, "
                f"interruptions {interruptions_done}, unplanned app exits {unplanned_exits}\n"
                f"{app.log_tail()}\n{broker.log_tail(30)}")

    try:
        app.start()
        next_progress_check = 0.0
        while True:
            assert time.monotonic() - started < PROCESSING_DEADLINE_SECONDS, (
                f"input not processed within {PROCESSING_DEADLINE_SECONDS}s: {details()}")
            exit_code = app.exit_code()
            if exit_code is not None:
                unplanned_exits.append(exit_code)
                assert len(unplanned_exits) <= MAX_UNPLANNED_EXITS, f"the application keeps failing: {details()}"
                app.start()
            commits_since_interruption += app.new_commits()
            if len(interruptions_done) < len(INTERRUPTIONS) and commits_since_interruption >= commits_wanted:
                target = INTERRUPTIONS[len(interruptions_done)]
                if target == "app":
                    app.kill()
                    app.new_commits()  # lines the killed run wrote last
                    app.start()
                else:
                    assert broker.kill() == -9
                    broker.start(timeout=BROKER_RESTART_TIMEOUT_SECONDS)
                interruptions_done.append(f"{target} killed after {commits_since_interruption} commits, "
                                          f"{time.monotonic() - started:.0f}s")
                commits_since_interruption = 0
                commits_wanted = rng.randint(*COMMITS_BEFORE_INTERRUPTION)
            if time.monotonic() >= next_progress_check:
                offsets = committed_offsets(checker, input_topic)
                if offsets is not None:
                    progress = sum(offsets)
                    if offsets == input_ends:
                        break
                next_progress_check = time.monotonic() + 0.5
            time.sleep(0.01)
        processing_seconds = time.monotonic() - started
        assert len(interruptions_done) == len(INTERRUPTIONS), f"finished before every interruption: {details()}"
        assert app.stop() == 0, f"the application did not stop cleanly: {details()}"
    finally:
        app.kill()
        checker.close()

    output = read_to_end(broker.bootstrap, output_topic, PARTITIONS, "read_committed", READ_BACK_TIMEOUT_SECONDS)
    numbers = [int(message.value().removeprefix(b"processed-")) for p in range(PARTITIONS) for message in output[p]]
    counts = Counter(numbers)
    missing = sorted(set(range(TOTAL_MESSAGES)) - counts.keys())
    duplicated = sorted(n for n, count in counts.items() if count > 1)
    if kind == "kafka" and duplicated and not missing:
        # The reference itself once committed one 200-record transaction's output twice around its kill -9
        # (seed 875095970, the app's watchdog had exited once); recorded, not a failure of this suite.
        # Skein is held to exactly once.
        pytest.xfail(f"Apache Kafka committed {len(duplicated)} records twice: {details()}")
    assert (len(missing), len(duplicated)) == (0, 0), (
        f"{len(missing)} numbers missing (first {missing[:10]}), {len(duplicated)} duplicated "
        f"(first {duplicated[:10]}) in {len(numbers)} committed output records: {details()}")
    assert len(numbers) == TOTAL_MESSAGES
    for p in range(PARTITIONS):
        partition_numbers = [int(message.value().removeprefix(b"processed-")) for message in output[p]]
        assert partition_numbers == list(range(p, TOTAL_MESSAGES, PARTITIONS)), f"partition {p} out of input order"

    # The kills did interrupt transactions: the log holds records of aborted transactions as well.
    all_output = read_to_end(broker.bootstrap, output_topic, PARTITIONS, "read_uncommitted", READ_BACK_TIMEOUT_SECONDS)
    aborted_records = sum(len(messages) for messages in all_output.values()) - TOTAL_MESSAGES
    if kind == "kafka" and aborted_records == 0:
        # Apache Kafka only runs here as the oracle: a run whose kills all fell between its transactions
        # shows nothing wrong with it (seen once).
        pytest.xfail(f"no kill interrupted a transaction of Apache Kafka's run: {details()}")
    assert aborted_records > 0, f"no kill interrupted a transaction: {details()}"
    print(f"{kind}: processed {TOTAL_MESSAGES} records in {processing_seconds:.0f}s, {aborted_records} output "
          f"records aborted; {details().splitlines()[0]}")
