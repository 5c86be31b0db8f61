"""At-most-once: commit the offsets of a batch, then process it.

    python at_most_once.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP_ID INSTANCE_ID

Reads INPUT_TOPIC in group GROUP_ID and copies every record to the same partition of OUTPUT_TOPIC (the
"processing"). For each batch it first commits the offsets after the batch, synchronously, and only then
writes the output. A crash between the two loses the rest of the batch: the restarted instance resumes
after it. Nothing is processed twice: a batch is processed only after its commit succeeded.
Exits 0 once it has read the whole input.
"""

from __future__ import annotations

import sys

from confluent_kafka import Consumer, Producer

from app_support import EndOfInput, batches, group_consumer_config, log, offsets_to_commit, write_output


def main() -> int:
    bootstrap, input_topic, output_topic, group_id, instance_id = sys.argv[1:6]
    consumer = Consumer(group_consumer_config(bootstrap, group_id, instance_id))
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    end_of_input = EndOfInput()
    consumer.subscribe([input_topic])
    log("started")
    for records in batches(consumer, end_of_input):
        # 1. Commit first: from here on, a crash means the batch is never processed.
        consumer.commit(offsets=offsets_to_commit(input_topic, records), asynchronous=False)
        log("batch offsets committed")

        # 2. Then process: write the output (flush waits until the broker has it).
        write_output(producer, output_topic, records)
        log("batch done")
    log("reached the end of the input")
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
