"""The delivery-guarantee examples (examples/delivery-semantics/run) through crashes, against Skein.

One run of the example at a small input with a fixed seed: every consumer application is SIGKILLed and
restarted APP_KILLS times while it copies COUNT numbered messages to its sink, and every producer setting
sends COUNT numbered messages while the broker is kill -9'ed and restarted BROKER_KILLS times. The run
writes its table as JSON; the tests below check each guarantee's promise on it:

- exactly-once (transactions with confluent-kafka and with the Java client; offsets stored with the data in
  SQLite): every input number in the sink exactly once;
- at-most-once: nothing duplicated; at-least-once: nothing lost;
- acks=1 and acks=all: every acknowledged message stored (durable against kill -9 with `log.flush: os`).

The kills must hit the applications in the middle of their work (records read, the batch's effects not
complete), else the run proves nothing: each application is killed inside a batch at least
MIN_KILLS_INSIDE_BATCH times, at-most-once did lose and at-least-once did duplicate records, and the
transactional outputs hold aborted records.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from support.brokers import REPO_ROOT, skein_binary

EXAMPLE_RUN = REPO_ROOT / "examples" / "delivery-semantics" / "run"
JAVA_CLIENT_JAR = REPO_ROOT / ".tools" / "java" / "libs" / "kafka-clients-4.3.1.jar"
COUNT = 3000
SEED = 7
APP_KILLS = 4
BROKER_KILLS = 2
MIN_KILLS_INSIDE_BATCH = 2
# The whole example run; about 90 s on a 2-core machine.
RUN_TIMEOUT_SECONDS = 240

EXACTLY_ONCE_ROWS = ["exactly-once-python", "exactly-once-java", "exactly-once-sqlite"]
ALL_CONSUMER_ROWS = ["at-most-once", "at-least-once", *EXACTLY_ONCE_ROWS]
DURABLE_PRODUCER_ROWS = ["acks=1", "acks=all", "acks=all+idempotence"]

pytestmark = pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    if not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
    if shutil.which("javac") is None or not JAVA_CLIENT_JAR.is_file():
        pytest.skip(f"javac or {JAVA_CLIENT_JAR} missing (run tests/setup-clients)")
    work_dir = tmp_path_factory.mktemp("delivery-semantics")
    json_path = work_dir / "results.json"
    command = [str(EXAMPLE_RUN), "--count", str(COUNT), "--seed", str(SEED), "--app-kills", str(APP_KILLS),
               "--broker-kills", str(BROKER_KILLS), "--json", str(json_path), "--work-dir", str(work_dir / "logs")]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            # SIGTERM first: the example then stops its broker and applications and removes their temp dirs.
            process.terminate()
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()  # its broker and applications die with it (they are started with PDEATHSIG)
                process.communicate()
    assert process.returncode == 0, f"the example run failed:\n{output[-8000:]}"
    print(output)
    return json.loads(json_path.read_text())


def consumer_row(results: dict, name: str) -> dict:
    rows = {row["name"]: row for row in results["consumer"]}
    assert name in rows, f"no row {name} in {sorted(rows)}"
    assert "skipped" not in rows[name], rows[name]
    return rows[name]


def producer_row(results: dict, name: str) -> dict:
    rows = {row["name"]: row for row in results["producer"]}
    assert name in rows, f"no row {name} in {sorted(rows)}"
    return rows[name]


def test_every_application_was_killed_inside_a_batch(results):
    for name in ALL_CONSUMER_ROWS:
        row = consumer_row(results, name)
        assert row["kills"] == APP_KILLS, f"{name}: {row['kill_points']}"
        assert row["kills_inside_batch"] >= MIN_KILLS_INSIDE_BATCH, f"{name}: {row['kill_points']}"
        assert row["unplanned_exits"] == [], f"{name}: {row}"


def test_exactly_once_neither_loses_nor_duplicates(results):
    for name in EXACTLY_ONCE_ROWS:
        row = consumer_row(results, name)
        assert (row["lost"], row["duplicated"]) == (0, 0), (
            f"{name}: lost {row['lost']} (first {row['lost_first']}), duplicated {row['duplicated']} "
            f"(first {row['duplicated_first']})")
        assert row["in_sink"] == COUNT


def test_kills_left_transactions_to_abort(results):
    # The kills interrupted transactions that had already sent output: the log holds their aborted records,
    # which no read_committed reader saw (the exactly-once test above).
    for name in ["exactly-once-python", "exactly-once-java"]:
        row = consumer_row(results, name)
        assert row["aborted_output_records"] > 0, f"{name}: {row['kill_points']}"


def test_at_most_once_never_duplicates(results):
    row = consumer_row(results, "at-most-once")
    assert row["duplicated"] == 0, f"duplicated {row['duplicated']} (first {row['duplicated_first']})"


def test_at_least_once_never_loses(results):
    row = consumer_row(results, "at-least-once")
    assert row["lost"] == 0, f"lost {row['lost']} (first {row['lost_first']})"


def test_kills_hit_what_the_weaker_guarantees_give_up(results):
    # Killed after committing and before writing all of a batch, at-most-once lost records; killed after
    # writing some of a batch and before committing, at-least-once wrote them again.
    assert consumer_row(results, "at-most-once")["lost"] > 0
    assert consumer_row(results, "at-least-once")["duplicated"] > 0


def test_acks_1_and_acks_all_lose_no_acknowledged_message(results):
    for name in DURABLE_PRODUCER_ROWS:
        row = producer_row(results, name)
        assert row["broker_kills"] == BROKER_KILLS, f"{name}: {row['broker_kill_points']}"
        # The producer retried through every restart: all of it was acknowledged in the end.
        assert (row["acknowledged"], row["failed"], row["undelivered"]) == (COUNT, 0, 0), row
        assert row["lost_acknowledged"] == 0, f"{name}: lost {row['lost_acknowledged_first']}"
        assert row["stored"] == COUNT
    assert producer_row(results, "acks=all+idempotence")["duplicated"] == 0


def test_acks_0_never_resends(results):
    # acks=0 may lose what was in flight at a kill (how much depends on where the kills land), but the client
    # reports every message delivered once written and never sends one twice.
    row = producer_row(results, "acks=0")
    assert row["broker_kills"] == BROKER_KILLS, row["broker_kill_points"]
    assert (row["acknowledged"], row["failed"]) == (COUNT, 0), row
    assert row["duplicated"] == 0
