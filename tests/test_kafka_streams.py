"""Kafka Streams with processing.guarantee=exactly_once_v2 through application and broker kills, on one node.

The application is tests/support/java/StreamsWordCount.java (kafka-streams 4.3.1, the jars from
conformance/java/setup): it re-keys one-word input records by their word, which goes through a repartition
topic, counts them in a persistent store backed by a changelog topic, and writes every new count to the output
topic (key = word, value = count). Its record cache is off, so each input record yields exactly one output
record. Every commit (each 100 ms) is one transaction over the repartition, changelog and output records and the
group's offsets of the input and repartition topics.

The test starts the application and, once it is RUNNING, an idempotent producer writes TOTAL_RECORDS one-word
records (a fixed word list and seed) at INPUT_RATE, so both halves of the topology (input -> repartition topic,
repartition topic -> count -> output) work all along. Meanwhile it SIGKILLs and restarts the application,
kill -9's and restarts the broker, and SIGKILLs and restarts the application again, each once the current run
of the application has committed output (its group's repartition-topic offsets moved by RUN_PROGRESS offsets).
Streams then has to restore the store from the changelog, fence the killed instance's producer (the process
id, hence the transactional.id, is kept in the state directory) and read past aborted transactions in the
repartition topic. Once the input is all written and the group (the application.id) has committed offsets at
the end of the input topic and of the repartition topic, the application is stopped with SIGTERM (it must
close cleanly). The input topic must hold exactly what was sent, and a read_committed consumer of the output
must see, for every word, the counts 1, 2, ..., n in order, n being the word's number of input records: a gap
is a lost update, a repeat a duplicated one (a record processed twice, or a store restored from an aborted
transaction), and the store's changelog must end with every word's full count. The kills must also have cut
transactions short: the output holds records of aborted transactions. Runs against Apache Kafka (the oracle)
and Skein.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from support.brokers import BROKER_KINDS, _die_with_parent
from support.java_programs import JAVA_LIBS, java_program_command
from support.kafka_clients import create_topic, end_offsets, read_to_end, unique_topic_name

STREAMS_JAR = JAVA_LIBS / "kafka-streams-4.3.1.jar"
PARTITIONS = 3
TOTAL_RECORDS = 20_000
# Records per second: the input lasts TOTAL_RECORDS / INPUT_RATE = 80 s. On Apache Kafka here all three
# interruptions were over within 30 s of the start (the broker's restart took 14 s of that); Streams consumes
# a backlog of thousands of records within a second or two of a restart, so a faster input would be consumed
# before the interruptions are done.
INPUT_RATE = 250
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
         "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]
# Record n's word is drawn with this seed: the input, hence every word's expected count, is the same every run.
WORDS_SEED = 20_000
# Internal topics (repartition, changelog) on one node.
REPLICATION_FACTOR = 1
# The interruptions, in order: SIGKILL and restart of the application, or kill -9 and restart of the broker.
INTERRUPTIONS = ["app", "broker", "app"]
# Each interruption comes once the current run of the application has moved the group's committed
# repartition-topic offsets by this many (it has committed that much output; 2-3 s of input).
RUN_PROGRESS = 600
APP_RUNNING_TIMEOUT_SECONDS = 90
PROCESSING_DEADLINE_SECONDS = 180
# Stream threads are replaced when they fail; the JVM should not exit by itself, but if it does it is
# restarted, up to this many times.
MAX_UNPLANNED_EXITS = 2
BROKER_RESTART_TIMEOUT_SECONDS = 90
# StreamsWordCount closes within 30 s of SIGTERM; the JVM then needs a moment.
APP_STOP_TIMEOUT_SECONDS = 45
# The input producer's final flush; its records wait out the broker's restart in the client.
INPUT_FLUSH_TIMEOUT_SECONDS = 60
PROGRESS_POLL_SECONDS = 0.2
READ_BACK_TIMEOUT_SECONDS = 60
# Same settings on both brokers (KafkaBroker adds Apache Kafka's single-node transaction log settings).
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 0}


def input_words() -> list[str]:
    rng = random.Random(WORDS_SEED)
    return [rng.choice(WORDS) for _ in range(TOTAL_RECORDS)]


class PacedInput(threading.Thread):
    """Writes record n (key n, value words[n]; the key is not the word, so Streams has to repartition) to
    partition n % PARTITIONS with an idempotent producer, at INPUT_RATE records per second, then flushes.
    `sent` counts the records handed to the client; `failures` holds delivery errors, `unflushed` what the
    final flush left, `error` an exception that ended the thread."""

    def __init__(self, bootstrap: str, topic: str, words: list[str]):
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.topic = topic
        self.words = words
        self.sent = 0
        self.failures: list = []
        self.unflushed: int | None = None
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                                 "linger.ms": 20})
            started = time.monotonic()
            for n, word in enumerate(self.words):
                if self.stopping.is_set():
                    return
                ahead = started + n / INPUT_RATE - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                while True:
                    try:
                        producer.produce(self.topic, key=str(n).encode(), value=word.encode(),
                                         partition=n % PARTITIONS,
                                         on_delivery=lambda error, message: error and self.failures.append(error))
                        break
                    except BufferError:
                        producer.poll(0.1)
                producer.poll(0)
                self.sent = n + 1
            self.unflushed = producer.flush(INPUT_FLUSH_TIMEOUT_SECONDS)
        except BaseException as error:  # reported by the test
            self.error = error


class StreamsApp:
    """StreamsWordCount as a child process; every run appends its stdout and stderr to one log file."""

    def __init__(self, command: list[str], log_path: Path):
        self.command = command
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.run_log_offset = 0  # where the current run's lines begin in the log

    def start(self) -> None:
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"==== start {time.strftime('%H:%M:%S')} ====\n".encode())
            log_file.flush()
            self.run_log_offset = log_file.tell()
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def exit_code(self) -> int | None:
        return self.process.poll()

    def kill(self) -> int | None:
        """SIGKILL and wait; the exit code (None when it was not running)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=10)
        return None

    def stop(self) -> int:
        """SIGTERM and wait: StreamsWordCount exits 0 when Streams closed cleanly."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=APP_STOP_TIMEOUT_SECONDS)

    def run_lines(self) -> list[str]:
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self.run_log_offset)
            return log_file.read().decode(errors="replace").splitlines()

    def wait_running(self, timeout: float) -> float:
        """Seconds until the current run printed "state RUNNING"; fails when it exits or takes longer."""
        started = time.monotonic()
        while not any(line.startswith("state RUNNING") for line in self.run_lines()):
            assert self.exit_code() is None, f"the application exited with {self.exit_code()}\n{self.log_tail()}"
            assert time.monotonic() - started < timeout, (
                f"the application not RUNNING within {timeout}s\n{self.log_tail()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def count_lines(self, prefix: str) -> int:
        return sum(1 for line in self.log_path.read_text(errors="replace").splitlines() if line.startswith(prefix))

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"---- last {lines} lines of {self.log_path} ----\n" + "\n".join(text[-lines:])


def committed_offsets(checker: Consumer, topic: str) -> list[int] | None:
    """The group's committed offsets of the topic's partitions (0 where none), or None while the broker does
    not answer."""
    try:
        committed = checker.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=5)
    except KafkaException:
        return None
    return [max(tp.offset, 0) for tp in sorted(committed, key=lambda tp: tp.partition)]


def sequence_problems(counts_by_word: dict[str, list[int]], expected: Counter) -> list[str]:
    """Every word whose output counts are not exactly 1, 2, ..., expected[word], with where they go wrong."""
    problems = []
    for word in sorted(expected.keys() | counts_by_word.keys()):
        counts = counts_by_word.get(word, [])
        wanted = list(range(1, expected[word] + 1))
        if counts == wanted:
            continue
        first_wrong = next((i for i, (got, want) in enumerate(zip(counts, wanted)) if got != want),
                           min(len(counts), len(wanted)))
        problems.append(f"{word}: {len(counts)} counts for {expected[word]} input records, last "
                        f"{counts[-1] if counts else None}; from output #{first_wrong}: "
                        f"{counts[first_wrong:first_wrong + 5]} (expected {wanted[first_wrong:first_wrong + 5]})")
    return problems


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_streams_exactly_once_v2_counts_every_record_once(kind, start_broker, tmp_path):
    if not STREAMS_JAR.is_file():
        pytest.skip(f"{STREAMS_JAR.name} missing in {JAVA_LIBS} (run conformance/java/setup)")
    command = java_program_command("StreamsWordCount")
    broker = start_broker(kind, BROKER_CONFIG)
    input_topic = create_topic(broker.bootstrap, unique_topic_name("streams-in"), PARTITIONS)
    output_topic = create_topic(broker.bootstrap, unique_topic_name("streams-out"), PARTITIONS)
    application_id = unique_topic_name("streams-wordcount")
    repartition_topic = f"{application_id}-by-word-repartition"
    changelog_topic = f"{application_id}-counts-changelog"
    words = input_words()
    expected = Counter(words)

    app = StreamsApp([*command, broker.bootstrap, application_id, input_topic, output_topic,
                      str(tmp_path / "state"), str(REPLICATION_FACTOR)], tmp_path / "streams-app.log")
    producer = PacedInput(broker.bootstrap, input_topic, words)
    # Reads the group's stable committed offsets as they come (read_uncommitted: no waiting for pending ones).
    checker = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": application_id,
                        "enable.auto.commit": False, "isolation.level": "read_uncommitted"})
    interruptions_done: list[str] = []
    unplanned_exits: list[int] = []
    input_ends: list[int] | None = None
    input_progress = 0
    repartition_progress = 0
    repartition_progress_at_start = 0  # when the current run of the application started
    started = time.monotonic()

    def details() -> str:
        return (f"{time.monotonic() - started:.0f}s, input sent {producer.sent}/{TOTAL_RECORDS}, group offsets: "
                f"input {input_progress}, repartition {repartition_progress}; interruptions {interruptions_done}, "
                f"unplanned app exits {unplanned_exits}, replaced stream threads "
                f"{app.count_lines('stream thread failed')}\n{app.log_tail()}\n{broker.log_tail(40)}")

    try:
        app.start()
        first_running = app.wait_running(APP_RUNNING_TIMEOUT_SECONDS)
        producer.start()
        while True:
            assert time.monotonic() - started < PROCESSING_DEADLINE_SECONDS, (
                f"input not processed within {PROCESSING_DEADLINE_SECONDS}s: {details()}")
            exit_code = app.exit_code()
            if exit_code is not None:
                unplanned_exits.append(exit_code)
                assert len(unplanned_exits) <= MAX_UNPLANNED_EXITS, f"the application keeps exiting: {details()}"
                repartition_progress_at_start = repartition_progress
                app.start()
            if input_ends is None and not producer.is_alive():
                assert producer.error is None and producer.failures == [] and producer.unflushed == 0, (
                    f"input production failed: {producer.error!r}, delivery errors {producer.failures[:5]}, "
                    f"{producer.unflushed} records not flushed: {details()}")
                input_ends = end_offsets(broker.bootstrap, input_topic, PARTITIONS)
                assert sum(input_ends) == TOTAL_RECORDS, f"input end offsets {input_ends}: {details()}"
            input_offsets = committed_offsets(checker, input_topic)
            repartition_offsets = committed_offsets(checker, repartition_topic)
            if input_offsets is not None and repartition_offsets is not None:
                input_progress, repartition_progress = sum(input_offsets), sum(repartition_offsets)
                done = len(interruptions_done)
                if input_offsets == input_ends:
                    assert done == len(INTERRUPTIONS), f"input consumed before every interruption: {details()}"
                    # Everything is processed once the second sub-topology has read the whole repartition topic
                    # too (Streams commits its consumer's position, which is past the transaction markers).
                    try:
                        repartition_ends = end_offsets(broker.bootstrap, repartition_topic, PARTITIONS)
                    except KafkaException:
                        repartition_ends = None
                    if repartition_offsets == repartition_ends:
                        break
                elif done < len(INTERRUPTIONS) and repartition_progress - repartition_progress_at_start >= RUN_PROGRESS:
                    killed_at = time.monotonic()
                    if INTERRUPTIONS[done] == "app":
                        assert app.kill() == -signal.SIGKILL, f"the application was not running: {details()}"
                        app.start()
                    else:
                        assert broker.kill() == -signal.SIGKILL
                        broker.start(timeout=BROKER_RESTART_TIMEOUT_SECONDS)
                    repartition_progress_at_start = repartition_progress
                    restart = (f", back after {time.monotonic() - killed_at:.1f}s" if INTERRUPTIONS[done] == "broker"
                               else "")
                    interruptions_done.append(
                        f"{INTERRUPTIONS[done]} killed at {killed_at - started:.0f}s (group offsets: input "
                        f"{input_progress}, repartition {repartition_progress}){restart}")
            time.sleep(PROGRESS_POLL_SECONDS)
        processing_seconds = time.monotonic() - started
        stop_code = app.stop()
        assert stop_code == 0, f"the application did not close cleanly on SIGTERM (exit {stop_code}): {details()}"
    finally:
        producer.stopping.set()
        app.kill()
        checker.close()

    # The input is what was sent, once, in order: otherwise the counts below would be checked against the
    # wrong numbers (and the broker lost or duplicated an idempotent producer's records).
    stored = read_to_end(broker.bootstrap, input_topic, PARTITIONS, "read_committed", READ_BACK_TIMEOUT_SECONDS)
    for partition in range(PARTITIONS):
        stored_words = [message.value().decode() for message in stored[partition]]
        assert stored_words == words[partition::PARTITIONS], (
            f"input partition {partition} holds {len(stored_words)} records, not the "
            f"{len(words[partition::PARTITIONS])} sent in order: {details()}")

    output = read_to_end(broker.bootstrap, output_topic, PARTITIONS, "read_committed", READ_BACK_TIMEOUT_SECONDS)
    counts_by_word: dict[str, list[int]] = {}
    partitions_by_word: dict[str, set[int]] = {}
    for partition in range(PARTITIONS):
        for message in output[partition]:
            word = message.key().decode()
            counts_by_word.setdefault(word, []).append(int(message.value()))
            partitions_by_word.setdefault(word, set()).add(partition)
    # Streams' producer puts a key in one partition: its output order is the order of that partition.
    assert all(len(partitions) == 1 for partitions in partitions_by_word.values()), partitions_by_word
    problems = sequence_problems(counts_by_word, expected)
    committed_records = sum(len(messages) for messages in output.values())
    assert problems == [], (f"{len(problems)} of {len(expected)} words' counts are not 1..n in the committed "
                            f"output ({committed_records} records for {TOTAL_RECORDS} input records):\n"
                            + "\n".join(problems) + f"\n{details()}")
    assert committed_records == TOTAL_RECORDS

    # What a restarted instance restores the store from: the changelog's last committed value of every word
    # (an 8-byte big-endian count, Serdes.Long) is the word's full count. Only the last value: a compacted
    # topic may have dropped earlier ones.
    changelog = read_to_end(broker.bootstrap, changelog_topic, PARTITIONS, "read_committed",
                            READ_BACK_TIMEOUT_SECONDS)
    last_stored = {message.key().decode(): int.from_bytes(message.value(), "big", signed=True)
                   for partition in range(PARTITIONS) for message in changelog[partition]}
    assert last_stored == dict(expected), f"changelog {changelog_topic}: last counts {last_stored}, input {expected}"

    # The kills did cut transactions short: the output topic holds records of aborted transactions as well.
    all_output = read_to_end(broker.bootstrap, output_topic, PARTITIONS, "read_uncommitted",
                             READ_BACK_TIMEOUT_SECONDS)
    aborted_records = sum(len(messages) for messages in all_output.values()) - committed_records
    assert aborted_records > 0, f"no kill interrupted a transaction that had written output: {details()}"
    print(f"{kind}: {TOTAL_RECORDS} records counted exactly once, processed in {processing_seconds:.0f}s (first "
          f"RUNNING after {first_running:.1f}s), {aborted_records} output records aborted; "
          f"{details().splitlines()[0]}")
