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
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "bench"
LOG_DIR = BENCH_DIR / "logs"
sys.path.insert(0, str(REPO_ROOT / "tests"))

import confluent_kafka  # noqa: E402

from confluent_kafka import KafkaError, KafkaException  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from support.brokers import KAFKA_DIR, BrokerError, KafkaBroker, SkeinBroker, skein_binary  # noqa: E402
from support.cluster import CLUSTER_CONFIG, KAFKA_ONLY_CONFIG, SkeinCluster, make_cluster  # noqa: E402
from support.kafka_clients import create_topic, high_watermarks  # noqa: E402

# Both brokers get exactly these settings (server.properties for Kafka, YAML for Skein).
BROKER_CONFIG = {"log.retention.ms": -1}
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
CONSUMER_PERF_NA = "n/a (needs consumer groups)"

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
# Before each replicated row: wait (at most QUIET_MAX_WAIT s) until the cluster's nodes together use less than
# QUIET_CORES of a core, so followers still busy with the previous row are not measured in this one.
QUIET_CORES = 0.3
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

    @property
    def label(self) -> str:
        idempotence = ", idempotent" if self.idempotence else ""
        replicated = f", RF {self.replication_factor}" if self.replication_factor != 1 else ""
        if self.replication_factor != 1 or self.throughput != -1:
            replicated += ", full speed" if self.throughput == -1 else f", offered {self.throughput:,} msgs/s"
        return (f"produce {size_label(self.size)}, acks={self.acks}, {partition_label(self.partitions)}"
                f"{idempotence}{replicated}")

    @property
    def topic(self) -> str:
        idempotence = "-idempotent" if self.idempotence else ""
        replicated = f"-rf{self.replication_factor}" if self.replication_factor != 1 else ""
        throttled = f"-t{self.throughput}" if self.throughput != -1 else ""
        return f"{self.topic_prefix}-{self.size}b-acks{self.acks}-p{self.partitions}{idempotence}{replicated}{throttled}"


@dataclass(frozen=True)
class ConsumeRow:
    tool: str  # "assign" (confluent-kafka loop) or "consumer-perf" (Kafka's ConsumerPerformance)
    source: ProduceRow  # the produce row whose topic this row reads

    @property
    def label(self) -> str:
        tool = "confluent-kafka assign()" if self.tool == "assign" else "ConsumerPerformance"
        return f"consume {size_label(self.source.size)}, {partition_label(self.source.partitions)} ({tool})"


WARMUP_ROW = ProduceRow(size=1024, acks="1", partitions=8, idempotence=False, topic_prefix="warmup")
# The replicated mode's warm-up goes through the replication path too: acks=all to a replicated topic.
REPLICATED_WARMUP_ROW = ProduceRow(size=1024, acks="all", partitions=3, idempotence=False, topic_prefix="warmup",
                                   replication_factor=REPLICATION_FACTOR)


def size_label(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def partition_label(partitions: int) -> str:
    return f"{partitions} partition" + ("" if partitions == 1 else "s")


def build_matrix(sizes: list[int], acks: list[str], partitions: list[int],
                 idempotence: list[bool]) -> tuple[list[ProduceRow], list[ConsumeRow]]:
    produce_rows = [
        ProduceRow(size, ack, partition_count, idempotent)
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
    consume_rows = [ConsumeRow(tool, source) for source in sources.values() for tool in ("assign", "consumer-perf")]
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
    Metric("msgs_per_s", "msgs/s", "higher", 0),
    Metric("mib_per_s", "MiB/s", "higher", 1),
    Metric("p50_ms", "latency p50 ms", "lower", 0),
    Metric("p99_ms", "latency p99 ms", "lower", 0),
    Metric("p999_ms", "latency p99.9 ms", "lower", 0),
    Metric("peak_rss_mib", "broker peak RSS MiB", "lower", 0),
    Metric("cpu_s", "broker CPU s", "lower", 2),
]
CONSUME_METRICS = [
    Metric("msgs_per_s", "msgs/s", "higher", 0),
    Metric("mib_per_s", "MiB/s", "higher", 1),
    Metric("peak_rss_mib", "broker peak RSS MiB", "lower", 0),
    Metric("cpu_s", "broker CPU s", "lower", 2),
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
    """One row on one broker: its metrics, or why there are none (failed / not applicable)."""
    metrics: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    not_applicable: str | None = None
    # Things the report should say about a measured row (an offered load not sustained, a shrunk ISR).
    notes: list[str] = field(default_factory=list)


class RowFailure(Exception):
    pass


class BrokerUsage:
    """CPU seconds and peak RSS of the broker process between start() and finish(); for a cluster, of each of its
    broker processes, summed."""

    clock_ticks = os.sysconf("SC_CLK_TCK")
    # Set when a peak could not be reset, so the report can say the peak is since broker start.
    some_peak_is_since_start = False

    def __init__(self, pids: list[int]):
        self.pids = pids

    def start(self) -> None:
        for pid in self.pids:
            try:
                # Writing 5 resets the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0).
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                BrokerUsage.some_peak_is_since_start = True
        self.cpu_at_start = [cpu_seconds(pid) for pid in self.pids]

    def finish(self) -> dict[str, float]:
        self.cpu_per_process = [cpu_seconds(pid) - start for pid, start in zip(self.pids, self.cpu_at_start)]
        return {"cpu_s": sum(self.cpu_per_process),
                "peak_rss_mib": sum(self._peak_rss_kib(pid) for pid in self.pids) / 1024}

    @staticmethod
    def _peak_rss_kib(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RowFailure(f"no VmHWM in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads) so far."""
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

class Runner:
    """Runs bounded child processes from the repo root and remembers every command line."""

    def __init__(self, log_dir: Path, timeout: float):
        self.log_dir = log_dir
        self.timeout = timeout
        self.commands: list[tuple[str, str]] = []  # (broker kind, command line)
        self.warmup_commands: set[int] = set()  # indexes into commands of the untimed warm-up runs

    def run(self, broker_kind: str, log_name: str, command: list[str]) -> str:
        """Runs command; returns its stdout. Raises RowFailure on timeout or non-zero exit."""
        self.commands.append((broker_kind, shlex.join(command)))
        log_path = self.log_dir / f"{broker_kind}-{log_name}.log"
        env = dict(os.environ, LC_ALL="C.UTF-8")
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, preexec_fn=_die_with_parent,
        )
        try:
            stdout, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            self._write_log(log_path, command, stdout, stderr, "killed after timeout")
            raise RowFailure(f"{log_name} did not finish within {self.timeout:.0f}s (killed)")
        self._write_log(log_path, command, stdout, stderr, f"exit {process.returncode}")
        if process.returncode != 0:
            raise RowFailure(f"{log_name} exited with {process.returncode}: {first_error_line(stderr or stdout)}")
        return stdout

    @staticmethod
    def _write_log(path: Path, command: list[str], stdout: str, stderr: str, status: str) -> None:
        path.write_text(f"$ {shlex.join(command)}\n[{status}]\n---- stdout ----\n{stdout}\n---- stderr ----\n{stderr}")


def first_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "Exception" in line or "ERROR" in line or "error" in line.lower():
            return line[:300]
    return lines[-1][:300] if lines else "(no output)"


def java_tool(main_class: str, *args: str) -> list[str]:
    return [
        "java", TOOL_HEAP, "-Duser.language=en", "-Duser.country=US",
        f"-Dlog4j2.configurationFile={(BENCH_DIR / 'tools-log4j2.properties').relative_to(REPO_ROOT)}",
        "-cp", f"{KAFKA_DIR.relative_to(REPO_ROOT)}/libs/*",
        main_class, *args,
    ]


# "%d%s records sent, %f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency,
#  %d ms 50th, %d ms 95th, %d ms 99th, %d ms 99.9th." -- ProducerPerformance's summary line.
PRODUCER_SUMMARY = re.compile(
    r"^(?P<records>\d+)(?: steady state)? records sent, (?P<rate>[\d.]+) records/sec \((?P<mib>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, "
    r"(?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th\.$"
)


def measure_produce(runner: Runner, broker, row: ProduceRow, messages: int,
                    notes: list[str] | None = None) -> dict[str, float]:
    """One ProducerPerformance run. `broker` is a started SkeinBroker / KafkaBroker, or a ClusterTarget for a
    replicated row; `notes` collects what the report should say about the row besides its numbers."""
    if row.replication_factor == 1:
        create_topic(broker.bootstrap, row.topic, partitions=row.partitions, timeout=CLIENT_TIMEOUT)
    else:
        create_replicated_topic(broker.bootstrap, row.topic, row.partitions, row.replication_factor,
                                REPLICATED_TOPIC_CONFIG)
        wait_until_quiet(broker)
    command = java_tool(
        "org.apache.kafka.tools.ProducerPerformance",
        "--bootstrap-server", broker.bootstrap,
        "--topic", row.topic,
        "--num-records", str(messages),
        "--record-size", str(row.size),
        "--throughput", str(row.throughput),
        "--command-property",
        f"acks={row.acks}", f"linger.ms={LINGER_MS}", f"enable.idempotence={'true' if row.idempotence else 'false'}",
    )
    usage = BrokerUsage(process_ids(broker))
    usage.start()
    stdout = runner.run(broker.kind, f"produce-{row.topic}", command)
    resources = usage.finish()
    if len(usage.pids) > 1:
        log(f"{broker.kind}:   CPU s per node: " + ", ".join(f"{cpu:.2f}" for cpu in usage.cpu_per_process))
    summaries = [m for m in map(PRODUCER_SUMMARY.match, stdout.splitlines()) if m]
    if not summaries:
        raise RowFailure(f"no summary line in ProducerPerformance output: {first_error_line(stdout)}")
    summary = summaries[-1]
    acknowledged = int(summary["records"])
    if acknowledged != messages:
        raise RowFailure(f"only {acknowledged} of {messages} sends acknowledged")
    stored = sum(high_watermarks(broker.bootstrap, row.topic, row.partitions, timeout=CLIENT_TIMEOUT))
    if stored != messages:
        raise RowFailure(f"broker holds {stored} messages after {messages} acknowledged sends")
    if notes is not None and row.throughput != -1 and float(summary["rate"]) < SUSTAINED_SHARE * row.throughput:
        notes.append(f"offered load not sustained: {float(summary['rate']):,.0f} of {row.throughput:,} msgs/s")
    if notes is not None and row.replication_factor > 1:
        shrunk = {p: isr for p, (leader, replicas, isr) in partition_states(broker.bootstrap, row.topic).items()
                  if set(isr) != set(replicas)}
        if shrunk:
            notes.append("ISR not full right after the row: "
                         + ", ".join(f"partition {p} ISR {sorted(isr)}" for p, isr in sorted(shrunk.items())))
    return {
        "msgs_per_s": float(summary["rate"]),
        "mib_per_s": float(summary["mib"]),  # ProducerPerformance's "MB" is 2^20 bytes
        "p50_ms": float(summary["p50"]),
        "p99_ms": float(summary["p99"]),
        "p999_ms": float(summary["p999"]),
        **resources,
    }


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


def wait_until_quiet(target) -> None:
    """Waits (at most QUIET_MAX_WAIT s) until the target's broker processes together use under QUIET_CORES of a
    core over one second, so work left from the previous row (followers catching up, flushes) is not measured."""
    pids = process_ids(target)
    deadline = time.monotonic() + QUIET_MAX_WAIT
    while True:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(1.0)
        used = sum(cpu_seconds(pid) for pid in pids) - before
        if used < QUIET_CORES:
            return
        if time.monotonic() > deadline:
            log(f"{target.kind}:   still using {used:.2f} cores after {QUIET_MAX_WAIT}s; measuring anyway")
            return


def measure_assign_consume(runner: Runner, broker, row: ConsumeRow, messages: int) -> dict[str, float]:
    command = [
        str((REPO_ROOT / ".tools" / "venv" / "bin" / "python").relative_to(REPO_ROOT)),
        str((BENCH_DIR / "assign_consumer.py").relative_to(REPO_ROOT)),
        "--bootstrap", broker.bootstrap,
        "--topic", row.source.topic,
        "--partitions", str(row.source.partitions),
        "--expected", str(messages),
        "--timeout", str(int(runner.timeout)),
    ]
    usage = BrokerUsage(process_ids(broker))
    usage.start()
    stdout = runner.run(broker.kind, f"consume-assign-{row.source.topic}", command)
    resources = usage.finish()
    result = json.loads(stdout.strip().splitlines()[-1])
    return {
        "msgs_per_s": result["messages"] / result["seconds"],
        "mib_per_s": result["bytes"] / MIB / result["seconds"],
        **resources,
    }


def measure_consumer_perf(runner: Runner, broker, row: ConsumeRow, messages: int) -> dict[str, float]:
    command = java_tool(
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server", broker.bootstrap,
        "--topic", row.source.topic,
        "--num-records", str(messages),
        "--group", f"bench-{row.source.topic}-{uuid.uuid4().hex[:8]}",
        "--timeout", str(CONSUMER_PERF_IDLE_TIMEOUT_MS),
    )
    usage = BrokerUsage(process_ids(broker))
    usage.start()
    stdout = runner.run(broker.kind, f"consume-perf-{row.source.topic}", command)
    resources = usage.finish()
    if "Exiting before consuming the expected number of records" in stdout:
        raise RowFailure(f"ConsumerPerformance stopped early: {first_error_line(stdout)}")
    lines = [line for line in stdout.splitlines() if line.strip()]
    header_index = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    if header_index is None or header_index + 1 >= len(lines):
        raise RowFailure(f"no result line in ConsumerPerformance output: {first_error_line(stdout)}")
    names = [name.strip() for name in lines[header_index].split(",")]
    values = dict(zip(names, (value.strip() for value in lines[header_index + 1].split(","))))
    consumed = int(values["data.consumed.in.nMsg"])
    if consumed != messages:
        raise RowFailure(f"ConsumerPerformance read {consumed} of {messages} messages")
    # The fetch.* figures leave out the group join (rebalance) time, which is not the broker's read path.
    return {
        "msgs_per_s": float(values["fetch.nMsg.sec"]),
        "mib_per_s": float(values["fetch.MB.sec"]),  # ConsumerPerformance's "MB" is 2^20 bytes
        **resources,
    }


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
# One broker through the whole matrix
# ---------------------------------------------------------------------------------------------------

@dataclass
class BrokerRun:
    kind: str
    start_command: str = ""
    load_before: str = ""
    load_after: str = ""
    missing_group_apis: list[str] = field(default_factory=list)
    failure: str | None = None  # the broker itself failed (start-up, crash)


def run_broker(kind: str, skein_bin: Path, produce_rows: list[ProduceRow], consume_rows: list[ConsumeRow],
               messages: int, runner: Runner, consumer_perf_enabled: bool, warmup: bool,
               outcomes: dict[tuple[str, str], Outcome]) -> BrokerRun:
    run = BrokerRun(kind)
    broker = SkeinBroker(BROKER_CONFIG, binary=skein_bin) if kind == "skein" else KafkaBroker(BROKER_CONFIG)
    try:
        log(f"{kind}: starting")
        try:
            broker.start(timeout=BROKER_START_TIMEOUT)
        except BrokerError as error:
            run.failure = f"broker did not start: {str(error).splitlines()[0]}"
            for row in [*produce_rows, *consume_rows]:
                outcomes[(row.label, kind)] = Outcome(failure=run.failure)
            return run
        run.start_command = shlex.join(broker._command())
        run.load_before = load_average()
        try:
            api_keys = advertised_api_keys(broker.bootstrap)
            run.missing_group_apis = [name for key, name in GROUP_API_KEYS.items() if key not in api_keys]
        except (OSError, RuntimeError, struct.error) as error:
            run.missing_group_apis = [f"(ApiVersions probe failed: {error})"]

        if warmup:
            warm_up(runner, broker)

        failed_produce: dict[ProduceRow, str] = {}
        for row in produce_rows:
            outcome = measure_row(kind, broker, row.label, lambda: measure_produce(runner, broker, row, messages))
            outcomes[(row.label, kind)] = outcome
            if outcome.failure:
                failed_produce[row] = outcome.failure
        for row in consume_rows:
            if row.tool == "consumer-perf" and not (consumer_perf_enabled and not run.missing_group_apis):
                outcomes[(row.label, kind)] = Outcome(not_applicable=CONSUMER_PERF_NA)
                continue
            if row.source in failed_produce:
                outcomes[(row.label, kind)] = Outcome(failure=f"its topic's produce row failed ({row.source.label})")
                continue
            measure = measure_assign_consume if row.tool == "assign" else measure_consumer_perf
            outcomes[(row.label, kind)] = measure_row(
                kind, broker, row.label, lambda: measure(runner, broker, row, messages))
        run.load_after = load_average()
    finally:
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
    return run


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
    """--replicated: one 3-node cluster of this kind through the replicated produce rows."""
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
            outcome = measure_row(kind, target, row.label,
                                  lambda: measure_produce(runner, target, row, messages, notes))
            if not outcome.failure:
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


def measure_row(kind: str, broker, label: str, measure) -> Outcome:
    if not broker.is_running():
        return Outcome(failure="broker not running (exited earlier, see its log)")
    log(f"{kind}: {label}")
    try:
        outcome = Outcome(metrics=measure())
    except Exception as error:  # a failed row is a result (RowFailure or a client error); the matrix goes on
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        outcome = Outcome(failure=reason)
    if not broker.is_running():
        outcome = Outcome(failure=f"{exit_description(broker)} during the row")
    log(f"{kind}:   -> {describe(outcome)}")
    return outcome


def describe(outcome: Outcome) -> str:
    if outcome.failure:
        return f"FAILED: {outcome.failure}"
    if outcome.not_applicable:
        return outcome.not_applicable
    return ", ".join(f"{key}={value:.2f}" for key, value in outcome.metrics.items())


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------

def format_number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def results_table(kinds: list[str], produce_rows: list[ProduceRow], consume_rows: list[ConsumeRow],
                  outcomes: dict[tuple[str, str], Outcome], produce_metrics: list[Metric] = PRODUCE_METRICS) -> str:
    names = {"skein": "Skein", "kafka": "Kafka"}
    with_ratio = kinds == ["skein", "kafka"]
    header = ["Workload", "Metric", *(names[kind] for kind in kinds)] + (["Skein/Kafka"] if with_ratio else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for row in [*produce_rows, *consume_rows]:
        metrics = produce_metrics if isinstance(row, ProduceRow) else CONSUME_METRICS
        row_outcomes = [outcomes.get((row.label, kind), Outcome(failure="not run")) for kind in kinds]
        # ConsumerPerformance is compared only when every broker could run it.
        if any(o.not_applicable for o in row_outcomes):
            row_outcomes = [Outcome(not_applicable=CONSUMER_PERF_NA)] * len(kinds)
        if all(o.not_applicable for o in row_outcomes):
            reason = row_outcomes[0].not_applicable
            lines.append("| " + " | ".join([row.label, "all", *[reason] * len(kinds)] + (["–"] if with_ratio else []))
                         + " |")
            continue
        for index, metric in enumerate(metrics):
            cells = [row.label if index == 0 else "", f"{metric.name} ({metric.better} is better)"]
            values = []
            for outcome in row_outcomes:
                if outcome.failure:
                    cells.append("FAILED" if index else f"FAILED: {outcome.failure}")
                    values.append(None)
                elif outcome.not_applicable:
                    cells.append(outcome.not_applicable)
                    values.append(None)
                else:
                    value = outcome.metrics[metric.key]
                    cells.append(format_number(value, metric.decimals))
                    values.append(value)
            if with_ratio:
                skein, kafka = values
                cells.append(f"{skein / kafka:.2f}" if skein is not None and kafka else "–")
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return "\n".join(lines)


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


def default_settings(runs: list[BrokerRun], messages: int, peak_rss_note: str | None, warmup: bool) -> list[str]:
    return [
        f"- One broker at a time, single node on 127.0.0.1, fresh data directory, broker settings {BROKER_CONFIG}",
        "  (Skein: YAML; Kafka: server.properties, KRaft combined broker+controller, JVM `-Xmx512m -Xms128m -XX:+UseG1GC`,",
        "  `num.network.threads=2`, `num.io.threads=4`, as `tests/support/brokers.py` starts it). Neither broker fsyncs",
        "  per write by default (Skein `log.flush: os`, Kafka's flush intervals unset).",
        f"- {messages:,} messages per row; every topic created up front with replication factor 1."
        + (f" Before its first row each broker got an untimed warm-up: {WARMUP_ROW_MESSAGES:,} × "
           f"{size_label(WARMUP_ROW.size)} produced to {partition_label(WARMUP_ROW.partitions)} with the same tools,"
           " then read back." if warmup else " No warm-up."),
        f"- Producer: `ProducerPerformance --throughput -1 --record-size SIZE`, `linger.ms={LINGER_MS}`, default "
        "`batch.size`, `enable.idempotence=false` unless the row says idempotent; latency percentiles are the tool's"
        " (whole milliseconds).",
        "- Consumer, confluent-kafka assign(): `bench/assign_consumer.py` assigns every partition from the beginning"
        " (no group) and times assign() → last message; the Python loop, not only the broker, bounds this rate.",
        "- Consumer, ConsumerPerformance: subscribes with a consumer group; fetch.nMsg.sec / fetch.MB.sec (without"
        " the group join time)."
        + "".join(f" Not run: {run.kind} does not advertise {', '.join(run.missing_group_apis)}."
                  for run in runs if run.missing_group_apis),
        "- Broker CPU s: utime+stime of the broker process during the row (/proc/PID/stat). Peak RSS: VmHWM of the"
        " broker process, reset at the start of each row via /proc/PID/clear_refs."
        + (f" {peak_rss_note}" if peak_rss_note else ""),
    ]


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
                  uptime_before: str, uptime_after: str, started: str) -> None:
    failures = [(label, kind, outcome.failure) for (label, kind), outcome in outcomes.items() if outcome.failure]
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
        *(f"- load average (1/5/15 min) while {run.kind} ran: {run.load_before} at its first row, "
          f"{run.load_after or '?'} after its last" for run in runs),
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
    if notes:
        lines += ["## Notes", ""]
        lines += [f"- {label} on {kind}: {note}" for label, kind, note in notes]
        lines.append("")
    broken = [run for run in runs if run.failure]
    if failures or broken:
        lines += ["## Failures", ""]
        lines += [f"- {run.kind}: {run.failure}" for run in broken]
        lines += [f"- {label} on {kind}: {reason}" for label, kind, reason in failures]
        lines.append("")
    lines += ["## Commands", "", "Run from the repository root; tool output is in `bench/logs/` after a run.", ""]
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
        if args.fixed_rate <= 0:
            parser.error("--fixed-rate must be positive")
        produce_rows = build_replicated_rows(args.sizes or REPLICATED_SIZES, args.partitions or REPLICATED_PARTITIONS,
                                             args.fixed_rate)
        consume_rows = []
    else:
        produce_rows, consume_rows = build_matrix(
            args.sizes or DEFAULT_SIZES,
            args.acks or (QUICK_ACKS if args.quick else DEFAULT_ACKS),
            args.partitions or DEFAULT_PARTITIONS,
            args.idempotence or [False],
        )
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
        consumer_perf_enabled = True
        for kind in kinds:
            if args.replicated:
                # One cluster at a time: this kind's nodes are stopped before the next kind's start.
                runs.append(run_cluster(kind, measured_bin, produce_rows, messages, runner, not args.no_warmup,
                                        outcomes))
                continue
            run = run_broker(kind, measured_bin, produce_rows, consume_rows, messages, runner,
                             consumer_perf_enabled, not args.no_warmup, outcomes)
            runs.append(run)
            # ConsumerPerformance is compared only if every broker serves consumer groups.
            if run.missing_group_apis:
                log(f"{kind}: does not advertise {', '.join(run.missing_group_apis)}: ConsumerPerformance rows n/a")
                consumer_perf_enabled = False
        uptime_after = uptime()
        log(f"uptime: {uptime_after}")
        peak_rss_note = ("/proc/PID/clear_refs was not writable: peak RSS is since broker start."
                         if BrokerUsage.some_peak_is_since_start else None)
        if args.replicated:
            title = f"Skein and Apache Kafka side by side: {CLUSTER_NODES}-node clusters, replication factor " \
                    f"{REPLICATION_FACTOR}"
            settings = replicated_settings(messages, args.fixed_rate, peak_rss_note, not args.no_warmup)
            table = results_table(kinds, produce_rows, [], outcomes, REPLICATED_PRODUCE_METRICS)
        else:
            title = "Skein and Apache Kafka side by side"
            settings = default_settings(runs, messages, peak_rss_note, not args.no_warmup)
            table = results_table(kinds, produce_rows, consume_rows, outcomes)
        print(table)
        write_results(output, argv, title, settings, table, runs, outcomes, runner, measured_bin,
                      uptime_before, uptime_after, started)
        log(f"wrote {output}")
        return 0
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
