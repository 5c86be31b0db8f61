"""Small Java test programs (tests/support/java/*.java) run with the kafka-clients jars.

`java_program_command("GroupSplit")` compiles tests/support/java/GroupSplit.java into .tools (never
committed) and returns the command that runs it; the caller appends the program's arguments. The
calling test is skipped when javac or the jars (conformance/java/setup) are missing.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from support.brokers import REPO_ROOT

JAVA_SOURCES = REPO_ROOT / "tests" / "support" / "java"
JAVA_LIBS = REPO_ROOT / ".tools" / "java" / "libs"  # kafka-clients jars from conformance/java/setup
JAVA_CLASSES = REPO_ROOT / ".tools" / "java" / "test-classes"
COMPILE_TIMEOUT_SECONDS = 120


def java_program_command(class_name: str) -> list[str]:
    if shutil.which("javac") is None or not (JAVA_LIBS / "kafka-clients-4.3.1.jar").is_file():
        pytest.skip(f"javac or kafka-clients jars missing in {JAVA_LIBS} (run conformance/java/setup)")
    # One directory per program: test files running in parallel (pytest-xdist) never write the same files.
    classes = JAVA_CLASSES / class_name
    classes.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["javac", "-encoding", "UTF-8", "--release", "17", "-Xlint:all", "-Werror",
         "-cp", f"{JAVA_LIBS}/*", "-d", str(classes), str(JAVA_SOURCES / f"{class_name}.java")],
        check=True, timeout=COMPILE_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
    )
    # C1-only JIT and the serial collector: the programs are short, so JVM start-up dominates.
    return ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
            "-cp", f"{classes}:{JAVA_LIBS}/*", class_name]
