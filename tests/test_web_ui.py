"""A web UI for Kafka browsing topics and messages, against Apache Kafka (the reference) and Skein.

The UI is Kafka Viewer (the kafka-viewer package from PyPI, a Streamlit app whose Kafka side is kafka-python),
installed by tests/setup-clients into .tools/kafka-viewer. The test starts it as its own process (its
`kafka-viewer --config FILE` command, on a free port, pointed at the broker by a properties file) and drives it
the way a person does, in headless Chromium (Debian's chromium and chromium-driver, through Selenium): the page is
rendered in the browser, so there is no server-side HTML to fetch. It is the web UI that installs here: Kafdrop,
AKHQ, Kafbat UI (formerly Provectus Kafka UI), Kafka WebView and Redpanda Console (Kowl) are published outside the
registries this project uses, and Kafka Viewer has no page for consumer groups.

Scenario, on a fresh broker per kind, with stock clients (confluent-kafka):
- topic A with 3 partitions holds 6 records with JSON values and keys `order-0`..`order-5`, each written to a
  chosen partition with a chosen timestamp: `order-0` two hours old, the others a few minutes old, one second
  apart; topic B with 1 partition holds 2 records with plain-text values, the second without a key;
- a consumer group reads topic A and commits offsets (Apache Kafka then has its internal __consumer_offsets topic).

What the UI must show, the same for both brokers:
- Status: Connected, and a Topic list of exactly A and B (internal topics left out), A selected first;
- A's statistics: Total Records 6, Partitions 3, Last 1 Hour 5 (offsets by timestamp), Latest Record Timestamp
  the newest record's timestamp (read at the end of each partition);
- "From beginning": six expanders labelled with each record's partition and offset in timestamp order, one of
  them opened shows the record's pretty-printed JSON value, and the JSON download holds every record's
  partition, offset, timestamp, key and value;
- "Latest messages" with the filter `pear?plum` (either word): only the two records whose value holds one;
- topic B chosen in the list: Total Records 2, Partitions 1, its newest record's timestamp; "Latest messages"
  with count 1 shows only the second record (read from the end offset minus one), opened it shows its plain-text
  value; "From beginning" downloads both, with `<null>` for the missing key.

Not covered: Kafka Viewer's "Latest messages" without a filter on a topic of several partitions. It keeps the first
records of the first poll that reach the count and drops the rest of that poll, so which partition's records it
shows depends on the order of partitions in the poll (kafka-python orders them by hash, seeded per process), on
either broker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from support.brokers import BROKER_KINDS, REPO_ROOT, free_port, http_get_status
from support.kafka_clients import create_topic, unique_topic_name

KAFKA_VIEWER = REPO_ROOT / ".tools" / "kafka-viewer" / "bin" / "kafka-viewer"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

CLIENT_TIMEOUT_SECONDS = 30
UI_START_SECONDS = 60
# How long the page may take to show what a click asked for (Streamlit reruns the app on each interaction; the
# app's own Kafka calls have 5 s request timeouts).
PAGE_SECONDS = 45

GROUP = "web-ui-readers"
# Topic A: (partition, key, value, age in ms). Ages decrease with the index; order-0 is two hours old.
ORDERS = [
    (0, "order-0", {"order": 0, "item": "apple"}, 2 * 3600 * 1000),
    (1, "order-1", {"order": 1, "item": "pear"}, 300_000),
    (2, "order-2", {"order": 2, "item": "fig"}, 299_000),
    (0, "order-3", {"order": 3, "item": "plum"}, 298_000),
    (1, "order-4", {"order": 4, "item": "kiwi"}, 297_000),
    (2, "order-5", {"order": 5, "item": "lime"}, 296_000),
]
# Topic B: (key, value, age in ms), one partition.
NOTES = [
    ("note-0", "first plain note", 200_000),
    (None, "second plain note", 199_000),
]


def _expected_records(now_ms: int) -> tuple[list[dict], list[dict]]:
    """Topic A's and topic B's records as the UI's JSON download gives them (offsets as the broker assigns them,
    timestamps now_ms minus each record's age)."""
    next_offset: dict[int, int] = {}
    orders = []
    for partition, key, value, age in ORDERS:
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        orders.append({"partition": partition, "offset": offset, "timestamp": now_ms - age, "key": key,
                       "message": value})
    notes = [{"partition": 0, "offset": offset, "timestamp": now_ms - age, "key": "<null>" if key is None else key,
              "message": value} for offset, (key, value, age) in enumerate(NOTES)]
    return orders, notes


def _label(record: dict) -> str:
    return f"partition={record['partition']} offset={record['offset']}"


def _local_time(timestamp_ms: int) -> str:
    """A timestamp as the UI prints it (its process has this process's time zone)."""
    return datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc).astimezone().strftime("%d-%b-%Y %H:%M:%S")


def _fill_broker(bootstrap: str, now_ms: int) -> tuple[str, str]:
    """Creates topics A and B with their records (timestamps now_ms minus their ages) and the group with committed
    offsets; returns (A, B)."""
    base = unique_topic_name("webui")
    orders, notes = f"{base}-a-orders", f"{base}-b-notes"
    create_topic(bootstrap, orders, partitions=3)
    create_topic(bootstrap, notes, partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": True})
    for partition, key, value, age in ORDERS:
        producer.produce(orders, key=key, value=json.dumps(value), partition=partition, timestamp=now_ms - age)
    for key, value, age in NOTES:
        producer.produce(notes, key=key, value=value, partition=0, timestamp=now_ms - age)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": GROUP, "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    try:
        consumer.subscribe([orders])
        seen = 0
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while seen < len(ORDERS) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                seen += 1
        assert seen == len(ORDERS), f"the group read {seen} of {len(ORDERS)} records"
        committed = consumer.commit(asynchronous=False)
        assert sorted((tp.partition, tp.offset) for tp in committed) == [(0, 2), (1, 2), (2, 2)]
    finally:
        consumer.close()
    return orders, notes


class KafkaViewer:
    """The kafka-viewer process (its command starts Streamlit as a child, in the same process group)."""

    def __init__(self, bootstrap: str, work_dir: Path):
        self.work_dir = work_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = work_dir / "kafka-viewer.log"
        properties = work_dir / "kafka-viewer.properties"
        properties.write_text(f"kafka.bootstrap.servers={bootstrap}\nkafka.security.protocol=PLAINTEXT\n")
        environment = dict(
            os.environ,
            HOME=str(work_dir),
            STREAMLIT_SERVER_ADDRESS="127.0.0.1",
            STREAMLIT_SERVER_PORT=str(self.port),
            STREAMLIT_SERVER_HEADLESS="true",
            STREAMLIT_SERVER_FILE_WATCHER_TYPE="none",
            STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
        )
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(KAFKA_VIEWER), "--config", str(properties)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=work_dir, env=environment, start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + UI_START_SECONDS
        while http_get_status(f"{self.url}_stcore/health") != 200:
            if self.process.poll() is not None:
                pytest.fail(f"kafka-viewer exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"kafka-viewer not serving within {UI_START_SECONDS}s:\n{self.log_tail()}")
            time.sleep(0.3)

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def close(self) -> None:
        if self.process.poll() is None:
            # The process group this test started: kafka-viewer and its Streamlit child.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the Streamlit child, should it outlive its parent
        except ProcessLookupError:
            pass
        self._log.close()


class Page:
    """The UI's page in headless Chromium."""

    def __init__(self, viewer: KafkaViewer, work_dir: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.viewer = viewer
        self.work_dir = work_dir
        self.downloads = work_dir / "downloads"
        self.downloads.mkdir()
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1600,3000", f"--user-data-dir={work_dir / 'chromium-profile'}"):
            options.add_argument(argument)
        options.add_experimental_option("prefs", {
            "download.default_directory": str(self.downloads), "download.prompt_for_download": False,
        })
        self.driver = webdriver.Chrome(
            service=Service(str(CHROMEDRIVER), log_output=str(work_dir / "chromedriver.log")), options=options)
        self.driver.get(viewer.url)

    def close(self) -> None:
        self.driver.quit()

    # -- reading -------------------------------------------------------------------------------
    def text(self) -> str:
        from selenium.common.exceptions import WebDriverException

        try:
            return self.driver.find_element("tag name", "body").text
        except WebDriverException:  # the page re-rendered under us
            return ""

    def wait_for(self, what: str, check):
        """Polls check() until it returns a true value, which is returned; fails with a screenshot and the page's
        text after PAGE_SECONDS."""
        from selenium.common.exceptions import StaleElementReferenceException

        deadline = time.monotonic() + PAGE_SECONDS
        while True:
            try:
                value = check()
            except StaleElementReferenceException:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                screenshot = self.work_dir / "page.png"
                self.driver.save_screenshot(str(screenshot))
                pytest.fail(f"the page did not show {what} within {PAGE_SECONDS}s (screenshot {screenshot}):\n"
                            f"{self.text()}\n--- kafka-viewer log ---\n{self.viewer.log_tail()}")
            time.sleep(0.25)

    def idle(self) -> bool:
        """No rerun in progress (Streamlit shows a status widget while the script runs)."""
        return not self.driver.find_elements("css selector", '[data-testid="stStatusWidget"]')

    def statistics(self) -> dict[str, str]:
        """The Topic Statistics metrics, label -> value."""
        metrics = {}
        for metric in self.driver.find_elements("css selector", '[data-testid="stMetric"]'):
            label = metric.find_element("css selector", '[data-testid="stMetricLabel"]').text.strip()
            metrics[label] = metric.find_element("css selector", '[data-testid="stMetricValue"]').text.strip()
        latest = self.driver.find_elements("css selector", ".kv-latest-record-timestamp .kv-timestamp-value")
        if latest:
            metrics["Latest Record Timestamp"] = latest[0].text.strip()
        return metrics

    def wait_for_statistics(self, wanted: dict[str, str]) -> None:
        """Waits until the page, done rerunning, shows the wanted statistics (Streamlit replaces the metrics one by
        one); past PAGE_SECONDS, asserts them against the last ones shown."""
        shown: dict[str, str] = {}

        def matches() -> bool:
            nonlocal shown
            if not self.idle():
                return False
            shown = {label: value for label, value in self.statistics().items() if label in wanted}
            return shown == wanted

        deadline = time.monotonic() + PAGE_SECONDS
        while not matches() and time.monotonic() < deadline:
            time.sleep(0.25)
        assert shown == wanted

    def expander_labels(self) -> list[str]:
        """The message expanders' labels (the DOM's text: the rendered text of a closed expander's label is not
        exposed, and its icon is a font ligature)."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=\"stExpander\"] summary'))"
            ".map(s => (s.querySelector('[data-testid=\"stMarkdownContainer\"]') || s).textContent.trim())")

    def selected_topic(self) -> str:
        return self._topic_box().get_attribute("value")

    # -- acting --------------------------------------------------------------------------------
    def _topic_box(self):
        """The Topic selectbox's combobox input (its value is the selected topic)."""
        return self.wait_for("the Topic list", lambda: next(
            iter(self.driver.find_elements("css selector", 'input[role="combobox"][aria-label="Topic"]')), None))

    def _open_topic_list(self) -> None:
        box = self._topic_box()
        box.find_element("xpath", "./ancestor::*[@data-testid='stSelectbox'][1]").find_element(
            "css selector", 'button[aria-label="Open"]').click()

    def topic_options(self) -> list[str]:
        """Opens the Topic list, reads its entries and closes it again."""
        self._open_topic_list()
        options = self.wait_for("the topic list", lambda: [
            element.text.strip() for element in self.driver.find_elements("css selector", '[role="option"]')])
        self.driver.find_element("tag name", "h1").click()
        self.wait_for("the topic list closed", lambda: not self.driver.find_elements("css selector", '[role="option"]'))
        return options

    def choose_topic(self, topic: str) -> None:
        self._open_topic_list()
        option = self.wait_for(f"{topic} in the topic list", lambda: next(
            (element for element in self.driver.find_elements("css selector", '[role="option"]')
             if element.text.strip() == topic), None))
        option.click()

    def click_button(self, label: str) -> None:
        button = self.wait_for(f"the {label!r} button", lambda: next(
            (element for element in self.driver.find_elements("css selector", "button")
             if element.text.strip() == label), None))
        button.click()

    def choose_mode(self, label: str) -> None:
        radio = self.wait_for(f"the {label!r} loading mode", lambda: next(
            (element for element in self.driver.find_elements("css selector", '[data-testid="stRadio"] label')
             if element.text.strip() == label), None))
        radio.click()

    def type_into(self, label: str, text: str) -> None:
        """Replaces the text of the input labelled `label` and submits it (Enter)."""
        from selenium.webdriver.common.keys import Keys

        field = self.wait_for(f"the {label!r} field", lambda: self.idle() and next(
            iter(self.driver.find_elements("css selector", f'input[aria-label="{label}"]')), None))
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(text, Keys.ENTER)

    def open_expander(self, label_part: str) -> str:
        """Opens the message expander whose label holds label_part; returns its code block's text."""
        summary = next(element for element in
                       self.driver.find_elements("css selector", '[data-testid="stExpander"] summary')
                       if label_part in element.get_attribute("textContent"))
        summary.click()
        expander = summary.find_element("xpath", "./ancestor::*[@data-testid='stExpander'][1]")
        return self.wait_for(f"the value of {label_part}", lambda: "".join(
            element.get_attribute("innerText") for element in expander.find_elements("css selector", "pre")))

    def download_messages(self) -> list[dict]:
        """Clicks "Download Messages as JSON" and returns the downloaded file's records."""
        for old in self.downloads.iterdir():
            old.unlink()
        self.click_button("Download Messages as JSON")
        path = self.wait_for("the downloaded JSON file", lambda: next(
            (path for path in self.downloads.glob("*.json")), None))
        return self.wait_for("the whole downloaded JSON file", lambda: _json_or_none(path))

    def load(self, wanted: list[dict]) -> None:
        """Clicks Load Messages and waits until exactly the wanted records' expanders are shown."""
        labels = [f"#{i} {_label(record)}" for i, record in enumerate(wanted, 1)]
        self.click_button("Load Messages")
        self.wait_for(f"the messages {labels}", lambda: self.idle() and self.expander_labels() == labels)


def _json_or_none(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@pytest.fixture
def web_ui_tools():
    missing = [str(path) for path in (KAFKA_VIEWER, CHROMIUM, CHROMEDRIVER) if not path.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium in .tools/venv")
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (run scripts/system-packages test and tests/setup-clients)")


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_web_ui_browses_topics_and_messages(kind, web_ui_tools, start_broker, tmp_path):
    broker = start_broker(kind)
    now_ms = int(time.time() * 1000)
    orders, notes = _fill_broker(broker.bootstrap, now_ms)
    expected_orders, expected_notes = _expected_records(now_ms)

    viewer = KafkaViewer(broker.bootstrap, tmp_path)
    page = None
    try:
        viewer.wait_ready()
        page = Page(viewer, tmp_path)

        # Connected, the topics listed without internal ones, the first selected and its statistics.
        page.wait_for("Status: Connected", lambda: "Status: Connected" in page.text())
        assert page.topic_options() == [orders, notes]
        assert page.selected_topic() == orders
        newest = max(record["timestamp"] for record in expected_orders)
        page.wait_for_statistics({"Total Records": "6", "Partitions": "3", "Last 1 Hour": "5",
                                  "Latest Record Timestamp": _local_time(newest)})

        # Every record from the beginning, in timestamp order; one opened; all of them downloaded.
        page.choose_mode("From beginning")
        page.load(expected_orders)
        shown_value = page.open_expander(_label(expected_orders[3]))
        assert json.loads(shown_value) == ORDERS[3][2]
        assert shown_value == json.dumps(ORDERS[3][2], indent=2)
        assert page.download_messages() == expected_orders

        # The newest records matching a filter (either word), in Latest mode: every partition scanned.
        page.choose_mode("Latest messages")
        page.type_into("Message Filter (optional)", "pear?plum")
        page.wait_for("the filter applied", lambda: page.idle() and "inspected records" in page.text())
        page.load([expected_orders[1], expected_orders[3]])
        assert page.download_messages() == [expected_orders[1], expected_orders[3]]
        page.type_into("Message Filter (optional)", "")
        page.wait_for("no filter", lambda: page.idle() and "inspected records" not in page.text())

        # Topic B: its statistics, its newest record, then all its records.
        page.choose_topic(notes)
        page.wait_for("topic B selected", lambda: page.selected_topic() == notes)
        page.wait_for_statistics({"Total Records": "2", "Partitions": "1",
                                  "Latest Record Timestamp": _local_time(expected_notes[1]["timestamp"])})
        page.type_into("Message count", "1")
        page.wait_for("the message count 1", lambda: page.idle() and page.driver.find_element(
            "css selector", 'input[aria-label="Message count"]').get_attribute("value") == "1")
        page.load(expected_notes[1:])
        assert page.open_expander(_label(expected_notes[1])) == NOTES[1][1]
        page.choose_mode("From beginning")
        page.load(expected_notes)
        assert page.download_messages() == expected_notes
    finally:
        if page is not None:
            page.close()
        viewer.close()
