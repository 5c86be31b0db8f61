"""What the Python consumer applications of this example share: their log lines, the consumer settings,
how they notice that they have read everything, and a watchdog for stuck client calls.

Every application prints, per batch of input records:

    batch begin RECORDS      the records were read; nothing of the batch is done yet
    batch STEP ...           a step of the batch finished (which steps, and in which order, is the point
                             of each application: e.g. "batch offsets committed", "batch output written")
    batch done               every effect of the batch is complete

and "reached the end of the input" before it exits 0. run.py reads these lines to decide when to SIGKILL
an application and to tell whether a kill landed inside a batch.
"""

from __future__ import annotations

import os
import threading
import time

from confluent_kafka import KafkaError, TopicPartition

BATCH_SIZE = 100
# The "processing" of one record takes this long: it stands for real work (a lookup, a computation). Without
# it a batch takes well under a millisecond against a local broker, and a crash would almost never find the
# application in the middle of one.
WORK_SECONDS_PER_RECORD = 0.0002
CLIENT_TIMEOUT_SECONDS = 10
# How long consume() waits for records before the application checks whether it has read everything.
POLL_SECONDS = 0.5


def log(line: str) -> None:
    print(line, flush=True)


def group_consumer_config(bootstrap: str, group_id: str, instance_id: str,
                          isolation_level: str = "read_uncommitted") -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        # Static membership: a restarted instance takes over its killed predecessor's partitions at once,
        # instead of waiting for the dead member's session to time out.
        "group.instance.id": instance_id,
        "session.timeout.ms": 10_000,
        "enable.auto.commit": False,  # every application commits explicitly, at the point its guarantee needs
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,  # tells the application when it has read everything (see EndOfInput)
        "isolation.level": isolation_level,
    }


class EndOfInput:
    """Tracks which assigned partitions the consumer has read to their end (librdkafka's partition-EOF
    events), so the application can exit once it has consumed all of a finite input topic."""

    def __init__(self):
        self.partitions_at_end: set[int] = set()

    def records_of(self, messages: list) -> list:
        """The records among consume()'s messages; raises on a fatal error, logs others."""
        records = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message)
                self.partitions_at_end.discard(message.partition())
            elif error.code() == KafkaError._PARTITION_EOF:
                self.partitions_at_end.add(message.partition())
            elif error.fatal():
                raise RuntimeError(f"fatal consumer error: {error}")
            else:
                log(f"consumer error: {error}")
        return records

    def forget(self) -> None:
        """After a seek back: nothing is known to be at its end any more."""
        self.partitions_at_end.clear()

    def reached(self, assignment: list) -> bool:
        return bool(assignment) and all(tp.partition in self.partitions_at_end for tp in assignment)


def batches(consumer, end_of_input: "EndOfInput"):
    """Yields the consumer's records in batches of up to BATCH_SIZE until it has read the whole input."""
    while True:
        records = end_of_input.records_of(consumer.consume(num_messages=BATCH_SIZE, timeout=POLL_SECONDS))
        if records:
            log(f"batch begin {len(records)}")
            yield records
        elif end_of_input.reached(consumer.assignment()):
            return


def write_output(producer, output_topic: str, records: list) -> None:
    """Processes a batch: writes each record's output to the same partition of `output_topic` and waits until
    the broker has stored all of it."""
    delivery_errors = []
    for record in records:
        producer.produce(output_topic, value=work(record), partition=record.partition(),
                         on_delivery=lambda error, message: error and delivery_errors.append(error))
    remaining = producer.flush(CLIENT_TIMEOUT_SECONDS)
    if remaining or delivery_errors:
        raise RuntimeError(f"output not written: {remaining} undelivered, errors {delivery_errors[:3]}")


def work(record) -> bytes:
    """Processes one record: the output value (here the input value itself), after WORK_SECONDS_PER_RECORD."""
    time.sleep(WORK_SECONDS_PER_RECORD)
    return record.value()


def next_offsets(records: list) -> dict[int, int]:
    """Per partition, the offset after the last of these records: what to commit once they are handled."""
    offsets: dict[int, int] = {}
    for record in records:
        offsets[record.partition()] = max(offsets.get(record.partition(), 0), record.offset() + 1)
    return offsets


def offsets_to_commit(topic: str, records: list) -> list[TopicPartition]:
    """next_offsets as the TopicPartitions that commit() and send_offsets_to_transaction() take."""
    return [TopicPartition(topic, partition, offset) for partition, offset in next_offsets(records).items()]


class Watchdog:
    """Exits the process (code 3) when one client call runs far past its timeout, so the supervisor restarts
    it. librdkafka's transactional calls (send_offsets_to_transaction in particular) can block for good after
    the coordinator's connection went away, whatever timeout they were given; a new instance recovers the
    transaction state from the broker."""

    STUCK_CALL_SECONDS = 2 * CLIENT_TIMEOUT_SECONDS

    def __init__(self):
        self.call: str | None = None
        self.started = 0.0
        self.lock = threading.Lock()
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self) -> None:
        while True:
            time.sleep(1)
            with self.lock:
                if self.call is not None and time.monotonic() - self.started > self.STUCK_CALL_SECONDS:
                    log(f"watchdog: {self.call} blocked for more than {self.STUCK_CALL_SECONDS}s; exiting")
                    os._exit(3)

    def run(self, call: str, operation):
        with self.lock:
            self.call, self.started = call, time.monotonic()
        try:
            return operation()
        finally:
            with self.lock:
                self.call = None
