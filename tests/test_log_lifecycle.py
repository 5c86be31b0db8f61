"""Log lifecycle with stock clients (confluent-kafka; kafka-python only for DescribeLogDirs), each test run
against Apache Kafka (the reference) and Skein on a fresh broker:

1. Time retention (`retention.ms=2000`, cleanup.policy=delete): once a first batch of records is older than the
   limit the log start moves past it (ListOffsets earliest, a new consumer group with auto.offset.reset=earliest
   starts there, a fetch below it is OFFSET_OUT_OF_RANGE), the disk space those records took is given back, and a
   later batch is all there, byte for byte.
2. Size retention (`retention.bytes`): a partition fed many batches of a known size stays within its limit plus
   one batch (DescribeLogDirs size), and, as Apache Kafka does, never drops a batch it needs to stay at its limit.
3. Compaction (cleanup.policy=compact): 100,000 updates to 1,000 keys, then 100 of the keys deleted (tombstones).
   After cleaning, a consumer from the start sees the latest value of each live key at the offset the producer's
   delivery report gave it, each key at most once in the cleaned part; `delete.retention.ms` later the tombstones
   are gone too. A consumer paused half-way through the uncompacted log continues from its position after
   cleaning and ends with the latest value of every key.
4. Compaction of a transactional topic: committed and aborted transactions; after cleaning a read_committed
   consumer from the start sees exactly the latest committed value of each key, never an aborted one, and gets
   past the transaction markers without errors.

How the brokers are configured so that cleaning acts within seconds:
- Both: `log.retention.check.interval.ms=200` (retention runs every 200 ms) and `log.cleaner.backoff.ms=200`
  (a compaction pass every 200 ms).
- Apache Kafka also: `log.initial.task.delay.ms=0` (retention starts at once instead of 30 s after start-up) and
  `log.segment.delete.delay.ms=0` (deleted segments leave the disk at once rather than 60 s later). Kafka only
  cleans whole segments and never the active one, so compacted topics get `segment.ms=100` (a segment rolls at the
  first append 100 ms after it began) and each compaction test ends with a record produced after that, which rolls
  the segment holding everything before it; the assertions about cleaned records only cover the records before
  that roll record. The size-retention topic gets Kafka's testing-only `internal.segment.bytes` so that each
  segment holds exactly one batch (Kafka's minimum `segment.bytes` is 1 MiB).
- Skein has no segments: it expires and compacts per record batch, up to the last stable offset. It accepts
  `segment.ms` (and ignores it), so compacted topics get the same topic configs on both brokers;
  `internal.segment.bytes` is Kafka's alone and is given to Kafka only.
"""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from support.brokers import BROKER_KINDS
from support.kafka_clients import create_topic, unique_topic_name
from support.log_lifecycle import (consume_until_end, earliest_offset, end_offset, fold_by_key,
                                   keys_seen_more_than_once, partition_size_bytes, produce_records,
                                   read_partition, stored_bytes, wait_until)

CLIENT_TIMEOUT_SECONDS = 30
# How long a test waits for retention or the cleaner to act (they run every 200 ms).
CLEANING_TIMEOUT_SECONDS = 60
SEGMENT_MS = 100
# Settings both brokers take, then Apache Kafka's additions (see the module docstring).
COMMON_BROKER_CONFIG = {"log.retention.check.interval.ms": 200, "log.cleaner.backoff.ms": 200}
BROKER_CONFIG = {
    "skein": COMMON_BROKER_CONFIG,
    "kafka": {**COMMON_BROKER_CONFIG, "log.initial.task.delay.ms": 0, "log.segment.delete.delay.ms": 0},
}
PARTITION = 0
MIB = 1 << 20

pytestmark = [
    pytest.mark.parametrize("kind", BROKER_KINDS),
    # kafka-python (DescribeLogDirs) loads its protocol schemas with importlib calls Python 3.11 deprecates.
    pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                               "ignore:open_text is deprecated:DeprecationWarning"),
]


def lifecycle_broker(start_broker, kind: str):
    return start_broker(kind, BROKER_CONFIG[kind])


def roll_segment(producer: Producer, topic: str, key: bytes, value: bytes) -> list[tuple]:
    """Produces one record SEGMENT_MS after the last append, so that Apache Kafka rolls its segment there:
    everything before this record becomes cleanable. Returns its delivery [(offset, key, value)]."""
    time.sleep(3 * SEGMENT_MS / 1000)
    return produce_records(producer, topic, [(key, value)])


def alter_topic_config(bootstrap: str, topic: str, name: str, value: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin.incremental_alter_configs([resource])[resource].result(timeout=CLIENT_TIMEOUT_SECONDS)


def assert_at_original_offsets(records, produced) -> None:
    """Every record read back is, at its offset, the record the producer's delivery report gave that offset."""
    produced_at = {offset: (key, value) for offset, key, value in produced}
    moved = [(offset, key, value) for offset, key, value in records if produced_at.get(offset) != (key, value)]
    assert not moved, f"records not at their produced offsets (offset, key, value): {moved[:5]}"
    offsets = [offset for offset, _key, _value in records]
    assert offsets == sorted(set(offsets)), "offsets do not strictly increase"


def describe_duplicates(records, below: int) -> str:
    duplicates = keys_seen_more_than_once([r for r in records if r[0] < below])
    sample = dict(list(duplicates.items())[:5])
    return f"{len(duplicates)} keys appear more than once below offset {below}, e.g. {sample}"


# ---- 1. time retention ---------------------------------------------------------------------------------------

RETENTION_MS = 2000
# The first batch: 600 incompressible values of 10,000 bytes (6 MB), so the freed space is unmistakable.
EXPIRED_RECORDS = 600
KEPT_RECORDS = 100
VALUE_BYTES = 10_000


@pytest.mark.timeout(180)
def test_time_retention_drops_expired_records_and_frees_their_disk_space(kind, start_broker):
    broker = lifecycle_broker(start_broker, kind)
    topic = create_topic(broker.bootstrap, unique_topic_name("retention-ms"), 1,
                         {"cleanup.policy": "delete", "retention.ms": str(RETENTION_MS)})
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    empty_bytes = stored_bytes(broker, topic)

    expired = produce_records(producer, topic,
                              [(None, os.urandom(VALUE_BYTES)) for _ in range(EXPIRED_RECORDS)])
    assert [offset for offset, _, _ in expired] == list(range(EXPIRED_RECORDS))
    full_bytes = stored_bytes(broker, topic)
    assert full_bytes - empty_bytes >= EXPIRED_RECORDS * VALUE_BYTES, (empty_bytes, full_bytes)

    # Two seconds after they were written the records are past retention.ms: the log start moves past them.
    wait_until(lambda: earliest_offset(broker.bootstrap, topic) == EXPIRED_RECORDS, CLEANING_TIMEOUT_SECONDS,
               lambda: f"log start is {earliest_offset(broker.bootstrap, topic)}, expected {EXPIRED_RECORDS}")
    # ... and the disk space they took is given back (at least 5 of the 6 MB).
    wait_until(lambda: stored_bytes(broker, topic) <= full_bytes - 5 * MIB, CLEANING_TIMEOUT_SECONDS,
               lambda: (f"{kind} still stores {stored_bytes(broker, topic)} bytes for the partition: "
                        f"{full_bytes} with the 6 MB of expired records, {empty_bytes} when empty"))

    # The second batch carries timestamps two minutes ahead, so retention.ms leaves it alone while it is read back.
    stamp_ms = int(time.time() * 1000) + 120_000
    kept = produce_records(producer, topic, [(None, os.urandom(VALUE_BYTES)) for _ in range(KEPT_RECORDS)],
                           timestamp=stamp_ms)
    assert [offset for offset, _, _ in kept] == list(range(EXPIRED_RECORDS, EXPIRED_RECORDS + KEPT_RECORDS))
    assert earliest_offset(broker.bootstrap, topic) == EXPIRED_RECORDS

    # A new consumer group starting from the beginning starts at the log start and gets the second batch whole.
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": unique_topic_name("retention-group"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    try:
        consumer.subscribe([topic])
        from_beginning = consume_until_end(consumer, EXPIRED_RECORDS + KEPT_RECORDS, CLIENT_TIMEOUT_SECONDS)
    finally:
        consumer.close()
    assert from_beginning == kept

    # A fetch below the log start is OFFSET_OUT_OF_RANGE; with auto.offset.reset=error the consumer reports it.
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": unique_topic_name("below-start"),
        "auto.offset.reset": "error",
        "enable.auto.commit": False,
    })
    try:
        consumer.assign([TopicPartition(topic, PARTITION, 0)])
        error = None
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while error is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is not None, f"got a record at offset {message.offset()}"
                error = message.error()
    finally:
        consumer.close()
    assert error is not None, "the consumer reported nothing for a fetch below the log start"
    assert error.code() == KafkaError._AUTO_OFFSET_RESET, error
    assert "Offset out of range" in error.str(), error


# ---- 2. size retention ---------------------------------------------------------------------------------------

BATCH_RECORDS = 10
BATCH_VALUE_BYTES = 1000
BATCHES = 40
# About 3.5 batches of 10 x 1000-byte records (a batch is about 10,150 bytes).
RETENTION_BYTES = 35_000
# Apache Kafka: one batch per segment (a segment takes the next batch only while it stays under 15,000 bytes).
KAFKA_ONE_BATCH_SEGMENT_BYTES = 15_000


def fill_size_limited_partition(broker, kind: str) -> tuple[str, int, list[tuple]]:
    """A retention.bytes=RETENTION_BYTES topic fed BATCHES batches of BATCH_RECORDS records, one batch per
    flush. Returns (topic, the size of one batch as DescribeLogDirs reports it, the produced records)."""
    config = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": str(RETENTION_BYTES)}
    if kind == "kafka":
        config["internal.segment.bytes"] = str(KAFKA_ONE_BATCH_SEGMENT_BYTES)
    topic = create_topic(broker.bootstrap, unique_topic_name("retention-bytes"), 1, config)
    # A batch leaves when it holds BATCH_RECORDS records (or at the flush that ends each round), never earlier.
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 10_000,
                         "batch.num.messages": BATCH_RECORDS})
    produced: list[tuple] = []
    batch_bytes = 0
    for batch in range(BATCHES):
        values = [(None, os.urandom(BATCH_VALUE_BYTES)) for _ in range(BATCH_RECORDS)]
        produced += produce_records(producer, topic, values)
        if batch == 0:
            batch_bytes = partition_size_bytes(broker.bootstrap, topic)
    assert [offset for offset, _, _ in produced] == list(range(BATCHES * BATCH_RECORDS))
    assert BATCH_RECORDS * BATCH_VALUE_BYTES < batch_bytes < KAFKA_ONE_BATCH_SEGMENT_BYTES, batch_bytes
    return topic, batch_bytes, produced


@pytest.mark.timeout(120)
def test_retention_bytes_keeps_a_partition_within_its_limit_plus_one_batch(kind, start_broker):
    broker = lifecycle_broker(start_broker, kind)
    topic, batch_bytes, produced = fill_size_limited_partition(broker, kind)
    assert BATCHES * batch_bytes > RETENTION_BYTES + batch_bytes

    wait_until(lambda: partition_size_bytes(broker.bootstrap, topic) <= RETENTION_BYTES + batch_bytes,
               CLEANING_TIMEOUT_SECONDS,
               lambda: (f"partition size {partition_size_bytes(broker.bootstrap, topic)} > limit {RETENTION_BYTES}"
                        f" + one batch {batch_bytes}"))
    # The log now starts at a batch boundary, and what is left is the newest records, byte for byte.
    log_start = earliest_offset(broker.bootstrap, topic)
    assert log_start > 0 and log_start % BATCH_RECORDS == 0, log_start
    assert read_partition(broker.bootstrap, topic) == produced[log_start:]


@pytest.mark.timeout(120)
def test_retention_bytes_never_cuts_a_partition_below_its_limit(kind, start_broker):
    """Apache Kafka deletes an old segment only while what remains is still at least retention.bytes: the
    limit is how much history a partition keeps, not only how much it may hold."""
    broker = lifecycle_broker(start_broker, kind)
    topic, batch_bytes, produced = fill_size_limited_partition(broker, kind)

    wait_until(lambda: partition_size_bytes(broker.bootstrap, topic) <= RETENTION_BYTES + batch_bytes,
               CLEANING_TIMEOUT_SECONDS,
               lambda: f"partition size {partition_size_bytes(broker.bootstrap, topic)} never came down")
    # Let retention run several more times: the size is settled.
    time.sleep(1.0)
    size = partition_size_bytes(broker.bootstrap, topic)
    log_start = earliest_offset(broker.bootstrap, topic)
    kept_batches = (len(produced) - log_start) / BATCH_RECORDS
    assert size >= RETENTION_BYTES, (
        f"{kind} kept {size} bytes ({kept_batches} batches of {batch_bytes} bytes, log start {log_start}) "
        f"of a partition whose retention.bytes is {RETENTION_BYTES}")
    assert read_partition(broker.bootstrap, topic) == produced[log_start:]


# ---- 3. compaction -------------------------------------------------------------------------------------------

KEYS = 1000
UPDATES = 100_000
DELETED_KEYS = 100
DELETE_RETENTION_MS = 2000
EXTRA_UPDATES = 100


def key_name(k: int) -> bytes:
    return f"key-{k:04d}".encode()


def updates(first: int, count: int) -> list[tuple]:
    """Update i sets key (i % KEYS) to value-i."""
    return [(key_name(i % KEYS), f"value-{i}".encode()) for i in range(first, first + count)]


def tombstones() -> list[tuple]:
    return [(key_name(k), None) for k in range(DELETED_KEYS)]


def compacted_topic_config(**overrides) -> dict:
    config = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01", "segment.ms": str(SEGMENT_MS),
              "min.compaction.lag.ms": "0"}
    config.update({name.replace("_", "."): str(value) for name, value in overrides.items()})
    return config


def bulk_producer(bootstrap: str, **settings) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 200_000,
                     **settings})


def wait_until_cleaned_below(bootstrap: str, topic: str, below: int, isolation_level: str = "read_uncommitted",
                             also=lambda records: True) -> list[tuple]:
    """Reads the partition from the start until no key appears twice among the records before offset `below`
    (and `also(records)` holds). Returns what was read then."""
    last: list = []

    def cleaned():
        last[:] = read_partition(bootstrap, topic, isolation_level=isolation_level)
        before = [r for r in last if r[0] < below]
        return last[:] if not keys_seen_more_than_once(before) and also(last) else None

    return wait_until(cleaned, CLEANING_TIMEOUT_SECONDS,
                      lambda: f"{len(last)} records read; {describe_duplicates(last, below)}", interval=0.5)


@pytest.mark.timeout(180)
def test_compaction_keeps_the_latest_value_of_each_key_at_its_offset_and_drops_tombstones(kind, start_broker):
    broker = lifecycle_broker(start_broker, kind)
    topic = create_topic(broker.bootstrap, unique_topic_name("compacted"), 1,
                         compacted_topic_config(delete_retention_ms=DELETE_RETENTION_MS))
    producer = bulk_producer(broker.bootstrap)
    produced = produce_records(producer, topic, updates(0, UPDATES) + tombstones())
    assert [offset for offset, _, _ in produced] == list(range(UPDATES + DELETED_KEYS))
    produced += roll_segment(producer, topic, b"roll-1", b"rolled")
    roll_offset = produced[-1][0]

    compacted = wait_until_cleaned_below(broker.bootstrap, topic, roll_offset)
    expected = fold_by_key(produced)
    assert len(expected) == KEYS - DELETED_KEYS + 1
    assert fold_by_key(compacted) == expected
    assert_at_original_offsets(compacted, produced)
    # Only the latest record of a key survives: every live key's record is its latest update.
    latest_offset_of_key = {key: offset for offset, key, _value in produced}
    live_offsets = {offset for offset, _key, value in compacted if value is not None}
    assert live_offsets == {latest_offset_of_key[key] for key in expected}

    # delete.retention.ms after cleaning, the tombstones go at the next cleaning (Apache Kafka cleans again once
    # new records are dirty enough: 100 more updates of live keys, then a roll).
    time.sleep(DELETE_RETENTION_MS / 1000 + 0.5)
    produced += produce_records(producer, topic, updates(UPDATES + DELETED_KEYS, EXTRA_UPDATES))
    produced += roll_segment(producer, topic, b"roll-2", b"rolled")
    second_roll_offset = produced[-1][0]

    def no_tombstones(records):
        return all(value is not None for offset, _key, value in records if offset < second_roll_offset)

    cleaned = wait_until_cleaned_below(broker.bootstrap, topic, second_roll_offset, also=no_tombstones)
    expected = fold_by_key(produced)
    assert fold_by_key(cleaned) == expected
    assert_at_original_offsets(cleaned, produced)
    deleted = {key_name(k) for k in range(DELETED_KEYS)}
    assert not [r for r in cleaned if r[1] in deleted], "records of deleted keys are still there"
    assert len(cleaned) == len(expected)


@pytest.mark.timeout(180)
def test_a_consumer_paused_mid_way_continues_from_its_position_after_compaction(kind, start_broker):
    broker = lifecycle_broker(start_broker, kind)
    # Cleaning is held off (min.compaction.lag.ms of an hour) until the consumer has read part of the log.
    # Tombstones stay ten minutes, so the consumer sees them whenever it gets there.
    topic = create_topic(broker.bootstrap, unique_topic_name("compacted-paused"), 1,
                         compacted_topic_config(min_compaction_lag_ms=3_600_000, delete_retention_ms=600_000))
    producer = bulk_producer(broker.bootstrap)
    produced = produce_records(producer, topic, updates(0, UPDATES) + tombstones())
    produced += roll_segment(producer, topic, b"roll-1", b"rolled")
    roll_offset = produced[-1][0]
    end = roll_offset + 1

    # Small fetches and a small local queue, so that what the consumer reads after the pause it fetches then.
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "group.id": unique_topic_name("paused"),
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": True,
        "max.partition.fetch.bytes": 65_536,
        "queued.max.messages.kbytes": 64,
        "queued.min.messages": 1000,
    })
    partition = TopicPartition(topic, PARTITION, 0)
    read_before_pause = UPDATES * 3 // 10
    try:
        consumer.assign([partition])
        before: list[tuple] = []
        while len(before) < read_before_pause:
            messages = consumer.consume(num_messages=read_before_pause - len(before), timeout=1.0)
            for message in messages:
                assert message.error() is None, message.error()
                before.append((message.offset(), message.key(), message.value()))
        assert before == produced[:read_before_pause]
        consumer.pause([partition])
        position = consumer.position([partition])[0].offset
        assert position == read_before_pause

        alter_topic_config(broker.bootstrap, topic, "min.compaction.lag.ms", "0")
        compacted = wait_until_cleaned_below(broker.bootstrap, topic, roll_offset)
        assert fold_by_key(compacted) == fold_by_key(produced)

        consumer.resume([partition])
        after = consume_until_end(consumer, end, CLEANING_TIMEOUT_SECONDS)
    finally:
        consumer.close()
    assert after, "nothing read after the pause"
    assert after[0][0] >= position, f"resumed at offset {after[0][0]}, before its position {position}"
    assert_at_original_offsets(before + after, produced)
    # It did read the compacted log: far fewer records than offsets between its position and the end.
    assert len(after) < (end - position) // 2, f"{len(after)} records for offsets {position}..{end}"
    assert fold_by_key(before + after) == fold_by_key(produced)


# ---- 4. compaction and transactions ----------------------------------------------------------------------------

TRANSACTIONS = 20
TXN_KEYS = 100
TXN_ROUNDS = 5


def txn_key(k: int) -> bytes:
    return f"key-{k:03d}".encode()


@pytest.mark.timeout(180)
def test_compaction_of_a_transactional_topic_keeps_the_latest_committed_values(kind, start_broker):
    broker = lifecycle_broker(start_broker, kind)
    topic = create_topic(broker.bootstrap, unique_topic_name("compacted-txn"), 1,
                         compacted_topic_config(delete_retention_ms=DELETE_RETENTION_MS))
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": unique_topic_name("txn-id"),
                         "linger.ms": 5})
    producer.init_transactions(CLIENT_TIMEOUT_SECONDS)
    committed: list[tuple] = []
    aborted_values: set = set()
    # Even transactions commit, odd ones abort; the last one (19) aborts, so its values must not win.
    for t in range(TRANSACTIONS):
        producer.begin_transaction()
        records = [(txn_key(k), f"txn-{t}-round-{r}-key-{k}".encode())
                   for r in range(TXN_ROUNDS) for k in range(TXN_KEYS)]
        delivered = produce_records(producer, topic, records)
        if t % 2 == 0:
            producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)
            committed += delivered
        else:
            producer.abort_transaction(CLIENT_TIMEOUT_SECONDS)
            aborted_values.update(value for _, _, value in delivered)
    time.sleep(3 * SEGMENT_MS / 1000)
    producer.begin_transaction()
    committed += produce_records(producer, topic, [(b"roll", b"rolled")])
    producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)
    roll_offset = committed[-1][0]
    expected = fold_by_key(committed)
    assert len(expected) == TXN_KEYS + 1

    cleaned = wait_until_cleaned_below(broker.bootstrap, topic, roll_offset, isolation_level="read_committed")
    # read_committed got to the end (past the last marker, read_partition waits for that) without an error.
    assert fold_by_key(cleaned) == expected
    assert not [r for r in cleaned if r[2] in aborted_values], "a read_committed consumer got aborted records"
    assert_at_original_offsets(cleaned, committed)
    assert len(cleaned) == len(expected)
    # The end of the log is the offset after the last commit marker, for both isolation levels.
    assert end_offset(broker.bootstrap, topic, isolation_level="read_committed") == roll_offset + 2
    assert end_offset(broker.bootstrap, topic) == roll_offset + 2
    # A read_uncommitted consumer gets past the markers and cleaned gaps too; whatever aborted records it may
    # still see, the committed ones it sees are where the producer put them.
    uncommitted = read_partition(broker.bootstrap, topic)
    assert_at_original_offsets([r for r in uncommitted if r[2] not in aborted_values], committed)
