"""Exactly-once into a database: the consumer's offsets live in the same SQLite transaction as the data.

    python exactly_once_sqlite.py BOOTSTRAP INPUT_TOPIC DATABASE

Assigns itself every partition of INPUT_TOPIC (no consumer group, nothing committed to Kafka) and starts
each at the offset stored in DATABASE (from the beginning when none is stored). Each batch is one SQLite
transaction: insert a row per record into `sink`, store the offsets after the batch in `offsets`, commit.
A crash anywhere rolls back the whole transaction (rows and offsets), and the restarted instance reads the
batch again from the stored offsets, so `sink` holds every input record exactly once.
Exits 0 once it has read the whole input.
"""

from __future__ import annotations

import sqlite3
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from app_support import (BATCH_SIZE, CLIENT_TIMEOUT_SECONDS, POLL_SECONDS, EndOfInput, log, next_offsets,
                         work)


def open_database(path: str) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; BEGIN and COMMIT below are the only ones.
    database = sqlite3.connect(path, isolation_level=None)
    database.execute("CREATE TABLE IF NOT EXISTS sink (partition INTEGER NOT NULL, value TEXT NOT NULL)")
    database.execute("CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL, "
                     "next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition))")
    return database


def main() -> int:
    bootstrap, input_topic, database_path = sys.argv[1:4]
    database = open_database(database_path)
    stored = dict(database.execute("SELECT partition, next_offset FROM offsets WHERE topic = ?", (input_topic,)))
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "unused",  # librdkafka wants one; this consumer never joins it nor commits to it
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
    })
    metadata = consumer.list_topics(input_topic, timeout=CLIENT_TIMEOUT_SECONDS)
    partitions = sorted(metadata.topics[input_topic].partitions)
    consumer.assign([TopicPartition(input_topic, p, stored.get(p, OFFSET_BEGINNING)) for p in partitions])
    end_of_input = EndOfInput()
    log("started at " + ",".join(f"{p}:{stored.get(p, 'beginning')}" for p in partitions))
    while True:
        records = end_of_input.records_of(consumer.consume(num_messages=BATCH_SIZE, timeout=POLL_SECONDS))
        if not records:
            if end_of_input.reached(consumer.assignment()):
                break
            continue
        log(f"batch begin {len(records)}")
        database.execute("BEGIN IMMEDIATE")
        database.executemany("INSERT INTO sink (partition, value) VALUES (?, ?)",
                             [(record.partition(), work(record).decode()) for record in records])
        log("batch rows inserted")
        database.executemany(
            "INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            [(input_topic, partition, offset) for partition, offset in next_offsets(records).items()])
        log("batch offsets stored")
        database.execute("COMMIT")  # rows and offsets together, or neither
        log("batch done")
    log("reached the end of the input")
    consumer.close()
    database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
