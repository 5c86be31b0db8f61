"""Kafka's command-line tools from the reference distribution's jars (.tools/kafka), run bounded in time."""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from pathlib import Path

from support.brokers import KAFKA_DIR, _die_with_parent

TOOL_TIMEOUT_SECONDS = 90

# The tools log through log4j2; warnings and errors go to stderr so stdout holds only their output.
TOOL_LOG4J2_PROPERTIES = """\
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
"""
_tool_log_config: Path | None = None


def run_kafka_tool(main_class: str, *arguments: str, timeout: float = TOOL_TIMEOUT_SECONDS,
                   input_text: str | None = None) -> subprocess.CompletedProcess:
    """Runs one of Kafka's command-line tools from .tools/kafka (bounded in time), with `input_text` on its
    stdin (none by default); the caller checks the exit code. Text stdout and stderr."""
    global _tool_log_config
    if _tool_log_config is None:
        tool_dir = tempfile.mkdtemp(prefix="kafka-tools-")
        atexit.register(shutil.rmtree, tool_dir, ignore_errors=True)
        _tool_log_config = Path(tool_dir) / "log4j2.properties"
        _tool_log_config.write_text(TOOL_LOG4J2_PROPERTIES)
    return subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
         f"-Dlog4j2.configurationFile={_tool_log_config}", "-cp", f"{KAFKA_DIR / 'libs'}/*", main_class, *arguments],
        capture_output=True, text=True, timeout=timeout, preexec_fn=_die_with_parent,
        **({"stdin": subprocess.DEVNULL} if input_text is None else {"input": input_text}),
    )


def tool_output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr[-3000:]}"
