"""kafka-python's own integration suite, run against Apache Kafka 4.3.1 and against Skein, compared test by test.

The kafka-python 3.0.12 sdist ships the integration tests its maintainers run against real brokers
(test/integration: the admin client with configs, ACLs and groups; the consumer, alone and in groups; the producer
with every compression codec, idempotence and transactions; SASL and SSL). These tests are written by the client's
authors, not by this project, so they exercise the broker the way the client expects it to behave.
tests/setup-clients installs them in .tools/kafka-python-suite: the extracted sdist, the three files it leaves
out (the `test` packages' __init__.py files and a test/service.py for external brokers only), and a venv with the
suite's pytest, pytest-mock, pytest-timeout and codec libraries, all pinned (tests/kafka-python-suite-requirements.txt).

The test starts each broker in turn with the settings of the broker that the suite configures itself
(SUITE_BROKER_CONFIG: 4 partitions for auto-created topics, a 1 s minimum session timeout, no delay before a
group's first rebalance, the StandardAuthorizer allowing everyone when no ACL matches) and runs the suite against
it as an external broker (KAFKA_URI, KAFKA_VERSION=4.3.1). The suite runs in a nested pytest, from the sdist's
directory, bounded at SUITE_TIMEOUT_SECONDS and at NESTED_TEST_TIMEOUT_SECONDS per test; a small plugin records
each test's outcome by node id. Skein must have Kafka's outcomes, test for test: the same node ids passed,
failed, skipped and errored. The tests whose outcomes differ are run once more against each broker, started
afresh, and the rerun's outcomes are the ones compared: some of the suite's tests are timing-sensitive (under load,
test_idempotent_producer_max_in_flight[1]'s consumer once read nothing within its 30 s on Kafka), so a test must
differ twice to fail this one; the table shows both runs. At least PASSED_FLOOR tests must pass on each broker, so
a run that collapses (an import error, a broker it cannot reach) fails instead of matching an equally empty run.

Some tests fail on both brokers because the suite expects a broker that it starts and configures itself:
- test_admin_integration.py::test_create_partitions assigns the new partitions to broker 0, and both brokers
  here are node 1: CreatePartitions answers INVALID_REPLICA_ASSIGNMENT.
- test_ssl_integration.py's two tests error in setup: their fixture spawns an SSL broker from resource files
  (servers/resources) that the sdist does not contain.
Skipped on both: the SASL tests (the suite skips them with an external broker) and one test for brokers older
than 0.10.1.

On a failure the message lists every test's outcome on each broker, the differing ones marked; each run's pytest
output (suite-KIND.log, suite-KIND-rerun.log), its outcome records (outcomes-*.jsonl) and the broker's log
(broker-*.log) are kept in the test's tmp_path. Long mode only (SKEIN_LONG=1); a run takes under a minute per broker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from support.brokers import BROKER_KINDS, KAFKA_DIR, LONG_MODE, REPO_ROOT, _die_with_parent

SUITE_VERSION = "3.0.12"
SUITE_DIR = REPO_ROOT / ".tools" / "kafka-python-suite"
SUITE_SOURCE = SUITE_DIR / f"kafka_python-{SUITE_VERSION}"
SUITE_PYTHON = SUITE_DIR / "venv" / "bin" / "python"
# The broker version the suite is told it runs against (it picks API versions and skips tests by it).
KAFKA_VERSION = "4.3.1"

# The settings of the suite's own broker (its servers/resources kafka.properties) that its tests depend on: the
# topic fixture and auto-created topics have 4 partitions, test_group's consumers use a 3 s session timeout,
# test_create_describe_delete_acls needs an authorizer that lets every client through while no ACL matches, and
# a group's first rebalance is not delayed (KafkaBroker sets that already; Skein's default is Kafka's, 3 s).
SUITE_BROKER_CONFIG = {
    "num.partitions": 4,
    "group.min.session.timeout.ms": 1000,
    "group.initial.rebalance.delay.ms": 0,
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "allow.everyone.if.no.acl.found": True,
}

# Tests that pass on Apache Kafka 4.3.1 with this setup today (of 67 collected); fewer means the run broke.
PASSED_FLOOR = 54
# A run takes under a minute; a test stuck on a broker that never answers is cut off at the nested timeout.
NESTED_TEST_TIMEOUT_SECONDS = 120
SUITE_TIMEOUT_SECONDS = 600

pytestmark = pytest.mark.skipif(
    not LONG_MODE,
    reason="kafka-python's own integration suite runs in long mode (SKEIN_LONG=1)",
)

# Loaded into the nested pytest (-p): one JSON line per test phase that counts in pytest's summary, as pytest
# counts it (a failed setup or teardown is an error; a test can be both failed and errored), plus collection errors.
OUTCOME_PLUGIN = '''
import json
import os

_PATH = os.environ["SUITE_OUTCOMES_FILE"]


def _record(nodeid, outcome, message):
    with open(_PATH, "a", encoding="utf-8") as records:
        records.write(json.dumps({"nodeid": nodeid, "outcome": outcome, "message": message[:300]}) + "\\n")


def _message(report):
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    lines = [line for line in report.longreprtext.splitlines() if line.strip()]
    # The exception's own line: unindented, unlike the traceback's frames and pytest's assertion explanation.
    exception_lines = [
        line for line in lines
        if not line[0].isspace() and not line.startswith(("Traceback", "assert ", "+", "During handling", "The above"))
    ]
    return (exception_lines or lines or [""])[-1].strip()


def pytest_runtest_logreport(report):
    if report.when == "call":
        outcome = report.outcome
    elif report.failed:
        outcome = "error"
    elif report.skipped:
        outcome = "skipped"
    else:
        return
    _record(report.nodeid, outcome, "" if outcome == "passed" else _message(report))


def pytest_collectreport(report):
    if report.failed:
        _record(report.nodeid, "error", _message(report))
'''


class SuiteRun:
    """One run of the suite (or of some of its tests) against a fresh broker: each node id's outcome ("passed",
    "failed", "skipped", "error", or e.g. "error+failed" for a test failed in its call and again in its teardown)
    and the message of each outcome other than passed."""

    def __init__(self, outcomes: dict[str, str], messages: dict[str, str], seconds: float):
        self.outcomes = outcomes
        self.messages = messages
        self.seconds = seconds


def run_on_fresh_broker(start_broker, kind: str, work_dir: Path, label: str, tests: list[str]) -> SuiteRun:
    """Starts a broker of `kind` with SUITE_BROKER_CONFIG, runs `tests` (node ids or paths) against it, keeps its
    log in work_dir (broker-LABEL.log) and stops it."""
    broker = start_broker(kind, SUITE_BROKER_CONFIG)
    started = time.monotonic()
    try:
        outcomes, messages = run_suite(label, broker.bootstrap, work_dir, tests)
    finally:
        shutil.copy(broker.log_path, work_dir / f"broker-{label}.log")
        broker.close()
    return SuiteRun(outcomes, messages, time.monotonic() - started)


def run_suite(label: str, bootstrap: str, work_dir: Path, tests: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Runs `tests` of the suite against the broker at `bootstrap`, its output in work_dir (suite-LABEL.log,
    outcomes-LABEL.jsonl); returns the outcomes and messages of a SuiteRun."""
    plugin_dir = work_dir / "plugin"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    (plugin_dir / "suite_outcomes.py").write_text(OUTCOME_PLUGIN)
    outcomes_path = work_dir / f"outcomes-{label}.jsonl"
    log_path = work_dir / f"suite-{label}.log"
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("PYTEST_", "PYTHON", "KAFKA_", "ZOOKEEPER_"))
    }
    env.update(
        KAFKA_VERSION=KAFKA_VERSION,
        KAFKA_URI=f"PLAINTEXT://{bootstrap}",
        # The fixtures look for a Kafka installation even for an external broker (and use none of it).
        KAFKA_ROOT=str(KAFKA_DIR),
        PYTHONPATH=str(plugin_dir),
        PYTHONDONTWRITEBYTECODE="1",
        SUITE_OUTCOMES_FILE=str(outcomes_path),
    )
    command = [
        str(SUITE_PYTHON), "-m", "pytest", *tests,
        "-p", "suite_outcomes", "-p", "no:cacheprovider",
        # The sdist's pyproject.toml asks for DEBUG logs and a 300 s thread timeout.
        "-o", "log_level=WARNING", "-o", f"addopts=--timeout={NESTED_TEST_TIMEOUT_SECONDS}",
        "--tb=native", "-ra",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=SUITE_SOURCE, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        try:
            exit_code = process.wait(timeout=SUITE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            exit_code = None
        finally:
            if process.poll() is None:
                # Its own session: the process group is the nested pytest and whatever it started.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    if exit_code is None:
        pytest.fail(f"kafka-python's suite ({label}) did not finish within {SUITE_TIMEOUT_SECONDS}s; "
                    f"killed it\n{_tail(log_path)}", pytrace=False)
    # 0: every test passed, 1: some failed; anything else (interrupted, internal or usage error, no tests) is a
    # broken run, not an outcome.
    if exit_code not in (0, 1):
        pytest.fail(f"kafka-python's suite ({label}) exited with {exit_code}\n{_tail(log_path)}", pytrace=False)

    categories: dict[str, set[str]] = {}
    messages: dict[str, str] = {}
    for line in outcomes_path.read_text().splitlines():
        record = json.loads(line)
        categories.setdefault(record["nodeid"], set()).add(record["outcome"])
        if record["message"]:
            messages.setdefault(record["nodeid"], record["message"])
    return {nodeid: "+".join(sorted(outcome)) for nodeid, outcome in categories.items()}, messages


def _tail(path: Path, lines: int = 40) -> str:
    text = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return f"---- last {lines} lines of {path} ----\n{text}\n----"


def outcome_table(outcomes: dict[str, dict[str, str]], messages: dict[str, dict[str, str]],
                  first_runs: dict[str, SuiteRun], rerun: list[str]) -> str:
    """Every node id's outcome per broker, '<>' marking those that differ, under each the message of an outcome other
    than passed (once when the brokers' are the same) and, for a test in `rerun`, its first run's outcomes; then the
    totals."""
    nodeids = sorted(set().union(*(outcomes[kind] for kind in BROKER_KINDS)))
    width = max(len(nodeid) for nodeid in nodeids) if nodeids else 10
    indent = " " * (width + 5)
    lines = [f"   {'node id':<{width}}  " + "".join(f"{kind:<14}" for kind in BROKER_KINDS)]
    for nodeid in nodeids:
        row = [outcomes[kind].get(nodeid, "(not run)") for kind in BROKER_KINDS]
        marker = "<>" if len(set(row)) > 1 else "  "
        lines.append(f"{marker} {nodeid:<{width}}  " + "".join(f"{outcome:<14}" for outcome in row))
        texts = {kind: messages[kind][nodeid] for kind in BROKER_KINDS if nodeid in messages[kind]}
        if len(texts) == len(BROKER_KINDS) and len(set(texts.values())) == 1:
            texts = {", ".join(BROKER_KINDS): texts[BROKER_KINDS[0]]}
        for kinds, text in texts.items():
            lines.append(f"{indent}{kinds}: {text}")
        if nodeid in rerun:
            for kind in BROKER_KINDS:
                first = first_runs[kind]
                text = first.messages.get(nodeid, "")
                lines.append(f"{indent}first run, {kind}: {first.outcomes.get(nodeid, '(not run)')}"
                             + (f" ({text})" if text else ""))
    for kind in BROKER_KINDS:
        totals = Counter(outcome for value in outcomes[kind].values() for outcome in value.split("+"))
        lines.append(f"{kind}: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(totals.items())))
    return "\n".join(lines)


# Both whole runs and both reruns, each bounded by SUITE_TIMEOUT_SECONDS, plus the brokers' start and stop.
@pytest.mark.timeout(4 * SUITE_TIMEOUT_SECONDS + 600)
def test_kafka_python_suite_outcomes_match_kafka(start_broker, tmp_path):
    if not (SUITE_PYTHON.is_file() and (SUITE_SOURCE / "test" / "integration").is_dir()):
        pytest.skip(f"kafka-python's integration suite is not installed in {SUITE_DIR} (run tests/setup-clients)")
    first_runs = {
        kind: run_on_fresh_broker(start_broker, kind, tmp_path, kind, ["test/integration"]) for kind in BROKER_KINDS
    }
    durations = [f"{kind} {run.seconds:.0f}s" for kind, run in first_runs.items()]
    outcomes = {kind: run.outcomes for kind, run in first_runs.items()}
    messages = {kind: run.messages for kind, run in first_runs.items()}

    # Tests whose outcomes differ run once more, each broker fresh; the rerun's outcomes are the ones compared.
    all_nodeids = set().union(*outcomes.values())
    differing = sorted(
        nodeid for nodeid in all_nodeids if len({outcomes[kind].get(nodeid) for kind in BROKER_KINDS}) > 1
    )
    if differing:
        for kind in BROKER_KINDS:
            rerun = run_on_fresh_broker(start_broker, kind, tmp_path, f"{kind}-rerun", differing)
            durations.append(f"{kind} rerun of {len(differing)} {rerun.seconds:.0f}s")
            outcomes[kind] = {**outcomes[kind], **{nodeid: rerun.outcomes.get(nodeid, "(not run)")
                                                   for nodeid in differing}}
            messages[kind] = {nodeid: text for nodeid, text in messages[kind].items() if nodeid not in differing}
            messages[kind].update((nodeid, text) for nodeid, text in rerun.messages.items() if nodeid in differing)

    table = outcome_table(outcomes, messages, first_runs, differing)
    (tmp_path / "outcomes.txt").write_text(table + "\n")
    summary = f"kafka-python {SUITE_VERSION}'s integration suite ({', '.join(durations)}); outputs in {tmp_path}"
    print(f"{summary}\n{table}")
    if outcomes["skein"] != outcomes["kafka"]:
        pytest.fail(f"Skein's outcomes differ from Apache Kafka's (<>), on a rerun too: {summary}\n{table}",
                    pytrace=False)
    for kind in BROKER_KINDS:
        passed = sum(1 for outcome in outcomes[kind].values() if outcome == "passed")
        if passed < PASSED_FLOOR:
            pytest.fail(f"only {passed} tests passed against {kind}, fewer than PASSED_FLOOR ({PASSED_FLOOR}): "
                        f"{summary}\n{table}", pytrace=False)
