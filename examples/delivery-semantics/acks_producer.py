"""The producer side: send numbered messages with a given `acks` and record which ones the client reported
delivered.

    python acks_producer.py BOOTSTRAP TOPIC COUNT ACKS IDEMPOTENCE RATE RESULT_JSON

Sends "0".."COUNT-1" to TOPIC (message n to partition n % partitions) at about RATE messages per second
with acks=ACKS (0, 1 or all) and enable.idempotence=IDEMPOTENCE (true/false), then waits for every
delivery report. Prints "produced P acknowledged A failed F" progress lines while it runs (run.py kills the broker
when they reach its chosen points), and writes RESULT_JSON:
    {"acknowledged": [n, ...], "failed": {"n": "error", ...}, "undelivered": K}
"acknowledged" are the messages whose delivery report said success: for acks=0 that only means they were
written to the connection (the broker never answers), for acks=1/all that the broker stored them.
"""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import Producer

# Messages are produced in groups of this many, then the producer sleeps to keep to RATE.
PRODUCE_GROUP = 20
PROGRESS_SECONDS = 0.05
FLUSH_SECONDS = 120


def main() -> int:
    bootstrap, topic, count, acks, idempotence, rate, result_path = sys.argv[1:8]
    count, rate = int(count), float(rate)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "enable.idempotence": idempotence == "true",
        "linger.ms": 5,
        # A message the broker has not acknowledged within this time is reported failed, not retried forever.
        "message.timeout.ms": 90_000,
        # Reconnect quickly once the killed broker is back.
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    })
    partitions = len(producer.list_topics(topic, timeout=10).topics[topic].partitions)
    acknowledged: list[int] = []
    failed: dict[int, str] = {}

    def on_delivery(error, message) -> None:
        number = int(message.value())
        if error is None:
            acknowledged.append(number)
        else:
            failed[number] = str(error)

    def report_progress(produced: int) -> None:
        print(f"produced {produced} acknowledged {len(acknowledged)} failed {len(failed)}", flush=True)

    started = time.monotonic()
    next_progress = 0.0
    for number in range(count):
        while True:
            try:
                producer.produce(topic, value=str(number).encode(), partition=number % partitions,
                                 on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full (the broker is down): let it drain
                producer.poll(0.05)
        if number % PRODUCE_GROUP == PRODUCE_GROUP - 1:
            producer.poll(0)
            ahead = (number + 1) / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        if time.monotonic() >= next_progress:
            report_progress(number + 1)
            next_progress = time.monotonic() + PROGRESS_SECONDS
    flush_deadline = time.monotonic() + FLUSH_SECONDS
    undelivered = len(producer)
    while undelivered and time.monotonic() < flush_deadline:
        undelivered = producer.flush(PROGRESS_SECONDS)
        report_progress(count)
    report_progress(count)
    print(f"finished: undelivered {undelivered}", flush=True)
    with open(result_path, "w") as result_file:
        json.dump({"acknowledged": acknowledged, "failed": failed, "undelivered": undelivered}, result_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
