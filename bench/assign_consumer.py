"""Reads every message of a topic with confluent-kafka (librdkafka) using assign(), no consumer group.

    assign_consumer.py --bootstrap HOST:PORT --topic TOPIC --partitions N --expected COUNT [--timeout S]

Assigns partitions 0..N-1 from the beginning and reads until COUNT messages arrived. Prints one JSON line
{"messages": ..., "bytes": ..., "seconds": ..., "started": ..., "finished": ...} where `seconds` runs from
assign() to the arrival of the last message, `started` and `finished` are those two instants as CLOCK_MONOTONIC
readings (comparable between processes on one machine, so the span of several concurrent readers can be
computed), and `bytes` sums the value lengths. Exit 1 (reason on stderr) on a consume error, on more messages
than expected, or when COUNT is not reached within --timeout seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

BATCH_SIZE = 10_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        # librdkafka wants a group id, but assign() never joins the group and nothing is committed.
        "group.id": f"bench-assign-{args.topic}",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    message_count = 0
    byte_count = 0
    try:
        # time.monotonic() reads CLOCK_MONOTONIC on Linux: one clock for every process of the machine.
        started = time.monotonic()
        last_arrival = started
        deadline = started + args.timeout
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(args.partitions)])
        while message_count < args.expected:
            if time.monotonic() > deadline:
                print(f"read {message_count} of {args.expected} messages within {args.timeout}s", file=sys.stderr)
                return 1
            batch = consumer.consume(num_messages=BATCH_SIZE, timeout=1.0)
            if not batch:
                continue
            last_arrival = time.monotonic()
            for message in batch:
                if message.error() is not None:
                    print(f"consume error: {message.error()}", file=sys.stderr)
                    return 1
                message_count += 1
                byte_count += len(message.value() or b"")
        if message_count != args.expected:
            print(f"read {message_count} messages, expected exactly {args.expected}", file=sys.stderr)
            return 1
    finally:
        consumer.close()
    print(json.dumps({"messages": message_count, "bytes": byte_count, "seconds": last_arrival - started,
                      "started": started, "finished": last_arrival}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
