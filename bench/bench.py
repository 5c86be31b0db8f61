"""Skein and Apache Kafka side by side: the same Kafka perf-test tools against each broker, one table.

Run through bench/run; see bench/README.md for what is measured and how to read the table.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "bench"
LOG_DIR = BENCH_DIR / "logs"
sys.path.insert(0, str(REPO_ROOT / "tests"))

import confluent_kafka  # noqa: E402

from confluent_kafka import IsolationLevel, KafkaError, KafkaException, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # noqa: E402

from support.brokers import KAFKA_DIR, BrokerError, KafkaBroker, SkeinBroker, skein_binary  # noqa: E402
from support.cluster import CLUSTER_CONFIG, KAFKA_ONLY_CONFIG, SkeinCluster, make_cluster  # noqa: E402
from support.kafka_clients import create_topic, high_watermarks  # noqa: E402

# Both brokers get exactly these settings (server.properties for Kafka, YAML for Skein).
BROKER_CONFIG = {"log.retention.ms": -1}
# The default mode's single brokers also: a classic group's first join waits group.initial.rebalance.delay.ms
# (3 s by default) for more members; tests/support/brokers.py already sets it to 0 for Kafka, and the join is not
# part of the ConsumerPerformance figures, so both get 0.
SINGLE_BROKER_CONFIG = {**BROKER_CONFIG, "group.initial.rebalance.delay.ms": 0}
# The perf tools' own heap, as in Kafka's kafka-producer-perf-test.sh / kafka-consumer-perf-test.sh.
TOOL_HEAP = "-Xmx512M"
LINGER_MS = 5
BROKER_START_TIMEOUT = 120
CLIENT_TIMEOUT = 60
# ConsumerPerformance gives up when no record arrives for this long.
CONSUMER_PERF_IDLE_TIMEOUT_MS = 30_000
MIB = 1024 * 1024

DEFAULT_MESSAGES = 1_000_000
QUICK_MESSAGES = 200_000
DEFAULT_SIZES = [100, 1024]
DEFAULT_ACKS = ["1", "all"]
QUICK_ACKS = ["all"]
DEFAULT_PARTITIONS = [1, 8]
# Every row runs this many times per broker, the brokers alternating.
DEFAULT_REPEAT = 3
# Concurrent perf-tool processes per produce / consume row.
DEFAULT_CLIENTS = 1
# Transactional produce rows: one row per count of concurrent transactional producers (none by default).
DEFAULT_TRANSACTIONAL_PRODUCERS: list[int] = []
# ProducerPerformance --transaction-duration-ms: each producer commits once a transaction is this old.
DEFAULT_TRANSACTION_DURATION_MS = 100
# Before its first row each broker takes this untimed load, so the JVM's JIT (and Skein's caches) start warm.
WARMUP_ROW_MESSAGES = 100_000

# APIs the classic consumer group protocol needs; ConsumerPerformance subscribes, so it needs all of them.
GROUP_API_KEYS = {
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    14: "SyncGroup",
}
# The KIP-848 consumer group protocol (group.protocol=consumer).
CONSUMER_PROTOCOL_API_KEYS = {
    9: "OffsetFetch",
    10: "FindCoordinator",
    68: "ConsumerGroupHeartbeat",
}
# A transactional producer's requests.
TRANSACTION_API_KEYS = {
    10: "FindCoordinator",
    22: "InitProducerId",
    24: "AddPartitionsToTxn",
    26: "EndTxn",
}

# --replicated: a 3-node cluster of each kind (tests/support/cluster.py), one after the other.
CLUSTER_NODES = 3
REPLICATION_FACTOR = 3
# Every replicated row's topic; the producer uses acks=all, so each send waits for the whole ISR (at least 2).
REPLICATED_TOPIC_CONFIG = {"min.insync.replicas": 2}
REPLICATED_SIZES = [100]
# One partition per node: the three leaders are spread over the three brokers.
REPLICATED_PARTITIONS = [3]
# The fixed offered load (records/s) of the second row of each shape, the same for both brokers.
DEFAULT_FIXED_RATE = 20_000
# A fixed-load row whose achieved rate is below this share of the target did not sustain the load (noted).
SUSTAINED_SHARE = 0.97
REPLICATED_OUTPUT = BENCH_DIR / "REPLICATED-RESULTS.md"
CLUSTER_START_TIMEOUT = 180
# Before each measured run: wait (at most QUIET_MAX_WAIT s) until the broker processes together use less than
# QUIET_CORES of a core over QUIET_WINDOW s, so work left from the previous run (a flush, a compaction, followers
# catching up) is not measured in this one.
QUIET_CORES = 0.3
QUIET_WINDOW = 1.0
# The default mode checks before each of its many short runs: a shorter window (still 15 clock ticks at 0.3 cores).
PAIR_QUIET_WINDOW = 0.5
QUIET_MAX_WAIT = 20

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # In the child between fork and exec: the kernel kills the tool if this script dies first.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProduceRow:
    size: int
    acks: str
    partitions: int
    idempotence: bool
    topic_prefix: str = "bench"
    replication_factor: int = 1
    # ProducerPerformance --throughput: -1 is unthrottled, otherwise the offered load in records/s.
    throughput: int = -1
    # ProducerPerformance processes at once, each writing its share of the row's messages to the same topic.
    clients: int = 1
    # Every client a transactional producer (--transactional-id, --transaction-duration-ms).
    transactional: bool = False
    transaction_duration_ms: int = DEFAULT_TRANSACTION_DURATION_MS

    @property
    def label(self) -> str:
        idempotence = ", idempotent" if self.idempotence and not self.transactional else ""
        replicated = f", RF {self.replication_factor}" if self.replication_factor != 1 else ""
        if self.replication_factor != 1 or self.throughput != -1:
            replicated += ", full speed" if self.throughput == -1 else f", offered {self.throughput:,} msgs/s"
        if self.transactional:
            clients = f", {self.clients} transactional producer" + ("" if self.clients == 1 else "s")
        else:
            clients = f", {self.clients} producer processes" if self.clients > 1 else ""
        return (f"produce {size_label(self.size)}, acks={self.acks}, {partition_label(self.partitions)}"
                f"{idempotence}{replicated}{clients}")

    @property
    def topic(self) -> str:
        """The first repeat's topic (the one the consume rows read)."""
        idempotence = "-idempotent" if self.idempotence and not self.transactional else ""
        replicated = f"-rf{self.replication_factor}" if self.replication_factor != 1 else ""
        throttled = f"-t{self.throughput}" if self.throughput != -1 else ""
        clients = f"-txn{self.clients}" if self.transactional else (f"-c{self.clients}" if self.clients > 1 else "")
        return (f"{self.topic_prefix}-{self.size}b-acks{self.acks}-p{self.partitions}{idempotence}{replicated}"
                f"{throttled}{clients}")

    def repeat_topic(self, repeat: int) -> str:
        """Each repeat writes a topic of its own, so every repeat starts from an empty topic of the same shape."""
        return self.topic if repeat == 0 else f"{self.topic}-r{repeat + 1}"

    @property
    def required_apis(self) -> dict[int, str]:
        return TRANSACTION_API_KEYS if self.transactional else {}


CONSUME_TOOLS = {
    "assign": "confluent-kafka assign()",
    "consumer-perf": "ConsumerPerformance, classic group",
    "consumer-perf-848": "ConsumerPerformance, KIP-848 group",
}


@dataclass(frozen=True)
class ConsumeRow:
    tool: str  # a key of CONSUME_TOOLS
    source: ProduceRow  # the produce row whose (first repeat's) topic this row reads
    # Consumer processes at once, each reading the whole topic (so the broker serves clients × N messages).
    clients: int = 1

    @property
    def label(self) -> str:
        clients = f", {self.clients} full reads at once" if self.clients > 1 else ""
        return (f"consume {size_label(self.source.size)}, {partition_label(self.source.partitions)}{clients}"
                f" ({CONSUME_TOOLS[self.tool]})")

    @property
    def required_apis(self) -> dict[int, str]:
        return {"assign": {}, "consumer-perf": GROUP_API_KEYS,
                "consumer-perf-848": CONSUMER_PROTOCOL_API_KEYS}[self.tool]


WARMUP_ROW = ProduceRow(size=1024, acks="1", partitions=8, idempotence=False, topic_prefix="warmup")
# The replicated mode's warm-up goes through the replication path too: acks=all to a replicated topic.
REPLICATED_WARMUP_ROW = ProduceRow(size=1024, acks="all", partitions=3, idempotence=False, topic_prefix="warmup",
                                   replication_factor=REPLICATION_FACTOR)


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def partition_label(partitions: int) -> str:
    return f"{partitions} partition" + ("" if partitions == 1 else "s")


def build_matrix(sizes: list[int], acks: list[str], partitions: list[int], idempotence: list[bool], clients: int,
                 transactional_producers: list[int],
                 transaction_duration_ms: int) -> tuple[list[ProduceRow], list[ConsumeRow]]:
    produce_rows = [
        ProduceRow(size, ack, partition_count, idempotent, clients=clients)
        for size in sizes
        for partition_count in partitions
        for ack in acks
        for idempotent in idempotence
        # The producer refuses idempotence without acks=all.
        if not (idempotent and ack != "all")
    ]
    # Consumption depends on the data, not on how it was acknowledged: one read per size × partition count,
    # of the topic its first produce row wrote.
    sources: dict[tuple[int, int], ProduceRow] = {}
    for row in produce_rows:
        sources.setdefault((row.size, row.partitions), row)
    consume_rows = [ConsumeRow(tool, source, clients) for source in sources.values() for tool in CONSUME_TOOLS]
    # Transactional rows: the smallest size (per-message and per-request costs dominate) and the most partitions
    # (each transaction spans several partitions, so every commit writes that many markers).
    produce_rows += [
        ProduceRow(min(sizes), "all", max(partitions), True, clients=count, transactional=True,
                   transaction_duration_ms=transaction_duration_ms)
        for count in transactional_producers
    ]
    return produce_rows, consume_rows


def build_replicated_rows(sizes: list[int], partitions: list[int], fixed_rate: int) -> list[ProduceRow]:
    """acks=all to a topic with replication factor 3: unthrottled, then at the fixed offered load."""
    return [
        ProduceRow(size, "all", partition_count, False, topic_prefix="repl", replication_factor=REPLICATION_FACTOR,
                   throughput=throughput)
        for size in sizes
        for partition_count in partitions
        for throughput in (-1, fixed_rate)
    ]


# ---------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------

@dataclass
class Metric:
    key: str
    name: str
    better: str  # "higher" or "lower"
    decimals: int


PRODUCE_METRICS = [
    Metric("mib_per_s", "MiB/s", "higher", 1),
    Metric("msgs_per_s", "msgs/s", "higher", 0),
    Metric("p50_ms", "latency p50 ms", "lower", 0),
    Metric("p99_ms", "latency p99 ms", "lower", 0),
    Metric("cpu_us_per_msg", "broker CPU µs/msg", "lower", 2),
    Metric("peak_rss_mib", "broker peak RSS MiB", "lower", 0),
]
CONSUME_METRICS = [
    Metric("mib_per_s", "MiB/s", "higher", 1),
    Metric("msgs_per_s", "msgs/s", "higher", 0),
    Metric("cpu_us_per_msg", "broker CPU µs/msg", "lower", 2),
    Metric("peak_rss_mib", "broker peak RSS MiB", "lower", 0),
]


# The replicated rows: the same figures, resources summed over the cluster's three broker processes.
REPLICATED_PRODUCE_METRICS = [
    Metric("msgs_per_s", "msgs/s", "higher", 0),
    Metric("mib_per_s", "MiB/s", "higher", 2),
    Metric("p50_ms", "latency p50 ms", "lower", 0),
    Metric("p99_ms", "latency p99 ms", "lower", 0),
    Metric("p999_ms", "latency p99.9 ms", "lower", 0),
    Metric("peak_rss_mib", f"peak RSS MiB, sum of {CLUSTER_NODES} brokers", "lower", 0),
    Metric("cpu_s", f"CPU s, sum of {CLUSTER_NODES} brokers", "lower", 2),
]


@dataclass
class Outcome:
    """One row on one broker: a sample of metrics per repeat, or why there are none (failed / not applicable).
    A row that failed in any repeat is FAILED as a whole; its other repeats' samples are only in the log."""
    samples: list[dict[str, float]] = field(default_factory=list)
    failure: str | None = None
    not_applicable: str | None = None
    # Things the report should say about a measured row (an offered load not sustained, a shrunk ISR).
    notes: list[str] = field(default_factory=list)


class RowFailure(Exception):
    pass


class BrokerUsage:
    """CPU seconds and peak RSS of the measured broker process between start() and finish(); for a cluster, of
    each of its broker processes, summed. `other_pids` are brokers that should be idle meanwhile (the other kind
    in the default mode): their CPU seconds are recorded too, to show how much they took from the run."""

    clock_ticks = os.sysconf("SC_CLK_TCK")
    # Set when a peak could not be reset, so the report can say the peak is since broker start.
    some_peak_is_since_start = False

    def __init__(self, pids: list[int], other_pids: list[int] = ()):
        self.pids = pids
        self.other_pids = list(other_pids)

    def start(self) -> None:
        for pid in self.pids:
            try:
                # Writing 5 resets the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0).
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                BrokerUsage.some_peak_is_since_start = True
        self.cpu_at_start = [cpu_seconds(pid) for pid in self.pids]
        self.other_cpu_at_start = [cpu_seconds(pid) for pid in self.other_pids]
        self.started = time.monotonic()

    def finish(self) -> dict[str, float]:
        self.cpu_per_process = [cpu_seconds(pid) - start for pid, start in zip(self.pids, self.cpu_at_start)]
        resources = {"cpu_s": sum(self.cpu_per_process),
                     "peak_rss_mib": sum(status_kib(pid, "VmHWM") for pid in self.pids) / 1024,
                     "run_s": time.monotonic() - self.started}
        if self.other_pids:
            resources["other_cpu_s"] = sum(cpu_seconds(pid) - start
                                           for pid, start in zip(self.other_pids, self.other_cpu_at_start))
        return resources


def status_kib(pid: int, name: str) -> int:
    """A kB figure (VmHWM, VmRSS) from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise RowFailure(f"no {name} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads) so far; its children's (cutime, cstime) are not counted."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the ")" closing the command name; utime and stime are the 14th and 15th of the line.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / BrokerUsage.clock_ticks


def process_ids(target) -> list[int]:
    """The broker processes whose resources a row measures: one broker's, or every node's of a cluster."""
    return list(target.pids) if hasattr(target, "pids") else [target.pid]


# ---------------------------------------------------------------------------------------------------
# Running tools
# ---------------------------------------------------------------------------------------------------

@dataclass
class ClientOutput:
    """One tool process's stdout, and each line with the time.monotonic() at which it arrived."""
    lines: list[tuple[float, str]] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "\n".join(line for _, line in self.lines)


class Runner:
    """Runs bounded child processes from the repo root and remembers every command line."""

    def __init__(self, log_dir: Path, timeout: float):
        self.log_dir = log_dir
        self.timeout = timeout
        self.commands: list[tuple[str, str]] = []  # (broker kind, command line)
        self.warmup_commands: set[int] = set()  # indexes into commands of the untimed warm-up runs

    def run(self, broker_kind: str, log_name: str, command: list[str], record: bool = True) -> str:
        """Runs command; returns its stdout. Raises RowFailure on timeout or non-zero exit."""
        return self.run_clients(broker_kind, log_name, [command], record)[0].stdout

    def run_clients(self, broker_kind: str, log_name: str, commands: list[list[str]],
                    record: bool = True) -> list[ClientOutput]:
        """Starts every command at once and waits for all of them, at most the row timeout in all. Returns each
        one's output with the arrival time of every stdout line. Raises RowFailure if any of them is still running
        at the timeout (all are then killed) or exits non-zero. `record`: list the commands in the report."""
        if record:
            self.commands += [(broker_kind, shlex.join(command)) for command in commands]
        env = dict(os.environ, LC_ALL="C.UTF-8")
        outputs = [ClientOutput() for _ in commands]
        stderrs: list[list[str]] = [[] for _ in commands]
        processes: list[subprocess.Popen] = []
        readers: list[threading.Thread] = []
        timed_out = False
        try:
            for index, command in enumerate(commands):
                process = subprocess.Popen(
                    command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True, bufsize=1, env=env, preexec_fn=_die_with_parent,
                )
                processes.append(process)
                for target in (threading.Thread(target=_read_lines, args=(process.stdout, outputs[index].lines)),
                               threading.Thread(target=_read_lines, args=(process.stderr, None, stderrs[index]))):
                    target.daemon = True
                    target.start()
                    readers.append(target)
            deadline = time.monotonic() + self.timeout
            for process in processes:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
                    break
        finally:
            # Every path out (a time-out, Ctrl-C, SIGTERM) stops what is still running, by pid.
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            for reader in readers:
                reader.join(timeout=10)
        failures = []
        for index, (command, process) in enumerate(zip(commands, processes)):
            name = log_name if len(commands) == 1 else f"{log_name}-c{index + 1}"
            status = "killed after timeout" if timed_out and process.returncode < 0 else f"exit {process.returncode}"
            stderr = "".join(stderrs[index])
            self._write_log(self.log_dir / f"{broker_kind}-{name}.log", command, outputs[index].stdout, stderr,
                            status)
            if process.returncode != 0 and not timed_out:
                failures.append(f"{name} exited with {process.returncode}: "
                                f"{first_error_line(stderr or outputs[index].stdout)}")
        if timed_out:
            raise RowFailure(f"{log_name} did not finish within {self.timeout:.0f}s (killed)")
        if failures:
            raise RowFailure("; ".join(failures))
        return outputs

    @staticmethod
    def _write_log(path: Path, command: list[str], stdout: str, stderr: str, status: str) -> None:
        path.write_text(f"$ {shlex.join(command)}\n[{status}]\n---- stdout ----\n{stdout}\n---- stderr ----\n{stderr}")


def _read_lines(stream, timed_lines: list | None, chunks: list | None = None) -> None:
    """Reads a child's pipe to its end: lines with their arrival time into timed_lines, or text into chunks."""
    for line in iter(stream.readline, ""):
        if timed_lines is not None:
            timed_lines.append((time.monotonic(), line.rstrip("\n")))
        else:
            chunks.append(line)
    stream.close()


def first_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "Exception" in line or "ERROR" in line or "error" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"


def java_tool(main_class: str, *args: str) -> list[str]:
    return [
        # UTC: ConsumerPerformance prints its start and end times in the JVM's time zone; they are compared.
        "java", TOOL_HEAP, "-Duser.language=en", "-Duser.country=US", "-Duser.timezone=UTC",
        f"-Dlog4j2.configurationFile={(BENCH_DIR / 'tools-log4j2.properties').relative_to(REPO_ROOT)}",
        "-cp", f"{KAFKA_DIR.relative_to(REPO_ROOT)}/libs/*",
        main_class, *args,
    ]


def shares(total: int, parts: int) -> list[int]:
    """total split into `parts` whole shares as equal as possible (the first ones one larger)."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def span_seconds(windows: list[tuple[float, float]]) -> float:
    """From the earliest client's start to the last client's end: the wall time in which all of them did the work
    (for one client, its own time)."""
    span = max(end for _, end in windows) - min(start for start, _ in windows)
    if span <= 0:
        raise RowFailure("the clients' timed spans add up to no time; use more --messages")
    return span


# "%d%s records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency,
#  %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th." -- ProducerPerformance's summary line.
PRODUCER_SUMMARY = re.compile(
    r"^(?P<records>\d+)(?: steady state)? records sent, (?P<rate>[\d.]+) records/sec \((?P<mib>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, "
    r"(?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th\.$"
)


def measure_produce(runner: Runner, broker, row: ProduceRow, messages: int, repeat: int = 0,
                    other_pids: list[int] = (), notes: list[str] | None = None) -> dict[str, float]:
    """One run of the row: row.clients ProducerPerformance processes at once, each writing its share of `messages`
    to the repeat's topic. `broker` is a started SkeinBroker / KafkaBroker, or a ClusterTarget for a replicated
    row; `notes` collects what the report should say about the row besides its numbers."""
    topic = row.repeat_topic(repeat)
    if row.replication_factor == 1:
        create_topic(broker.bootstrap, topic, partitions=row.partitions, timeout=CLIENT_TIMEOUT)
    else:
        create_replicated_topic(broker.bootstrap, topic, row.partitions, row.replication_factor,
                                REPLICATED_TOPIC_CONFIG)
        wait_until_quiet(process_ids(broker), broker.kind)
    client_shares = shares(messages, row.clients)
    commands = []
    for index, share in enumerate(client_shares):
        transactional = ["--transactional-id", f"{topic}-{index + 1}",
                         "--transaction-duration-ms", str(row.transaction_duration_ms)] if row.transactional else []
        commands.append(java_tool(
            "org.apache.kafka.tools.ProducerPerformance",
            "--bootstrap-server", broker.bootstrap,
            "--topic", topic,
            "--num-records", str(share),
            "--record-size", str(row.size),
            "--throughput", str(row.throughput),
            *transactional,
            "--command-property",
            f"acks={row.acks}", f"linger.ms={LINGER_MS}",
            f"enable.idempotence={'true' if row.idempotence else 'false'}",
        ))
    usage = BrokerUsage(process_ids(broker), other_pids)
    usage.start()
    outputs = runner.run_clients(broker.kind, f"produce-{topic}", commands, record=repeat == 0)
    resources = usage.finish()
    if len(usage.pids) > 1:
        log(f"{broker.kind}:   CPU s per node: " + ", ".join(f"{cpu:.2f}" for cpu in usage.cpu_per_process))
    windows = []
    summaries = []
    for share, output in zip(client_shares, outputs):
        matched = [(arrived, match) for arrived, match in
                   ((arrived, PRODUCER_SUMMARY.match(line)) for arrived, line in output.lines) if match]
        if not matched:
            raise RowFailure(f"no summary line in ProducerPerformance output: {first_error_line(output.stdout)}")
        arrived, summary = matched[-1]
        acknowledged = int(summary["records"])
        if acknowledged != share:
            raise RowFailure(f"only {acknowledged} of {share} sends acknowledged")
        # The tool's own span (its rate is records over it) ends just before it prints the summary line.
        windows.append((arrived - acknowledged / float(summary["rate"]), arrived))
        summaries.append(summary)
    seconds = span_seconds(windows)
    stored = sum(high_watermarks(broker.bootstrap, topic, row.partitions, timeout=CLIENT_TIMEOUT))
    if row.transactional:
        # Every commit also wrote a marker to each partition it touched, so the log holds more than the records;
        # and no transaction may be left open (the last stable offsets reach the high watermarks).
        stable = sum(last_stable_offsets(broker.bootstrap, topic, row.partitions))
        if stored < messages or stable != stored:
            raise RowFailure(f"after {messages} committed sends the broker's partitions end at {stored} "
                             f"(last stable offsets {stable})")
    elif stored != messages:
        raise RowFailure(f"broker holds {stored} messages after {messages} acknowledged sends")
    rate = messages / seconds
    if notes is not None and row.throughput != -1 and rate < SUSTAINED_SHARE * row.throughput:
        notes.append(f"offered load not sustained: {rate:,.0f} of {row.throughput:,} msgs/s")
    if notes is not None and row.replication_factor > 1:
        shrunk = {p: isr for p, (leader, replicas, isr) in partition_states(broker.bootstrap, topic).items()
                  if set(isr) != set(replicas)}
        if shrunk:
            notes.append("ISR not full right after the row: "
                         + ", ".join(f"partition {p} ISR {sorted(isr)}" for p, isr in sorted(shrunk.items())))
    return {
        "msgs_per_s": rate,
        "mib_per_s": messages * row.size / MIB / seconds,
        # With several clients: the worst client's percentile.
        "p50_ms": max(float(summary["p50"]) for summary in summaries),
        "p99_ms": max(float(summary["p99"]) for summary in summaries),
        "p999_ms": max(float(summary["p999"]) for summary in summaries),
        "cpu_us_per_msg": resources["cpu_s"] * 1e6 / messages,
        **resources,
    }


def last_stable_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    """ListOffsets(latest) with isolation level read_committed: each partition's last stable offset."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    futures = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                                 isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=CLIENT_TIMEOUT)
    offsets = {tp.partition: future.result(timeout=CLIENT_TIMEOUT).offset for tp, future in futures.items()}
    return [offsets[p] for p in range(partitions)]


def create_replicated_topic(bootstrap: str, name: str, partitions: int, replication_factor: int, config: dict,
                            timeout: float = CLIENT_TIMEOUT) -> None:
    """CreateTopics with this replication factor and topic config (retried on time-outs and NOT_CONTROLLER, as a
    cluster's controller may still be settling), then waits until every partition has a leader and a full ISR."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                      config={key: str(value) for key, value in config.items()})],
            request_timeout=15)
        try:
            futures[name].result(timeout=20)
            break
        except KafkaException as error:
            code = error.args[0].code()
            if code == KafkaError.TOPIC_ALREADY_EXISTS and attempt > 1:
                break  # an earlier attempt that timed out on the client did create it
            if code not in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_CONTROLLER) \
                    or time.monotonic() > deadline:
                raise
    while True:
        states = partition_states(bootstrap, name)
        if len(states) == partitions and all(
                leader >= 0 and len(replicas) == replication_factor and set(isr) == set(replicas)
                for leader, replicas, isr in states.values()):
            return
        if time.monotonic() > deadline:
            raise RowFailure(f"topic {name} not led with a full ISR of {replication_factor} within {timeout:.0f}s: "
                             f"{states}")
        time.sleep(0.2)


def partition_states(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    """{partition: (leader, replicas, isr)} from one Metadata answer; empty while the topic is not listed."""
    metadata = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=CLIENT_TIMEOUT)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        return {}
    return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in described.partitions.values()}


def wait_until_quiet(pids: list[int], what: str, window: float = QUIET_WINDOW) -> None:
    """Waits (at most QUIET_MAX_WAIT s) until these broker processes together use under QUIET_CORES of a core over
    `window` seconds, so work left from the previous run (followers catching up, flushes, compactions) is not
    measured in the next one."""
    deadline = time.monotonic() + QUIET_MAX_WAIT
    while True:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(window)
        cores = (sum(cpu_seconds(pid) for pid in pids) - before) / window
        if cores < QUIET_CORES:
            return
        if time.monotonic() > deadline:
            log(f"{what}:   still using {cores:.2f} cores after {QUIET_MAX_WAIT}s; measuring anyway")
            return


def measure_assign_consume(runner: Runner, broker, row: ConsumeRow, messages: int, repeat: int = 0,
                           other_pids: list[int] = ()) -> dict[str, float]:
    """row.clients assign_consumer.py processes at once, each reading the whole topic (`messages` messages)."""
    command = [
        str((REPO_ROOT / ".tools" / "venv" / "bin" / "python").relative_to(REPO_ROOT)),
        str((BENCH_DIR / "assign_consumer.py").relative_to(REPO_ROOT)),
        "--bootstrap", broker.bootstrap,
        "--topic", row.source.topic,
        "--partitions", str(row.source.partitions),
        "--expected", str(messages),
        "--timeout", str(int(runner.timeout)),
    ]
    usage = BrokerUsage(process_ids(broker), other_pids)
    usage.start()
    log_name = f"consume-assign-{row.source.topic}" + (f"-r{repeat + 1}" if repeat else "")
    outputs = runner.run_clients(broker.kind, log_name, [command] * row.clients, record=repeat == 0)
    resources = usage.finish()
    results = [json.loads(output.stdout.strip().splitlines()[-1]) for output in outputs]
    # Each process's started / finished are CLOCK_MONOTONIC readings, comparable between processes.
    seconds = span_seconds([(result["started"], result["finished"]) for result in results])
    total = sum(result["messages"] for result in results)
    return {
        "msgs_per_s": total / seconds,
        "mib_per_s": sum(result["bytes"] for result in results) / MIB / seconds,
        "cpu_us_per_msg": resources["cpu_s"] * 1e6 / total,
        **resources,
    }


def measure_consumer_perf(runner: Runner, broker, row: ConsumeRow, messages: int, repeat: int = 0,
                          other_pids: list[int] = ()) -> dict[str, float]:
    """row.clients ConsumerPerformance processes at once, each in a group of its own (so each reads the whole
    topic), with the classic or the KIP-848 consumer group protocol."""
    protocol = "consumer" if row.tool == "consumer-perf-848" else "classic"
    run_id = uuid.uuid4().hex[:8]
    commands = [java_tool(
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server", broker.bootstrap,
        "--topic", row.source.topic,
        "--num-records", str(messages),
        "--group", f"bench-{row.source.topic}-{protocol}-{run_id}-{index + 1}",
        "--timeout", str(CONSUMER_PERF_IDLE_TIMEOUT_MS),
        "--command-property", f"group.protocol={protocol}",
    ) for index in range(row.clients)]
    usage = BrokerUsage(process_ids(broker), other_pids)
    usage.start()
    log_name = f"consume-perf-{protocol}-{row.source.topic}" + (f"-r{repeat + 1}" if repeat else "")
    outputs = runner.run_clients(broker.kind, log_name, commands, record=repeat == 0)
    resources = usage.finish()
    windows = []
    for output in outputs:
        values = consumer_perf_result(output.stdout)
        consumed = int(values["data.consumed.in.nMsg"])
        if consumed != messages:
            raise RowFailure(f"ConsumerPerformance read {consumed} of {messages} messages")
        # The fetch span leaves out the group join (rebalance) time, which is not the broker's read path; it
        # ends at end.time.
        end = datetime.datetime.strptime(values["end.time"], "%Y-%m-%d %H:%M:%S:%f").timestamp()
        windows.append((end - int(values["fetch.time.ms"]) / 1000, end))
    seconds = span_seconds(windows)
    total = messages * row.clients
    return {
        "msgs_per_s": total / seconds,
        "mib_per_s": total * row.source.size / MIB / seconds,
        "cpu_us_per_msg": resources["cpu_s"] * 1e6 / total,
        **resources,
    }


def consumer_perf_result(stdout: str) -> dict[str, str]:
    """ConsumerPerformance's result line, by its header's column names."""
    if "Exiting before consuming the expected number of records" in stdout:
        raise RowFailure(f"ConsumerPerformance stopped early: {first_error_line(stdout)}")
    lines = [line for line in stdout.splitlines() if line.strip()]
    header_index = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    if header_index is None or header_index + 1 >= len(lines):
        raise RowFailure(f"no result line in ConsumerPerformance output: {first_error_line(stdout)}")
    names = [name.strip() for name in lines[header_index].split(",")]
    return dict(zip(names, (value.strip() for value in lines[header_index + 1].split(","))))


def advertised_api_keys(bootstrap: str) -> set[int]:
    """API keys the broker lists in an ApiVersions v0 response."""
    host, port = bootstrap.rsplit(":", 1)
    client_id = b"skein-bench"
    # Request header v1: api_key=18 (ApiVersions), api_version=0, correlation_id, client_id; empty body.
    request = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", receive_exactly(sock, 4))[0]
        response = receive_exactly(sock, size)
    _correlation_id, error_code, count = struct.unpack_from(">ihi", response, 0)
    if error_code != 0:
        raise RuntimeError(f"ApiVersions v0 answered error code {error_code}")
    return {struct.unpack_from(">hhh", response, 10 + 6 * i)[0] for i in range(count)}


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


# ---------------------------------------------------------------------------------------------------
# Both brokers through the matrix, their runs alternating
# ---------------------------------------------------------------------------------------------------

@dataclass
class BrokerRun:
    kind: str
    start_command: str = ""
    load_before: str = ""
    load_after: str = ""
    # API keys the broker advertises; None when the ApiVersions probe failed.
    api_keys: set[int] | None = field(default_factory=set)
    failure: str | None = None  # the broker itself failed (start-up, crash)
    # VmRSS after start-up and warm-up, once the broker was quiet, before the first row.
    idle_rss_mib: float | None = None
    # (1-minute load average before, after) of each of the broker's measured runs, by row label.
    loads: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def missing(self, apis: dict[int, str]) -> list[str]:
        if self.api_keys is None:
            return ["(its ApiVersions probe failed)"] if apis else []
        return [name for key, name in apis.items() if key not in self.api_keys]


def run_brokers(kinds: list[str], skein_bin: Path, produce_rows: list[ProduceRow], consume_rows: list[ConsumeRow],
                messages: int, runner: Runner, warmup: bool, repeats: int,
                outcomes: dict[tuple[str, str], Outcome]) -> list[BrokerRun]:
    """The default mode. Both brokers are started once and kept running for the whole matrix; every row runs
    `repeats` times per broker with the brokers alternating (skein, kafka, skein, kafka, ...), so the runs of a
    pair are seconds apart and a change in the machine's background load hits both alike. The broker that is not
    being measured sits idle; before each run both must be quiet, and its CPU during the run is recorded."""
    runs = {kind: BrokerRun(kind) for kind in kinds}
    brokers = {kind: SkeinBroker(SINGLE_BROKER_CONFIG, binary=skein_bin) if kind == "skein"
               else KafkaBroker(SINGLE_BROKER_CONFIG) for kind in kinds}
    try:
        for kind in kinds:
            start_broker(brokers[kind], runs[kind])
        live = [kind for kind in kinds if not runs[kind].failure]
        if warmup:
            for kind in live:
                warm_up(runner, brokers[kind])
        for kind in live:
            if not brokers[kind].is_running():
                runs[kind].failure = f"{exit_description(brokers[kind])} before the first row (see its log)"
        live = [kind for kind in live if not runs[kind].failure]
        live_pids = [brokers[kind].pid for kind in live]
        if live:
            wait_until_quiet(live_pids, "brokers", PAIR_QUIET_WINDOW)
        load_before = load_average()
        for kind in live:
            runs[kind].idle_rss_mib = status_kib(brokers[kind].pid, "VmRSS") / 1024
            runs[kind].load_before = load_before
            log(f"{kind}: idle RSS {runs[kind].idle_rss_mib:,.0f} MiB")
        for row in [*produce_rows, *consume_rows]:
            run_row(row, kinds, runs, brokers, messages, runner, repeats, outcomes)
        load_after = load_average()
        for kind in live:
            runs[kind].load_after = load_after
    finally:
        for kind, broker in brokers.items():
            try:
                exit_code = broker.stop()
                if exit_code is not None and exit_code != broker.clean_exit_code:
                    log(f"{kind}: exited with {exit_code} after SIGTERM")
            except BrokerError as error:
                log(f"{kind}: {str(error).splitlines()[0]}")
            finally:
                if broker.log_path.exists():
                    shutil.copy(broker.log_path, runner.log_dir / f"{kind}-broker.log")
                broker.close()
    return [runs[kind] for kind in kinds]


def start_broker(broker, run: BrokerRun) -> None:
    log(f"{run.kind}: starting")
    try:
        broker.start(timeout=BROKER_START_TIMEOUT)
    except BrokerError as error:
        run.failure = f"broker did not start: {str(error).splitlines()[0]}"
        log(f"{run.kind}: {run.failure}")
        return
    run.start_command = shlex.join(broker._command())
    try:
        run.api_keys = advertised_api_keys(broker.bootstrap)
    except (OSError, RuntimeError, struct.error) as error:
        log(f"{run.kind}: ApiVersions probe failed: {error}")
        run.api_keys = None


def run_row(row, kinds: list[str], runs: dict[str, BrokerRun], brokers: dict, messages: int, runner: Runner,
            repeats: int, outcomes: dict[tuple[str, str], Outcome]) -> None:
    """Every repeat of one row, the brokers alternating within each repeat."""
    for kind in kinds:
        outcomes[(row.label, kind)] = Outcome(failure=runs[kind].failure)
    # A row that needs APIs one broker does not advertise is compared on neither.
    missing = {kind: runs[kind].missing(row.required_apis) for kind in kinds if not runs[kind].failure}
    if any(missing.values()):
        reason = "n/a (" + "; ".join(f"{kind} does not advertise {', '.join(names)}"
                                     for kind, names in missing.items() if names) + ")"
        log(f"{row.label}: {reason}")
        for kind in kinds:
            outcomes[(row.label, kind)] = Outcome(not_applicable=reason)
        return
    for repeat in range(repeats):
        for kind in kinds:
            outcome = outcomes[(row.label, kind)]
            if outcome.failure:
                continue  # the broker is down, or an earlier repeat failed: the row is FAILED on this broker
            if isinstance(row, ConsumeRow) and not outcomes[(row.source.label, kind)].samples:
                outcome.failure = f"its topic's produce row failed ({row.source.label})"
                continue
            broker = brokers[kind]
            running = [brokers[other] for other in kinds if not runs[other].failure and brokers[other].is_running()]
            other_pids = [other.pid for other in running if other is not broker]
            wait_until_quiet([each.pid for each in running], "brokers", PAIR_QUIET_WINDOW)
            measure = (measure_produce if isinstance(row, ProduceRow)
                       else measure_assign_consume if row.tool == "assign" else measure_consumer_perf)
            load_before = load_average()
            sample, failure = measure_row(kind, broker, f"{row.label} [run {repeat + 1}/{repeats}]",
                                          lambda: measure(runner, broker, row, messages, repeat, other_pids))
            runs[kind].loads.setdefault(row.label, []).append((load_before.split()[0], load_average().split()[0]))
            if failure:
                outcome.failure = failure if repeats == 1 else f"run {repeat + 1}: {failure}"
            else:
                outcome.samples.append(sample)


class ClusterTarget:
    """A started cluster seen as one broker by the produce measurement: bootstrap lists every node, pids are the
    nodes' processes (their resources are summed)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.kind = cluster.kind

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap_servers

    @property
    def pids(self) -> list[int]:
        return [node.pid for node in self.cluster.nodes]

    def is_running(self) -> bool:
        return all(node.is_running() for node in self.cluster.nodes)

    def exit_description(self) -> str:
        exited = [f"node {node.node_id} (code {node._process.returncode if node._process else '?'})"
                  for node in self.cluster.nodes if not node.is_running()]
        return f"{', '.join(exited)} exited"


def exit_description(target) -> str:
    if hasattr(target, "exit_description"):
        return target.exit_description()
    return f"broker exited with code {target._process.returncode}"


def make_bench_cluster(kind: str, skein_bin: Path):
    """A 3-node cluster of this kind, not yet started: support.cluster's settings plus BROKER_CONFIG; Skein from
    the measured binary (make_cluster would take target/release/skein)."""
    config = dict(BROKER_CONFIG)
    if kind == "skein":
        return SkeinCluster(CLUSTER_NODES, config, binary=skein_bin)
    return make_cluster(kind, CLUSTER_NODES, config)


def run_cluster(kind: str, skein_bin: Path, rows: list[ProduceRow], messages: int, runner: Runner, warmup: bool,
                outcomes: dict[tuple[str, str], Outcome]) -> BrokerRun:
    """--replicated: one 3-node cluster of this kind through the replicated produce rows, once each."""
    run = BrokerRun(kind)
    cluster = make_bench_cluster(kind, skein_bin)
    try:
        log(f"{kind}: starting a {CLUSTER_NODES}-node cluster")
        try:
            cluster.start(timeout=CLUSTER_START_TIMEOUT)
            cluster.wait_for_brokers(CLUSTER_NODES, timeout=CLUSTER_START_TIMEOUT)
        except (BrokerError, TimeoutError) as error:
            run.failure = f"cluster did not start: {str(error).splitlines()[0]}"
            for row in rows:
                outcomes[(row.label, kind)] = Outcome(failure=run.failure)
            return run
        run.start_command = "\n".join(shlex.join(node._command()) for node in cluster.nodes)
        target = ClusterTarget(cluster)
        run.load_before = load_average()
        if warmup:
            log(f"{kind}: warm-up ({WARMUP_ROW_MESSAGES:,} × {size_label(REPLICATED_WARMUP_ROW.size)}, acks=all, "
                f"RF {REPLICATION_FACTOR}, not measured)")
            first_command = len(runner.commands)
            try:
                measure_produce(runner, target, REPLICATED_WARMUP_ROW, WARMUP_ROW_MESSAGES)
            except Exception as error:  # the rows that follow will show what is wrong
                log(f"{kind}: warm-up failed: {error}")
            runner.warmup_commands.update(range(first_command, len(runner.commands)))
        for row in rows:
            notes: list[str] = []
            sample, failure = measure_row(kind, target, row.label,
                                          lambda: measure_produce(runner, target, row, messages, notes=notes))
            outcome = Outcome(samples=[sample] if sample else [], failure=failure)
            if not failure:
                outcome.notes = notes
                for note in notes:
                    log(f"{kind}:   note: {note}")
            outcomes[(row.label, kind)] = outcome
        run.load_after = load_average()
    finally:
        try:
            codes = cluster.stop_all()
            unclean = {node_id: code for node_id, code in codes.items()
                       if code is not None and code != cluster.nodes[0].clean_exit_code}
            if unclean:
                log(f"{kind}: nodes exited with {unclean} after SIGTERM")
        except BrokerError as error:
            log(f"{kind}: {str(error).splitlines()[0]}")
        finally:
            for node in cluster.nodes:
                if node.log_path.exists():
                    shutil.copy(node.log_path, runner.log_dir / f"{kind}-node{node.node_id}.log")
            cluster.close()
    return run


def warm_up(runner: Runner, broker) -> None:
    """Untimed: produce and read back WARMUP_ROW_MESSAGES through the same tools the rows use."""
    log(f"{broker.kind}: warm-up ({WARMUP_ROW_MESSAGES:,} × {size_label(WARMUP_ROW.size)}, not measured)")
    first_command = len(runner.commands)
    try:
        measure_produce(runner, broker, WARMUP_ROW, WARMUP_ROW_MESSAGES)
        measure_assign_consume(runner, broker, ConsumeRow("assign", WARMUP_ROW), WARMUP_ROW_MESSAGES)
    except Exception as error:  # the rows that follow will show what is wrong
        log(f"{broker.kind}: warm-up failed: {error}")
    runner.warmup_commands.update(range(first_command, len(runner.commands)))


def measure_row(kind: str, broker, label: str, measure) -> tuple[dict[str, float] | None, str | None]:
    """One measured run: (its sample, None), or (None, why it failed)."""
    if not broker.is_running():
        return None, "broker not running (exited earlier, see its log)"
    log(f"{kind}: {label}")
    sample, failure = None, None
    try:
        sample = measure()
    except Exception as error:  # a failed run is a result (RowFailure or a client error); the matrix goes on
        failure = str(error).splitlines()[0] if str(error) else type(error).__name__
    if not broker.is_running():
        sample, failure = None, f"{exit_description(broker)} during the row"
    log(f"{kind}:   -> {f'FAILED: {failure}' if failure else describe(sample)}")
    return sample, failure


def describe(sample: dict[str, float]) -> str:
    text = (f"{sample['mib_per_s']:.1f} MiB/s, {sample['msgs_per_s']:,.0f} msgs/s"
            + (f", p99 {sample['p99_ms']:.0f} ms" if "p99_ms" in sample else "")
            + f", broker CPU {sample['cpu_s']:.2f} s ({sample['cpu_us_per_msg']:.2f} µs/msg),"
              f" peak RSS {sample['peak_rss_mib']:.0f} MiB")
    if "other_cpu_s" in sample:
        text += f", the idle other broker {100 * sample['other_cpu_s'] / sample['run_s']:.1f}% of a core"
    return text


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------

def format_number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def format_samples(values: list[float], decimals: int) -> str:
    """One run: its value. Several: the median, then the spread (min–max) of the runs."""
    if len(values) == 1:
        return format_number(values[0], decimals)
    return (f"{format_number(statistics.median(values), decimals)} "
            f"({format_number(min(values), decimals)}–{format_number(max(values), decimals)})")


def format_ratio(skein: list[float], kafka: list[float]) -> str:
    """The ratio of the medians; with several runs, also the spread of the ratios of the runs paired in order
    (Skein's run i and Kafka's run i ran one right after the other)."""
    if not skein or not kafka or not statistics.median(kafka):
        return "–"
    text = f"{statistics.median(skein) / statistics.median(kafka):.2f}"
    pairs = [s / k for s, k in zip(skein, kafka) if k]
    if len(pairs) > 1:
        text += f" ({min(pairs):.2f}–{max(pairs):.2f})"
    return text


def results_table(kinds: list[str], produce_rows: list[ProduceRow], consume_rows: list[ConsumeRow],
                  outcomes: dict[tuple[str, str], Outcome], produce_metrics: list[Metric] = PRODUCE_METRICS) -> str:
    names = {"skein": "Skein", "kafka": "Kafka"}
    with_ratio = kinds == ["skein", "kafka"]
    several = any(len(outcome.samples) > 1 for outcome in outcomes.values())
    header = ["Workload", "Metric", *(names[kind] + (" median (min–max)" if several else "") for kind in kinds)]
    if with_ratio:
        header.append("Skein/Kafka" + (" of medians (run pairs min–max)" if several else ""))
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for row in [*produce_rows, *consume_rows]:
        metrics = produce_metrics if isinstance(row, ProduceRow) else CONSUME_METRICS
        row_outcomes = [outcomes.get((row.label, kind), Outcome(failure="not run")) for kind in kinds]
        # A row one broker cannot run is compared on neither.
        not_applicable = next((o.not_applicable for o in row_outcomes if o.not_applicable), None)
        if not_applicable:
            lines.append("| " + " | ".join([row.label, "all", *[not_applicable] * len(kinds)]
                                           + (["–"] if with_ratio else [])).replace("|", "/") + " |")
            continue
        for index, metric in enumerate(metrics):
            cells = [row.label if index == 0 else "", f"{metric.name} ({metric.better} is better)"]
            series = []
            for outcome in row_outcomes:
                if outcome.failure:
                    cells.append("FAILED" if index else f"FAILED: {outcome.failure}")
                    series.append([])
                else:
                    values = [sample[metric.key] for sample in outcome.samples]
                    cells.append(format_samples(values, metric.decimals))
                    series.append(values)
            if with_ratio:
                cells.append(format_ratio(*series))
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


def brokers_section(runs: list[BrokerRun], outcomes: dict[tuple[str, str], Outcome], warmup: bool) -> list[str]:
    """Per broker: idle RSS, peak RSS over the rows, and how busy the idle other broker was during its runs."""
    lines = []
    for run in runs:
        if run.failure:
            lines.append(f"- {run.kind}: {run.failure}")
            continue
        samples = [sample for (_, kind), outcome in outcomes.items() if kind == run.kind
                   for sample in outcome.samples]
        peak = max((sample["peak_rss_mib"] for sample in samples), default=None)
        text = (f"- {run.kind}: idle RSS {run.idle_rss_mib:,.0f} MiB (VmRSS after start-up"
                f"{' and warm-up' if warmup else ''}, before the first row)" if run.idle_rss_mib is not None
                else f"- {run.kind}: idle RSS not measured")
        text += f"; peak RSS during the rows {peak:,.0f} MiB (the largest per-run VmHWM)" if peak is not None else ""
        shares = [sample["other_cpu_s"] / sample["run_s"] for sample in samples
                  if "other_cpu_s" in sample and sample["run_s"] > 0]
        if shares:
            text += (f"; the other broker, idle meanwhile, used {100 * statistics.median(shares):.1f}% of a core"
                     f" during {run.kind}'s runs (median; at most {100 * max(shares):.1f}%)")
        lines.append(text + ".")
    return lines


def load_section(runs: list[BrokerRun], rows: list) -> list[str]:
    """The 1-minute load average before → after each measured run, per row and broker."""
    measured = [run for run in runs if run.loads]
    if not measured:
        return []
    lines = ["| Workload | " + " | ".join(f"{run.kind} runs" for run in measured) + " |",
             "|---|" + "---|" * len(measured)]
    for row in rows:
        cells = [", ".join(f"{before}→{after}" for before, after in run.loads.get(row.label, [])) or "–"
                 for run in measured]
        if any(cell != "–" for cell in cells):
            lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return lines


def machine_description() -> list[str]:
    meminfo = Path("/proc/meminfo").read_text()
    mem_kib = int(re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.M).group(1))
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "unknown")
    return [
        f"- CPUs (nproc): {os.cpu_count()} × {cpu_model}",
        f"- RAM: {mem_kib / MIB:.1f} GiB",
        f"- Kernel: {platform.system()} {platform.release()}; data dirs under {tempfile.gettempdir()}",
    ]


def versions(skein_bin: Path) -> list[str]:
    def output(command: list[str]) -> str:
        try:
            result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"unknown ({error})"
        return (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else "?"

    commit = output(["git", "rev-parse", "--short", "HEAD"])
    dirty = output(["git", "status", "--porcelain", "--", "crates", "Cargo.toml", "Cargo.lock"])
    kafka_jars = sorted((KAFKA_DIR / "libs").glob("kafka_2.13-*.jar"))
    kafka_version = kafka_jars[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if kafka_jars else "unknown"
    return [
        f"- Skein: `{output([str(skein_bin), '--version'])}`, commit {commit}"
        + (" with uncommitted changes under crates/" if dirty not in ("", "?") else ""),
        f"- Apache Kafka: {kafka_version} (broker and perf tools from `.tools/kafka/libs`)",
        f"- Java: {output(['java', '-version'])}",
        f"- confluent-kafka {confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}",
    ]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return f"load average: {load_average()}"


def default_settings(messages: int, repeats: int, clients: int, transactional_rows: list[ProduceRow],
                     peak_rss_note: str | None, warmup: bool) -> list[str]:
    several = clients > 1
    lines = [
        f"- Both brokers side by side, each a single node on 127.0.0.1 with a fresh data directory, started once and"
        f" kept running for the whole run; broker settings {SINGLE_BROKER_CONFIG}",
        "  (Skein: YAML; Kafka: server.properties, KRaft combined broker+controller, JVM `-Xmx512m -Xms128m -XX:+UseG1GC`,",
        "  `num.network.threads=2`, `num.io.threads=4`, as `tests/support/brokers.py` starts it). Neither broker fsyncs",
        "  per write by default (Skein `log.flush: os`, Kafka's flush intervals unset).",
        f"- Every row ran {repeats} time{'s' if repeats != 1 else ''} per broker, the brokers alternating (Skein's"
        " run 1, Kafka's run 1, Skein's run 2, ...); the broker not being measured sits idle. Before each run both"
        f" brokers had to be quiet (together under {QUIET_CORES} of a core over {PAIR_QUIET_WINDOW:g} s; waited for at"
        f" most {QUIET_MAX_WAIT} s). Each produce run writes a topic of its own (later runs' topics end in `-r2`,"
        " `-r3`, ...), so every run starts from an empty topic; consume rows read the first run's topic."
        + (" Cells are the median and, in brackets, the lowest and highest of the runs; Skein/Kafka is the ratio of"
           " the medians and, in brackets, the lowest and highest ratio of a run pair (Skein's run i over Kafka's"
           " run i, which ran right after it)." if repeats > 1 else ""),
        f"- {messages:,} messages per row; every topic created up front with replication factor 1."
        + (f" Before its first row each broker got an untimed warm-up: {WARMUP_ROW_MESSAGES:,} × "
           f"{size_label(WARMUP_ROW.size)} produced to {partition_label(WARMUP_ROW.partitions)} with the same tools,"
           " then read back." if warmup else " No warm-up."),
        f"- Producer: `ProducerPerformance --throughput -1 --record-size SIZE`, `linger.ms={LINGER_MS}`, default "
        "`batch.size`, `enable.idempotence=false` unless the row says idempotent; latency percentiles are the tool's"
        " (whole milliseconds, send → acknowledgement)."
        + (f" {clients} ProducerPerformance processes at once per row, each writing its share of the messages to the"
           " same topic; throughput is all the messages over the span from the earliest process's start to the last"
           " one's end (each process's own timed span), latency the worst process's percentile." if several else ""),
        "- Consumer, confluent-kafka assign(): `bench/assign_consumer.py` assigns every partition from the beginning"
        " (no group) and times assign() → last message; the Python loop, not only the broker, bounds this rate.",
        "- Consumer, ConsumerPerformance: subscribes with a consumer group, `group.protocol=classic` (classic group)"
        " or `group.protocol=consumer` (KIP-848 group); its fetch span (without the group join time).",
    ]
    if several:
        lines.append(f"- Consume rows: {clients} consumer processes at once, each reading the whole topic (each"
                     " ConsumerPerformance in a group of its own), so the broker serves"
                     f" {clients} × {messages:,} messages; throughput is all of them over the span from the earliest"
                     " process's start to the last one's end.")
    if transactional_rows:
        lines.append(
            f"- Transactional rows: that many ProducerPerformance processes at once, each a transactional producer"
            f" (`--transactional-id TOPIC-i --transaction-duration-ms {transactional_rows[0].transaction_duration_ms}`:"
            " it commits once its open transaction is that old, and at the end), acks=all, idempotence on, each"
            " writing its share of the messages; aggregated as above. A run counts only if every producer reports"
            " all its sends acknowledged and, afterwards, the topic's last stable offsets equal its high watermarks"
            " (no transaction left open) and add up to at least the messages sent (commit markers take offsets too).")
    lines.append(
        "- Broker CPU µs/msg: utime+stime of the broker process (Kafka: its JVM; children not counted) from"
        " /proc/PID/stat over the run (from just before the clients start until the last one exits, so their"
        " connects and group joins are included), divided by the messages the broker took (produce) or served"
        " (consume: clients × messages). Peak RSS: VmHWM of the broker process, reset at the start of each run via"
        " /proc/PID/clear_refs." + (f" {peak_rss_note}" if peak_rss_note else ""))
    return lines


def replicated_settings(messages: int, fixed_rate: int, peak_rss_note: str | None, warmup: bool) -> list[str]:
    cluster_config = {**CLUSTER_CONFIG, **BROKER_CONFIG}
    return [
        f"- One cluster at a time: {CLUSTER_NODES} nodes on 127.0.0.1, as `tests/support/cluster.py` starts them"
        " (each a combined broker + controller and a voter of the metadata quorum, its own ports and fresh data"
        " directory). Settings on every node of both kinds:"
        f" {', '.join(f'`{key}={value}`' for key, value in cluster_config.items())};"
        f" Kafka also {', '.join(f'`{key}={value}`' for key, value in KAFKA_ONLY_CONFIG.items())},"
        " `num.network.threads=2`, `num.io.threads=4`, JVM `-Xmx512m -Xms128m -XX:+UseG1GC` per node."
        " `replica.lag.time.max.ms` is both brokers' default, 30000. Neither broker fsyncs per write.",
        f"- All {CLUSTER_NODES} broker processes share this machine's {os.cpu_count()} cores with each other and"
        " with the producer: the rows measure what replication costs, not what a cluster of real machines could do.",
        f"- {messages:,} messages per row. Every row writes its own topic, created just before it with replication"
        f" factor {REPLICATION_FACTOR} and {', '.join(f'`{k}={v}`' for k, v in REPLICATED_TOPIC_CONFIG.items())};"
        " the row starts once every partition has a leader and a full ISR and the cluster's processes together use"
        f" under {QUIET_CORES} of a core (waited for at most {QUIET_MAX_WAIT} s)."
        + (f" Before its first row each cluster got an untimed warm-up: {WARMUP_ROW_MESSAGES:,} ×"
           f" {size_label(REPLICATED_WARMUP_ROW.size)} with acks=all to"
           f" {partition_label(REPLICATED_WARMUP_ROW.partitions)} with replication factor {REPLICATION_FACTOR}."
           if warmup else " No warm-up."),
        f"- Producer: `ProducerPerformance --record-size SIZE` with `acks=all`, `linger.ms={LINGER_MS}`,"
        " `enable.idempotence=false`, default `batch.size`; `--throughput -1` (full speed) or"
        f" `--throughput {fixed_rate}` (the same offered load for both brokers; a row that reached less than"
        f" {SUSTAINED_SHARE:.0%} of it is noted below). Bootstrap: all three nodes. Latency percentiles are the"
        " tool's (send → acknowledgement, whole milliseconds); at full speed they include the time a record waits in"
        f" the producer's buffer, at the fixed load they include up to `linger.ms={LINGER_MS}` of batching.",
        "- A row counts only if the tool's summary says all N sends were acknowledged and the partitions' high"
        " watermarks add up to exactly N. Right after the row, Metadata is asked whether every ISR is still full.",
        f"- CPU s: utime+stime during the row of each of the {CLUSTER_NODES} broker processes (/proc/PID/stat),"
        " summed. Peak RSS: VmHWM of each broker process, reset at the start of the row via /proc/PID/clear_refs,"
        " summed (the three peaks need not coincide)."
        + (f" {peak_rss_note}" if peak_rss_note else ""),
    ]


def write_results(path: Path, argv: list[str], title: str, settings: list[str], table: str, runs: list[BrokerRun],
                  outcomes: dict[tuple[str, str], Outcome], runner: Runner, skein_bin: Path,
                  uptime_before: str, uptime_after: str, started: str,
                  sections: list[tuple[str, list[str]]] = ()) -> None:
    broken = {run.kind: run.failure for run in runs if run.failure}
    failures = [(label, kind, outcome.failure) for (label, kind), outcome in outcomes.items()
                if outcome.failure and outcome.failure != broken.get(kind)]
    notes = [(label, kind, note) for (label, kind), outcome in outcomes.items() for note in outcome.notes]
    lines = [
        f"# {title}",
        "",
        f"Generated by `{shlex.join(['bench/run', *argv])}` on {started}. Every number below was measured by this run;",
        "see `bench/README.md` for the method. Skein/Kafka > 1 means Skein is higher: better for msgs/s and MiB/s,",
        "worse for latency, RSS and CPU.",
        "",
        "## Machine",
        "",
        *machine_description(),
        f"- `uptime` before: `{uptime_before}`",
        f"- `uptime` after: `{uptime_after}`",
        *load_lines(runs),
        "",
        "## Versions",
        "",
        *versions(skein_bin),
        "",
        "## Settings",
        "",
        *settings,
        "",
        "## Results",
        "",
        table,
        "",
    ]
    for heading, section in sections:
        if section:
            lines += [f"## {heading}", "", *section, ""]
    if notes:
        lines += ["## Notes", ""]
        lines += [f"- {label} on {kind}: {note}" for label, kind, note in notes]
        lines.append("")
    if failures or broken:
        lines += ["## Failures", ""]
        lines += [f"- {kind}: {failure}" for kind, failure in broken.items()]
        lines += [f"- {label} on {kind}: {reason}" for label, kind, reason in failures]
        lines.append("")
    lines += ["## Commands", "", "Run from the repository root; tool output is in `bench/logs/` after a run."
              + (" Each row's first run is listed; later runs repeat it with the topic (and transactional ids)"
                 " ending in `-r2`, `-r3`, ... for produce rows, and fresh group names for ConsumerPerformance."
                 if any(len(outcome.samples) > 1 for outcome in outcomes.values()) else ""), ""]
    for run in runs:
        what = "cluster nodes, one command each" if "\n" in run.start_command else "broker"
        lines += [f"{run.kind} {what}:", "", "```", run.start_command or "(not started)", "```", ""]
        kind_commands = [
            command + ("   # warm-up, not measured" if index in runner.warmup_commands else "")
            for index, (kind, command) in enumerate(runner.commands) if kind == run.kind
        ]
        if kind_commands:
            lines += [f"{run.kind} rows:", "", "```", *kind_commands, "```", ""]
    path.write_text("\n".join(lines))


def load_lines(runs: list[BrokerRun]) -> list[str]:
    started = [run for run in runs if not run.failure]
    if len(started) > 1 and len({(run.load_before, run.load_after) for run in started}) == 1:
        # The default mode interleaves the brokers' runs: one span for both (per run in its own section).
        return [f"- load average (1/5/15 min): {started[0].load_before or '?'} before the first row, "
                f"{started[0].load_after or '?'} after the last (both brokers' runs interleaved)"]
    return [f"- load average (1/5/15 min) for {run.kind}: {run.load_before or '?'} before its first row, "
            f"{run.load_after or '?'} after its last" for run in started]


def raise_keyboard_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_list(text: str, convert=str) -> list:
    return [convert(item.strip()) for item in text.split(",") if item.strip()]


def parse_bool(text: str) -> bool:
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Skein and Apache Kafka side by side with Kafka's perf-test tools.")
    parser.add_argument("--messages", type=int, help=f"messages per row (default {DEFAULT_MESSAGES:,}; "
                        f"--quick: {QUICK_MESSAGES:,})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_MESSAGES:,} messages per row and acks={','.join(QUICK_ACKS)} only")
    parser.add_argument("--replicated", action="store_true",
                        help=f"instead of the single-broker matrix: a {CLUSTER_NODES}-node cluster of each broker, "
                        f"acks=all to topics with replication factor {REPLICATION_FACTOR} and min.insync.replicas=2, "
                        "at full speed and at --fixed-rate (report: bench/REPLICATED-RESULTS.md)")
    parser.add_argument("--fixed-rate", type=int, default=DEFAULT_FIXED_RATE,
                        help=f"--replicated: the fixed offered load in records/s (default {DEFAULT_FIXED_RATE:,})")
    parser.add_argument("--sizes", type=lambda t: parse_list(t, int),
                        help="message sizes in bytes (default 100,1024; --replicated: 100)")
    parser.add_argument("--acks", type=parse_list, help="acks values (default 1,all; --quick: all)")
    parser.add_argument("--partitions", type=lambda t: parse_list(t, int),
                        help="partition counts (default 1,8; --replicated: 3)")
    parser.add_argument("--idempotence", type=lambda t: parse_list(t, parse_bool),
                        help="enable.idempotence values, e.g. false,true (default false)")
    parser.add_argument("--repeat", type=int,
                        help=f"runs of every row per broker, the brokers alternating (default {DEFAULT_REPEAT}); "
                        "the table gives the median and min–max")
    parser.add_argument("--clients", type=int,
                        help=f"perf-tool processes at once per produce row (each writing its share) and per consume "
                        f"row (each reading the whole topic) (default {DEFAULT_CLIENTS})")
    parser.add_argument("--transactional-producers", type=lambda t: parse_list(t, int),
                        help="add one transactional produce row per count, e.g. 1,8,32: that many transactional "
                        "ProducerPerformance processes at once (default: none)")
    parser.add_argument("--transaction-duration-ms", type=int, default=DEFAULT_TRANSACTION_DURATION_MS,
                        help="transactional rows: ProducerPerformance --transaction-duration-ms "
                        f"(default {DEFAULT_TRANSACTION_DURATION_MS})")
    parser.add_argument("--brokers", type=parse_list, default=["skein", "kafka"], help="default skein,kafka")
    parser.add_argument("--row-timeout", type=float, default=900, help="seconds any one tool may run (default 900)")
    parser.add_argument("--skein-bin", type=Path, help="skein binary (default $SKEIN_BIN or target/release/skein)")
    parser.add_argument("--no-build", action="store_true", help="skip `cargo build --release`")
    parser.add_argument("--no-warmup", action="store_true",
                        help=f"skip the untimed warm-up ({WARMUP_ROW_MESSAGES:,} messages) before each broker's rows")
    parser.add_argument("--output", type=Path,
                        help="where the report goes (default bench/RESULTS.md; --replicated: bench/REPLICATED-RESULTS.md)")
    args = parser.parse_args(argv)

    kinds = [kind for kind in ("skein", "kafka") if kind in args.brokers]
    if not kinds or set(args.brokers) - {"skein", "kafka"}:
        parser.error("--brokers takes skein, kafka or both")
    messages = args.messages or (QUICK_MESSAGES if args.quick else DEFAULT_MESSAGES)
    if args.replicated:
        if args.acks or args.idempotence:
            parser.error("--replicated always uses acks=all without idempotence (no --acks / --idempotence)")
        if args.repeat or args.clients or args.transactional_producers:
            parser.error("--repeat, --clients and --transactional-producers do not apply to --replicated")
        if args.fixed_rate <= 0:
            parser.error("--fixed-rate must be positive")
        produce_rows = build_replicated_rows(args.sizes or REPLICATED_SIZES, args.partitions or REPLICATED_PARTITIONS,
                                             args.fixed_rate)
        consume_rows = []
    else:
        if (args.repeat is not None and args.repeat < 1) or (args.clients is not None and args.clients < 1) \
                or any(count < 1 for count in args.transactional_producers or []) \
                or args.transaction_duration_ms < 1:
            parser.error("--repeat, --clients, --transactional-producers and --transaction-duration-ms must be "
                         "positive")
        produce_rows, consume_rows = build_matrix(
            args.sizes or DEFAULT_SIZES,
            args.acks or (QUICK_ACKS if args.quick else DEFAULT_ACKS),
            args.partitions or DEFAULT_PARTITIONS,
            args.idempotence or [False],
            args.clients or DEFAULT_CLIENTS,
            args.transactional_producers or DEFAULT_TRANSACTIONAL_PRODUCERS,
            args.transaction_duration_ms,
        )
    repeats = args.repeat or (1 if args.replicated else DEFAULT_REPEAT)
    if not produce_rows:
        parser.error("the matrix is empty (idempotence needs acks=all)")
    output = args.output or (REPLICATED_OUTPUT if args.replicated else BENCH_DIR / "RESULTS.md")

    if not (KAFKA_DIR / "libs").is_dir():
        log(f"Apache Kafka jars not found in {KAFKA_DIR}: run tests/setup-clients")
        return 2
    if "skein" in kinds and not args.no_build and not args.skein_bin:
        log("cargo build --release")
        build = subprocess.run(["cargo", "build", "--release"], cwd=REPO_ROOT, timeout=3600)
        if build.returncode != 0:
            log("cargo build --release failed")
            return 2

    # SIGTERM runs the same cleanup as Ctrl-C: every broker and tool is stopped by pid.
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    work_dir = Path(tempfile.mkdtemp(prefix="skein-bench-"))
    try:
        skein_bin = args.skein_bin or skein_binary()
        if "skein" in kinds:
            # A private copy: a rebuild during the run must not change the binary being measured.
            if not skein_bin.is_file():
                log(f"skein binary not found at {skein_bin}")
                return 2
            shutil.copy2(skein_bin, work_dir / "skein")
            measured_bin = work_dir / "skein"
        else:
            measured_bin = skein_bin
        shutil.rmtree(LOG_DIR, ignore_errors=True)
        LOG_DIR.mkdir(parents=True)
        runner = Runner(LOG_DIR, args.row_timeout)
        outcomes: dict[tuple[str, str], Outcome] = {}
        runs: list[BrokerRun] = []
        started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        uptime_before = uptime()
        log(f"uptime: {uptime_before}")
        if args.replicated:
            for kind in kinds:
                # One cluster at a time: this kind's nodes are stopped before the next kind's start.
                runs.append(run_cluster(kind, measured_bin, produce_rows, messages, runner, not args.no_warmup,
                                        outcomes))
        else:
            runs = run_brokers(kinds, measured_bin, produce_rows, consume_rows, messages, runner,
                               not args.no_warmup, repeats, outcomes)
        uptime_after = uptime()
        log(f"uptime: {uptime_after}")
        peak_rss_note = ("/proc/PID/clear_refs was not writable: peak RSS is since broker start."
                         if BrokerUsage.some_peak_is_since_start else None)
        if args.replicated:
            title = f"Skein and Apache Kafka side by side: {CLUSTER_NODES}-node clusters, replication factor " \
                    f"{REPLICATION_FACTOR}"
            settings = replicated_settings(messages, args.fixed_rate, peak_rss_note, not args.no_warmup)
            table = results_table(kinds, produce_rows, [], outcomes, REPLICATED_PRODUCE_METRICS)
            sections = []
        else:
            title = "Skein and Apache Kafka side by side"
            settings = default_settings(messages, repeats, args.clients or DEFAULT_CLIENTS,
                                        [row for row in produce_rows if row.transactional], peak_rss_note,
                                        not args.no_warmup)
            table = results_table(kinds, produce_rows, consume_rows, outcomes)
            sections = [("Brokers", brokers_section(runs, outcomes, not args.no_warmup)),
                        ("Load average (1 min) before → after each run", load_section(runs, [*produce_rows,
                                                                                          *consume_rows]))]
        print(table)
        write_results(output, argv, title, settings, table, runs, outcomes, runner, measured_bin,
                      uptime_before, uptime_after, started, sections)
        log(f"wrote {output}")
        return 0
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
