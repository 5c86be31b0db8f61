"""Sends mutated request frames to a broker over a pool of raw connections while watching the broker.

`MutationRun(host, port, pid, is_running, source, total).run()` hands frame indexes 0..total-1 to worker threads;
each asks `source(index)` for a `frames.Mutant` and writes it on its own connection, opening a new one whenever
the broker closed the last. After a complete frame (length prefix matching what follows) the worker pipelines an
ApiVersions v0 "sentinel" and reads until the sentinel's answer (the connection survived), EOF or a reset (the
broker closed it) or a 2 s deadline (a request still waiting, e.g. a long poll: the worker closes the
connection itself). After an incomplete frame it half-closes and reads until EOF. Every `check_every` frames the
monitor asserts that the broker process runs and answers ApiVersions v3 with error_code 0 on a fresh
connection; a sampler thread reads VmRSS every 50 ms and the run fails as soon as it exceeds the RSS bound (and
SIGKILLs the broker at twice the bound, so that a broker allocating without limit cannot take the machine down
with it). On a failure the last frames of every worker (and the corpus, if given) are written to a temp dir for
replay, and AssertionError names it.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from support.frames import (MalformedResponse, Mutant, ResponseReader, api_versions_ok, api_versions_request,
                            correlation_id_of)

SENTINEL_CORRELATION_BASE = 0x5E000000
# Frames of each worker kept for a crash report.
RECENT_FRAMES_PER_WORKER = 24
# No frame finished for this long: the run is stuck (the broker hangs, or every worker waits).
STALL_SECONDS = 30


def rss_bytes(pid: int) -> int | None:
    """VmRSS of the process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


@dataclass
class RunStats:
    sent: int = 0
    answered: int = 0          # complete frames after which the connection still answered the sentinel
    responses: int = 0         # responses to the mutated frames themselves (not sentinels)
    closed_by_broker: int = 0  # complete frames after which the broker closed the connection (EOF or reset)
    half_closed: int = 0       # incomplete frames: we half-closed, the broker then closed
    timeouts: int = 0          # no sentinel answer or EOF within the deadline: we closed the connection
    malformed_responses: int = 0
    connect_failures: int = 0
    health_checks: int = 0
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    seconds: float = 0.0
    timeout_samples: list[str] = field(default_factory=list)
    malformed_samples: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class _Worker(threading.Thread):
    def __init__(self, run: "MutationRun", number: int):
        super().__init__(name=f"mutation-worker-{number}", daemon=True)
        self.run_ = run
        self.number = number
        self.sock: socket.socket | None = None
        self.reader: ResponseReader | None = None
        self.sentinels = 0
        self.recent: collections.deque[Mutant] = collections.deque(maxlen=RECENT_FRAMES_PER_WORKER)
        self.current: tuple[Mutant, float] | None = None  # the frame being sent or waited on, and since when

    def run(self) -> None:
        try:
            while not self.run_.stop.is_set():
                index = self.run_.claim()
                if index is None:
                    return
                mutant = self.run_.source(index)
                self.recent.append(mutant)
                self.current = (mutant, time.monotonic())
                outcome, responses = self._send(mutant)
                self.current = None
                self.run_.record(mutant, outcome, responses)
        finally:
            self._drop()

    def _connect(self) -> socket.socket:
        if self.sock is None:
            sock = socket.create_connection((self.run_.host, self.run_.port), timeout=self.run_.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self.reader = sock, ResponseReader(sock)
        return self.sock

    def _drop(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = self.reader = None

    def _send(self, mutant: Mutant) -> tuple[str, int]:
        deadline = time.monotonic() + self.run_.timeout
        try:
            sock = self._connect()
        except OSError:
            return "connect_failed", 0
        responses = 0
        try:
            sock.settimeout(self.run_.timeout)
            if mutant.complete:
                self.sentinels += 1
                sentinel = SENTINEL_CORRELATION_BASE + (self.number << 16) + (self.sentinels & 0xFFFF)
                sock.sendall(mutant.data + api_versions_request(sentinel, version=0))
            else:
                sentinel = None
                sock.sendall(mutant.data)
                sock.shutdown(socket.SHUT_WR)
            while True:
                payload = self.reader.next_response(deadline)
                if payload is None:
                    self._drop()
                    return ("closed" if mutant.complete else "half_closed"), responses
                if sentinel is not None and correlation_id_of(payload) == sentinel:
                    return "answered", responses
                responses += 1
        except socket.timeout:
            self._drop()
            return "timeout", responses
        except MalformedResponse as error:
            self._drop()
            return f"malformed: {error}", responses
        except OSError:  # reset, broken pipe
            self._drop()
            return ("closed" if mutant.complete else "half_closed"), responses


class MutationRun:
    def __init__(self, host: str, port: int, pid: int, is_running: Callable[[], bool],
                 source: Callable[[int], Mutant], total: int, workers: int = 12, timeout: float = 2.0,
                 check_every: int = 500, rss_bound: int | None = None, log_tail: Callable[[], str] = lambda: "",
                 progress: Callable[[RunStats], None] | None = None, corpus: list[bytes] | None = None,
                 diagnostics: Callable[[], str] = lambda: ""):
        self.host, self.port, self.pid = host, port, pid
        self.is_running = is_running
        self.source = source
        self.total = total
        self.workers = [_Worker(self, n) for n in range(workers)]
        self.timeout = timeout
        self.check_every = check_every
        self.log_tail = log_tail
        self.progress = progress
        self.corpus = corpus or []
        self.diagnostics = diagnostics
        self.stop = threading.Event()
        self.stats = RunStats()
        self._next = 0
        self._lock = threading.Lock()
        self._rss_start = rss_bytes(pid) or 0
        self.rss_bound = rss_bound if rss_bound is not None else max(2 * self._rss_start, 512 << 20)
        self._rss_violation: str | None = None

    def claim(self) -> int | None:
        with self._lock:
            if self._next >= self.total:
                return None
            index = self._next
            self._next += 1
            return index

    def record(self, mutant: Mutant, outcome: str, responses: int) -> None:
        with self._lock:
            stats = self.stats
            stats.sent += 1
            stats.responses += responses
            if outcome == "answered":
                stats.answered += 1
            elif outcome == "closed":
                stats.closed_by_broker += 1
            elif outcome == "half_closed":
                stats.half_closed += 1
            elif outcome == "timeout":
                stats.timeouts += 1
                if len(stats.timeout_samples) < 10:
                    stats.timeout_samples.append(f"#{mutant.index} {mutant.source} {mutant.description}")
            elif outcome == "connect_failed":
                stats.connect_failures += 1
            else:
                stats.malformed_responses += 1
                if len(stats.malformed_samples) < 10:
                    stats.malformed_samples.append(f"#{mutant.index} {mutant.source} {mutant.description}: {outcome}")

    def _sample_rss(self) -> None:
        while not self.stop.is_set():
            rss = rss_bytes(self.pid)
            if rss is not None:
                with self._lock:
                    self.stats.rss_peak = max(self.stats.rss_peak, rss)
                if rss > self.rss_bound and self._rss_violation is None:
                    self._rss_violation = (f"broker RSS {rss >> 20} MiB exceeds the bound {self.rss_bound >> 20} MiB "
                                           f"after {self.stats.sent} frames")
                if rss > 2 * self.rss_bound:
                    os.kill(self.pid, signal.SIGKILL)
                    self._rss_violation += f"; SIGKILLed it at {rss >> 20} MiB to protect the machine"
                    return
            self.stop.wait(0.05)

    def _failure(self, reason: str) -> AssertionError:
        try:
            state = self.diagnostics()
        except Exception as error:  # noqa: BLE001 - only a hint in the failure message
            state = f"(diagnostics failed: {error!r})"
        if self._rss_violation is not None:
            # A broker allocating without bound would go on during a graceful stop: end it now.
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        now = time.monotonic()
        in_flight = [(now - since, mutant) for mutant, since in
                     (worker.current for worker in self.workers if worker.current is not None)]
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=self.timeout + 3)
        dump = Path(tempfile.mkdtemp(prefix="skein-hostile-frames-"))
        lines = []
        for worker in self.workers:
            for mutant in worker.recent:
                name = f"{mutant.index:09d}.bin"
                (dump / name).write_bytes(mutant.data)
                lines.append(f"{name} worker={worker.number} source(api_key,version)={mutant.source} "
                             f"complete={mutant.complete} {mutant.description}")
        (dump / "frames.txt").write_text("\n".join(sorted(lines)) + "\n")
        if self.corpus:
            (dump / "corpus").mkdir()
            for number, body in enumerate(self.corpus):
                (dump / "corpus" / f"{number:05d}.bin").write_bytes(body)
        waiting = "\n  ".join(f"{seconds:5.2f}s {mutant.index:09d}.bin source(api_key,version)={mutant.source} "
                               f"{mutant.description[:150]}" for seconds, mutant in sorted(in_flight, reverse=True))
        return AssertionError(f"{reason}\nafter {self.stats.sent} frames; each worker's last frames are in {dump}; "
                              f"in flight then (waiting longest first):\n  {waiting}\n"
                              f"broker state: {state}\n{self.log_tail()}")

    def _check(self) -> None:
        self.stats.health_checks += 1
        if not self.is_running():
            raise self._failure("the broker process exited")
        ok, reason = api_versions_ok(self.host, self.port)
        if not ok:
            raise self._failure(f"the broker stopped serving: {reason}")
        if self._rss_violation is not None:
            raise self._failure(self._rss_violation)

    def run(self) -> RunStats:
        self.stats.rss_start = self.stats.rss_peak = self._rss_start
        sampler = threading.Thread(target=self._sample_rss, name="rss-sampler", daemon=True)
        sampler.start()
        started = time.monotonic()
        for worker in self.workers:
            worker.start()
        next_check = self.check_every
        last_sent, last_progress = 0, time.monotonic()
        try:
            while any(worker.is_alive() for worker in self.workers):
                time.sleep(0.05)
                sent = self.stats.sent
                if self._rss_violation is not None:
                    raise self._failure(self._rss_violation)
                if sent != last_sent:
                    last_sent, last_progress = sent, time.monotonic()
                elif time.monotonic() - last_progress > STALL_SECONDS:
                    raise self._failure(f"no frame finished for {STALL_SECONDS}s")
                if sent >= next_check:
                    self._check()
                    if self.progress is not None:
                        self.progress(self.stats)
                    next_check = (sent // self.check_every + 1) * self.check_every
            self._check()
        finally:
            self.stop.set()
            for worker in self.workers:
                worker.join(timeout=self.timeout + 3)
            sampler.join(timeout=2)
            self.stats.seconds = time.monotonic() - started
        self.stats.rss_end = rss_bytes(self.pid) or 0
        return self.stats
