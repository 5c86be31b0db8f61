"""At-least-once: process a batch, then commit its offsets.

    python at_least_once.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP_ID INSTANCE_ID

Reads INPUT_TOPIC in group GROUP_ID and copies every record to the same partition of OUTPUT_TOPIC (the
"processing"). For each batch it first writes the output and waits until the broker has all of it, and
only then commits the offsets after the batch, synchronously. A crash between the two processes the batch
again after the restart (duplicates in the output); nothing is lost: an offset is committed only after
its record's output is stored.
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
        # 1. Process first: write the output and wait until the broker has stored all of it.
        write_output(producer, output_topic, records)
        log("batch output written")

        # 2. Then commit: a crash before this line makes the restarted instance process the batch again.
        consumer.commit(offsets=offsets_to_commit(input_topic, records), asynchronous=False)
        log("batch done")
    log("reached the end of the input")
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
