#!/usr/bin/env python3
"""The client conformance matrix: every client driver (conformance/*/run) x every scenario, against
Apache Kafka first (the oracle) and then against Skein.

    conformance/run.py [--clients a,b] [--scenarios x,y] [--kafka-only | --skein-only] [--out PATH]

A cell is `pass` (Kafka and Skein pass), `FAIL` (Kafka passes, Skein fails), `oracle-fail` (the scenario
fails against Kafka itself, so the driver or the scenario is wrong; Skein is not tried), `n/a` (the client
cannot express the scenario: driver exit 2) or `kafka-pass` (passes against Kafka; Skein not run because of
--kafka-only or because target/release/skein is missing) or `skein-pass` (passes against Skein; Kafka not run:
--skein-only, the short mode tests/run-all uses unless SKEIN_LONG=1, which writes its table to
conformance/.logs/MATRIX-skein-only.md and leaves MATRIX.md alone). The last line is `N passed, N failed`; the exit
status is non-zero if anything failed. Prints the table and writes conformance/MATRIX.md (or --out PATH).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CONFORMANCE_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONFORMANCE_DIR.parent
VENV_PYTHON = REPO_ROOT / ".tools" / "venv" / "bin" / "python"

# The runner needs confluent-kafka (topic creation) and the broker helpers: run inside .tools/venv.
if Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve() and VENV_PYTHON.is_file():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])

sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, str(CONFORMANCE_DIR))

from confluent_kafka import Consumer, KafkaException, TopicPartition  # noqa: E402

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from support.brokers import BrokerError, KafkaBroker, SkeinBroker, skein_binary  # noqa: E402
from support.kafka_clients import create_topic  # noqa: E402

from support.cluster import KafkaCluster, SkeinCluster  # noqa: E402

from common.driver import SCENARIOS as DRIVER_SCENARIOS  # noqa: E402
from common.messages import CLUSTER_REPLICATION_FACTOR, LOG_COMPACTION_TOPIC_CONFIG  # noqa: E402

LOG_DIR = CONFORMANCE_DIR / ".logs"
MATRIX_PATH = CONFORMANCE_DIR / "MATRIX.md"

# Planned clients first, in this order; any other driver directory follows alphabetically.
CLIENT_ORDER = ["confluent-kafka", "kafka-python", "java", "kafka-cli", "kcat", "rdkafka", "kafkajs", "franz-go", "sarama"]
# Matrix scenarios: every driver scenario (one list, in conformance/common/driver.py) except the `produce` and
# `verify` phases, which run inside the restart scenarios: produce -> broker restart (SIGKILL or not) -> verify.
RESTART_SCENARIOS = {"restart": False, "kill9-restart": True}
SCENARIOS = [s for s in DRIVER_SCENARIOS if s not in ("produce", "verify")] + list(RESTART_SCENARIOS)
# Scenarios whose driver creates the topic itself.
SCENARIOS_WITHOUT_TOPIC = {"admin-topics"}
# Scenarios run against three-node clusters (tests/support/cluster.py) instead of the single brokers, with the
# topic created with replication factor 3 and the driver bootstrapping at node 1 alone. The clusters are started
# when the first such cell runs, after every single-broker cell, and stopped when the last one has run.
CLUSTER_SCENARIOS = {"cluster"}
CLUSTER_SIZE = 3
# Topic configs of the scenarios whose topic is not created with the defaults (not every client can set them).
SCENARIO_TOPIC_CONFIGS = {"log-compaction": LOG_COMPACTION_TOPIC_CONFIG}
PARTITIONS = 3
# The scenarios' record timestamps are from November 2023 (1700000000000 + i). With the default 7-day
# time retention, Kafka's periodic retention check (every 5 minutes) deletes those records mid-run, so
# both brokers keep data forever. For the consumer-group scenarios: a classic group forms as soon as its
# first member joins instead of waiting 3 s for more, and KIP-848 members (group.protocol=consumer)
# heartbeat every second instead of every 5 s, so a member learns of partitions to give up or take over
# quickly (the minimum interval must allow that). For log-compaction, the cleaner looks for work every 200 ms
# instead of every 15 s. Everything else is the brokers' default configuration.
BROKER_CONFIG = {
    "log.retention.ms": -1,
    "log.cleaner.backoff.ms": 200,
    "group.initial.rebalance.delay.ms": 0,
    "group.consumer.heartbeat.interval.ms": 1000,
    "group.consumer.min.heartbeat.interval.ms": 1000,
}
CELL_TIMEOUT_SECONDS = 180
VERSION_TIMEOUT_SECONDS = 60
BROKER_START_TIMEOUT_SECONDS = 90
# Three JVMs (or three skein processes) starting at once on a small machine, and a quorum to form first.
CLUSTER_START_TIMEOUT_SECONDS = 150
SERVING_TIMEOUT_SECONDS = 60
FAILURE_TAIL_LINES = 25
# Lines of the broker's own log (written while a failing cell ran) kept beside the cell's log, and how many
# of them the report prints.
BROKER_LOG_EXCERPT_LINES = 200
BROKER_LOG_PRINTED_LINES = 10

PASS, FAIL, ORACLE_FAIL, NOT_APPLICABLE, KAFKA_PASS = "pass", "FAIL", "oracle-fail", "n/a", "kafka-pass"
SKEIN_PASS = "skein-pass"

LEGEND = [
    (PASS, "passes against Apache Kafka and against Skein"),
    (FAIL, "passes against Apache Kafka, fails against Skein (a Skein defect)"),
    (ORACLE_FAIL, "fails against Apache Kafka itself: the driver or the scenario is wrong; Skein not tried "
                  "(counted as failed)"),
    (NOT_APPLICABLE, "the client cannot express this scenario (driver exit 2)"),
    (KAFKA_PASS, "passes against Apache Kafka; Skein was not run (--kafka-only, or no skein binary)"),
    (SKEIN_PASS, "passes against Skein; Apache Kafka (the oracle) was not run (--skein-only)"),
]


@dataclass
class Attempt:
    """One driver invocation (or, for `restart`, produce -> restart -> verify) against one broker."""
    exit_code: int | None  # None: timed out or the broker could not be (re)started
    reason: str
    log_path: Path
    seconds: float
    broker_log_path: Path | None = None  # what the broker logged while the cell ran, kept when it failed

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def not_applicable(self) -> bool:
        return self.exit_code == 2


@dataclass
class Cell:
    client: str
    scenario: str
    result: str = ""
    reason: str = ""
    attempts: dict[str, Attempt] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(attempt.seconds for attempt in self.attempts.values())


def discover_clients() -> list[str]:
    found = sorted(path.parent.name for path in CONFORMANCE_DIR.glob("*/run")
                   if path.is_file() and os.access(path, os.X_OK))
    return ([name for name in CLIENT_ORDER if name in found]
            + [name for name in found if name not in CLIENT_ORDER])


def driver_path(client: str) -> Path:
    return CONFORMANCE_DIR / client / "run"


def client_version(client: str) -> str:
    """`run --version` prints one line such as "kafka-python 3.0.12"; drivers that don't support it get "(version ?)"."""
    try:
        completed = subprocess.run([str(driver_path(client)), "--version"], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, timeout=VERSION_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return "(version ?)"
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or len(lines) != 1:
        return "(version ?)"
    version = lines[0].strip()
    return version[len(client):].strip() if version.startswith(client + " ") else version


def unique_topic(client: str, scenario: str, broker_kind: str) -> str:
    return f"conformance-{client}-{scenario}-{broker_kind}-{uuid.uuid4().hex[:8]}"


def log_tail(path: Path, lines: int = FAILURE_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def failure_reason(path: Path) -> str:
    """The driver's `FAIL:` line if it printed one, else its last line (the runner's own lines skipped)."""
    lines = [line.strip() for line in log_tail(path, 200).splitlines()
             if line.strip() and not line.startswith(("runner:", "$ "))]
    for line in reversed(lines):
        if line.startswith("FAIL:") or line.startswith("n/a:"):
            return line
    return lines[-1] if lines else "(driver printed nothing)"


def run_driver(client: str, scenario: str, bootstrap: str, topic: str, log_path: Path,
               timeout: float) -> tuple[int | None, str]:
    """Runs one driver phase with its stdout and stderr appended to log_path.
    Returns (exit code or None on timeout, reason)."""
    command = [str(driver_path(client)), "--bootstrap", bootstrap, "--scenario", scenario, "--topic", topic]
    with open(log_path, "ab") as log_file:
        log_file.write(f"$ {' '.join(command)}\n".encode())
        log_file.flush()
        # Own process group, so a timeout can end the driver together with any child it started.
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            exit_code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            message = f"timed out after {timeout:.0f} s (killed)"
            log_file.write(f"runner: {message}\n".encode())
            return None, message
        log_file.write(f"runner: exit code {exit_code}\n".encode())
    if exit_code == 0:
        return 0, "ok"
    return exit_code, failure_reason(log_path)


def wait_until_serving(bootstrap: str, topic: str) -> float:
    """After a restart the broker accepts connections before it leads its partitions again (Kafka answers
    NOT_LEADER_OR_FOLLOWER for a moment). Waits until every partition of TOPIC answers a ListOffsets
    request, so the verify phase starts against a broker that is back in service. Returns seconds waited."""
    started = time.monotonic()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"conformance-runner-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "log_level": 0})
    try:
        while True:
            try:
                for partition in range(PARTITIONS):
                    consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5, cached=False)
                return time.monotonic() - started
            except KafkaException as error:
                if time.monotonic() - started > SERVING_TIMEOUT_SECONDS:
                    raise BrokerError(f"{topic} not served within {SERVING_TIMEOUT_SECONDS} s of the restart: "
                                      f"{error.args[0]}")
                time.sleep(0.5)
    finally:
        consumer.close()


def broker_logs(broker) -> dict[str, Path]:
    """The logs of a single broker ({"": path}) or of a cluster's nodes ({"node 1": path, ...})."""
    return getattr(broker, "log_paths", None) or {"": broker.log_path}


def broker_log_sizes(broker) -> dict[str, int]:
    sizes = {}
    for name, path in broker_logs(broker).items():
        try:
            sizes[name] = path.stat().st_size
        except FileNotFoundError:
            sizes[name] = 0
    return sizes


def save_broker_log_excerpt(broker, since: dict[str, int], excerpt_path: Path) -> Path:
    """Keeps the last lines the broker (each node of a cluster) logged since the sizes `since` (while the cell
    ran) in excerpt_path: the brokers' own logs live in temp dirs that are removed when the run ends. A
    cluster's nodes follow each other, each under a `==== node N ====` line."""
    logs = broker_logs(broker)
    lines = []
    for name, path in logs.items():
        try:
            with open(path, "rb") as broker_log:
                broker_log.seek(since.get(name, 0))
                node_lines = broker_log.read().decode(errors="replace").splitlines()[-BROKER_LOG_EXCERPT_LINES:]
        except FileNotFoundError:
            node_lines = []
        if len(logs) > 1:
            lines.append(f"==== {name} ====")
        lines += node_lines
    excerpt_path.write_text("".join(f"{line}\n" for line in lines))
    return excerpt_path


class ClusterTarget:
    """A three-node cluster as the runner uses a broker: one bootstrap address (node 1's: a client must find the
    other brokers itself), a log per node, and start() for whichever nodes are not running."""

    def __init__(self, cluster):
        self.cluster = cluster

    @property
    def bootstrap(self) -> str:
        return self.cluster.nodes[0].bootstrap

    @property
    def log_paths(self) -> dict[str, Path]:
        return {f"node {node.node_id}": node.log_path for node in self.cluster.nodes}

    def is_running(self) -> bool:
        return all(node.is_running() for node in self.cluster.nodes)

    def start(self, timeout: float) -> None:
        self.cluster.start(timeout)

    def close(self) -> None:
        self.cluster.close()


def ensure_running(broker) -> None:
    if not broker.is_running():
        clustered = isinstance(broker, ClusterTarget)
        broker.start(timeout=CLUSTER_START_TIMEOUT_SECONDS if clustered else BROKER_START_TIMEOUT_SECONDS)


def create_cluster_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 60) -> None:
    """Creates TOPIC with replication factor 3 (the cluster places the replicas) and waits until the metadata
    shows every partition with a leader and 3 replicas (the driver checks the rest, the in-sync replicas too)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=CLUSTER_REPLICATION_FACTOR)],
        request_timeout=timeout, operation_timeout=timeout)
    futures[topic].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        described = admin.list_topics(timeout=timeout).topics.get(topic)
        if described is not None and described.error is None and len(described.partitions) == partitions and all(
                p.leader >= 0 and len(p.replicas) == CLUSTER_REPLICATION_FACTOR for p in described.partitions.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} not ready within {timeout} s: {described}")
        time.sleep(0.2)


def attempt(client: str, scenario: str, broker, broker_kind: str) -> Attempt:
    log_path = LOG_DIR / client / f"{scenario}.{broker_kind}.log"
    broker_log_excerpt_path = LOG_DIR / client / f"{scenario}.{broker_kind}.broker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_bytes(b"")
    broker_log_excerpt_path.unlink(missing_ok=True)
    started = time.monotonic()
    deadline = started + CELL_TIMEOUT_SECONDS
    broker_log_start = broker_log_sizes(broker)

    def finish(exit_code: int | None, reason: str) -> Attempt:
        excerpt = None
        if exit_code not in (0, 2):
            excerpt = save_broker_log_excerpt(broker, broker_log_start, broker_log_excerpt_path)
        return Attempt(exit_code, reason, log_path, time.monotonic() - started, excerpt)

    try:
        ensure_running(broker)
    except BrokerError as error:
        return finish(None, f"{broker_kind} broker could not be started: {str(error).splitlines()[0]}")

    topic = unique_topic(client, scenario, broker_kind)
    if scenario in CLUSTER_SCENARIOS:
        try:
            create_cluster_topic(broker.bootstrap, topic, PARTITIONS)
        except Exception as error:  # the runner's own client failing is a broker problem for this cell
            return finish(None, f"creating topic {topic} with {PARTITIONS} partitions and replication factor "
                                f"{CLUSTER_REPLICATION_FACTOR} failed: {error}")
    elif scenario not in SCENARIOS_WITHOUT_TOPIC:
        try:
            create_topic(broker.bootstrap, topic, PARTITIONS, config=SCENARIO_TOPIC_CONFIGS.get(scenario))
        except Exception as error:  # the runner's own client failing is a broker problem for this cell
            return finish(None, f"creating topic {topic} with {PARTITIONS} partitions failed: {error}")

    if scenario not in RESTART_SCENARIOS:
        exit_code, reason = run_driver(client, scenario, broker.bootstrap, topic, log_path, CELL_TIMEOUT_SECONDS)
        return finish(exit_code, reason)

    # restart / kill9-restart: every message acknowledged (acks=all) before the broker stopped, cleanly or by
    # SIGKILL, must be there exactly once after it starts again.
    killed = RESTART_SCENARIOS[scenario]
    exit_code, reason = run_driver(client, "produce", broker.bootstrap, topic, log_path, CELL_TIMEOUT_SECONDS)
    if exit_code != 0:
        return finish(exit_code, f"produce phase: {reason}")
    with open(log_path, "ab") as log_file:
        how = "SIGKILL" if killed else "SIGTERM"
        log_file.write(f"runner: restarting the {broker_kind} broker (pid {broker.pid}) after {how}\n".encode())
    try:
        if killed:
            broker.kill()
        else:
            exit_status = broker.stop()
            if exit_status != broker.clean_exit_code:
                return finish(1, f"broker exit code {exit_status} on SIGTERM, expected {broker.clean_exit_code}")
        broker.start(timeout=BROKER_START_TIMEOUT_SECONDS)
        waited = wait_until_serving(broker.bootstrap, topic)
    except BrokerError as error:
        return finish(None, f"broker restart failed: {str(error).splitlines()[0]}")
    with open(log_path, "ab") as log_file:
        log_file.write(f"runner: broker serves {topic} again {waited:.1f} s after start-up\n".encode())
    remaining = max(10.0, deadline - time.monotonic())
    exit_code, reason = run_driver(client, "verify", broker.bootstrap, topic, log_path, remaining)
    if exit_code != 0 and exit_code is not None:
        reason = f"verify phase after restart: {reason}"
    return finish(exit_code, reason)


def run_cell(client: str, scenario: str, kafka, skein) -> Cell:
    cell = Cell(client, scenario)
    if kafka is None:
        # --skein-only: Skein's outcome alone (the drivers were validated against Kafka by full runs).
        outcome = attempt(client, scenario, skein, "skein")
        cell.attempts["skein"] = outcome
        if outcome.passed:
            cell.result = SKEIN_PASS
        elif outcome.not_applicable:
            cell.result, cell.reason = NOT_APPLICABLE, outcome.reason
        else:
            cell.result, cell.reason = FAIL, outcome.reason
        return cell
    oracle = attempt(client, scenario, kafka, "kafka")
    cell.attempts["kafka"] = oracle
    if oracle.not_applicable:
        cell.result, cell.reason = NOT_APPLICABLE, oracle.reason
        return cell
    if not oracle.passed:
        cell.result, cell.reason = ORACLE_FAIL, oracle.reason
        return cell
    if skein is None:
        cell.result = KAFKA_PASS
        return cell
    outcome = attempt(client, scenario, skein, "skein")
    cell.attempts["skein"] = outcome
    if outcome.passed:
        cell.result = PASS
    elif outcome.not_applicable:
        cell.result, cell.reason = FAIL, f"driver said n/a against Skein but passed against Kafka: {outcome.reason}"
    else:
        cell.result, cell.reason = FAIL, outcome.reason
    return cell


def report_cell(cell: Cell) -> None:
    print(f"  {cell.client:<16} {cell.scenario:<20} {cell.result:<12} {cell.seconds:6.1f} s", flush=True)
    if cell.result == ORACLE_FAIL:
        failed = cell.attempts["kafka"]
        print(f"  !!! ORACLE-FAIL: {cell.client} {cell.scenario} fails against Apache Kafka: {cell.reason}")
        print(f"  !!! the driver or the scenario is wrong; log {failed.log_path.relative_to(REPO_ROOT)}:")
        print(indent(log_tail(failed.log_path)), flush=True)
        report_broker_log(failed)
    elif cell.result == FAIL:
        failed = cell.attempts["skein"]
        print(f"  FAIL against Skein: {cell.reason}\n  log {failed.log_path.relative_to(REPO_ROOT)}:")
        print(indent(log_tail(failed.log_path)), flush=True)
        report_broker_log(failed)


def report_broker_log(failed: Attempt) -> None:
    if failed.broker_log_path is not None:
        print(f"  broker log while it ran: {failed.broker_log_path.relative_to(REPO_ROOT)}, last lines:")
        print(indent(log_tail(failed.broker_log_path, BROKER_LOG_PRINTED_LINES)), flush=True)


def indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def client_label(client: str, versions: dict[str, str]) -> str:
    return f"{client} {versions[client]}"


def format_table(cells: dict[tuple[str, str], Cell], clients: list[str], scenarios: list[str],
                 versions: dict[str, str]) -> str:
    header = ["client"] + scenarios
    rows = [[client_label(client, versions)] + [cells[(client, scenario)].result for scenario in scenarios]
            for client in clients]
    widths = [max(len(row[column]) for row in [header] + rows) for column in range(len(header))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip()
             for row in [header] + rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_matrix(cells: dict[tuple[str, str], Cell], clients: list[str], scenarios: list[str],
                 versions: dict[str, str], skein_note: str, command: str, matrix_path: Path) -> None:
    lines = [
        "# Client conformance matrix",
        "",
        f"Generated by `{command}`. Each scenario runs against Apache Kafka 4.3.1 (the oracle) first and, if it",
        f"passes there, against Skein. {skein_note} Scenarios are described in `conformance/README.md`.",
        "",
        "| client | " + " | ".join(scenarios) + " |",
        "| --- | " + " | ".join("---" for _ in scenarios) + " |",
    ]
    for client in clients:
        results = [cells[(client, scenario)].result for scenario in scenarios]
        lines.append(f"| {client_label(client, versions)} | " + " | ".join(results) + " |")
    lines += ["", "Legend:", ""]
    lines += [f"- `{result}`: {meaning}" for result, meaning in LEGEND]
    problems = [cell for cell in cells.values() if cell.result in (FAIL, ORACLE_FAIL, NOT_APPLICABLE)]
    if problems:
        lines += ["", "Notes:", ""]
        for cell in problems:
            reason = cell.reason.replace("|", "\\|").replace("`", "'")
            lines.append(f"- {cell.client} / {cell.scenario} ({cell.result}): {reason}")
    matrix_path.write_text("\n".join(lines) + "\n")


def parse_list(value: str | None, allowed: list[str], what: str) -> list[str]:
    if value is None:
        return list(allowed)
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(allowed)})")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", help="comma-separated client names (default: every conformance/*/run)")
    parser.add_argument("--scenarios", help="comma-separated scenarios (default: all)")
    parser.add_argument("--kafka-only", action="store_true", help="only validate the scenarios against Apache Kafka")
    parser.add_argument("--skein-only", action="store_true",
                        help="run the scenarios against Skein only, without the Apache Kafka oracle (short mode)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the matrix (default: conformance/MATRIX.md, or with --skein-only "
                             "conformance/.logs/MATRIX-skein-only.md)")
    args = parser.parse_args()
    if args.kafka_only and args.skein_only:
        raise SystemExit("--kafka-only and --skein-only exclude each other")
    default_out = LOG_DIR / "MATRIX-skein-only.md" if args.skein_only else MATRIX_PATH
    matrix_path = (args.out or default_out).resolve()

    clients = parse_list(args.clients, discover_clients(), "client")
    scenarios = parse_list(args.scenarios, SCENARIOS, "scenario")
    if not clients:
        print("no client drivers found (conformance/*/run)")
        return 1
    command = "conformance/run.py" + "".join(
        f" {flag}" for flag, on in (("--kafka-only", args.kafka_only), ("--skein-only", args.skein_only)) if on)
    if args.clients:
        command += f" --clients {','.join(clients)}"
    if args.scenarios:
        command += f" --scenarios {','.join(scenarios)}"

    run_skein = not args.kafka_only
    if args.kafka_only:
        skein_note = "This run validated the scenarios against Apache Kafka only (`--kafka-only`)."
    elif not skein_binary().is_file():
        run_skein = False
        skein_note = f"Skein was skipped: no binary at `{os.path.relpath(skein_binary(), REPO_ROOT)}`."
        print(f"*** SKEIN SKIPPED: {skein_binary()} does not exist (run `cargo build --release`); "
              "validating the scenarios against Apache Kafka only ***", flush=True)
    else:
        skein_note = f"Skein binary: `{os.path.relpath(skein_binary(), REPO_ROOT)}`."
    if args.skein_only:
        skein_note += " This run left the Apache Kafka oracle out (`--skein-only`)."

    versions = {client: client_version(client) for client in clients}
    print("clients: " + ", ".join(client_label(client, versions) for client in clients), flush=True)

    LOG_DIR.mkdir(exist_ok=True)
    single_scenarios = [scenario for scenario in scenarios if scenario not in CLUSTER_SCENARIOS]
    cluster_scenarios = [scenario for scenario in scenarios if scenario in CLUSTER_SCENARIOS]
    cells: dict[tuple[str, str], Cell] = {}
    started = time.monotonic()
    if single_scenarios:
        kafka = None if args.skein_only else KafkaBroker(BROKER_CONFIG)
        skein = SkeinBroker(BROKER_CONFIG) if run_skein else None
        try:
            if kafka is not None:
                print("starting Apache Kafka ...", flush=True)
                try:
                    kafka.start(timeout=BROKER_START_TIMEOUT_SECONDS)
                except BrokerError as error:
                    print(f"!!! Apache Kafka (the oracle) could not be started: {error}")
                    print("0 passed, 1 failed")
                    return 1
                print(f"Apache Kafka at {kafka.bootstrap} (log {kafka.log_path})", flush=True)
            if skein is not None:
                try:
                    skein.start(timeout=BROKER_START_TIMEOUT_SECONDS)
                    print(f"Skein at {skein.bootstrap} (log {skein.log_path})", flush=True)
                except BrokerError as error:
                    # Every Skein cell retries the start and fails with the reason.
                    print(f"!!! Skein could not be started: {error}", flush=True)
            for client in clients:
                for scenario in single_scenarios:
                    cell = run_cell(client, scenario, kafka, skein)
                    cells[(client, scenario)] = cell
                    report_cell(cell)
        finally:
            if kafka is not None:
                kafka.close()
            if skein is not None:
                skein.close()
    if cluster_scenarios:
        # Three-node clusters, started by the first cell that needs them (ensure_running in attempt), after the
        # single brokers have stopped; a node that died is restarted by the next cell.
        kafka_cluster = None if args.skein_only else ClusterTarget(KafkaCluster(CLUSTER_SIZE, BROKER_CONFIG))
        skein_cluster = ClusterTarget(SkeinCluster(CLUSTER_SIZE, BROKER_CONFIG)) if run_skein else None
        print(f"three-node clusters for {', '.join(cluster_scenarios)}:"
              + (f" Apache Kafka {kafka_cluster.cluster.bootstrap_servers}" if kafka_cluster else "")
              + (f" Skein {skein_cluster.cluster.bootstrap_servers}" if skein_cluster else ""), flush=True)
        try:
            for client in clients:
                for scenario in cluster_scenarios:
                    cell = run_cell(client, scenario, kafka_cluster, skein_cluster)
                    cells[(client, scenario)] = cell
                    report_cell(cell)
        finally:
            if kafka_cluster is not None:
                kafka_cluster.close()
            if skein_cluster is not None:
                skein_cluster.close()

    print()
    print(format_table(cells, clients, scenarios, versions))
    print()
    for client in clients:
        seconds = sum(cells[(client, scenario)].seconds for scenario in scenarios)
        print(f"{client}: {seconds:.1f} s")
    print(f"total: {time.monotonic() - started:.1f} s")
    write_matrix(cells, clients, scenarios, versions, skein_note, command, matrix_path)
    print(f"wrote {os.path.relpath(matrix_path, REPO_ROOT)}")

    results = [cell.result for cell in cells.values()]
    oracle_failures = results.count(ORACLE_FAIL)
    if oracle_failures:
        print(f"!!! {oracle_failures} scenario(s) fail against Apache Kafka itself (oracle-fail): "
              "fix the driver or the scenario; counted as failed")
    # Without Skein, the Kafka validations are what this run checked, so they are what it counts.
    passed = results.count(PASS) + results.count(KAFKA_PASS) + results.count(SKEIN_PASS)
    failed = results.count(FAIL) + oracle_failures
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
