"""Killing a transactional application while one of its transactions is open with records in the log, so the kill
provably cuts a transaction short (its records are there, and must be aborted) instead of landing by luck.

- `open_transaction`: the partitions of a topic whose last stable offset (ListOffsets, read_committed) is below the
  high watermark (read_uncommitted): a transaction with records in the partition is open.
- `same_transaction`: two DescribeTransactions answers show one Ongoing transaction.
- `kill_in_open_transaction`: polls DescribeTransactions until the application's transaction is Ongoing with an
  output partition in it, freezes the application (SIGSTOP), checks that the transaction is still that Ongoing one
  with records below the output's high watermark, and SIGKILLs it; otherwise lets it run on (SIGCONT) and tries
  again, within a bounded time. Used by test_exactly_once_cluster.py and test_kafka_streams.py.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections import Counter
from collections.abc import Callable

from confluent_kafka import IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from support.coordinators import TransactionDescription

# The application is frozen this long before its transaction's state is read (the requests it sent are answered).
FREEZE_SETTLE_SECONDS = 0.1


def open_transaction(client: AdminClient, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    """{partition: (last stable offset, high watermark)} of the partitions whose last stable offset is below a high
    watermark read just before it: then a transaction with records in the partition was open when the last stable
    offset was read (when only the application's transactional producer writes the topic, one of its own)."""
    ends = {}
    for level in (IsolationLevel.READ_UNCOMMITTED, IsolationLevel.READ_COMMITTED):
        futures = client.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                                      isolation_level=level, request_timeout=5)
        ends[level] = {tp.partition: future.result(timeout=10).offset for tp, future in futures.items()}
    return {p: (ends[IsolationLevel.READ_COMMITTED][p], ends[IsolationLevel.READ_UNCOMMITTED][p])
            for p in range(partitions)
            if ends[IsolationLevel.READ_COMMITTED][p] < ends[IsolationLevel.READ_UNCOMMITTED][p]}


def same_transaction(before: TransactionDescription, after: TransactionDescription) -> bool:
    """Both descriptions show one Ongoing transaction (same producer, epoch and start time)."""
    return before.state == after.state == "Ongoing" and (
        (before.producer_id, before.producer_epoch, before.start_time_ms)
        == (after.producer_id, after.producer_epoch, after.start_time_ms))


@dataclasses.dataclass(frozen=True)
class KilledInTransaction:
    """What kill_in_open_transaction found: the transaction as the frozen application left it, the output partitions
    it had records in, as {partition: (last stable offset, high watermark)} when frozen (`open_records`) and after
    the kill (`left_open`), how often the application was frozen to catch it (this time included), and the killed
    process's exit code."""
    transaction: TransactionDescription
    open_records: dict[int, tuple[int, int]]
    left_open: dict[int, tuple[int, int]]
    freezes: int
    exit_code: int | None


def kill_in_open_transaction(app, describe: Callable[[], TransactionDescription], bootstrap: str, output_topic: str,
                             partitions: int, timeout: float, details: Callable[[], str],
                             tend: Callable[[], None] = lambda: None) -> KilledInTransaction:
    """SIGKILLs the application while its transaction is Ongoing with records in `output_topic`, so that whoever
    takes over its transactional id aborts it. `app.process` is the application's running subprocess.Popen and
    `app.kill()` SIGKILLs it and waits; `describe()` is DescribeTransactions of its transactional id (raising
    KafkaException or OSError when not answered); `tend()` is called while polling (it may restart an application
    that exited by itself); `details()` is added to failure messages.

    DescribeTransactions is polled until the transaction is Ongoing with an output partition in it; then the
    application is frozen (SIGSTOP) and, once the requests it had sent are answered, DescribeTransactions must name
    the same Ongoing transaction (producer, epoch, start time) before and after the output's last stable offset is
    seen below its high watermark (an Ongoing transaction's predecessor has completed, markers written, so the
    unstable records are its own). If not (it was committing already, or its records were not in the log yet), the
    application runs on (SIGCONT) at least as long as it was frozen and the polling goes on, for up to `timeout`
    seconds; then the call fails saying what the frozen application's transaction was instead. The frozen
    application cannot move its transaction on: after the kill it must still be Ongoing, its records unstable."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout
    polls = 0
    missed: Counter = Counter()  # what a frozen application's transaction was instead
    while True:
        assert time.monotonic() < deadline, (
            f"the application's transaction not caught Ongoing with records in {output_topic} within {timeout}s "
            f"({polls} DescribeTransactions, frozen {sum(missed.values())} times: {dict(missed)}): {details()}")
        tend()
        polls += 1
        try:
            seen = describe()
        except (KafkaException, OSError):
            time.sleep(0.01)
            continue
        if seen.state != "Ongoing" or output_topic not in seen.partitions:
            continue
        pid = app.process.pid
        os.kill(pid, signal.SIGSTOP)
        killed = False
        try:
            time.sleep(FREEZE_SETTLE_SECONDS)
            caught = describe()
            open_records = open_transaction(admin, output_topic, partitions) if caught.state == "Ongoing" else {}
            if open_records and same_transaction(caught, describe()):
                app.kill()
                killed = True
            else:
                missed[caught.state + (" with records" if open_records else "")] += 1
        except (KafkaException, OSError) as error:
            missed[repr(error)[:120]] += 1
            # A client whose metadata went stale is replaced (a fresh one asks for it again).
            admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        finally:
            if not killed:
                os.kill(pid, signal.SIGCONT)
        if killed:
            break
        time.sleep(FREEZE_SETTLE_SECONDS)  # it runs at least as long as it was frozen
    left = describe()
    left_open = open_transaction(admin, output_topic, partitions)
    # Still open where it was seen (records the application had sent may still have been replicated since).
    still_open = all(p in left_open and left_open[p][0] == lso and left_open[p][1] >= hw
                     for p, (lso, hw) in open_records.items())
    assert same_transaction(caught, left) and still_open, (
        f"the killed application's transaction moved on: {caught} with {open_records} open when killed, then "
        f"{left} with {left_open}: {details()}")
    return KilledInTransaction(caught, open_records, left_open, sum(missed.values()) + 1, app.process.returncode)
