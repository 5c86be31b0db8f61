"""Kafka Streams with processing.guarantee=exactly_once_v2 through application and broker kills: on one node, and on
a 3-node cluster whose coordinators and partition leaders are killed.

The application is tests/support/java/StreamsWordCount.java (kafka-streams 4.3.1, the jars from
conformance/java/setup): it re-keys one-word input records by their word, which goes through a repartition
topic, counts them in a persistent store backed by a changelog topic, and writes every new count to the output
topic (key = word, value = count). Its record cache is off, so each input record yields exactly one output
record. Every commit (each 100 ms) is one transaction over the repartition, changelog and output records and the
group's offsets of the input and repartition topics.

Both tests share one run (WordCountRun): the application is started and, once it is RUNNING, an idempotent
producer writes TOTAL_RECORDS one-word records (a fixed word list and seed) at INPUT_RATE, so both halves of the
topology (input -> repartition topic, repartition topic -> count -> output) work all along. Meanwhile the test
interrupts it, in a fixed order, each time once the current run of the application has committed output since
the previous interruption (its group's repartition-topic offsets moved by RUN_PROGRESS offsets). Streams then has
to restore the store from the changelog, fence the killed instance's producer (the process id, hence the
transactional.id, is kept in the state directory) and read past aborted transactions in the repartition topic.
Should the application exit by itself (failed stream threads are replaced, so it should not), it is restarted,
up to MAX_UNPLANNED_EXITS times.

The application's SIGKILL is made to cut one of its transactions short with output records in the log, not left to
luck (broker kills need not abort anything: a group's members outlive a coordinator move). Its transactional id is
found with ListTransactions (Streams' ids begin with the application.id); then
support.open_transactions.kill_in_open_transaction polls DescribeTransactions until that transaction is Ongoing
with an output partition in it, freezes the application (SIGSTOP), and SIGKILLs it once DescribeTransactions still
names the same Ongoing transaction around a ListOffsets that shows an output partition's last stable offset
(read_committed) below its high watermark (read_uncommitted). Otherwise (it was committing, or its records were not
in the log yet) the application runs on (SIGCONT) and is caught again, for up to CATCH_TRANSACTION_SECONDS, after
which the test fails. After the kill the transaction must still be Ongoing with those records unstable; the
restarted application aborts it. StreamsWordCount's producer has linger.ms 0, so a transaction's records reach the
log as they are processed, not in one batch just before the commit: the application is mostly in such a state.

Once the input is all written and the group (the application.id) has committed
offsets at the end of the input topic and of the repartition topic, the application is stopped with SIGTERM (it
must close cleanly). The input topic must hold exactly what was sent, and a read_committed consumer of the output
must see, for every word, the counts 1, 2, ..., n in order, n being the word's number of input records: a gap is
a lost update, a repeat a duplicated one (a record processed twice, or a store restored from an aborted
transaction), and the store's changelog must end with every word's full count. The kills must also have cut
transactions short: the output holds records of aborted transactions, at least those the application's kills left
in open transactions (from the last stable offset to the high watermark at each kill).

- One node (test_streams_exactly_once_v2_counts_every_record_once): every topic has one replica. The
  interruptions: SIGKILL and restart of the application, kill -9 and restart of the broker, SIGKILL and restart of
  the application.
- Three nodes (test_streams_exactly_once_v2_on_a_cluster): support.cluster's cluster, the application given all
  three brokers as its bootstrap. The input and output topics are created with replication factor 3, Streams
  creates its repartition and changelog topics with 3 too (the application's `replication.factor`), every topic
  has min.insync.replicas=2 (the brokers' default), and __consumer_offsets and __transaction_state are replicated
  3 times (support.cluster.CLUSTER_CONFIG), in INTERNAL_TOPIC_PARTITIONS partitions each. The interruptions:
  SIGKILL of the broker coordinating the group (the application.id), of the transaction coordinator of the
  application's transactional id (found with ListTransactions: the id Streams' producer uses begins with the
  application.id), of the application (restarted at once), and of the leader of repartition partition 0. A broker
  is killed only once every partition of the six topics is led with its full ISR; a coordinator is found as Kafka
  places it (support.coordinators: the leader of its partition of the internal topic, from Metadata) and a
  FindCoordinator request must name the same broker. After the kill another broker must take the role over
  (asked of the survivors) within FAILOVER_SECONDS; then the killed broker is started again and must be back
  (ready, listed in Metadata) before the test goes on. On a failure every broker's log is copied into the test's
  tmp_path (broker-N.log), next to the application's (streams-app.log).

Both run against Apache Kafka (the oracle) and Skein. The cluster test's Apache Kafka run, minutes of three Kafka
nodes and a Streams JVM, happens in long mode only (SKEIN_LONG=1, support.brokers); Skein's always runs.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from support.brokers import BROKER_KINDS, _die_with_parent, skip_kafka_reference_outside_long_mode
from support.cluster import make_cluster, skip_unless_cluster_available, started
from support.coordinators import (GROUP, OFFSETS_TOPIC, TRANSACTION, TRANSACTION_STATE_TOPIC, agreed_coordinator,
                                  describe_transaction, list_transactions)
from support.java_programs import JAVA_LIBS, java_program_command
from support.kafka_clients import create_topic, end_offsets, read_to_end, unique_topic_name
from support.open_transactions import kill_in_open_transaction
from support.replication_checker import (Unmet, create_replicated_topic, partition_states, poll_until,
                                         wait_for_full_isr)
from test_replication import REPLICATION_CONFIG, TOPIC_CONFIG

STREAMS_JAR = JAVA_LIBS / "kafka-streams-4.3.1.jar"
PARTITIONS = 3
TOTAL_RECORDS = 20_000
# Records per second: the input lasts TOTAL_RECORDS / INPUT_RATE = 80 s. On Apache Kafka here all three
# interruptions of one node were over within 30 s of the start (the broker's restart took 14 s of that), and the
# last of the four on three nodes began 57-65 s after it (each broker kill took 17-21 s from the kill until the
# broker was back; 7-11 s on Skein, whose last began after 30-38 s);
# Streams consumes a backlog of thousands of records within a second or two of a restart, so a faster input would
# be consumed before the interruptions are done.
INPUT_RATE = 250
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
         "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]
# Record n's word is drawn with this seed: the input, hence every word's expected count, is the same every run.
WORDS_SEED = 20_000
# The application's SIGKILL and restart (an interruption of either test).
APP = "app"
# Each interruption comes once the current run of the application has moved the group's committed
# repartition-topic offsets by this many (it has committed that much output; 2-3 s of input).
RUN_PROGRESS = 600
APP_RUNNING_TIMEOUT_SECONDS = 90
# The application's transactional id is listed (ListTransactions) within this before its kill, and the application
# is caught with a transaction Ongoing with records in the output within this (support.open_transactions; Streams
# commits every 100 ms, and its transaction holds output records most of the time, so the first freeze usually does).
TRANSACTIONAL_ID_SECONDS = 30
CATCH_TRANSACTION_SECONDS = 30
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

# One node: topics (the internal ones too) with one replica; the interruptions, in order: SIGKILL and restart of
# the application, or kill -9 and restart of the broker.
REPLICATION_FACTOR = 1
BROKER = "broker"
INTERRUPTIONS = [APP, BROKER, APP]
PROCESSING_DEADLINE_SECONDS = 180
# Same settings on both brokers (KafkaBroker adds Apache Kafka's single-node transaction log settings).
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 0}

# Three nodes: every topic with 3 replicas; the interruptions, in order (each a SIGKILL, then a restart).
CLUSTER_REPLICATION_FACTOR = 3
GROUP_COORDINATOR = "group coordinator"
TRANSACTION_COORDINATOR = "transaction coordinator"
REPARTITION_LEADER = "leader of repartition partition 0"
CLUSTER_INTERRUPTIONS = [GROUP_COORDINATOR, TRANSACTION_COORDINATOR, APP, REPARTITION_LEADER]
# Partitions of __consumer_offsets and __transaction_state (few: a quick start; both brokers take both settings).
INTERNAL_TOPIC_PARTITIONS = 5
# On top of support.cluster.CLUSTER_CONFIG, which replicates both internal topics 3 times with
# transaction.state.log.min.isr 2: test_replication's REPLICATION_CONFIG (a follower is dropped from the ISR after
# 10 s behind, no unclean leader election), and min.insync.replicas=2 for every topic, Streams' own included.
STREAMS_CLUSTER_CONFIG = {
    **REPLICATION_CONFIG,
    "min.insync.replicas": 2,
    "group.initial.rebalance.delay.ms": 0,
    "offsets.topic.num.partitions": INTERNAL_TOPIC_PARTITIONS,
    "transaction.state.log.num.partitions": INTERNAL_TOPIC_PARTITIONS,
}
# Every partition of the six topics is back to its full ISR within this (before a broker kill).
CATCH_UP_SECONDS = 60
# Metadata's placement and FindCoordinator agree on a coordinator, and ListTransactions finds the application's
# transactional id, within this.
AGREE_SECONDS = 30
# Another broker leads a killed broker's partition (and coordinates) this long after the kill (its 6 s session,
# the election, slack), before the killed broker is started again.
FAILOVER_SECONDS = 30
# Each broker interruption blocks the test up to a full ISR, the failover and the restart.
CLUSTER_PROCESSING_DEADLINE_SECONDS = 300
# The cluster's start, the processing, the application's stop and the read-backs.
CLUSTER_TEST_TIMEOUT_SECONDS = 600


def input_words() -> list[str]:
    rng = random.Random(WORDS_SEED)
    return [rng.choice(WORDS) for _ in range(TOTAL_RECORDS)]


def streams_command() -> list[str]:
    """The command running StreamsWordCount (compiled); skips the test when the jars or javac are missing."""
    if not STREAMS_JAR.is_file():
        pytest.skip(f"{STREAMS_JAR.name} missing in {JAVA_LIBS} (run conformance/java/setup)")
    return java_program_command("StreamsWordCount")


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


def streams_transactional_id(everyone: list[str], application_id: str) -> str | Unmet:
    """The transactional id of the application's producer, from ListTransactions asked of every broker: Streams'
    ids begin with the application.id. The one whose transaction started last when there are several (a replaced
    stream thread takes another); Unmet while there is none."""
    ids = set()
    for bootstrap in everyone:
        ids |= {listed.transactional_id for listed in list_transactions(bootstrap)
                if listed.transactional_id.startswith(f"{application_id}-")}
    if len(ids) <= 1:
        return next(iter(ids)) if ids else Unmet(f"no transactional id beginning with {application_id}-")
    return max(ids, key=lambda transactional_id: describe_transaction(everyone, transactional_id).start_time_ms)


class WordCountRun:
    """One word count through interruptions, as both tests run it: the application (StreamsWordCount, its internal
    topics with `replication_factor` replicas), its paced input, a consumer of its group that reads the committed
    offsets (never joining), the interruptions, and the checks of what was processed.

    `broker_logs()` gives the brokers' log tails for failure messages."""

    def __init__(self, kind: str, command: list[str], bootstrap: str, input_topic: str, output_topic: str,
                 replication_factor: int, tmp_path: Path, broker_logs: Callable[[], str]):
        self.kind = kind
        self.bootstrap = bootstrap
        self.everyone = bootstrap.split(",")  # every broker's address
        self.input_topic = input_topic
        self.output_topic = output_topic
        self.application_id = unique_topic_name("streams-wordcount")
        self.repartition_topic = f"{self.application_id}-by-word-repartition"
        self.changelog_topic = f"{self.application_id}-counts-changelog"
        self.broker_logs = broker_logs
        self.words = input_words()
        self.expected = Counter(self.words)
        self.app = StreamsApp([*command, bootstrap, self.application_id, input_topic, output_topic,
                               str(tmp_path / "state"), str(replication_factor)], tmp_path / "streams-app.log")
        self.producer = PacedInput(bootstrap, input_topic, self.words)
        self.interruptions_done: list[str] = []
        # What each kill of the application left open: {output partition: (last stable offset, high watermark)}.
        self.killed_open_transactions: list[dict[int, tuple[int, int]]] = []
        self.unplanned_exits: list[int] = []
        self.input_progress = 0
        self.repartition_progress = 0
        self.repartition_progress_at_start = 0  # when the current run of the application started
        self.first_running = 0.0
        self.processing_seconds = 0.0
        self.started = time.monotonic()

    def details(self) -> str:
        """For failure messages: where the run is, the application's log and the brokers'."""
        return (f"{time.monotonic() - self.started:.0f}s, input sent {self.producer.sent}/{TOTAL_RECORDS}, group "
                f"offsets: input {self.input_progress}, repartition {self.repartition_progress}; interruptions "
                f"{self.interruptions_done}, unplanned app exits {self.unplanned_exits}, replaced stream threads "
                f"{self.app.count_lines('stream thread failed')}\n{self.app.log_tail()}\n{self.broker_logs()}")

    def tend_app(self) -> None:
        """Restarts the application when it exited by itself (fails once it did so too often)."""
        exit_code = self.app.exit_code()
        if exit_code is not None:
            self.unplanned_exits.append(exit_code)
            assert len(self.unplanned_exits) <= MAX_UNPLANNED_EXITS, (
                f"the application keeps exiting: {self.details()}")
            self.repartition_progress_at_start = self.repartition_progress
            self.app.start()

    def kill_app_in_transaction(self) -> str:
        """SIGKILLs the application while its transaction is Ongoing with records in the output topic
        (support.open_transactions.kill_in_open_transaction: frozen with SIGSTOP when DescribeTransactions of its
        transactional id shows it Ongoing with an output partition, SIGKILLed once the output's last stable offset
        is seen below its high watermark, else let go on and caught again), restarts it (it aborts that
        transaction) and returns what was left open (appended to the interruption's line)."""
        transactional_id = poll_until(lambda: streams_transactional_id(self.everyone, self.application_id),
                                      "the application's transactional id (ListTransactions)",
                                      TRANSACTIONAL_ID_SECONDS)
        killed = kill_in_open_transaction(self.app, lambda: describe_transaction(self.everyone, transactional_id),
                                          self.bootstrap, self.output_topic, PARTITIONS, CATCH_TRANSACTION_SECONDS,
                                          self.details, self.tend_app)
        assert killed.exit_code == -signal.SIGKILL, (
            f"the application exited with {killed.exit_code}, not by the SIGKILL: {self.details()}")
        self.killed_open_transactions.append(killed.left_open)
        self.app.start()
        return (f" with its transaction Ongoing ({transactional_id}), {{output partition: (last stable offset, high "
                f"watermark)}} {killed.left_open}, frozen {killed.freezes} times to catch it")

    def process(self, interruptions: list[str], interrupt_broker: Callable[[str], str], deadline: float) -> None:
        """Starts the application and, once it is RUNNING, the input; makes the interruptions in order, each once the
        current run of the application has moved the group's committed repartition-topic offsets by RUN_PROGRESS;
        returns once the group has committed the end of the input and of the repartition topic and the application
        closed cleanly on SIGTERM. APP is the application's SIGKILL and restart; any other interruption is
        `interrupt_broker(name)`, which kills and restarts a broker and returns what happened (appended to the
        interruption's line)."""
        checker = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.application_id,
                            "enable.auto.commit": False, "isolation.level": "read_uncommitted", "log_level": 0})
        input_ends: list[int] | None = None
        self.started = time.monotonic()
        try:
            self.app.start()
            self.first_running = self.app.wait_running(APP_RUNNING_TIMEOUT_SECONDS)
            self.producer.start()
            while True:
                assert time.monotonic() - self.started < deadline, (
                    f"input not processed within {deadline}s: {self.details()}")
                self.tend_app()
                if input_ends is None and not self.producer.is_alive():
                    producer = self.producer
                    assert producer.error is None and producer.failures == [] and producer.unflushed == 0, (
                        f"input production failed: {producer.error!r}, delivery errors {producer.failures[:5]}, "
                        f"{producer.unflushed} records not flushed: {self.details()}")
                    try:
                        input_ends = end_offsets(self.bootstrap, self.input_topic, PARTITIONS)
                    except KafkaException:
                        input_ends = None  # a leader moving: asked again
                    assert input_ends is None or sum(input_ends) == TOTAL_RECORDS, (
                        f"input end offsets {input_ends}: {self.details()}")
                input_offsets = committed_offsets(checker, self.input_topic)
                repartition_offsets = committed_offsets(checker, self.repartition_topic)
                if input_offsets is not None and repartition_offsets is not None:
                    self.input_progress, self.repartition_progress = sum(input_offsets), sum(repartition_offsets)
                    done = len(self.interruptions_done)
                    if input_offsets == input_ends:
                        assert done == len(interruptions), (
                            f"input consumed before every interruption: {self.details()}")
                        # Everything is processed once the second sub-topology has read the whole repartition
                        # topic too (Streams commits its consumer's position, which is past the transaction markers).
                        try:
                            repartition_ends = end_offsets(self.bootstrap, self.repartition_topic, PARTITIONS)
                        except KafkaException:
                            repartition_ends = None
                        if repartition_offsets == repartition_ends:
                            break
                    elif (done < len(interruptions)
                          and self.repartition_progress - self.repartition_progress_at_start >= RUN_PROGRESS):
                        at = time.monotonic() - self.started
                        if interruptions[done] == APP:
                            happened = self.kill_app_in_transaction()
                        else:
                            happened = interrupt_broker(interruptions[done])
                        self.repartition_progress_at_start = self.repartition_progress
                        self.interruptions_done.append(
                            f"{interruptions[done]} killed at {at:.0f}s (group offsets: input {self.input_progress}, "
                            f"repartition {self.repartition_progress}){happened}")
                time.sleep(PROGRESS_POLL_SECONDS)
            self.processing_seconds = time.monotonic() - self.started
            stop_code = self.app.stop()
            assert stop_code == 0, (
                f"the application did not close cleanly on SIGTERM (exit {stop_code}): {self.details()}")
        finally:
            self.producer.stopping.set()
            self.app.kill()
            checker.close()

    def check(self) -> str:
        """The checks of the input, the output and the changelog (see the module docstring); a one-line account."""
        bootstrap = self.bootstrap
        # The input is what was sent, once, in order: otherwise the counts below would be checked against the
        # wrong numbers (and the broker lost or duplicated an idempotent producer's records).
        stored = read_to_end(bootstrap, self.input_topic, PARTITIONS, "read_committed", READ_BACK_TIMEOUT_SECONDS)
        for partition in range(PARTITIONS):
            stored_words = [message.value().decode() for message in stored[partition]]
            assert stored_words == self.words[partition::PARTITIONS], (
                f"input partition {partition} holds {len(stored_words)} records, not the "
                f"{len(self.words[partition::PARTITIONS])} sent in order: {self.details()}")

        output = read_to_end(bootstrap, self.output_topic, PARTITIONS, "read_committed", READ_BACK_TIMEOUT_SECONDS)
        counts_by_word: dict[str, list[int]] = {}
        partitions_by_word: dict[str, set[int]] = {}
        for partition in range(PARTITIONS):
            for message in output[partition]:
                word = message.key().decode()
                counts_by_word.setdefault(word, []).append(int(message.value()))
                partitions_by_word.setdefault(word, set()).add(partition)
        # Streams' producer puts a key in one partition: its output order is the order of that partition.
        assert all(len(partitions) == 1 for partitions in partitions_by_word.values()), partitions_by_word
        problems = sequence_problems(counts_by_word, self.expected)
        committed_records = sum(len(messages) for messages in output.values())
        assert problems == [], (f"{len(problems)} of {len(self.expected)} words' counts are not 1..n in the "
                                f"committed output ({committed_records} records for {TOTAL_RECORDS} input "
                                f"records):\n" + "\n".join(problems) + f"\n{self.details()}")
        assert committed_records == TOTAL_RECORDS

        # What a restarted instance restores the store from: the changelog's last committed value of every word
        # (an 8-byte big-endian count, Serdes.Long) is the word's full count. Only the last value: a compacted
        # topic may have dropped earlier ones.
        changelog = read_to_end(bootstrap, self.changelog_topic, PARTITIONS, "read_committed",
                                READ_BACK_TIMEOUT_SECONDS)
        last_stored = {message.key().decode(): int.from_bytes(message.value(), "big", signed=True)
                       for partition in range(PARTITIONS) for message in changelog[partition]}
        assert last_stored == dict(self.expected), (
            f"changelog {self.changelog_topic}: last counts {last_stored}, input {self.expected}")

        # The kills did cut transactions short: the output topic holds records of aborted transactions as well, at
        # least those the application's kills left in open transactions (between the last stable offset and the
        # high watermark at the kill).
        all_output = read_to_end(bootstrap, self.output_topic, PARTITIONS, "read_uncommitted",
                                 READ_BACK_TIMEOUT_SECONDS)
        aborted_records = sum(len(messages) for messages in all_output.values()) - committed_records
        left_open = sum(hw - lso for kill in self.killed_open_transactions for lso, hw in kill.values())
        assert aborted_records >= left_open > 0, (
            f"{aborted_records} records of aborted transactions in the output (read_uncommitted: "
            f"{[len(all_output[p]) for p in range(PARTITIONS)]} records per partition), but the application's kills "
            f"left {left_open} records of open transactions {self.killed_open_transactions}: {self.details()}")
        return (f"{self.kind}: {TOTAL_RECORDS} records counted exactly once, processed in "
                f"{self.processing_seconds:.0f}s (first RUNNING after {self.first_running:.1f}s), {aborted_records} "
                f"output records aborted ({left_open} left open by the application's kills); "
                f"{self.details().splitlines()[0]}")


# ------------------------------------------------------------------------------------------ one node

@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_streams_exactly_once_v2_counts_every_record_once(kind, start_broker, tmp_path):
    skip_kafka_reference_outside_long_mode(kind)
    command = streams_command()
    broker = start_broker(kind, BROKER_CONFIG)
    input_topic = create_topic(broker.bootstrap, unique_topic_name("streams-in"), PARTITIONS)
    output_topic = create_topic(broker.bootstrap, unique_topic_name("streams-out"), PARTITIONS)
    run = WordCountRun(kind, command, broker.bootstrap, input_topic, output_topic, REPLICATION_FACTOR, tmp_path,
                       lambda: broker.log_tail(40))

    def restart_broker(name: str) -> str:
        killed_at = time.monotonic()
        assert broker.kill() == -signal.SIGKILL
        broker.start(timeout=BROKER_RESTART_TIMEOUT_SECONDS)
        return f", back after {time.monotonic() - killed_at:.1f}s"

    run.process(INTERRUPTIONS, restart_broker, PROCESSING_DEADLINE_SECONDS)
    print(run.check())


# ------------------------------------------------------------------------------------------ three nodes

@dataclasses.dataclass(frozen=True)
class Placement:
    """The broker that leads `topic`-`partition`: a partition's leader, or a coordinator."""
    node_id: int
    topic: str
    partition: int


def keep_broker_logs(cluster, tmp_path: Path) -> None:
    """Copies every node's log into the test's tmp_path (the nodes' own directories go with the cluster)."""
    for node in cluster.nodes:
        try:
            shutil.copyfile(node.log_path, tmp_path / f"broker-{node.node_id}.log")
        except OSError as error:
            print(f"cannot keep the log of node {node.node_id}: {error}")
    print(f"  broker logs: {tmp_path}/broker-*.log; application log: {tmp_path}/streams-app.log")


@pytest.mark.timeout(CLUSTER_TEST_TIMEOUT_SECONDS)
@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_streams_exactly_once_v2_on_a_cluster(kind, tmp_path):
    skip_kafka_reference_outside_long_mode(kind)
    skip_unless_cluster_available(kind)
    command = streams_command()
    cluster = started(make_cluster(kind, config=STREAMS_CLUSTER_CONFIG))
    try:
        bootstrap = cluster.bootstrap_servers
        everyone = [node.bootstrap for node in cluster.nodes]
        input_topic = unique_topic_name("streams-in")
        output_topic = unique_topic_name("streams-out")
        for topic in (input_topic, output_topic):
            create_replicated_topic(bootstrap, topic, PARTITIONS, CLUSTER_REPLICATION_FACTOR, TOPIC_CONFIG)
        run = WordCountRun(kind, command, bootstrap, input_topic, output_topic, CLUSTER_REPLICATION_FACTOR,
                           tmp_path, lambda: cluster.log_tails(30))
        group_id = run.application_id

        def wait_in_sync() -> None:
            """Every partition of the six topics led, with its full ISR (Streams' own have 3 replicas too)."""
            for topic, partitions in ((input_topic, PARTITIONS), (output_topic, PARTITIONS),
                                      (run.repartition_topic, PARTITIONS), (run.changelog_topic, PARTITIONS),
                                      (OFFSETS_TOPIC, INTERNAL_TOPIC_PARTITIONS),
                                      (TRANSACTION_STATE_TOPIC, INTERNAL_TOPIC_PARTITIONS)):
                run.tend_app()
                wait_for_full_isr(bootstrap, topic, partitions, CLUSTER_REPLICATION_FACTOR, CATCH_UP_SECONDS)

        def placement(target: str, key: str | None, bootstraps: list[str],
                      not_on: int | None = None) -> Placement | Unmet:
            """Where `target` is, asked of `bootstraps`: the leader of repartition partition 0, or the coordinator of
            `key` on which Metadata's placement and FindCoordinator agree; Unmet while there is none, they disagree,
            or it is still on broker `not_on`."""
            through = ",".join(bootstraps)
            if target == REPARTITION_LEADER:
                state = partition_states(through, run.repartition_topic).get(0)
                if state is None or state.leader < 0:
                    return Unmet(f"Metadata: {state}")
                found = Placement(state.leader, run.repartition_topic, 0)
            else:
                placed = agreed_coordinator(bootstraps, key, GROUP if target == GROUP_COORDINATOR else TRANSACTION)
                if isinstance(placed, str):
                    return Unmet(placed)
                found = Placement(placed.node_id, placed.topic, placed.partition)
            return found if found.node_id != not_on else Unmet(found)

        def wait_for(target: str, key: str | None, bootstraps: list[str], what: str, timeout: float,
                     not_on: int | None = None) -> Placement:
            def check():
                run.tend_app()
                return placement(target, key, bootstraps, not_on)
            return poll_until(check, f"the {target} ({what})", timeout)

        def kill_broker(target: str) -> str:
            """SIGKILLs the broker that is `target` (every ISR full first), waits until another broker took its
            place, starts it again and waits until it is back."""
            wait_in_sync()
            key = None
            if target == GROUP_COORDINATOR:
                key = group_id
            elif target == TRANSACTION_COORDINATOR:
                key = poll_until(lambda: streams_transactional_id(everyone, group_id),
                                 "the application's transactional id (ListTransactions)", AGREE_SECONDS)
            found = wait_for(target, key, everyone, "Metadata's placement and FindCoordinator agreeing",
                             AGREE_SECONDS)
            victim = cluster.node(found.node_id)
            survivors = [node.bootstrap for node in cluster.nodes if node is not victim]
            killed_at = time.monotonic()
            assert victim.kill() == -signal.SIGKILL, f"broker {victim.node_id} was not running: {run.details()}"
            successor = wait_for(target, key, survivors, f"on a broker other than the killed {victim.node_id}",
                                 FAILOVER_SECONDS, not_on=victim.node_id)
            failover = time.monotonic() - killed_at
            cluster.start(nodes=[victim], timeout=BROKER_RESTART_TIMEOUT_SECONDS)
            cluster.wait_for_brokers(CLUSTER_REPLICATION_FACTOR)
            happened = (f": broker {victim.node_id}, leader of {found.topic}-{found.partition}"
                        + (f" ({key})" if key is not None else "") + f"; broker {successor.node_id} took over after "
                        f"{failover:.1f}s; back {time.monotonic() - killed_at:.1f}s after the kill")
            print(f"{kind}: {target} killed{happened}")
            return happened

        run.process(CLUSTER_INTERRUPTIONS, kill_broker, CLUSTER_PROCESSING_DEADLINE_SECONDS)
        print(run.check())
    except BaseException:
        keep_broker_logs(cluster, tmp_path)
        raise
    finally:
        cluster.close()
