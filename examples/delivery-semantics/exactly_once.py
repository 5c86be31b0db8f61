"""Exactly-once with Kafka transactions (confluent-kafka): consume, transform, produce.

    python exactly_once.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP_ID INSTANCE_ID TRANSACTIONAL_ID

Reads INPUT_TOPIC in group GROUP_ID (read_committed) and copies every record to the same partition of
OUTPUT_TOPIC. Each batch is one transaction of an idempotent, transactional producer: the output records
and the consumer's offsets after the batch (send_offsets_to_transaction) commit together or not at all.
A restarted instance (same TRANSACTIONAL_ID) fences the killed one and aborts its open transaction in
init_transactions, then resumes from the group's committed offsets. A read_committed consumer of
OUTPUT_TOPIC sees every input record exactly once however often the application is killed.
Exits 0 once it has read the whole input; exits 1 on a fatal client error and 3 when a client call is
stuck (see app_support.Watchdog), for its supervisor to restart it.
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer

from app_support import (BATCH_SIZE, CLIENT_TIMEOUT_SECONDS, POLL_SECONDS, EndOfInput, Watchdog,
                         group_consumer_config, log, offsets_to_commit, work)

# How long a retriable error (e.g. a coordinator moving or loading) is retried before giving up.
RETRY_SECONDS = 60
RETRY_BACKOFF_SECONDS = 0.5

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


def main() -> int:
    bootstrap, input_topic, output_topic, group_id, instance_id, transactional_id = sys.argv[1:7]
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5})
    # read_committed: also makes the consumer fetch only stable offsets (none of a pending transaction).
    consumer = Consumer(group_consumer_config(bootstrap, group_id, instance_id, "read_committed"))
    end_of_input = EndOfInput()
    # Before the consumer fetches the group's offsets: fence the previous instance, abort its transaction.
    retried(lambda: producer.init_transactions(CLIENT_TIMEOUT_SECONDS), "init_transactions")
    consumer.subscribe([input_topic])
    log("started")
    try:
        while True:
            records = end_of_input.records_of(consumer.consume(num_messages=BATCH_SIZE, timeout=POLL_SECONDS))
            if not records:
                if end_of_input.reached(consumer.assignment()):
                    break
                continue
            log(f"batch begin {len(records)}")
            try:
                producer.begin_transaction()
                for record in records:
                    produce(producer, output_topic, work(record), record.partition())
                log("batch output produced")
                offsets = offsets_to_commit(input_topic, records)
                group_metadata = consumer.consumer_group_metadata()
                retried(lambda: producer.send_offsets_to_transaction(offsets, group_metadata, CLIENT_TIMEOUT_SECONDS),
                        "send_offsets_to_transaction")
                log("batch offsets sent")
                retried(lambda: producer.commit_transaction(CLIENT_TIMEOUT_SECONDS), "commit_transaction")
            except KafkaException as exception:
                error: KafkaError = exception.args[0]
                if not error.txn_requires_abort():
                    raise
                log(f"aborting the transaction: {error}")
                retried(lambda: producer.abort_transaction(CLIENT_TIMEOUT_SECONDS), "abort_transaction")
                rewind(consumer, end_of_input)
                continue
            log("batch done")
    except KafkaException as exception:
        log(f"fatal: {exception.args[0]}")
        return 1
    log("reached the end of the input")
    consumer.close()
    return 0


def produce(producer: Producer, topic: str, value: bytes, partition: int) -> None:
    while True:
        try:
            producer.produce(topic, value=value, partition=partition)
            return
        except BufferError:  # the local queue is full: let deliveries drain it
            producer.poll(0.1)


def rewind(consumer: Consumer, end_of_input: EndOfInput) -> None:
    """After an abort the batch's output is gone: read again from the group's committed offsets."""
    committed = retried(lambda: consumer.committed(consumer.assignment(), CLIENT_TIMEOUT_SECONDS), "committed")
    for tp in committed:
        if tp.offset < 0:
            tp.offset = OFFSET_BEGINNING
        consumer.seek(tp)
    end_of_input.forget()
    log("rewound to " + ",".join(f"{tp.partition}:{tp.offset}" for tp in committed))


if __name__ == "__main__":
    sys.exit(main())
