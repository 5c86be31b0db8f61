"""Command line and exit-code handling shared by the Python conformance drivers.

run --bootstrap HOST:PORT --scenario NAME --topic TOPIC [--count N] [--seed S]
run --version   prints one line "NAME VERSION"
exit 0 = pass, 1 = fail (reason on stderr), 2 = scenario not supported by this client.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from .messages import (CLUSTER_DEFAULT_COUNT, COMPRESSION_DEFAULT_COUNT, CONSUMER_GROUP_DEFAULT_COUNT,
                       DEFAULT_SEED, LOG_COMPACTION_DEFAULT_COUNT, ROUNDTRIP_DEFAULT_COUNT, ScenarioFailed, ScenarioNotSupported)

SCENARIOS = [
    "roundtrip",
    "compression-gzip",
    "compression-snappy",
    "compression-lz4",
    "compression-zstd",
    "message-too-large",
    "offset-out-of-range",
    "list-offsets",
    "admin-topics",
    "idempotent-produce",
    "consumer-group",
    "consumer-group-kip848",
    "admin-configs-partitions-records",
    "log-compaction",
    "cluster",
    "produce",
    "verify",
]

# The whole driver run is bounded so a misbehaving broker can never hang the caller.
OVERALL_TIMEOUT_SECONDS = 120
# Bound for any single client call (produce flush, metadata, admin request, offset lookup).
CALL_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class ScenarioArgs:
    bootstrap: str
    scenario: str
    topic: str
    count: int
    seed: int


def default_count(scenario: str) -> int:
    if scenario.startswith("compression-"):
        return COMPRESSION_DEFAULT_COUNT
    if scenario.startswith("consumer-group"):
        return CONSUMER_GROUP_DEFAULT_COUNT
    if scenario == "log-compaction":
        return LOG_COMPACTION_DEFAULT_COUNT
    if scenario == "cluster":
        return CLUSTER_DEFAULT_COUNT
    return ROUNDTRIP_DEFAULT_COUNT


def parse_args(argv: list[str]) -> ScenarioArgs:
    parser = argparse.ArgumentParser(description="Kafka client conformance driver")
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of the broker")
    parser.add_argument("--scenario", required=True, choices=SCENARIOS)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parsed = parser.parse_args(argv)
    count = parsed.count if parsed.count is not None else default_count(parsed.scenario)
    if count < 0:
        parser.error("--count must be >= 0")
    if not 0 <= parsed.seed < 2 ** 31:
        parser.error("--seed must be in 0..2^31-1")
    return ScenarioArgs(parsed.bootstrap, parsed.scenario, parsed.topic, count, parsed.seed)


class Deadline:
    """Remaining-time bookkeeping for loops that poll a client."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


def _overall_timeout(signum, frame):
    sys.stderr.write(f"FAIL: driver exceeded its overall timeout of {OVERALL_TIMEOUT_SECONDS} s\n")
    sys.stderr.flush()
    # os._exit: the client libraries may hold non-daemon threads that would keep the process alive.
    os._exit(1)


def main(client_name: str, client_version: str, scenarios: dict[str, Callable[[ScenarioArgs], None]],
         argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:
        # One line "NAME VERSION" for the matrix header.
        print(f"{client_name} {client_version}", flush=True)
        return 0
    args = parse_args(argv)
    signal.signal(signal.SIGALRM, _overall_timeout)
    signal.alarm(OVERALL_TIMEOUT_SECONDS)
    started = time.monotonic()
    scenario = scenarios.get(args.scenario)
    if scenario is None:
        sys.stderr.write(f"n/a: {client_name} does not implement scenario {args.scenario}\n")
        return 2
    try:
        scenario(args)
    except ScenarioNotSupported as unsupported:
        sys.stderr.write(f"n/a: {client_name} {args.scenario}: {unsupported}\n")
        return 2
    except ScenarioFailed as failure:
        sys.stderr.write(f"FAIL: {client_name} {args.scenario} on {args.bootstrap} topic {args.topic}: {failure}\n")
        return 1
    except Exception:
        sys.stderr.write(f"FAIL: {client_name} {args.scenario} on {args.bootstrap} topic {args.topic}: "
                         f"unexpected exception\n{traceback.format_exc()}")
        return 1
    finally:
        signal.alarm(0)
    sys.stderr.write(f"ok: {client_name} {args.scenario} ({time.monotonic() - started:.1f} s)\n")
    return 0
