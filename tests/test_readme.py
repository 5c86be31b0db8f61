"""README.md's quickstart, executed as written, so the README cannot drift from the product.

The README marks each block the test runs or compares with an HTML comment on the line before its fence:

- `<!-- readme-test: quickstart -->`: the shell lines (start the broker with `./run &`, wait until it is
  ready, produce and consume with kcat), run verbatim by bash;
- `<!-- readme-test: quickstart-output -->`: what those lines print on stdout;
- `<!-- readme-test: python -->`: the confluent-kafka example, run verbatim by the venv's Python against
  the same broker;
- `<!-- readme-test: python-output -->`: what it prints.

How `./run &` is run: the README says to run the quickstart from the repository root, where `./run` is the
repository's run script and the broker keeps its data in `./data`. So that the lines run unchanged but no
data lands in the repository, they run in a fresh temp directory holding one symlink, `run` -> the
repository's `run` (which finds the repository through the symlink and builds and starts the broker as
usual). `./data` is then created in the temp directory, which is removed at the end. After the README's
lines the script writes `$!` (the pid of `./run &`, which `exec`s the broker) to a file: the broker is
stopped by that pid (SIGTERM, then SIGKILL), and the whole process group the lines ran in is killed if
anything is left.

The quickstart uses the fixed ports 127.0.0.1:9092 (Kafka) and 127.0.0.1:9644 (metrics): the test fails
with a message naming the port if one is already taken.

If the broker is not built yet or out of date, `./run` builds it first (tests/run-all builds it before
the Python tests, so there it only checks the build); the quickstart gets QUICKSTART_TIMEOUT_SECONDS for
that.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.brokers import REPO_ROOT, skein_binary

README = REPO_ROOT / "README.md"
QUICKSTART_PORTS = {9092: "the Kafka listener", 9644: "the metrics listener"}
# Building the broker from scratch on 2 cores takes longer than this; an up-to-date build takes seconds.
QUICKSTART_TIMEOUT_SECONDS = 900
PYTHON_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30

pytestmark = pytest.mark.timeout(QUICKSTART_TIMEOUT_SECONDS + 300)

MARKER = re.compile(r"^<!-- readme-test: ([a-z-]+) -->$")


def readme_blocks() -> dict[str, str]:
    """The README's marked blocks by name: the text between the fence after each marker and its end."""
    lines = README.read_text().splitlines()
    blocks: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if not match:
            continue
        name = match.group(1)
        assert name not in blocks, f"README.md marks two blocks `{name}`"
        fence = lines[index + 1] if index + 1 < len(lines) else ""
        assert fence.startswith("```"), f"README.md: the marker `{name}` (line {index + 1}) is not followed by a ``` block"
        try:
            end = lines.index("```", index + 2)
        except ValueError:
            pytest.fail(f"README.md: the block `{name}` (line {index + 2}) is never closed")
        blocks[name] = "\n".join(lines[index + 2 : end]) + "\n"
    return blocks


def block(name: str) -> str:
    blocks = readme_blocks()
    assert name in blocks, f"README.md has no block marked `<!-- readme-test: {name} -->`"
    return blocks[name]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not reaped by its new parent, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no output)"


@dataclass
class Quickstart:
    work_dir: Path
    stdout: str
    stderr_path: Path
    broker_pid: int | None
    # Whether target/release/skein existed before `./run` ran (built by tests/run-all's broker build).
    was_built: bool


@pytest.fixture(scope="module")
def quickstart():
    """Runs the README's quickstart lines in a temp dir; yields the result with the broker still running."""
    for port, role in QUICKSTART_PORTS.items():
        if port_in_use(port):
            pytest.fail(
                f"127.0.0.1:{port} ({role}) is already in use: the README's quickstart needs it. "
                "Stop what listens there (a broker started with ./run?) and run the test again."
            )
    for tool in ("kcat", "curl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (scripts/system-packages test installs it)")

    lines = block("quickstart")
    was_built = skein_binary().exists()
    work_dir = Path(tempfile.mkdtemp(prefix="skein-readme-"))
    (work_dir / "run").symlink_to(REPO_ROOT / "run")
    pid_file = work_dir / "broker.pid"
    script = work_dir / "quickstart.sh"
    # The README's lines as written, then one line of the test's own: the pid of the `./run &` job.
    script.write_text(f'{lines}echo "$!" >{pid_file}\n')
    stdout_path = work_dir / "stdout.txt"
    stderr_path = work_dir / "stderr.txt"
    process = None
    broker_pid = None
    try:
        # Output to files, not pipes: the broker started in the background keeps them open.
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                ["bash", str(script)],
                cwd=work_dir,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # its own process group, so everything it started can be killed
            )
        wait_for_quickstart(process, stderr_path)
        if pid_file.exists() and pid_file.read_text().strip().isdigit():
            broker_pid = int(pid_file.read_text())
        yield Quickstart(work_dir, stdout_path.read_text(errors="replace"), stderr_path, broker_pid, was_built)
    finally:
        stop_quickstart(process, broker_pid)
        shutil.rmtree(work_dir, ignore_errors=True)


def process_group_commands(pgid: int) -> list[str]:
    """The command names (comm) of the live processes in process group `pgid`."""
    commands = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command, rest = (entry / "stat").read_text().rsplit(")", 1)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        fields = rest.split()
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            commands.append(command.split("(", 1)[1])
    return commands


def wait_for_quickstart(process: subprocess.Popen, stderr_path: Path) -> None:
    """Waits for the quickstart lines to finish; fails early when `./run` has exited and only the
    README's wait loop (bash, curl, sleep) is left waiting for a broker that will not come."""
    started = time.monotonic()
    deadline = started + QUICKSTART_TIMEOUT_SECONDS
    loop_only_since = None
    while process.poll() is None:
        now = time.monotonic()
        if now > deadline:
            pytest.fail(
                f"the README's quickstart did not finish within {QUICKSTART_TIMEOUT_SECONDS}s; "
                f"its stderr ends with:\n{tail(stderr_path)}"
            )
        if set(process_group_commands(process.pid)) <= {"bash", "curl", "sleep"}:
            loop_only_since = loop_only_since or now
            if now - started > 10 and now - loop_only_since > 5:
                pytest.fail(f"`./run &` exited and the broker never became ready; stderr:\n{tail(stderr_path)}")
        else:
            loop_only_since = None
        time.sleep(1)


def stop_quickstart(process: subprocess.Popen | None, broker_pid: int | None) -> None:
    """SIGTERM to the broker by pid, SIGKILL if it does not exit; then kill the quickstart's process group."""
    if broker_pid is not None and process_alive(broker_pid):
        os.kill(broker_pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while process_alive(broker_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if process_alive(broker_pid):
            os.kill(broker_pid, signal.SIGKILL)
    if process is not None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if process.poll() is None:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


def test_the_two_commands_exist():
    text = README.read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)
    assert commands == ["./run", "tests/run-all"], commands
    for command in commands:
        path = REPO_ROOT / command
        assert path.is_file() and os.access(path, os.X_OK), f"{command} is not an executable file"


def test_quickstart_kcat(quickstart: Quickstart):
    assert block("quickstart").startswith("./run &\n"), "the quickstart starts the broker with `./run &`"
    stderr = quickstart.stderr_path.read_text(errors="replace")
    assert quickstart.stdout == block("quickstart-output"), (
        f"the quickstart printed {quickstart.stdout!r}; its stderr ends with:\n{tail(quickstart.stderr_path)}"
    )
    assert quickstart.broker_pid is not None and process_alive(quickstart.broker_pid), (
        f"the broker started by `./run &` is not running; stderr:\n{tail(quickstart.stderr_path)}"
    )
    # It says where it listens and where the metrics are, and keeps its data in ./data.
    serving = [line for line in stderr.splitlines() if "skein is serving" in line]
    assert serving, f"no 'skein is serving' line in the broker's log:\n{tail(quickstart.stderr_path)}"
    assert "127.0.0.1:9092" in serving[0] and "127.0.0.1:9644" in serving[0], serving[0]
    assert (quickstart.work_dir / "data").is_dir(), "the broker did not keep its data in ./data"
    # Started from another directory, ./run still builds with the repository's cargo configuration: it finds
    # the broker built, rather than compiling it (RocksDB first) again under other compiler flags.
    if quickstart.was_built:
        assert "Compiling librocksdb-sys" not in stderr, f"./run rebuilt RocksDB:\n{tail(quickstart.stderr_path)}"


def test_quickstart_python(quickstart: Quickstart):
    assert quickstart.broker_pid is not None and process_alive(quickstart.broker_pid), "no broker to run against"
    venv_python = REPO_ROOT / ".tools" / "venv" / "bin" / "python"
    if not venv_python.exists():
        pytest.fail(f"{venv_python} does not exist: run tests/setup-clients")
    script = quickstart.work_dir / "quickstart.py"
    script.write_text(block("python"))
    result = subprocess.run(
        [str(venv_python), str(script)],
        cwd=quickstart.work_dir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PYTHON_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout == block("python-output"), f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
