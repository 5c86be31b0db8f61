"""A producer and a reader under faults, and the checker that judges what they saw (tests/test_replication.py).

In the spirit of Jepsen's Kafka workload, reduced to what an idempotent acks=all producer promises:

- `Workload` runs two threads against one topic. The producer thread sends records at a steady rate with one
  idempotent acks=all confluent-kafka producer, round-robin over the partitions, each to an explicit partition,
  keyed `p<partition>` with the unique value `p<partition>-<seq>` (seq counts up per partition). Delivery
  callbacks record every acknowledgement (partition, offset, value, when it was sent and acknowledged) and every
  failure (its error code). The reader thread consumes every partition from the beginning for the whole run and
  records each (partition, offset) -> value it is served.
- `JavaWorkload` is the same load with the Java client as the producer: tests/support/java/ReplicatedProducer.java
  (kafka-clients, idempotent, acks=all) runs as a process and reports every outcome on its stdout; the reader
  thread is the same.
- `read_log` reads the topic back at the end with a fresh consumer, from the beginning to the end offsets.
- `check` compares the three and counts: acknowledged records missing from the log (lost), values stored more
  than once (duplicated), acknowledged records of a partition whose positions in the log do not follow their
  sequence (reordered), acknowledged offsets holding another value, or a value in another partition than the
  one it was acknowledged in (wrong offset), offsets of the log without a record (gaps), and records the reader
  was served during the run that the log no longer holds at that offset (vanished). `CheckResult.summary()` is
  the one-line account a test prints; `CheckResult.violations()` lists what broke a promise.

A record whose delivery failed (timed out while the cluster could not take it) has an unknown outcome: the log may
or may not hold it, and only the count of such records found in the log is reported (unacked_present).

Cluster-side helpers for the tests: a replicated topic (`create_replicated_topic`), partition leaders and ISRs
from Metadata (`partition_states`), and waits for a leader change, a full ISR, and produce progress.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import subprocess
import threading
import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, Consumer, IsolationLevel, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from support.brokers import _die_with_parent

CLIENT_TIMEOUT_SECONDS = 30
# Errors a delivery report may carry when acks=all cannot be satisfied (fewer in-sync replicas than
# min.insync.replicas, or no leader reachable): the broker's NOT_ENOUGH_REPLICAS(_AFTER_APPEND) and
# REQUEST_TIMED_OUT are retriable, so the client ends up reporting its own message timeout.
UNAVAILABLE_ERRORS = {
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
}


def error_name(code: int | str) -> str:
    """A KafkaError code's name; a name already (the Java client's exception names) as it is."""
    if isinstance(code, str):
        return code
    try:
        return KafkaError(code).name()
    except Exception:  # an unknown code
        return str(code)


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


# ------------------------------------------------------------------------------------------ cluster views

def create_replicated_topic(bootstrap: str, name: str, partitions: int, replication_factor: int = 3,
                            config: dict | None = None, timeout: float = 60) -> None:
    """CreateTopics (retried on time-outs), then waits until every partition has a leader and a full ISR."""
    client = admin(bootstrap)
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        futures = client.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                      config={key: str(value).lower() if isinstance(value, bool) else str(value)
                              for key, value in (config or {}).items()})],
            request_timeout=15)
        try:
            futures[name].result(timeout=20)
            break
        except KafkaException as exc:
            code = exc.args[0].code()
            if code == KafkaError.TOPIC_ALREADY_EXISTS and attempt > 1:
                break
            if code not in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_CONTROLLER) \
                    or time.monotonic() > deadline:
                raise
    wait_for_full_isr(bootstrap, name, partitions, replication_factor, max(1.0, deadline - time.monotonic()))


@dataclasses.dataclass(frozen=True)
class PartitionState:
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def partition_states(bootstrap: str, topic: str, timeout: float = 10) -> dict[int, PartitionState]:
    """{partition: PartitionState} from one Metadata answer (every topic asked for: naming the topic could
    auto-create it). Empty when the topic is not listed."""
    metadata = admin(bootstrap).list_topics(timeout=timeout)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        return {}
    return {p.id: PartitionState(p.leader, tuple(p.replicas), tuple(sorted(p.isrs)))
            for p in described.partitions.values()}


def poll_until(check, what: str, timeout: float, interval: float = 0.5):
    """check() until it returns a truthy value (returned); AssertionError naming `what` and the last value or
    exception after `timeout`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = check()
            if last:
                return last
        except Exception as error:  # a client error while the cluster changes: try again
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")
        time.sleep(interval)


def wait_for_full_isr(bootstrap: str, topic: str, partitions: int, replication_factor: int = 3,
                      timeout: float = 60) -> dict[int, PartitionState]:
    """Waits until every partition has a leader and all `replication_factor` replicas in its ISR."""
    def full():
        states = partition_states(bootstrap, topic)
        if len(states) == partitions and all(
                s.leader >= 0 and len(s.replicas) == replication_factor and set(s.isr) == set(s.replicas)
                for s in states.values()):
            return states
        return None if not states else Unmet(states)
    return poll_until(full, f"every partition of {topic} led with a full ISR of {replication_factor}", timeout)


def wait_for_new_leader(bootstrap: str, topic: str, partition: int, old_leader: int,
                        timeout: float) -> PartitionState:
    """Waits until Metadata (through `bootstrap`) names a leader of `partition` other than `old_leader`."""
    def moved():
        state = partition_states(bootstrap, topic).get(partition)
        return state if state is not None and state.leader not in (-1, old_leader) else Unmet(state)
    return poll_until(moved, f"a leader of {topic}-{partition} other than broker {old_leader}", timeout)


class Unmet:
    """A falsy wrapper, so poll_until reports the last value seen while a condition does not hold yet."""

    def __init__(self, value):
        self.value = value

    def __bool__(self):
        return False

    def __repr__(self):
        return repr(self.value)


# ------------------------------------------------------------------------------------------ the workload

@dataclasses.dataclass(frozen=True)
class Ack:
    partition: int
    seq: int
    offset: int | None  # None: acknowledged without an offset
    value: str
    sent_at: float
    acked_at: float


@dataclasses.dataclass(frozen=True)
class Failure:
    partition: int
    seq: int
    value: str
    code: int | str  # a KafkaError code (confluent-kafka), or the exception's name (kafka-clients, JavaWorkload)
    sent_at: float
    failed_at: float


def record_value(partition: int, seq: int) -> str:
    return f"p{partition}-{seq}"


def parse_value(value: str) -> tuple[int, int] | None:
    """(partition, seq) of a value the workload wrote, None for anything else."""
    try:
        partition, seq = value[1:].split("-")
        return int(partition), int(seq)
    except (ValueError, IndexError):
        return None


class Workload:
    """An idempotent acks=all producer at `rate` records per second and a concurrent reader, in threads.

    Use as a context manager (or start()/stop()); stop() stops producing, waits for the outcome of every record
    sent (flush), and stops the reader. Acks, failures and reads are then in `acks`, `failures` and `reads`.
    """

    def __init__(self, bootstrap: str, topic: str, partitions: int, rate: float = 300,
                 producer_config: dict | None = None, max_outstanding: int = 5000, client_log=None):
        """`client_log`: a file for the producer's librdkafka debug log (contexts eos and msg)."""
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.rate = rate
        self.max_outstanding = max_outstanding
        self.client_log = client_log
        self._log_handlers: list = []
        self.producer_config = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # Longer than any outage the tests cause (a record sent while the cluster cannot take it waits for
            # it to come back), but bounded. An idempotent producer that times out records already sent bumps its
            # epoch or takes a new producer id; records it then sends again are not deduplicated by the broker
            # (a different producer session), so a time-out can end in a duplicate with Kafka too.
            "message.timeout.ms": 120000,
            # A produce request to a broker that stopped answering (SIGSTOP) is given up on after this; the
            # idempotent producer then retries it (same sequence numbers) at the current leader.
            "request.timeout.ms": 10000,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
            "retry.backoff.max.ms": 1000,
            "topic.metadata.refresh.interval.ms": 5000,
            "log_level": 0,
            **(producer_config or {}),
        }
        self.lock = threading.Lock()
        self.acks: list[Ack] = []
        self.failures: list[Failure] = []
        self.fatal_errors: list[str] = []
        self.client_errors: collections.Counter = collections.Counter()
        self.sent = 0
        self.unresolved = 0  # records without a delivery report when stop() gave up waiting
        self.reads: dict[tuple[int, int], str] = {}
        self.read_conflicts: list[tuple[int, int, str, str]] = []  # (partition, offset, first value, later one)
        self.reader_errors: collections.Counter = collections.Counter()
        self._next_seq = [0] * partitions
        self._stopping = threading.Event()
        self._abandon = False
        self._reader_stopping = threading.Event()
        self._reader_done = threading.Event()  # the reader stopped reading (it may still be closing)
        self._threads: list[threading.Thread] = []
        self._thread_errors: list[BaseException] = []

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "Workload":
        for target, name in ((self._produce_loop, "producer"), (self._read_loop, "reader")):
            thread = threading.Thread(target=self._guarded, args=(target,), name=f"workload-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, abandon: bool = False) -> None:
        """Stops producing and waits for the outcome of every record sent; `abandon` (a test failed already)
        purges what is still queued instead of waiting for it."""
        self._abandon = abandon
        self._stopping.set()
        producer_error = self._stop_producer(abandon)
        if not abandon:
            # Let the reader catch up with what was acknowledged last before it stops.
            self._wait_reader_caught_up(timeout=15)
        self._reader_stopping.set()
        for thread in self._threads[1:]:
            thread.join(timeout=30)
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        if stuck == ["workload-reader"] and self._reader_done.is_set():
            # Its reads are all recorded; only the consumer's close() still waits (librdkafka, seen once after
            # Kafka's whole-cluster restart). The thread is a daemon: leave it.
            print("the reader's consumer.close() did not return within 30 s; its reads are complete")
            stuck = []
        if self._thread_errors:
            raise RuntimeError(f"workload thread failed: {self._thread_errors[0]!r}") from self._thread_errors[0]
        if stuck:
            raise RuntimeError(f"workload threads did not stop: {stuck}")
        if producer_error is not None:
            raise RuntimeError(producer_error)

    def _stop_producer(self, abandon: bool) -> str | None:
        """Waits for the producer thread (it purges or flushes); a description of what went wrong, or None."""
        self._threads[0].join(timeout=self.producer_config["message.timeout.ms"] / 1000 + 60)
        return None

    def __enter__(self) -> "Workload":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        if exc_info[0] is None:
            self.stop()
        else:  # the test failed already; stop quickly without hiding its error
            try:
                self.stop(abandon=True)
            except Exception:
                pass

    def _guarded(self, target) -> None:
        try:
            target()
        except BaseException as error:  # reported by stop()
            self._thread_errors.append(error)

    # -- the producer ------------------------------------------------------------------------------
    def _new_producer(self) -> Producer:
        config = {**self.producer_config, "error_cb": self._on_client_error}
        if self.client_log is not None:
            # librdkafka's idempotence and message debug lines, for a post-mortem of what the producer sent.
            logger = logging.getLogger(f"replication-producer-{uuid.uuid4().hex[:8]}")
            logger.propagate = False
            logger.setLevel(logging.DEBUG)
            handler = logging.FileHandler(self.client_log, mode="a")
            handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
            logger.addHandler(handler)
            self._log_handlers.append(handler)
            config.update({"debug": "eos,msg", "logger": logger, "log_level": 7})
        return Producer(config)

    def _on_client_error(self, error: KafkaError) -> None:
        with self.lock:
            self.client_errors[error.name()] += 1
            if error.fatal():
                self.fatal_errors.append(str(error))

    def _produce_loop(self) -> None:
        producer = self._new_producer()
        fatal_seen = 0
        started = time.monotonic()
        index = 0
        while not self._stopping.is_set():
            with self.lock:
                fatal = len(self.fatal_errors)
            if fatal > fatal_seen:
                # A fatal error ends an idempotent producer: give up what it holds (those records fail with
                # _PURGE_*, their outcome unknown) and go on with a new one, as an application would.
                fatal_seen = fatal
                producer.purge()
                producer.flush(10)
                producer = self._new_producer()
            # Keep to the rate: the index-th record is due index/rate seconds after the start.
            due = started + index / self.rate
            now = time.monotonic()
            if now < due:
                producer.poll(min(0.05, due - now))
                continue
            if len(producer) >= self.max_outstanding:
                producer.poll(0.05)
                started += 0.05  # don't try to catch up on records not sent while the queue was full
                continue
            partition = index % self.partitions
            seq = self._next_seq[partition]
            value = record_value(partition, seq)
            sent_at = time.monotonic()
            try:
                producer.produce(self.topic, key=f"p{partition}".encode(), value=value.encode(), partition=partition,
                                 on_delivery=self._delivery_callback(partition, seq, value, sent_at))
            except BufferError:
                producer.poll(0.05)
                continue
            except KafkaException as exc:  # fatal state: picked up above through error_cb
                with self.lock:
                    self.client_errors[f"produce:{exc.args[0].name()}"] += 1
                producer.poll(0.05)
                continue
            self._next_seq[partition] = seq + 1
            with self.lock:
                self.sent += 1
            index += 1
            producer.poll(0)
        if self._abandon:
            producer.purge()
            remaining = producer.flush(5)
        else:
            # Every record sent gets its outcome: acknowledged, or failed once message.timeout.ms passes.
            remaining = producer.flush(self.producer_config["message.timeout.ms"] / 1000 + 30)
        with self.lock:
            self.unresolved = remaining
        for handler in self._log_handlers:
            handler.close()

    def _delivery_callback(self, partition: int, seq: int, value: str, sent_at: float):
        def delivered(error, message):
            now = time.monotonic()
            with self.lock:
                if error is None:
                    self.acks.append(Ack(message.partition(), seq, message.offset(), value, sent_at, now))
                else:
                    self.failures.append(Failure(partition, seq, value, error.code(), sent_at, now))
        return delivered

    # -- the reader ----------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": f"replication-reader-{uuid.uuid4().hex[:8]}",  # never joined: partitions assigned
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
            "topic.metadata.refresh.interval.ms": 5000,
            "error_cb": lambda error: self._count_reader_error(error.name()),
            "log_level": 0,
        })
        try:
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)])
            while not self._reader_stopping.is_set():
                for message in consumer.consume(500, timeout=0.2):
                    if message.error() is not None:
                        self._count_reader_error(message.error().name())
                        continue
                    key = (message.partition(), message.offset())
                    value = (message.value() or b"").decode(errors="replace")
                    with self.lock:
                        first = self.reads.setdefault(key, value)
                        if first != value:
                            self.read_conflicts.append((*key, first, value))
        finally:
            self._reader_done.set()
            consumer.close()

    def _count_reader_error(self, name: str) -> None:
        with self.lock:
            self.reader_errors[name] += 1

    def _wait_reader_caught_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                wanted = {(ack.partition, ack.offset) for ack in self.acks if ack.offset is not None}
                if wanted <= self.reads.keys():
                    return
            time.sleep(0.2)

    # -- views for the test ----------------------------------------------------------------------------
    def acked_count(self) -> int:
        with self.lock:
            return len(self.acks)

    def wait_for_acks(self, count: int, timeout: float) -> None:
        poll_until(lambda: self.acked_count() >= count, f"{count} acknowledged records", timeout, interval=0.1)

    def wait_for_progress(self, since: float, timeout: float) -> float:
        """Waits until every partition has acknowledged a record sent at or after `since` (time.monotonic());
        returns the seconds from `since` to the last of those acknowledgements. AssertionError after `timeout`
        seconds, naming the partitions still without one."""
        deadline = since + timeout
        while True:
            with self.lock:
                first_ack = {}
                for ack in self.acks:
                    if ack.sent_at >= since and ack.partition not in first_ack:
                        first_ack[ack.partition] = ack.acked_at
            if len(first_ack) == self.partitions:
                return max(first_ack.values()) - since
            if time.monotonic() > deadline:
                missing = sorted(set(range(self.partitions)) - set(first_ack))
                with self.lock:
                    failed = collections.Counter(error_name(f.code) for f in self.failures if f.sent_at >= since)
                raise AssertionError(
                    f"production did not resume within {timeout:.0f}s: no record sent since then acknowledged in "
                    f"partitions {missing}; failures since: {dict(failed)}; client errors: {dict(self.client_errors)}")
            if self._thread_errors:
                raise RuntimeError(f"workload thread failed: {self._thread_errors[0]!r}")
            time.sleep(0.1)

    def acks_between(self, sent_from: float, acked_before: float) -> list[Ack]:
        """Acknowledgements of records sent at or after `sent_from` that arrived before `acked_before`."""
        with self.lock:
            return [ack for ack in self.acks if ack.sent_at >= sent_from and ack.acked_at < acked_before]

    def failures_between(self, sent_from: float, sent_before: float) -> list[Failure]:
        with self.lock:
            return [f for f in self.failures if sent_from <= f.sent_at < sent_before]


class JavaWorkload(Workload):
    """The same load from the Java client: the producer is tests/support/java/ReplicatedProducer.java (an
    idempotent acks=all kafka-clients producer, the same records, rate and partitions), run as a process whose
    stdout a thread turns into `acks` and `failures` (times on this process's time.monotonic() clock: a line's
    arrival, less the elapsed time it reports for a record's send); the reader is Workload's (confluent-kafka).

    `command`: java_program_command("ReplicatedProducer"); `client_log`: a file for the program's stderr (the
    details of failures). stop() writes "stop" to the program's stdin and waits for it to flush, close and print
    DONE (every record it sent then has an outcome); `abandon` kills it instead. The process is killed whenever
    stop() does not see it exit in time, when start() fails, and with this process (PR_SET_PDEATHSIG)."""

    # ReplicatedProducer's delivery.timeout.ms and the time its close() may take, in seconds.
    DELIVERY_TIMEOUT_SECONDS = 120
    CLOSE_SECONDS = 10

    def __init__(self, bootstrap: str, topic: str, partitions: int, command: list[str], rate: float = 300,
                 client_log=None):
        super().__init__(bootstrap, topic, partitions, rate=rate)
        self.command = [*command, bootstrap, topic, str(partitions), str(rate)]
        self.client_log = client_log
        self.process: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.done: int | None = None  # DONE's count of records sent
        self._outcomes: dict[tuple[int, int], Ack | Failure] = {}
        self._highest_seq = [-1] * partitions
        self._unparsed: list[str] = []

    def start(self) -> "JavaWorkload":
        stderr = open(self.client_log, "ab") if self.client_log is not None else subprocess.DEVNULL
        try:
            # Started from the calling (main) thread: PR_SET_PDEATHSIG follows the thread that forked.
            self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=stderr, text=True, bufsize=1, preexec_fn=_die_with_parent)
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        try:
            super().start()
        except BaseException:
            self._kill()
            raise
        return self

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    # -- the producer: the Java program's stdout ---------------------------------------------------------
    def _produce_loop(self) -> None:
        for line in self.process.stdout:
            self._on_line(line.strip(), time.monotonic())

    def _on_line(self, line: str, now: float) -> None:
        parts = line.split()
        try:
            kind = parts[0] if parts else ""
            if kind in ("ACK", "FAIL") and len(parts) == 5:
                partition, seq = int(parts[1]), int(parts[2])
                elapsed = int(parts[4]) / 1000
                value = record_value(partition, seq)
                if kind == "ACK":
                    offset = int(parts[3])
                    self._record(Ack(partition, seq, offset if offset >= 0 else None, value, now - elapsed, now))
                else:
                    self._record(Failure(partition, seq, value, parts[3], now - elapsed, now))
                return
            if kind == "FATAL" and len(parts) == 2:
                with self.lock:
                    self.fatal_errors.append(parts[1])
                    self.client_errors[parts[1]] += 1
                return
            if kind == "DONE" and len(parts) == 2:
                with self.lock:
                    self.done = int(parts[1])
                return
        except ValueError:
            pass
        with self.lock:
            self.client_errors["unparsed output"] += 1
            self._unparsed.append(line)

    def _record(self, outcome: Ack | Failure) -> None:
        key = (outcome.partition, outcome.seq)
        with self.lock:
            previous = self._outcomes.get(key)
            if previous is not None:
                # The program reports a record once, but an acknowledgement after a failure counts (it was stored).
                self.client_errors[f"{type(outcome).__name__} after {type(previous).__name__}"] += 1
                if not (isinstance(outcome, Ack) and isinstance(previous, Failure)):
                    return
                self.failures.remove(previous)
            self._outcomes[key] = outcome
            (self.acks if isinstance(outcome, Ack) else self.failures).append(outcome)
            self._highest_seq[outcome.partition] = max(self._highest_seq[outcome.partition], outcome.seq)
            self.sent = sum(seq + 1 for seq in self._highest_seq)

    def _stop_producer(self, abandon: bool) -> str | None:
        process = self.process
        error = None
        try:
            if abandon:
                process.kill()
            else:
                try:
                    process.stdin.write("stop\n")
                    process.stdin.flush()
                except (OSError, ValueError):  # it exited already
                    pass
            try:
                process.stdin.close()
            except (OSError, ValueError):
                pass
            wait = 10 if abandon else self.DELIVERY_TIMEOUT_SECONDS + self.CLOSE_SECONDS + 60
            try:
                self.exit_code = process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                error = f"ReplicatedProducer did not exit within {wait}s of stop (killed)"
        finally:
            self._kill()
            self.exit_code = process.poll()
        self._threads[0].join(timeout=30)
        if not self._threads[0].is_alive():
            process.stdout.close()
        with self.lock:
            if self.done is not None:
                self.sent = self.done
            self.unresolved = max(0, self.sent - len(self._outcomes))
            unparsed = list(self._unparsed)
        if abandon or error is not None:
            return error
        if self.exit_code != 0 or self.done is None or unparsed:
            return (f"ReplicatedProducer exited {self.exit_code}, DONE {'seen' if self.done is not None else 'missing'}"
                    f", unparsed output {unparsed[:3]}; stderr: {self._stderr_tail()}")
        return None

    def _stderr_tail(self, size: int = 2000) -> str:
        if self.client_log is None:
            return "(not kept)"
        try:
            with open(self.client_log, "rb") as file:
                file.seek(0, 2)
                file.seek(max(0, file.tell() - size))
                return file.read().decode(errors="replace")
        except OSError as exc:
            return f"({exc})"


# ------------------------------------------------------------------------------------------ reading back

def _end_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    client = admin(bootstrap)
    futures = client.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                                  isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=15)
    offsets = {tp.partition: future.result(timeout=20).offset for tp, future in futures.items()}
    return [offsets[p] for p in range(partitions)]


@dataclasses.dataclass
class LogContents:
    records: dict[int, dict[int, str]]  # {partition: {offset: value}}
    end_offsets: list[int]
    errors: collections.Counter
    conflicts: list[tuple[int, int, str, str]]  # an offset served twice with different values


def read_log(bootstrap: str, topic: str, partitions: int, timeout: float = 120) -> LogContents:
    """Everything a fresh read_committed consumer reads from the beginning of every partition up to its end
    offset (ListOffsets latest, taken first). Transient consumer errors are counted, not raised; raises when the
    end of every partition is not reached within `timeout`."""
    deadline = time.monotonic() + timeout
    ends = poll_until(lambda: _end_offsets(bootstrap, topic, partitions), f"end offsets of {topic}", timeout)
    errors: collections.Counter = collections.Counter()
    conflicts = []
    records: dict[int, dict[int, str]] = {p: {} for p in range(partitions)}
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"replication-check-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "error_cb": lambda error: errors.update([error.name()]),
        "log_level": 0,
    })
    reached = [end == 0 for end in ends]
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        while not all(reached):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read back {[len(records[p]) for p in range(partitions)]} records of {topic}, "
                                   f"end offsets {ends}, reached {reached}, within {timeout}s; errors {dict(errors)}")
            for message in consumer.consume(1000, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if message.offset() >= ends[message.partition()]:
                            reached[message.partition()] = True
                    else:
                        errors[error.name()] += 1
                    continue
                value = (message.value() or b"").decode(errors="replace")
                first = records[message.partition()].setdefault(message.offset(), value)
                if first != value:
                    conflicts.append((message.partition(), message.offset(), first, value))
                if message.offset() + 1 >= ends[message.partition()]:
                    reached[message.partition()] = True
    finally:
        consumer.close()
    # Only what lies below the end offsets taken first counts (a late write would be outside the check).
    for p in range(partitions):
        records[p] = {offset: value for offset, value in records[p].items() if offset < ends[p]}
    return LogContents(records, ends, errors, conflicts)


# ------------------------------------------------------------------------------------------ the checker

@dataclasses.dataclass
class CheckResult:
    label: str
    acknowledged: int
    failed: int
    unresolved: int
    read_back: int
    lost: list = dataclasses.field(default_factory=list)          # acknowledged values not in the log
    duplicated: list = dataclasses.field(default_factory=list)    # values in the log more than once
    reordered: list = dataclasses.field(default_factory=list)     # acknowledged values out of sequence order
    wrong_offset: list = dataclasses.field(default_factory=list)  # acknowledged offset holds another value
    gaps: list = dataclasses.field(default_factory=list)          # offsets below the end without a record
    vanished: list = dataclasses.field(default_factory=list)      # read during the run, not in the log there now
    read_during_run: int = 0
    read_conflicts: list = dataclasses.field(default_factory=list)
    unacked_present: int = 0
    producer_errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    client_errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    fatal_errors: list = dataclasses.field(default_factory=list)
    reader_errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    foreign: list = dataclasses.field(default_factory=list)      # log records the workload never wrote
    no_offset: list = dataclasses.field(default_factory=list)    # acknowledged without an offset (not a violation)

    def violations(self) -> list[str]:
        problems = []
        for name in ("lost", "duplicated", "reordered", "wrong_offset", "gaps", "vanished", "read_conflicts",
                     "foreign"):
            items = getattr(self, name)
            if items:
                problems.append(f"{name}: {len(items)} (first {items[:5]})")
        return problems

    def summary(self) -> str:
        errors = ", ".join(f"{name}={count}" for name, count in self.producer_errors.most_common(4))
        return (f"replication check [{self.label}]: acknowledged={self.acknowledged} read_back={self.read_back} "
                f"lost={len(self.lost)} duplicated={len(self.duplicated)} reordered={len(self.reordered)} "
                f"wrong_offset={len(self.wrong_offset)} gaps={len(self.gaps)} vanished={len(self.vanished)} "
                f"(of {self.read_during_run} read during the run) producer_errors={self.failed}"
                f"{' (' + errors + ')' if errors else ''} unresolved={self.unresolved} "
                f"unacked_present={self.unacked_present} acked_without_offset={len(self.no_offset)} "
                f"fatal={len(self.fatal_errors)}")

    def dump(self, path, workload: "Workload", log: "LogContents") -> None:
        """The whole history as JSON (for a post-mortem of a failed check)."""
        import json
        with workload.lock:
            history = {
                "summary": self.summary(),
                "violations": self.violations(),
                "acks": [dataclasses.astuple(ack) for ack in workload.acks],
                "failures": [dataclasses.astuple(failure) for failure in workload.failures],
                "reads": [[p, o, v] for (p, o), v in sorted(workload.reads.items())],
                "log": {p: sorted(records.items()) for p, records in log.records.items()},
                "end_offsets": log.end_offsets,
            }
        path.write_text(json.dumps(history, default=str))

    def assert_ok(self) -> None:
        problems = self.violations()
        assert not problems, f"{self.summary()}\n" + "\n".join(problems)


def check(workload: Workload, log: LogContents, label: str = "", unacked: set[str] = frozenset()) -> CheckResult:
    """Judges the run. `unacked`: values written outside the workload whose writes were not acknowledged (a
    probe); the log may hold them, once."""
    with workload.lock:
        acks = list(workload.acks)
        failures = list(workload.failures)
        reads = dict(workload.reads)
        result = CheckResult(
            label=label, acknowledged=len(acks), failed=len(failures), unresolved=workload.unresolved,
            read_back=sum(len(r) for r in log.records.values()), read_during_run=len(reads),
            read_conflicts=list(workload.read_conflicts) + list(log.conflicts),
            producer_errors=collections.Counter(error_name(f.code) for f in failures),
            client_errors=collections.Counter(workload.client_errors), fatal_errors=list(workload.fatal_errors),
            reader_errors=collections.Counter(workload.reader_errors))

    # Where each value is in the log.
    positions: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for partition, records in log.records.items():
        for offset, value in records.items():
            positions[value].append((partition, offset))
            if parse_value(value) is None and value not in unacked:
                result.foreign.append((partition, offset, value))
        offsets = sorted(records)
        expected = range(offsets[0], log.end_offsets[partition]) if offsets else range(0)
        if len(offsets) != len(expected):
            present = set(offsets)
            result.gaps += [(partition, o) for o in expected if o not in present][:100]
    outcome = {ack.value: f"acked at {ack.offset}" for ack in acks}
    outcome.update({f.value: f"failed {error_name(f.code)}" for f in failures})
    result.duplicated = sorted((value, places, outcome.get(value, "no outcome"))
                               for value, places in positions.items() if len(places) > 1)

    by_partition: dict[int, list[Ack]] = collections.defaultdict(list)
    for ack in acks:
        places = positions.get(ack.value)
        if not places:
            result.lost.append((ack.partition, ack.offset, ack.value))
            continue
        if ack.offset is None or ack.offset < 0:
            # Acknowledged without an offset: librdkafka reports a batch the broker answered with
            # DUPLICATE_SEQUENCE_NUMBER (stored by an earlier attempt) as delivered, offset unknown.
            result.no_offset.append((ack.partition, ack.value))
        elif log.records.get(ack.partition, {}).get(ack.offset) != ack.value:
            result.wrong_offset.append((ack.partition, ack.offset, ack.value,
                                        log.records.get(ack.partition, {}).get(ack.offset), places))
        by_partition[ack.partition].append(ack)
    # Acknowledged records of a partition sit in the log in the order the producer sent them.
    for partition, partition_acks in by_partition.items():
        previous = None
        for ack in sorted(partition_acks, key=lambda a: a.seq):
            place = positions[ack.value][0]
            if previous is not None and (place[0] != previous[1][0] or place[1] <= previous[1][1]):
                result.reordered.append((previous[0], previous[1], ack.value, place))
            previous = (ack.value, place)

    acked_values = {ack.value for ack in acks}
    result.unacked_present = sum(1 for value in positions
                                 if value not in acked_values and (parse_value(value) or value in unacked))
    for (partition, offset), value in reads.items():
        if log.records.get(partition, {}).get(offset) != value:
            result.vanished.append((partition, offset, value, log.records.get(partition, {}).get(offset)))
    return result
