"""Kafka Connect workers and MirrorMaker 2 from the reference distribution's jars (.tools/kafka) as child processes.

`ConnectProcess(name, main_class, properties, work_dir)` writes `properties` to work_dir/NAME.properties and runs
`java -cp '.tools/kafka/libs/*' MAIN_CLASS NAME.properties` (a short-lived JVM: C1 only, the serial collector, a
small heap), its stdout and stderr (log4j2 at INFO) appended to work_dir/NAME.log. It is stopped with SIGTERM (the
JVM runs Connect's shutdown hook, then exits 143) or SIGKILL, always by its pid, and killed when the Python process
that started it exits. `rest_call` speaks to a worker's REST API.
"""

from __future__ import annotations

import atexit
import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from support.brokers import KAFKA_DIR, _die_with_parent, log_tail

JVM_OPTIONS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xms64m", "-Xmx384m", "-Djava.awt.headless=true"]
# Exit code of a JVM that ran its shutdown hooks after SIGTERM.
CLEAN_EXIT_CODE = 128 + signal.SIGTERM
STOP_TIMEOUT_SECONDS = 60
REST_TIMEOUT_SECONDS = 10

_live: set["ConnectProcess"] = set()


@atexit.register
def _kill_live() -> None:
    for process in list(_live):
        process.kill()


class ConnectProcess:
    """One Connect JVM (a distributed worker or a dedicated MirrorMaker 2); every run appends to one log."""

    def __init__(self, name: str, main_class: str, properties: dict, work_dir: Path):
        self.name = name
        self.main_class = main_class
        self.properties = dict(properties)
        self.work_dir = work_dir
        self.properties_path = work_dir / f"{name}.properties"
        self.log_path = work_dir / f"{name}.log"
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> "ConnectProcess":
        assert self._process is None or self._process.poll() is not None, f"{self.name} already runs"
        self.properties_path.write_text("".join(f"{key}={value}\n" for key, value in self.properties.items()))
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"==== start {time.strftime('%H:%M:%S')} ====\n".encode())
            log_file.flush()
            self._process = subprocess.Popen(
                ["java", *JVM_OPTIONS,
                 f"-Dlog4j2.configurationFile={KAFKA_DIR / 'config' / 'log4j2.properties'}",
                 "-cp", f"{KAFKA_DIR / 'libs'}/*", self.main_class, str(self.properties_path)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=self.work_dir,
                preexec_fn=_die_with_parent,
            )
        _live.add(self)
        return self

    def exit_code(self) -> int | None:
        """The exit code once the process has exited, None while it runs (or was never started)."""
        return self._process.poll() if self._process is not None else None

    def assert_running(self) -> None:
        assert self.exit_code() is None, f"{self.name} exited with {self.exit_code()}\n{self.log_tail()}"

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM to its pid and wait; the exit code (SIGKILLed, and an AssertionError, past `timeout`)."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM; killed it\n"
                                     f"{self.log_tail()}")
        _live.discard(self)
        return self._process.returncode

    def kill(self) -> None:
        """SIGKILL to its pid (when it still runs) and wait."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        _live.discard(self)

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log_path, lines)

    def keep_log(self, destination: Path) -> None:
        """Copies the log (and the properties it ran with) into `destination` (a failed test's tmp_path)."""
        for path in (self.log_path, self.properties_path):
            try:
                shutil.copyfile(path, destination / path.name)
            except OSError as error:
                print(f"cannot keep {path}: {error}")
        print(f"{self.name} log kept in {destination / self.log_path.name}")


def rest_call(url: str, method: str = "GET", body: dict | None = None,
              timeout: float = REST_TIMEOUT_SECONDS) -> tuple[int | None, object]:
    """(HTTP status, decoded JSON body or text) of a call to a Connect REST API; (None, error) when nothing
    answered."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    except (OSError, urllib.error.URLError) as error:
        return None, str(error)
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload.decode(errors="replace")
