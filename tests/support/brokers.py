"""Start, stop, kill and restart the brokers under test.

SkeinBroker runs the `skein` binary; KafkaBroker runs Apache Kafka 4.3.1 (single KRaft node, combined
broker + controller) from the jars that tests/setup-clients put in .tools/kafka. Both take `config`
as a dict of Kafka broker setting names (YAML for Skein, server.properties for Kafka), listen on
127.0.0.1 on free ports (kept across restarts), keep their data and log in a private temp dir, and
are killed when the Python process that started them exits.
"""

from __future__ import annotations

import atexit
import ctypes
import base64
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_DIR = REPO_ROOT / ".tools" / "kafka"
DEFAULT_SKEIN_BINARY = REPO_ROOT / "target" / "release" / "skein"

# How long stop() waits after SIGTERM before it gives up and SIGKILLs.
STOP_TIMEOUT_SECONDS = 30
LOG_TAIL_LINES = 60

# The broker kinds differential tests run against; "kafka" is the reference.
BROKER_KINDS = ["kafka", "skein"]

# SKEIN_LONG=1 is the long mode run by hand: it also runs the Apache Kafka reference of the heaviest fault
# scenarios (each minutes of a 3-node Kafka cluster), which CI leaves out to stay within its time.
LONG_MODE = os.environ.get("SKEIN_LONG", "0") not in ("", "0")


def skip_kafka_reference_outside_long_mode(kind: str) -> None:
    """Skips the Apache Kafka variant of a heavy fault scenario unless SKEIN_LONG=1 (Skein's always runs)."""
    import pytest

    if kind == "kafka" and not LONG_MODE:
        pytest.skip("the Apache Kafka reference of this scenario runs in long mode (SKEIN_LONG=1)")


class BrokerError(RuntimeError):
    """A broker failed to start or stop as expected. `exit_code` is set when the process exited."""

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.exit_code = exit_code


def skein_binary() -> Path:
    """The skein binary the tests run: $SKEIN_BIN, else target/release/skein."""
    return Path(os.environ.get("SKEIN_BIN") or DEFAULT_SKEIN_BINARY)


def kafka_installed() -> bool:
    return (KAFKA_DIR / "libs").is_dir()


# Ports handed to brokers come from below the kernel's ephemeral range (32768-60999 here): a port taken from
# that range can be grabbed, between choosing it and the broker binding it, as the source port of any outgoing
# connection — and cluster nodes make many. This range leaves out the compose files' published ports (x9092,
# x9644, x9090).
PORT_RANGE = range(20000, 29000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the ephemeral range, never the same one
    twice in this process."""
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.choice(PORT_RANGE)
        if port in _handed_out or port % 1000 in (92, 644, 90):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise OSError(f"no free port in {PORT_RANGE}")


def port_accepts(port: int, timeout: float = 1.0, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_get_status(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status code of GET url, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return None


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def metric_value(broker, name: str) -> float | None:
    """A Skein broker's Prometheus sample `name` (without labels) from /metrics; None when absent or unreachable."""
    import re

    try:
        with urllib.request.urlopen(f"{broker.metrics_url}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel SIGKILLs the broker if the test process
    # dies without running its cleanup (e.g. killed by a stage timeout), so no broker outlives it.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a process's log, framed for a test failure message."""
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {log_path})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"---- last {lines} lines of {log_path} ----\n{tail}\n----"


# Every broker with a live process, so atexit can kill the ones a test forgot.
_live_brokers: set["_Broker"] = set()


@atexit.register
def _kill_live_brokers() -> None:
    for broker in list(_live_brokers):
        broker.kill()


class _Broker:
    """A broker process plus its temp dir; subclasses say how to launch it and when it is ready."""

    kind = ""
    # Exit code of a clean shutdown after SIGTERM.
    clean_exit_code = 0

    def __init__(self, config: dict | None = None):
        self.config = dict(config or {})
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"{self.kind}-broker-"))
        self.log_path = self.work_dir / "broker.log"
        self.port = free_port()
        # The address the broker listens on (a cluster test may give each node its own, in a network namespace).
        self.host = "127.0.0.1"
        # Put before the command, e.g. `ip netns exec NAME` (which execs it: the pid stays the broker's).
        self.command_prefix: list[str] = []
        self._process: subprocess.Popen | None = None
        self._log_file = None

    # -- what subclasses provide ---------------------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Runs before every start (write config files, format storage on first start)."""

    def _is_ready(self) -> bool:
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 90) -> "_Broker":
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> "_Broker":
        """Start the process without waiting for it to be ready (a cluster starts every node first)."""
        if self.is_running():
            raise BrokerError(f"{self.kind} broker already running (pid {self.pid})")
        self._prepare()
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"==== start {time.strftime('%H:%M:%S')} ====\n".encode())
        self._log_file.flush()
        self._process = subprocess.Popen(
            self.command_prefix + self._command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.work_dir,
            preexec_fn=_die_with_parent,
        )
        _live_brokers.add(self)
        return self

    def wait_ready(self, timeout: float = 90) -> "_Broker":
        """Wait until the launched process is ready; kills it and raises BrokerError if it exits or
        is not ready within `timeout`."""
        if self._process is None:
            raise BrokerError(f"{self.kind} broker not launched")
        deadline = time.monotonic() + timeout
        while True:
            exit_code = self._process.poll()
            if exit_code is not None:
                self._forget_process()
                raise BrokerError(
                    f"{self.kind} broker exited with code {exit_code} during start-up\n{self.log_tail()}",
                    exit_code=exit_code,
                )
            if self._is_ready():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(f"{self.kind} broker not ready within {timeout}s\n{self.log_tail()}")
            time.sleep(0.2)

    def terminate(self) -> None:
        """Send SIGTERM without waiting (stop several brokers at once, then wait_exit each)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to `timeout` for the process to exit; its exit code, or None while it still runs
        (or when none was started)."""
        if self._process is None:
            return None
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self._forget_process()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM and wait; returns the exit code (None if it was not running)."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise BrokerError(
                    f"{self.kind} broker did not exit within {timeout}s of SIGTERM; killed it\n{self.log_tail()}"
                )
        return self._forget_process()

    def kill(self) -> int | None:
        """SIGKILL and wait; returns the exit code (None if it was not running)."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        return self._forget_process()

    def restart(self, timeout: float = 90) -> "_Broker":
        self.stop()
        return self.start(timeout=timeout)

    def close(self) -> None:
        """Stop the broker (killing it if SIGTERM is not enough) and remove its temp dir."""
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_path, lines)

    def __enter__(self) -> "_Broker":
        if not self.is_running():
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bootstrap={self.bootstrap!r}, pid={self.pid})"

    def _forget_process(self) -> int | None:
        exit_code = self._process.returncode if self._process is not None else None
        self._process = None
        _live_brokers.discard(self)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return exit_code


class SkeinBroker(_Broker):
    kind = "skein"

    def __init__(self, config: dict | None = None, binary: str | os.PathLike | None = None):
        super().__init__(config)
        self.binary = Path(binary) if binary is not None else skein_binary()
        self.metrics_port = free_port()
        self.data_dir = self.work_dir / "data"
        self.config_path = self.work_dir / "skein.yaml"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}"

    def _prepare(self) -> None:
        if not self.binary.is_file():
            raise BrokerError(f"skein binary not found at {self.binary} (run `cargo build --release`)")
        self.data_dir.mkdir(exist_ok=True)
        if self.config:
            import yaml  # from .tools/venv; imported here so Kafka-only users need no PyYAML

            self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=True))

    def _command(self) -> list[str]:
        # With `listeners` in the config (several listeners), it names them all, PLAINTEXT on self.port included.
        listen = [] if "listeners" in self.config else ["--listen", self.bootstrap,
                                                        "--advertised-listener", self.bootstrap]
        command = [
            str(self.binary),
            *listen,
            "--data-dir", str(self.data_dir),
            "--metrics-listen", f"{self.host}:{self.metrics_port}",
            "--node-id", "1",
        ]
        if self.config:
            command += ["--config", str(self.config_path)]
        return command

    def _is_ready(self) -> bool:
        return port_accepts(self.port, host=self.host) and http_get_status(f"{self.metrics_url}/ready") == 200


class KafkaBroker(_Broker):
    kind = "kafka"
    # The JVM exits with 128 + SIGTERM after its shutdown hooks ran; that is Kafka's clean shutdown.
    clean_exit_code = 143

    def __init__(self, config: dict | None = None, features: dict[str, int] | None = None):
        """`features`: feature levels the storage is formatted with (`kafka-storage format --feature NAME=LEVEL`,
        e.g. {"share.version": 0}) instead of the release's defaults."""
        super().__init__(config)
        self.features = dict(features or {})
        # The node id in server.properties (a cluster node sets its own).
        self.node_id = 1
        self.controller_port = free_port()
        self.data_dir = self.work_dir / "data"
        self.properties_path = self.work_dir / "server.properties"
        self.cluster_id = _random_kafka_uuid()

    def _properties(self) -> dict:
        properties = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            # One node: every internal topic has exactly one replica.
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "min.insync.replicas": 1,
            "default.replication.factor": 1,
            # Tests join groups right away; don't wait 3 s for more members.
            "group.initial.rebalance.delay.ms": 0,
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
        properties.update(self.config)
        return properties

    def _prepare(self) -> None:
        if not kafka_installed():
            raise BrokerError(f"Apache Kafka not found in {KAFKA_DIR} (run tests/setup-clients)")
        lines = [f"{key}={_property_value(value)}" for key, value in self._properties().items()]
        self.properties_path.write_text("\n".join(lines) + "\n")
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage()

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            "java",
            "-Xmx512m",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_DIR / 'config' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.work_dir}",
            "-cp", str(KAFKA_DIR / "libs" / "*"),
            main_class,
            *args,
        ]

    def _format_storage(self) -> None:
        command = self._java(
            "kafka.tools.StorageTool", "format",
            # `=` form: a random id may start with '-', which the tool's parser would take for an option.
            f"--cluster-id={self.cluster_id}",
            "--config", str(self.properties_path),
            "--ignore-formatted",
            *(f"--feature={name}={level}" for name, level in self.features.items()),
        )
        with open(self.log_path, "ab") as log_file:
            log_file.write(b"==== kafka-storage format ====\n")
            log_file.flush()
            result = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                timeout=120, preexec_fn=_die_with_parent,
            )
        if result.returncode != 0:
            raise BrokerError(
                f"kafka-storage format exited with {result.returncode}\n{self.log_tail()}",
                exit_code=result.returncode,
            )

    def _command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.properties_path))

    def _is_ready(self) -> bool:
        if not port_accepts(self.port, host=self.host):
            return False
        # The listener opens before the broker has registered and been unfenced; it is usable
        # once a client sees it as a broker in the cluster metadata.
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=3)
        except Exception:
            return False
        return self.node_id in metadata.brokers


def _random_kafka_uuid() -> str:
    # Kafka's Uuid text form: URL-safe base64 of the 16 bytes, without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _property_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def make_broker(kind: str, config: dict | None = None) -> _Broker:
    """A broker of the given kind (one of BROKER_KINDS), not yet started."""
    if kind == "skein":
        return SkeinBroker(config)
    if kind == "kafka":
        return KafkaBroker(config)
    raise ValueError(f"unknown broker kind {kind!r} (expected 'skein' or 'kafka')")
