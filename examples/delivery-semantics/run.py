"""Delivery guarantees, measured: runs each example application through crashes and counts what it lost and
duplicated.

    examples/delivery-semantics/run [--count N] [--seed S] [--app-kills K] [--broker-kills B] [--produce-seconds T]
                                    [--only NAME,...] [--broker skein|kafka] [--json FILE] [--work-dir DIR]

Starts its own broker (target/release/skein, or $SKEIN_BIN; `--broker kafka` runs Apache Kafka from .tools/kafka
instead) on free 127.0.0.1 ports with a temp data dir, and creates an input topic holding the N numbered
messages "0".."N-1" (3 partitions). Then:

Consumer side: each application (at_most_once.py, at_least_once.py, exactly_once.py, ExactlyOnce.java,
exactly_once_sqlite.py) reads the input and copies it to its sink (an output topic, or SQLite). It is
SIGKILLed K times, each time once it has read a seeded random number of records and after a further random
0-30 ms, and restarted, until it exits by itself having read the whole input. Then the sink is read back
(read_committed for the transactional ones) and every number counted: lost (never in the sink), duplicated
(extra copies).

Producer side: acks_producer.py sends N numbered messages with acks=0, acks=1, acks=all and acks=all with
enable.idempotence over --produce-seconds, while the BROKER is kill -9'ed B times at seeded random points
of the stream and restarted; then the topic is read back: acknowledged messages that are not there are lost,
extra copies are duplicates.

Prints one table per side (Markdown) and the seed; `--json FILE` writes the same numbers for tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

EXAMPLE_DIR = Path(__file__).resolve().parent
REPO_ROOT = EXAMPLE_DIR.parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # the broker launcher and topic helpers of the test suite

from support.brokers import BrokerError, KafkaBroker, SkeinBroker, _die_with_parent, skein_binary  # noqa: E402
from support.kafka_clients import create_topic, read_to_end, unique_topic_name  # noqa: E402

PARTITIONS = 3
JAVA_LIBS = REPO_ROOT / ".tools" / "java" / "libs"  # kafka-clients jars (tests/setup-clients)
JAVA_CLASSES = REPO_ROOT / ".tools" / "java" / "example-classes"
BROKER_CONFIG = {"group.initial.rebalance.delay.ms": 0}
# After an application has read its chosen number of records, it is killed after a random delay up to this.
KILL_DELAY_MAX_SECONDS = 0.030
# An application that exits by itself with an error (a fatal client error, its watchdog) is restarted, up to
# this many times per example.
MAX_UNPLANNED_EXITS = 5
BROKER_RESTART_TIMEOUT_SECONDS = 90
READ_BACK_TIMEOUT_SECONDS = 120


@dataclass
class ConsumerExample:
    name: str  # stable key, used in --only and in the JSON
    guarantee: str
    application: str  # what the table shows
    sink: str  # "topic" or "sqlite"
    transactional: bool  # the output topic is read read_committed


CONSUMER_EXAMPLES = [
    ConsumerExample("at-most-once", "at-most-once", "`at_most_once.py`: commit, then process", "topic", False),
    ConsumerExample("at-least-once", "at-least-once", "`at_least_once.py`: process, then commit", "topic", False),
    ConsumerExample("exactly-once-python", "exactly-once",
                    "`exactly_once.py`: transactions (confluent-kafka)", "topic", True),
    ConsumerExample("exactly-once-java", "exactly-once",
                    "`ExactlyOnce.java`: transactions (Java kafka-clients)", "topic", True),
    ConsumerExample("exactly-once-sqlite", "exactly-once",
                    "`exactly_once_sqlite.py`: offsets stored with the data", "sqlite", False),
]


@dataclass
class ProducerExample:
    name: str
    acks: str
    idempotence: bool


PRODUCER_EXAMPLES = [
    ProducerExample("acks=0", "0", False),
    ProducerExample("acks=1", "1", False),
    ProducerExample("acks=all", "all", False),
    ProducerExample("acks=all+idempotence", "all", True),
]


class ExampleFailed(RuntimeError):
    pass


def say(line: str) -> None:
    print(line, flush=True)


class AppProcess:
    """One example application as a child process, restarted as often as needed; every run appends its
    output to one log file, which is read line by line as it grows."""

    def __init__(self, command: list[str], log_path: Path):
        self.command = command
        self.log_path = log_path
        log_path.write_bytes(b"")  # a --work-dir used before holds an earlier run's log
        self.process: subprocess.Popen | None = None
        self.read_offset = 0
        self.starts = 0
        # The last "batch ..." line of the current run: where in a batch the application is.
        self.last_batch_line: str | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"==== start {self.starts} at {time.strftime('%H:%M:%S')} ====\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=subprocess.STDOUT, cwd=EXAMPLE_DIR, preexec_fn=_die_with_parent)
        self.starts += 1
        self.last_batch_line = None

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def new_lines(self) -> list[str]:
        """Complete lines written since the last call (a line still being written is returned next time)."""
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self.read_offset)
            text = log_file.read()
        complete = text[:text.rfind(b"\n") + 1]
        self.read_offset += len(complete)
        lines = complete.decode(errors="replace").splitlines()
        for line in lines:
            if line.startswith("batch "):
                self.last_batch_line = line
        return lines

    def log_tail(self, count: int = 30) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return f"---- last {count} lines of {self.log_path} ----\n" + "\n".join(lines[-count:])


def random_quotas(rng: random.Random, count: int, total: int) -> list[int]:
    """`count` random positive numbers that add up to less than `total` (the gaps between sorted random
    points in 1..total-1)."""
    points = sorted(rng.sample(range(1, total), count))
    return [point - previous for previous, point in zip([0] + points, points)]


def records_begun(lines: list[str]) -> int:
    """Records the application read, from its "batch begin RECORDS" lines."""
    return sum(int(line.split()[2]) for line in lines if line.startswith("batch begin "))


# -- the input -------------------------------------------------------------------------------------------

def produce_numbers(bootstrap: str, topic: str, count: int) -> None:
    """Message n (value: n in ASCII) to partition n % PARTITIONS."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    failures = []
    for number in range(count):
        while True:
            try:
                producer.produce(topic, value=str(number).encode(), partition=number % PARTITIONS,
                                 on_delivery=lambda error, message: error and failures.append(error))
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60) != 0 or failures:
        raise ExampleFailed(f"could not produce the input: {failures[:3]}")


def count_numbers(values: list[bytes | str], count: int) -> dict:
    """What a sink holds, against the input "0".."count-1"."""
    copies = Counter(int(value) for value in values)
    unexpected = sorted(number for number in copies if not 0 <= number < count)
    if unexpected:
        raise ExampleFailed(f"the sink holds numbers that were never input: {unexpected[:10]}")
    return {
        "in_sink": len(values),
        "distinct": len(copies),
        "lost": count - len(copies),
        "duplicated": len(values) - len(copies),
        "lost_first": sorted(set(range(count)) - copies.keys())[:10],
        "duplicated_first": sorted(number for number, copy_count in copies.items() if copy_count > 1)[:10],
    }


def topic_values(bootstrap: str, topic: str, isolation_level: str) -> list[bytes]:
    messages = read_to_end(bootstrap, topic, PARTITIONS, isolation_level, READ_BACK_TIMEOUT_SECONDS)
    return [message.value() for partition in sorted(messages) for message in messages[partition]]


# -- Java ------------------------------------------------------------------------------------------------

def java_command() -> list[str] | None:
    """Compiles ExactlyOnce.java; the command that runs it, or None without javac or the client jars."""
    if shutil.which("javac") is None or not (JAVA_LIBS / "kafka-clients-4.3.1.jar").is_file():
        return None
    JAVA_CLASSES.mkdir(parents=True, exist_ok=True)
    subprocess.run(["javac", "-encoding", "UTF-8", "--release", "17", "-Xlint:all", "-Werror",
                    "-cp", f"{JAVA_LIBS}/*", "-d", str(JAVA_CLASSES), str(EXAMPLE_DIR / "ExactlyOnce.java")],
                   check=True, timeout=180, stdin=subprocess.DEVNULL)
    # C1 only and the serial collector: the JVM starts faster, which is what a restarted application waits for.
    return ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
            "-cp", f"{JAVA_CLASSES}:{JAVA_LIBS}/*", "ExactlyOnce"]


# -- consumer side ---------------------------------------------------------------------------------------

def consumer_command(example: ConsumerExample, bootstrap: str, input_topic: str, output: str,
                     java: list[str] | None) -> list[str]:
    group = f"{example.name}-group"
    instance = f"{example.name}-instance"
    python = [sys.executable, "-u"]
    if example.name == "at-most-once":
        return [*python, "at_most_once.py", bootstrap, input_topic, output, group, instance]
    if example.name == "at-least-once":
        return [*python, "at_least_once.py", bootstrap, input_topic, output, group, instance]
    if example.name == "exactly-once-python":
        return [*python, "exactly_once.py", bootstrap, input_topic, output, group, instance, f"{example.name}-txn"]
    if example.name == "exactly-once-java":
        return [*java, bootstrap, input_topic, output, group, instance, f"{example.name}-txn"]
    if example.name == "exactly-once-sqlite":
        return [*python, "exactly_once_sqlite.py", bootstrap, input_topic, output]
    raise ValueError(example.name)


def run_consumer_example(example: ConsumerExample, broker, input_topic: str, options, rng: random.Random,
                         work_dir: Path, java: list[str] | None) -> dict:
    bootstrap = broker.bootstrap
    if example.sink == "topic":
        output = create_topic(bootstrap, unique_topic_name(f"{example.name}-out"), PARTITIONS)
    else:
        output = str(work_dir / f"{example.name}.sqlite")
        Path(output).unlink(missing_ok=True)  # the example starts from an empty database
    app = AppProcess(consumer_command(example, bootstrap, input_topic, output, java), work_dir / f"{example.name}.log")
    # Run i is killed once it has read quotas[i] records. Together they are under 90% of the input, and the
    # runs read all of it (and more where they read records again), so every kill comes while records remain.
    quotas = random_quotas(rng, options.app_kills, int(options.count * 0.9))
    kills: list[dict] = []
    unplanned_exits: list[int] = []
    read_so_far = 0
    read_this_run = 0
    started = time.monotonic()

    def details() -> str:
        return (f"{example.name}: {time.monotonic() - started:.0f}s, read {read_so_far} records, kills {kills}, "
                f"unplanned exits {unplanned_exits}\n{app.log_tail()}")

    try:
        app.start()
        while True:
            if time.monotonic() - started > options.app_deadline:
                raise ExampleFailed(f"did not finish within {options.app_deadline}s: {details()}")
            read = records_begun(app.new_lines())
            read_so_far += read
            read_this_run += read
            exit_code = app.exit_code()
            if exit_code == 0:
                read_so_far += records_begun(app.new_lines())
                break
            if exit_code is not None:
                read_so_far += records_begun(app.new_lines())
                unplanned_exits.append(exit_code)
                if len(unplanned_exits) > MAX_UNPLANNED_EXITS:
                    raise ExampleFailed(f"the application keeps failing: {details()}")
                app.start()
                read_this_run = 0
            if len(kills) < len(quotas) and read_this_run >= quotas[len(kills)]:
                time.sleep(rng.uniform(0, KILL_DELAY_MAX_SECONDS))
                if app.exit_code() is None:
                    app.kill()
                    read = records_begun(app.new_lines())
                    read_so_far += read
                    kills.append({"run_read_records": read_this_run + read, "last_batch_line": app.last_batch_line,
                                  "inside_batch": app.last_batch_line not in (None, "batch done")})
                    app.start()
                    read_this_run = 0
            time.sleep(0.005)
    finally:
        app.kill()
    seconds = time.monotonic() - started

    if example.sink == "topic":
        values = topic_values(bootstrap, output, "read_committed" if example.transactional else "read_uncommitted")
    else:
        with sqlite3.connect(output) as database:
            values = [row[0] for row in database.execute("SELECT value FROM sink")]
    row = {
        "name": example.name, "guarantee": example.guarantee, "application": example.application,
        "sink": "output topic" if example.sink == "topic" else "SQLite",
        "messages_in": options.count, **count_numbers(values, options.count),
        "kills": len(kills), "kills_inside_batch": sum(kill["inside_batch"] for kill in kills),
        "kill_points": kills, "unplanned_exits": unplanned_exits, "seconds": round(seconds, 1),
    }
    if example.transactional:
        # Output records of transactions the kills left open, which init_transactions aborted.
        row["aborted_output_records"] = len(topic_values(bootstrap, output, "read_uncommitted")) - len(values)
    return row


# -- producer side ---------------------------------------------------------------------------------------

def run_producer_example(example: ProducerExample, broker, options, rng: random.Random, work_dir: Path) -> dict:
    topic = create_topic(broker.bootstrap, unique_topic_name(f"acks-{example.acks}"), PARTITIONS)
    # The broker is killed once quotas[i] more messages were acknowledged since it was last (re)started, and
    # only while the producer is still producing. A restart stalls the stream for 1-2 s (librdkafka looks for
    # the partitions' leader again on a 1 s timer), so the quotas are kept small enough for every kill to come
    # within the stream: each under half the messages produced in the stream's share per kill.
    rate = options.count / options.produce_seconds
    quotas = [rng.randint(1, options.count // (2 * (options.broker_kills + 1))) for _ in range(options.broker_kills)]
    result_path = work_dir / f"{example.name}.json"
    command = [sys.executable, "-u", "acks_producer.py", broker.bootstrap, topic, str(options.count), example.acks,
               "true" if example.idempotence else "false", str(rate), str(result_path)]
    app = AppProcess(command, work_dir / f"{example.name}.log")
    broker_kills: list[dict] = []
    produced = acknowledged = acknowledged_at_start = 0
    started = time.monotonic()
    try:
        app.start()
        while app.exit_code() is None:
            if time.monotonic() - started > options.app_deadline:
                raise ExampleFailed(f"{example.name}: the producer did not finish within {options.app_deadline}s\n"
                                    f"{app.log_tail()}")
            for line in app.new_lines():
                if line.startswith("produced "):  # "produced P acknowledged A failed F"
                    produced, acknowledged = int(line.split()[1]), int(line.split()[3])
            if (len(broker_kills) < len(quotas) and produced < options.count
                    and acknowledged - acknowledged_at_start >= quotas[len(broker_kills)]):
                time.sleep(rng.uniform(0, KILL_DELAY_MAX_SECONDS))
                broker.kill()
                down_at = time.monotonic()
                broker.start(timeout=BROKER_RESTART_TIMEOUT_SECONDS)
                # From the last progress line before the kill: messages produced, not yet acknowledged.
                broker_kills.append({"acknowledged": acknowledged, "unacknowledged": produced - acknowledged,
                                     "down_seconds": round(time.monotonic() - down_at, 2)})
                acknowledged_at_start = acknowledged
            time.sleep(0.005)
        app.new_lines()
        if app.exit_code() != 0:
            raise ExampleFailed(f"{example.name}: the producer exited with {app.exit_code()}\n{app.log_tail()}")
    finally:
        app.kill()
    seconds = time.monotonic() - started

    result = json.loads(result_path.read_text())
    acknowledged_numbers = set(result["acknowledged"])
    values = topic_values(broker.bootstrap, topic, "read_uncommitted")
    counts = count_numbers(values, options.count)
    stored = {int(value) for value in values}
    lost_acknowledged = sorted(acknowledged_numbers - stored)
    return {
        "name": example.name, "acks": example.acks, "idempotence": example.idempotence,
        "messages_sent": options.count, "acknowledged": len(acknowledged_numbers), "failed": len(result["failed"]),
        "undelivered": result["undelivered"], "stored": counts["distinct"], "in_topic": counts["in_sink"],
        "lost": counts["lost"], "lost_acknowledged": len(lost_acknowledged),
        "lost_acknowledged_first": lost_acknowledged[:10], "duplicated": counts["duplicated"],
        "broker_kills": len(broker_kills), "broker_kill_points": broker_kills, "seconds": round(seconds, 1),
    }


# -- the report ------------------------------------------------------------------------------------------

def consumer_table(rows: list[dict]) -> str:
    lines = ["| guarantee | application | sink | messages in | in sink | lost | duplicated "
             "| app kills (inside a batch) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['guarantee']} | {row['application']} | | skipped: {row['skipped']} | | | | |")
            continue
        lines.append(f"| {row['guarantee']} | {row['application']} | {row['sink']} | {row['messages_in']:,} | "
                     f"{row['in_sink']:,} | {row['lost']:,} | {row['duplicated']:,} | "
                     f"{row['kills']} ({row['kills_inside_batch']}) |")
    return "\n".join(lines)


def producer_table(rows: list[dict]) -> str:
    lines = ["| producer | messages sent | acknowledged | stored | acknowledged but lost | duplicated | broker kills |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        settings = f"acks={row['acks']}" + (", enable.idempotence=true" if row["idempotence"] else "")
        lines.append(f"| `{settings}` | {row['messages_sent']:,} | {row['acknowledged']:,} | {row['stored']:,} | "
                     f"{row['lost_acknowledged']:,} | {row['duplicated']:,} | {row['broker_kills']} |")
    return "\n".join(lines)


def new_broker(kind: str):
    if kind == "kafka":
        return KafkaBroker(BROKER_CONFIG)
    broker = SkeinBroker(BROKER_CONFIG)
    # The run restarts the broker: a hard link in its temp dir keeps the build it started with, should
    # target/release/skein be rebuilt meanwhile (a new build may not read the old one's data).
    try:
        os.link(skein_binary(), broker.work_dir / "skein")
        broker.binary = broker.work_dir / "skein"
    except OSError:  # another file system: use the build in place
        pass
    return broker


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"received signal {signum}")


def parse_options(argv: list[str]):
    parser = argparse.ArgumentParser(description="Delivery guarantees through crashes, measured.")
    parser.add_argument("--count", type=int, default=20_000, help="numbered input messages (default 20,000)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the kill points (default: random)")
    parser.add_argument("--app-kills", type=int, default=5, help="SIGKILLs per consumer application (default 5)")
    parser.add_argument("--broker-kills", type=int, default=3, help="broker kill -9s per producer run (default 3)")
    parser.add_argument("--produce-seconds", type=float, default=None,
                        help="producer side: how long producing the messages takes (default 4 s per broker kill)")
    parser.add_argument("--only", default="", help="comma-separated example names, e.g. at-most-once,acks=0")
    parser.add_argument("--broker", choices=["skein", "kafka"], default="skein",
                        help="skein (default) or kafka: Apache Kafka from .tools/kafka, to compare")
    parser.add_argument("--app-deadline", type=float, default=300, help="seconds one example may take (default 300)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--work-dir", type=Path, help="keep the applications' logs here (default: a temp dir, removed)")
    options = parser.parse_args(argv)
    names = [example.name for example in CONSUMER_EXAMPLES + PRODUCER_EXAMPLES]
    if options.produce_seconds is None:
        options.produce_seconds = 4.0 * max(options.broker_kills, 1)
    options.only = [name for name in options.only.split(",") if name] or names
    unknown = set(options.only) - set(names)
    if unknown:
        parser.error(f"unknown example {sorted(unknown)}; the examples are {names}")
    if options.count < 1000:
        parser.error("--count must be at least 1000 (the kills need room)")
    return options


def main(argv: list[str]) -> int:
    options = parse_options(argv)
    seed = options.seed if options.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    say(f"seed {seed} (repeat with --seed {seed}); {options.count:,} messages; broker: {options.broker}")
    work_dir = options.work_dir or Path(tempfile.mkdtemp(prefix="delivery-semantics-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    # A SIGTERM (e.g. a timeout) unwinds like Ctrl-C, so the finally blocks kill the processes started here.
    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    broker = new_broker(options.broker)
    consumer_rows: list[dict] = []
    producer_rows: list[dict] = []
    succeeded = False
    try:
        broker.start()
        say(f"broker {options.broker} pid {broker.pid} at {broker.bootstrap}, data in {broker.work_dir}")
        consumer_examples = [example for example in CONSUMER_EXAMPLES if example.name in options.only]
        if consumer_examples:
            input_topic = create_topic(broker.bootstrap, unique_topic_name("numbers"), PARTITIONS)
            produce_numbers(broker.bootstrap, input_topic, options.count)
            java = java_command() if any(e.name == "exactly-once-java" for e in consumer_examples) else None
            for example in consumer_examples:
                if example.name == "exactly-once-java" and java is None:
                    consumer_rows.append({"name": example.name, "guarantee": example.guarantee,
                                          "application": example.application,
                                          "skipped": f"javac or the client jars in {JAVA_LIBS} missing"})
                    continue
                say(f"{example.name}: running, {options.app_kills} kills ...")
                row = run_consumer_example(example, broker, input_topic, options, rng, work_dir, java)
                say(f"{example.name}: {row['in_sink']:,} in sink, lost {row['lost']:,}, duplicated "
                    f"{row['duplicated']:,}, kills {row['kills']} ({row['kills_inside_batch']} inside a batch), "
                    f"{row['seconds']}s")
                consumer_rows.append(row)
        for example in PRODUCER_EXAMPLES:
            if example.name not in options.only:
                continue
            say(f"{example.name}: producing for {options.produce_seconds:.0f}s, "
                f"{options.broker_kills} broker kills ...")
            row = run_producer_example(example, broker, options, rng, work_dir)
            say(f"{example.name}: acknowledged {row['acknowledged']:,}, stored {row['stored']:,}, acknowledged but "
                f"lost {row['lost_acknowledged']:,}, duplicated {row['duplicated']:,}, {row['seconds']}s")
            producer_rows.append(row)
        succeeded = True
    except (ExampleFailed, BrokerError) as failure:
        say(f"FAILED: {failure}\n{broker.log_tail(30)}")
    finally:
        if not succeeded:
            # Keep what explains the failure: the applications' logs, the broker's log and data (copied
            # after a SIGKILL, so they stay as they were).
            broker.kill()
            shutil.copytree(broker.work_dir, work_dir / "broker", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("skein"))  # not the hard link to the binary
            say(f"the logs and the broker's data are kept in {work_dir}")
        broker.close()
    if not succeeded:
        return 1
    total_seconds = time.monotonic() - started

    say("")
    if consumer_rows:
        say(consumer_table(consumer_rows))
        say("")
    if producer_rows:
        say(producer_table(producer_rows))
        say("")
    say(f"seed {seed}, {options.count:,} messages, {options.broker}, {total_seconds:.0f}s")
    if options.json:
        options.json.write_text(json.dumps({
            "seed": seed, "count": options.count, "broker": options.broker, "seconds": round(total_seconds, 1),
            "consumer": consumer_rows, "producer": producer_rows}, indent=2))
    if options.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
