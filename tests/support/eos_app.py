"""A consume-transform-produce application with exactly-once semantics, on confluent-kafka.

    python eos_app.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP_ID TRANSACTIONAL_ID

Consumes INPUT_TOPIC in group GROUP_ID (read_committed, no automatic commits) and, in one transaction per
batch, produces "processed-VALUE" for every input record to the same partition of OUTPUT_TOPIC and adds the
consumer's positions to the transaction as the group's offsets (send_offsets_to_transaction), then
commits. A restarted instance (same TRANSACTIONAL_ID) fences its predecessor and aborts its open
transaction in init_transactions, then resumes from the group's committed offsets, so every input record
ends up in the committed output exactly once however often the application or the broker is killed.

Prints one line per committed transaction: "committed RECORDS positions P:OFFSET,...". Runs until SIGTERM
or SIGINT (exit 0). An abortable error aborts the transaction and rewinds the consumer to the group's
committed offsets; retriable errors are retried; a fatal error (e.g. fenced by a newer instance) exits 1.
A client call that blocks far past its timeout makes the application exit 3 (see Watchdog), for its
supervisor to restart it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer

BATCH_SIZE = 200
CLIENT_TIMEOUT_SECONDS = 10
# A single client call blocked this long is stuck, not slow.
STUCK_CALL_SECONDS = 2 * CLIENT_TIMEOUT_SECONDS
# How long a retriable error (e.g. the broker is down) is retried before the application gives up.
RETRY_SECONDS = 120
RETRY_BACKOFF_SECONDS = 0.5


def log(line: str) -> None:
    print(line, flush=True)


class Watchdog:
    """Exits the process (code 3) when a client call runs far past its timeout. librdkafka's
    send_offsets_to_transaction can block for good once the group coordinator's connection went away
    (e.g. the broker was killed and restarted), whatever timeout it was given (librdkafka issues #5456,
    #5511); a restarted instance recovers the transaction state from the broker."""

    def __init__(self):
        self.call: str | None = None
        self.started = 0.0
        self.lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self) -> None:
        while True:
            time.sleep(1)
            with self.lock:
                if self.call is not None and time.monotonic() - self.started > STUCK_CALL_SECONDS:
                    log(f"watchdog: {self.call} blocked for more than {STUCK_CALL_SECONDS}s; exiting")
                    os._exit(3)

    def run(self, call: str, operation):
        with self.lock:
            self.call, self.started = call, time.monotonic()
        try:
            return operation()
        finally:
            with self.lock:
                self.call = None


watchdog = Watchdog()


def retried(operation, what: str):
    """Runs `operation` again while it fails with a retriable error, for up to RETRY_SECONDS."""
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            return watchdog.run(what, operation)
        except KafkaException as exception:
            error: KafkaError = exception.args[0]
            if not error.retriable() or time.monotonic() > deadline:
                raise
            log(f"retrying {what}: {error}")
            time.sleep(RETRY_BACKOFF_SECONDS)


def transform(value: bytes) -> bytes:
    return b"processed-" + value


class Application:
    def __init__(self, bootstrap: str, input_topic: str, output_topic: str, group_id: str, transactional_id: str):
        self.input_topic = input_topic
        self.output_topic = output_topic
        self.stopping = False
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "linger.ms": 5,
        })
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            # Never read another producer's uncommitted or aborted output (and fetch only stable
            # group offsets: none of a transaction still pending).
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        })

    def run(self) -> None:
        # Before the consumer fetches the group's offsets: fences the previous instance and aborts its
        # open transaction (and the offsets in it).
        retried(lambda: self.producer.init_transactions(CLIENT_TIMEOUT_SECONDS), "init_transactions")
        self.consumer.subscribe([self.input_topic])
        try:
            while not self.stopping:
                records = []
                for message in self.consumer.consume(num_messages=BATCH_SIZE, timeout=0.2):
                    if message.error() is None:
                        records.append(message)
                    elif message.error().fatal():
                        raise KafkaException(message.error())
                    else:
                        log(f"consumer error: {message.error()}")
                if records:
                    self.process(records)
        finally:
            self.consumer.close()  # leaves the group at once

    def process(self, records: list) -> None:
        try:
            self.producer.begin_transaction()
            for record in records:
                self.produce(transform(record.value()), record.partition())
            positions = [tp for tp in self.consumer.position(self.consumer.assignment()) if tp.offset >= 0]
            group_metadata = self.consumer.consumer_group_metadata()
            retried(lambda: self.producer.send_offsets_to_transaction(positions, group_metadata, CLIENT_TIMEOUT_SECONDS),
                    "send_offsets_to_transaction")
            retried(lambda: self.producer.commit_transaction(CLIENT_TIMEOUT_SECONDS), "commit_transaction")
        except KafkaException as exception:
            error: KafkaError = exception.args[0]
            if not error.txn_requires_abort():
                raise
            log(f"aborting the transaction: {error}")
            retried(lambda: self.producer.abort_transaction(CLIENT_TIMEOUT_SECONDS), "abort_transaction")
            self.rewind()
            return
        log(f"committed {len(records)} positions "
            + ",".join(f"{tp.partition}:{tp.offset}" for tp in sorted(positions, key=lambda tp: tp.partition)))

    def produce(self, value: bytes, partition: int) -> None:
        while True:
            try:
                self.producer.produce(self.output_topic, value=value, partition=partition)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.1)

    def rewind(self) -> None:
        """After an abort: the records of the aborted transaction were consumed but their output is gone;
        consume again from the group's committed offsets."""
        committed = retried(lambda: self.consumer.committed(self.consumer.assignment(), CLIENT_TIMEOUT_SECONDS),
                            "committed")
        for tp in committed:
            if tp.offset < 0:
                tp.offset = OFFSET_BEGINNING
            self.consumer.seek(tp)
        log("rewound to " + ",".join(f"{tp.partition}:{tp.offset}" for tp in committed))

    def stop(self, signum, frame) -> None:
        self.stopping = True


def main() -> int:
    bootstrap, input_topic, output_topic, group_id, transactional_id = sys.argv[1:6]
    watchdog.start()
    application = Application(bootstrap, input_topic, output_topic, group_id, transactional_id)
    signal.signal(signal.SIGTERM, application.stop)
    signal.signal(signal.SIGINT, application.stop)
    try:
        application.run()
    except KafkaException as exception:
        log(f"fatal: {exception.args[0]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
