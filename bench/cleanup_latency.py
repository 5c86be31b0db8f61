#!/usr/bin/env python3
"""Produce and produce→consume latency on Skein while a log compaction pass runs, against an idle cleaner.

A benchmark, not a test: it asserts nothing. For each cleaner I/O budget given (broker setting
`log.cleaner.io.max.bytes.per.second`) it starts a fresh Skein and:

1. idle: probes latency while the cleaner has nothing to do (the compacted topic holds nothing cleanable);
2. fills the compacted topic with keyed updates as fast as confluent-kafka can send them, while the topic's
   `min.compaction.lag.ms` keeps the cleaner off the new records;
3. during cleanup: sets `min.compaction.lag.ms=0` and probes again while the cleaning round that follows
   compacts the backlog. Only probe samples that start after that round began (skein_cleaner_runs_total went
   up) and end before its pass finished (skein_cleaner_records_removed_total went up) count.

and repeats 1–3 until the passes gave enough samples (an unbudgeted pass can take well under a second).

A probe sample sends one message to a separate `cleanup.policy=delete` topic with acks=all and waits for its
acknowledgement (produce latency); a consumer assigned to that partition, polling in its own thread, notes
when the message reaches it (produce→consume latency, measured from the same send). See bench/README.md.

Run with .tools/venv/bin/python from the repository root:
    .tools/venv/bin/python bench/cleanup_latency.py --cleaner-io-budget unlimited,20000000
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "bench"
sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, str(BENCH_DIR))

import confluent_kafka  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource  # noqa: E402

from bench import load_average, machine_description, uptime  # noqa: E402
from support.brokers import SkeinBroker, skein_binary  # noqa: E402
from support.kafka_clients import create_topic  # noqa: E402

LOG_DIR = BENCH_DIR / "logs" / "cleanup-latency"
DEFAULT_OUTPUT = BENCH_DIR / "CLEANUP-RESULTS.md"

CLEANER_BACKOFF_MS = 1000
COMPACTED_TOPIC = "cleanup-compacted"
PROBE_TOPIC = "cleanup-probe"
# While filling, the compacted topic's records are too young to clean for this long, so the whole backlog is
# left for one pass after the fill.
FILL_HOLD_LAG_MS = 3_600_000
COMPACTED_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": str(FILL_HOLD_LAG_MS),
}
PROBE_TOPIC_CONFIG = {"cleanup.policy": "delete"}
PROBE_VALUE_SIZE = 100
# Probe producer: one message in flight, sent at once.
PROBE_PRODUCER_CONFIG = {"acks": "all", "linger.ms": 0, "enable.idempotence": False}
# Fill producer: batched throughput, as a bulk writer would send.
FILL_PRODUCER_CONFIG = {"acks": "all", "linger.ms": 20, "enable.idempotence": False, "compression.type": "none"}
# How often the probe loop reads the metrics endpoint (between samples, not inside one).
METRICS_POLL_SECONDS = 0.05
# Before each phase the broker must be this quiet (CPU share of one core over the span), waiting at most so long.
QUIET_CPU_SHARE = 0.10
QUIET_SPAN = 0.5
QUIET_TIMEOUT = 15
CLIENT_TIMEOUT = 30
BROKER_START_TIMEOUT = 120
FILL_TIMEOUT = 300
# The cleaning round after the fill must begin within this long, and its pass finish within this long.
CLEANUP_START_TIMEOUT = 30
CLEANUP_TIMEOUT = 240


@dataclass
class Sample:
    send: float
    ack: float
    offset: int
    received: float | None = None


@dataclass
class Latencies:
    """One phase's samples (seconds on time.perf_counter())."""

    samples: list[Sample] = field(default_factory=list)
    lost: int = 0  # samples the consumer never received within the timeout

    def add(self, other: "Latencies") -> None:
        self.samples += other.samples
        self.lost += other.lost

    def produce_ms(self) -> list[float]:
        return [(s.ack - s.send) * 1000 for s in self.samples]

    def end_to_end_ms(self) -> list[float]:
        return [(s.received - s.send) * 1000 for s in self.samples if s.received is not None]


@dataclass
class Cycle:
    """One idle phase, fill and cleaning pass."""

    quiet_wait_idle: float = 0.0  # waited for a quiet broker before the idle phase
    quiet_wait_pass: float = 0.0  # ... and after the fill, before the pass
    idle_seconds: float = 0.0
    idle_samples: int = 0
    broker_cpu_idle: float = 0.0
    fill_records: int = 0
    fill_bytes: int = 0
    fill_seconds: float = 0.0
    expected_removed: int = 0
    window_seconds: float = 0.0  # the measured part of the pass
    window_samples: int = 0
    samples_after_change: int = 0  # including those outside the window
    removed: int = 0
    reclaimed: int = 0
    cleaner_rounds: int = 0
    broker_cpu_window: float = 0.0


@dataclass
class BudgetRun:
    budget: str  # "unlimited" or bytes per second as given
    idle: Latencies = field(default_factory=Latencies)
    during: Latencies = field(default_factory=Latencies)
    cycles: list[Cycle] = field(default_factory=list)
    load_before: str = ""
    load_after: str = ""
    compacted_log_lines: list[str] = field(default_factory=list)
    consumer_errors: list[str] = field(default_factory=list)
    failure: str | None = None
    broker_log: Path | None = None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------------
# Broker facts
# ---------------------------------------------------------------------------------------------------

def scrape_cleaner_metrics(metrics_url: str) -> dict[str, int]:
    """The cleaner counters from Skein's Prometheus endpoint."""
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for name in ("skein_cleaner_runs_total", "skein_cleaner_records_removed_total",
                 "skein_cleaner_bytes_reclaimed_total"):
        match = re.search(rf"^{name}\s+(\S+)$", text, re.M)
        if match is None:
            raise RuntimeError(f"{name} not found at {metrics_url}/metrics")
        values[name] = int(float(match.group(1)))
    return values


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet_broker(pid: int) -> float:
    """Waits (at most QUIET_TIMEOUT) until the broker used under QUIET_CPU_SHARE of a core over QUIET_SPAN, so
    RocksDB's own flushes and compactions after a fill or a pass are not measured as either phase. Returns the
    seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < QUIET_TIMEOUT:
        cpu_before = process_cpu_seconds(pid)
        time.sleep(QUIET_SPAN)
        if process_cpu_seconds(pid) - cpu_before < QUIET_CPU_SHARE * QUIET_SPAN:
            break
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------------
# Probing
# ---------------------------------------------------------------------------------------------------

class ProbeConsumer:
    """A consumer assigned to the probe partition that notes when each offset reaches it, in its own thread."""

    def __init__(self, bootstrap: str, start_offset: int):
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": "cleanup-latency-probe",  # never joined: the partition is assigned directly
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        })
        self.consumer.assign([TopicPartition(PROBE_TOPIC, 0, start_offset)])
        self.received: dict[int, float] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.consumer.poll(0.1)  # releases the GIL while it waits
            now = time.perf_counter()
            if message is None:
                continue
            if message.error() is not None:
                self.errors.append(str(message.error()))
                continue
            self.received[message.offset()] = now

    def wait_for(self, offsets: set[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not offsets.issubset(self.received.keys()) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.consumer.close()


class Prober:
    """Sends probe messages one at a time (acks=all), at most one per `interval` seconds, and times each
    acknowledgement. The pacing keeps the probe a light load rather than a second saturating producer."""

    def __init__(self, bootstrap: str, interval: float):
        self.producer = Producer({"bootstrap.servers": bootstrap, **PROBE_PRODUCER_CONFIG})
        self.value = b"p" * PROBE_VALUE_SIZE
        self.interval = interval
        self.next_send = 0.0

    def sample(self) -> Sample:
        delivered: list = []
        wait = self.next_send - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        send = time.perf_counter()
        self.next_send = send + self.interval
        self.producer.produce(PROBE_TOPIC, value=self.value, partition=0,
                              on_delivery=lambda error, message: delivered.append((error, message)))
        remaining = self.producer.flush(CLIENT_TIMEOUT)
        ack = time.perf_counter()
        if remaining or not delivered:
            raise RuntimeError(f"probe message not acknowledged within {CLIENT_TIMEOUT}s")
        error, message = delivered[0]
        if error is not None:
            raise RuntimeError(f"probe message failed: {error}")
        return Sample(send=send, ack=ack, offset=message.offset())


def probe_end_offset(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cleanup-latency-watermarks"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(PROBE_TOPIC, 0), timeout=CLIENT_TIMEOUT)[1]
    finally:
        consumer.close()


def attach_receipts(samples: list[Sample], consumer: ProbeConsumer) -> Latencies:
    consumer.wait_for({s.offset for s in samples}, timeout=CLIENT_TIMEOUT)
    lost = 0
    for s in samples:
        s.received = consumer.received.get(s.offset)
        lost += s.received is None
    return Latencies(samples, lost)


# ---------------------------------------------------------------------------------------------------
# The phases
# ---------------------------------------------------------------------------------------------------

def measure_idle(cycle: Cycle, broker: SkeinBroker, prober: Prober, consumer: ProbeConsumer,
                 samples: int) -> Latencies:
    cpu_before = process_cpu_seconds(broker.pid)
    started = time.perf_counter()
    taken = [prober.sample() for _ in range(samples)]
    cycle.idle_seconds = time.perf_counter() - started
    cycle.broker_cpu_idle = process_cpu_seconds(broker.pid) - cpu_before
    cycle.idle_samples = len(taken)
    return attach_receipts(taken, consumer)


def fill_compacted_topic(cycle: Cycle, bootstrap: str, total_bytes: int, value_size: int, keys: int) -> None:
    """Keyed updates over `keys` keys, round-robin, as fast as the producer takes them."""
    producer = Producer({"bootstrap.servers": bootstrap, **FILL_PRODUCER_CONFIG})
    records = max(total_bytes // value_size, keys)
    payload = os.urandom(value_size)
    failures: list[str] = []

    def on_delivery(error, _message):
        if error is not None and len(failures) < 5:
            failures.append(str(error))

    started = time.perf_counter()
    for i in range(records):
        key = f"key-{i % keys:06d}".encode()
        while True:
            try:
                producer.produce(COMPACTED_TOPIC, key=key, value=payload, partition=0, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)  # the local queue is full: let deliveries drain it
        if i % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(FILL_TIMEOUT)
    cycle.fill_seconds = time.perf_counter() - started
    if remaining or failures:
        raise RuntimeError(f"fill: {remaining} messages unacknowledged, errors: {failures}")
    cycle.fill_records, cycle.fill_bytes = records, records * value_size


def set_compaction_lag(admin: AdminClient, lag_ms: int) -> None:
    resource = ConfigResource(ConfigResource.Type.TOPIC, COMPACTED_TOPIC, incremental_configs=[
        ConfigEntry("min.compaction.lag.ms", str(lag_ms), incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=CLIENT_TIMEOUT)


def measure_during_cleanup(cycle: Cycle, broker: SkeinBroker, admin: AdminClient, prober: Prober,
                           consumer: ProbeConsumer) -> Latencies:
    """Lets the cleaner at the backlog and probes until its pass has finished; keeps the samples taken wholly
    inside the pass: from when the round's start was seen to the last metrics read that showed it unfinished."""
    set_compaction_lag(admin, 0)
    # Read after the change was acknowledged: any round counted from here on sees the new lag.
    before = scrape_cleaner_metrics(broker.metrics_url)
    runs_before = before["skein_cleaner_runs_total"]
    removed_before = before["skein_cleaner_records_removed_total"]
    window_start = window_end = None
    taken: list[Sample] = []
    cpu_at_start = cpu_at_end = 0.0
    last_check = 0.0
    still_running_at = None  # when the last read that still showed the pass unfinished began
    began = time.perf_counter()
    while True:
        if time.perf_counter() - last_check >= METRICS_POLL_SECONDS:
            read_began = time.perf_counter()
            metrics = scrape_cleaner_metrics(broker.metrics_url)
            last_check = time.perf_counter()
            if window_start is None and metrics["skein_cleaner_runs_total"] > runs_before:
                window_start = last_check  # the round began before this read returned
                cpu_at_start = process_cpu_seconds(broker.pid)
            removed = metrics["skein_cleaner_records_removed_total"] - removed_before
            if window_start is not None and removed >= cycle.expected_removed:
                window_end = still_running_at if still_running_at is not None else window_start
                cpu_at_end = process_cpu_seconds(broker.pid)
                break
            if window_start is not None:
                still_running_at = read_began
            if window_start is None and last_check - began > CLEANUP_START_TIMEOUT:
                raise RuntimeError(f"no cleaning round began within {CLEANUP_START_TIMEOUT}s")
            if last_check - began > CLEANUP_TIMEOUT:
                raise RuntimeError(
                    f"the pass removed {removed} of {cycle.expected_removed} records within {CLEANUP_TIMEOUT}s")
        taken.append(prober.sample())
    after = scrape_cleaner_metrics(broker.metrics_url)
    in_window = [s for s in taken if s.send >= window_start and s.ack <= window_end]
    cycle.samples_after_change = len(taken)
    cycle.window_samples = len(in_window)
    cycle.window_seconds = window_end - window_start
    cycle.broker_cpu_window = cpu_at_end - cpu_at_start
    cycle.removed = after["skein_cleaner_records_removed_total"] - removed_before
    cycle.reclaimed = after["skein_cleaner_bytes_reclaimed_total"] - before["skein_cleaner_bytes_reclaimed_total"]
    cycle.cleaner_rounds = after["skein_cleaner_runs_total"] - runs_before
    return attach_receipts(in_window, consumer)


def run_budget(budget: str, skein_bin: Path, args: argparse.Namespace) -> BudgetRun:
    run = BudgetRun(budget)
    config = {
        "log.retention.ms": -1,
        "log.cleaner.backoff.ms": CLEANER_BACKOFF_MS,
    }
    if budget != "unlimited":
        config["log.cleaner.io.max.bytes.per.second"] = int(budget)
    broker = SkeinBroker(config, binary=skein_bin)
    prober = consumer = None
    try:
        log(f"budget {budget}: starting skein ({broker.bootstrap})")
        broker.start(timeout=BROKER_START_TIMEOUT)
        create_topic(broker.bootstrap, COMPACTED_TOPIC, partitions=1, config=COMPACTED_TOPIC_CONFIG)
        create_topic(broker.bootstrap, PROBE_TOPIC, partitions=1, config=PROBE_TOPIC_CONFIG)
        prober = Prober(broker.bootstrap, args.probe_interval_ms / 1000)
        consumer = ProbeConsumer(broker.bootstrap, probe_end_offset(broker.bootstrap))
        for _ in range(args.warmup_samples):  # connections, metadata, caches
            prober.sample()
        run.load_before = load_average()
        written = 0
        removed_so_far = 0
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        number = 0
        # A pass may be short (well under a second without a budget): cycles repeat until the passes together
        # gave enough samples.
        while number < args.min_cycles or (len(run.during.samples) < args.during_samples
                                           and number < args.max_cycles):
            number += 1
            cycle = Cycle()
            run.cycles.append(cycle)
            if number > 1:
                set_compaction_lag(admin, FILL_HOLD_LAG_MS)
            cycle.quiet_wait_idle = wait_for_quiet_broker(broker.pid)
            run.idle.add(measure_idle(cycle, broker, prober, consumer, args.samples))
            fill_compacted_topic(cycle, broker.bootstrap, args.fill_mib * 1024 * 1024, args.value_size, args.keys)
            written += cycle.fill_records
            # Everything but the latest record of each key goes.
            cycle.expected_removed = written - args.keys - removed_so_far
            cycle.quiet_wait_pass = wait_for_quiet_broker(broker.pid)
            log(f"cycle {number}: idle {cycle.idle_samples} samples; filled {cycle.fill_records} records in "
                f"{cycle.fill_seconds:.1f}s; now cleaning")
            run.during.add(measure_during_cleanup(cycle, broker, admin, prober, consumer))
            removed_so_far += cycle.removed
            log(f"cycle {number}: {cycle.window_samples} samples in a {cycle.window_seconds:.2f}s pass window; "
                f"{cycle.removed} records, {cycle.reclaimed} bytes reclaimed")
        run.load_after = load_average()
    except Exception as error:  # a failed phase is reported, never filled in
        run.failure = f"{type(error).__name__}: {error}"
        log(f"budget {budget}: FAILED: {run.failure}")
    finally:
        if consumer is not None:
            consumer.close()
            run.consumer_errors = consumer.errors
        if prober is not None:
            prober.producer.flush(5)
            prober = None  # the producer closes before the broker stops (no disconnect noise)
        try:
            broker.stop()
        finally:
            broker.kill()
            LOG_DIR.mkdir(parents=True, exist_ok=True)
            run.broker_log = LOG_DIR / f"skein-budget-{budget}.log"
            if broker.log_path.exists():
                shutil.copy(broker.log_path, run.broker_log)
                run.compacted_log_lines = [line.strip() for line in broker.log_path.read_text(errors="replace")
                                           .splitlines() if "records_removed=" in line]
            broker.close()
    return run


# ---------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------

def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def stats(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    return percentile(values, 0.50), percentile(values, 0.99), max(values)


def budget_label(budget: str) -> str:
    return "unlimited" if budget == "unlimited" else f"{int(budget):,} B/s"


def results_table(runs: list[BudgetRun]) -> str:
    lines = [
        "| budget | phase | samples | produce p50 ms | produce p99 ms | produce max ms "
        "| produce→consume p50 ms | produce→consume p99 ms | produce→consume max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        measured = {}
        for name, latencies in (("idle", run.idle), ("during cleanup", run.during)):
            produce, end_to_end = stats(latencies.produce_ms()), stats(latencies.end_to_end_ms())
            measured[name] = (produce, end_to_end)
            cells = [budget_label(run.budget), name, f"{len(latencies.samples):,}"]
            for triple in (produce, end_to_end):
                cells += [f"{v:.2f}" for v in triple] if triple else ["–"] * 3
            lines.append("| " + " | ".join(cells) + " |")
        cells = [budget_label(run.budget), "ratio during/idle", ""]
        for index in (0, 1):
            idle, during = measured["idle"][index], measured["during cleanup"][index]
            if idle and during:
                cells += [f"{d / i:.2f}" if i else "–" for i, d in zip(idle, during)]
            else:
                cells += ["–"] * 3
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def skein_version_lines(skein_source: Path, measured_bin: Path) -> list[str]:
    def output(command: list[str]) -> str:
        try:
            result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"unknown ({error})"
        return (result.stdout or result.stderr).strip()

    commit = output(["git", "log", "-1", "--format=%h %cI %s"])
    dirty = output(["git", "status", "--porcelain", "--", "crates", "Cargo.toml", "Cargo.lock"])
    digest = hashlib.sha256()
    with open(measured_bin, "rb") as binary:
        for chunk in iter(lambda: binary.read(1 << 20), b""):
            digest.update(chunk)
    built = datetime.datetime.fromtimestamp(skein_source.stat().st_mtime).astimezone()
    return [
        f"- Skein: `{output([str(measured_bin), '--version'])}` from `{skein_source}` "
        f"(modified {built.strftime('%Y-%m-%d %H:%M:%S %Z')}, sha256 {digest.hexdigest()[:16]}…)",
        f"- Work tree: commit {commit}"
        + (f"; uncommitted changes under crates/: {len(dirty.splitlines())} files" if dirty else
           "; no uncommitted changes under crates/, Cargo.toml, Cargo.lock")
        + " (the binary is whatever was last built; its modification time against the commit's says which)",
        f"- confluent-kafka {confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}, "
        f"Python {sys.version.split()[0]}",
    ]


def format_bytes(count: int) -> str:
    return f"{count:,} bytes ({count / 1024 / 1024:.1f} MiB)"


def write_report(path: Path, argv: list[str], runs: list[BudgetRun], args: argparse.Namespace, table: str,
                 version_lines: list[str], started: str, uptime_before: str, uptime_after: str) -> None:
    command = " ".join([".tools/venv/bin/python", "bench/cleanup_latency.py", *argv])
    lines = [
        "# Skein: produce and fetch latency during log compaction",
        "",
        f"Written by `bench/cleanup_latency.py` on {started}; command `{command}`.",
        "See bench/README.md (\"Latency during log compaction\") for what is measured and how. One run, no "
        "repetitions: a single run's p99 and max move from run to run.",
        "",
        "## Results",
        "",
        table,
        "",
        "- **produce**: one 100-byte message at a time, acks=all, from `produce()` to its delivery report.",
        "- **produce→consume**: from the same `produce()` to a consumer assigned to the probe partition "
        "(polling in its own thread) receiving that message.",
        "- Samples of all cycles together (idle phases with idle phases, passes with passes); percentiles are nearest-rank; ratio = during cleanup ÷ "
        "idle (above 1: slower during cleanup).",
        "",
        "## The cleaning passes measured",
        "",
        "| budget | cycle | quiet wait s (before idle / before pass) | idle samples | broker CPU s in idle phase "
        "| fill records | fill value bytes | fill s "
        "| pass window s | samples in window | samples after the change | records removed | bytes reclaimed "
        "| cleaner rounds | broker CPU s in window |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for number, cycle in enumerate(run.cycles, start=1):
            lines.append(
                f"| {budget_label(run.budget)} | {number} | {cycle.quiet_wait_idle:.1f} / {cycle.quiet_wait_pass:.1f} | "
                f"{cycle.idle_samples:,} | "
                f"{cycle.broker_cpu_idle:.2f} in {cycle.idle_seconds:.2f} s | {cycle.fill_records:,} | "
                f"{cycle.fill_bytes:,} | {cycle.fill_seconds:.1f} | {cycle.window_seconds:.2f} | "
                f"{cycle.window_samples:,} | {cycle.samples_after_change:,} | {cycle.removed:,} | "
                f"{cycle.reclaimed:,} ({cycle.reclaimed / 1024 / 1024:.1f} MiB) | {cycle.cleaner_rounds} | "
                f"{cycle.broker_cpu_window:.2f} |")
    lines += [
        "",
        "- **pass window**: from the metrics read that first showed the cleaning round begun "
        "(`skein_cleaner_runs_total` up after `min.compaction.lag.ms` was set to 0) to the start of the last read "
        "that still showed the pass unfinished; only probe samples wholly inside it count as \"during cleanup\".",
        "- **samples after the change**: all probe samples from the topic change to the pass's end being seen "
        "(the ones outside the window are in no row of the results).",
        "- **records removed / bytes reclaimed / cleaner rounds**: growth of `skein_cleaner_records_removed_total`, "
        "`skein_cleaner_bytes_reclaimed_total` and `skein_cleaner_runs_total` from just after the topic change to "
        "just after the window.",
        f"- **quiet wait**: before each phase the broker's CPU use over {QUIET_SPAN:g} s must be under "
        f"{QUIET_CPU_SHARE:.0%} of a core (RocksDB flushing or compacting after a fill or a pass), waiting at most "
        f"{QUIET_TIMEOUT} s; a wait of {QUIET_TIMEOUT} s or more means the broker never got that quiet.",
        "- **broker CPU s**: utime + stime of the broker process from `/proc/PID/stat` (10 ms resolution); in the "
        "window, from the round's start being seen to its end being seen.",
        f"- Load average (1, 5, 15 min): " + "; ".join(
            f"{budget_label(r.budget)}: {r.load_before} before → {r.load_after or '?'} after" for r in runs),
        "",
    ]
    for run in runs:
        log_name = run.broker_log.relative_to(REPO_ROOT) if run.broker_log else "?"
        lines += [f"Broker log, budget {budget_label(run.budget)}: its `compacted` lines (full log `{log_name}`, "
                  "git-ignored, replaced by the next run):", "", "```"]
        lines += run.compacted_log_lines or ["(none)"]
        lines += ["```", ""]
    lost = [f"{budget_label(r.budget)} {name}: {lat.lost}" for r in runs
            for name, lat in (("idle", r.idle), ("during", r.during)) if lat.lost]
    if lost:
        lines += ["Probe messages the consumer never received (left out of produce→consume): " + "; ".join(lost), ""]
    for run in runs:
        if run.consumer_errors:
            lines += [f"Probe consumer errors, budget {budget_label(run.budget)}: {len(run.consumer_errors)}, first: "
                      f"{run.consumer_errors[0]}", ""]
    failures = [f"- {budget_label(r.budget)}: {r.failure}" for r in runs if r.failure]
    if failures:
        lines += ["## Failures", "", *failures, ""]
    lines += [
        "## Machine and versions",
        "",
        *machine_description(),
        f"- Before: `{uptime_before}`",
        f"- After: `{uptime_after}`",
        *version_lines,
        "",
        "## Settings",
        "",
        f"- Skein broker (YAML): `log.retention.ms: -1`, `log.cleaner.backoff.ms: {CLEANER_BACKOFF_MS}`, "
        "`log.cleaner.io.max.bytes.per.second`: the budget (not set when unlimited); every other setting default "
        "(`log.flush: os`). A fresh broker and data directory per budget; the probe runs from the same machine.",
        f"- Compacted topic `{COMPACTED_TOPIC}`: 1 partition, `cleanup.policy=compact`, "
        f"`min.cleanable.dirty.ratio=0.01`; `min.compaction.lag.ms={FILL_HOLD_LAG_MS}` during the idle phase and "
        "the fill (so the cleaner leaves the new records alone), then 0.",
        f"- Cycles of idle phase, fill and cleaning pass, repeated until the passes gave {args.during_samples:,} "
        f"samples (at least {args.min_cycles}, at most {args.max_cycles} cycles). Fill: {args.fill_mib} MiB of "
        f"{args.value_size}-byte random values, keys `key-000000`… round-robin over {args.keys:,} keys (everything "
        f"but the latest record of each key is removable); producer {FILL_PRODUCER_CONFIG}.",
        f"- Probe topic `{PROBE_TOPIC}`: 1 partition, `cleanup.policy=delete`; producer {PROBE_PRODUCER_CONFIG}; "
        "consumer assigned to partition 0 from its end offset, librdkafka defaults otherwise "
        "(`fetch.wait.max.ms=500`, `fetch.min.bytes=1`).",
        f"- Probe pacing: one send at a time, at least {args.probe_interval_ms:g} ms from one send to the next, "
        f"in both phases. {args.warmup_samples} untimed samples after start-up; idle phase: {args.samples:,} "
        "samples per cycle while the compacted topic holds nothing cleanable; during cleanup: probing until the "
        f"pass ends (the metrics endpoint is read between samples every {METRICS_POLL_SECONDS * 1000:.0f} ms, so "
        "the window's edges are known to about that).",
        "",
    ]
    path.write_text("\n".join(lines))


def parse_budgets(text: str) -> list[str]:
    budgets = []
    for item in text.split(","):
        item = item.strip().lower()
        if item != "unlimited" and (not item.isdigit() or int(item) <= 0):
            raise argparse.ArgumentTypeError(f"budget {item!r}: expected 'unlimited' or bytes per second > 0")
        budgets.append(item)
    return budgets


def raise_keyboard_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cleaner-io-budget", type=parse_budgets, default=["unlimited"],
                        help="log.cleaner.io.max.bytes.per.second, comma-separated for one broker run each "
                             "(e.g. unlimited,20000000); default unlimited")
    parser.add_argument("--fill-mib", type=int, default=256,
                        help="MiB of values written to the compacted topic per cycle")
    parser.add_argument("--value-size", type=int, default=1024, help="bytes per compacted-topic value")
    parser.add_argument("--keys", type=int, default=10_000, help="distinct keys in the compacted topic")
    parser.add_argument("--during-samples", type=int, default=2000,
                        help="cycles (idle phase, fill, cleaning pass) repeat until the passes gave this many "
                             "samples")
    parser.add_argument("--min-cycles", type=int, default=2)
    parser.add_argument("--max-cycles", type=int, default=12)
    parser.add_argument("--samples", type=int, default=1000, help="idle-phase probe samples per cycle")
    parser.add_argument("--warmup-samples", type=int, default=200, help="untimed probe samples before idle")
    parser.add_argument("--probe-interval-ms", type=float, default=2.0,
                        help="least time from one probe send to the next")
    parser.add_argument("--skein-bin", type=Path, default=None, help="default $SKEIN_BIN or target/release/skein")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    skein_source = args.skein_bin or skein_binary()
    if not skein_source.is_file():
        log(f"skein binary not found at {skein_source}")
        return 2
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    work_dir = Path(tempfile.mkdtemp(prefix="skein-cleanup-bench-"))
    try:
        # A private copy: a rebuild during the run must not change the binary being measured.
        measured_bin = work_dir / "skein"
        shutil.copy2(skein_source, measured_bin)
        version_lines = skein_version_lines(skein_source, measured_bin)
        started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        uptime_before = uptime()
        log(f"uptime: {uptime_before}")
        shutil.rmtree(LOG_DIR, ignore_errors=True)
        runs = [run_budget(budget, measured_bin, args) for budget in args.cleaner_io_budget]
        uptime_after = uptime()
        table = results_table(runs)
        print(table, flush=True)
        write_report(args.output, argv, runs, args, table, version_lines, started, uptime_before, uptime_after)
        log(f"report: {args.output}")
        return 1 if any(run.failure for run in runs) else 0
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
