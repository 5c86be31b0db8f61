"""The deterministic conformance messages. messages.md beside this file is the normative description;
drivers in other languages reimplement exactly this."""

from __future__ import annotations

from dataclasses import dataclass

BASE_TIMESTAMP_MS = 1_700_000_000_000
DEFAULT_SEED = 1
PARTITIONS = 3
ROUNDTRIP_DEFAULT_COUNT = 10_000
COMPRESSION_DEFAULT_COUNT = 2_000
LARGE_VALUE_SIZE = 2 * 1024 * 1024  # 2 MiB: above the broker's default message.max.bytes (1048588)
OFFSET_OUT_OF_RANGE_COUNT = 10
OFFSET_OUT_OF_RANGE_FETCH_OFFSET = 1000
LIST_OFFSETS_COUNT = 100
LIST_OFFSETS_TIMESTAMP_STEP_MS = 10
LIST_OFFSETS_QUERY_TIMESTAMP_MS = BASE_TIMESTAMP_MS + 505  # first record at or after it: i=51 (ts +510)
LIST_OFFSETS_EXPECTED_OFFSET = 51
LIST_OFFSETS_FAR_FUTURE_MS = BASE_TIMESTAMP_MS + 10 ** 12  # later than every record's timestamp
CONSUMER_GROUP_DEFAULT_COUNT = 3_000
CONSUMER_GROUP_RESUME_COUNT = 10  # messages produced after the first two members closed


@dataclass(frozen=True)
class Message:
    index: int
    partition: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    timestamp_ms: int


@dataclass(frozen=True)
class ConsumedRecord:
    """A record as a consumer returned it, normalised to plain Python values by the driver."""
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp_ms: int
    timestamp_is_create_time: bool


class ScenarioFailed(Exception):
    """The client or broker did not behave as the scenario requires (driver exit 1)."""


class ScenarioNotSupported(Exception):
    """This client cannot express the scenario (driver exit 2, "n/a" in the matrix)."""


def message_key(index: int) -> bytes:
    return f"key-{index}".encode("ascii")


def message_value_length(seed: int, index: int) -> int:
    if index % 97 == 0:
        return 0
    return 1 + (index * 7919 + seed * 13) % 200


def message_value(seed: int, index: int) -> bytes:
    # Arbitrary bytes (many >= 0x80, so values are usually not valid UTF-8; also 0x00 and 0x0A occur).
    length = message_value_length(seed, index)
    return bytes((seed * 131 + index * 31 + j * j + j * 17) % 256 for j in range(length))


def message_headers(index: int) -> list[tuple[str, bytes]]:
    # The header key "h" is repeated on purpose: order and duplicates must survive.
    return [("h", b"a"), ("h", b"b"), ("idx", str(index).encode("ascii"))]


def roundtrip_message(seed: int, index: int) -> Message:
    return Message(
        index=index,
        partition=index % PARTITIONS,
        key=message_key(index),
        value=message_value(seed, index),
        headers=message_headers(index),
        timestamp_ms=BASE_TIMESTAMP_MS + index,
    )


def roundtrip_messages(seed: int, count: int) -> list[Message]:
    return [roundtrip_message(seed, index) for index in range(count)]


def single_partition_messages(seed: int, count: int, timestamp_step_ms: int = 1) -> list[Message]:
    """Roundtrip messages 0..count-1, all sent to partition 0, timestamp BASE + step*i
    (offset-out-of-range uses step 1, list-offsets step 10)."""
    return [
        Message(
            index=index,
            partition=0,
            key=message_key(index),
            value=message_value(seed, index),
            headers=message_headers(index),
            timestamp_ms=BASE_TIMESTAMP_MS + timestamp_step_ms * index,
        )
        for index in range(count)
    ]


def large_value() -> bytes:
    """The 2 MiB value of message-too-large: byte j = j % 251."""
    pattern = bytes(range(251))
    repeats = LARGE_VALUE_SIZE // len(pattern) + 1
    return (pattern * repeats)[:LARGE_VALUE_SIZE]


def message_too_large_small_message(seed: int) -> Message:
    """The small message sent after the rejected large one: roundtrip message 1, to partition 0."""
    message = roundtrip_message(seed, 1)
    return Message(message.index, 0, message.key, message.value, message.headers, message.timestamp_ms)


def expected_counts_by_partition(messages: list[Message]) -> dict[int, int]:
    counts = {partition: 0 for partition in range(PARTITIONS)}
    for message in messages:
        counts[message.partition] += 1
    return counts


def describe_bytes(data: bytes | None, limit: int = 40) -> str:
    if data is None:
        return "null"
    shown = data[:limit].hex()
    return f"{len(data)} bytes 0x{shown}{'...' if len(data) > limit else ''}"


def check_delivery_offsets(messages: list[Message], delivered: dict[int, tuple[int, int]]) -> None:
    """delivered maps message index -> (partition, offset) as the producer acknowledged it.
    Offsets in each partition must be 0, 1, 2, ... in send order."""
    next_offset = {partition: 0 for partition in range(PARTITIONS)}
    for message in messages:
        if message.index not in delivered:
            raise ScenarioFailed(f"message {message.index} was never acknowledged")
        partition, offset = delivered[message.index]
        if partition != message.partition:
            raise ScenarioFailed(
                f"message {message.index} acknowledged on partition {partition}, sent to {message.partition}")
        if offset != next_offset[partition]:
            raise ScenarioFailed(
                f"message {message.index} acknowledged at offset {offset} in partition {partition}, "
                f"expected {next_offset[partition]}")
        next_offset[partition] += 1


def check_records_match(messages: list[Message], records_by_partition: dict[int, list[ConsumedRecord]]) -> None:
    """Every partition must hold exactly the messages sent to it, in send order, at offsets 0, 1, 2, ...
    with key, value, headers (order and duplicates) and CreateTime timestamp identical byte for byte."""
    expected_by_partition: dict[int, list[Message]] = {partition: [] for partition in range(PARTITIONS)}
    for message in messages:
        expected_by_partition[message.partition].append(message)
    for partition in range(PARTITIONS):
        expected = expected_by_partition[partition]
        records = records_by_partition.get(partition, [])
        for position, (message, record) in enumerate(zip(expected, records)):
            check_record(message, record, expected_offset=position)
        if len(records) != len(expected):
            raise ScenarioFailed(
                f"partition {partition}: consumed {len(records)} records, expected {len(expected)}")


def check_record(message: Message, record: ConsumedRecord, expected_offset: int) -> None:
    where = f"partition {record.partition} offset {record.offset} (message {message.index})"
    if record.partition != message.partition:
        raise ScenarioFailed(f"{where}: record is in partition {record.partition}, expected {message.partition}")
    if record.offset != expected_offset:
        raise ScenarioFailed(f"{where}: offset {record.offset}, expected {expected_offset}")
    if record.key != message.key:
        raise ScenarioFailed(f"{where}: key {describe_bytes(record.key)}, expected {describe_bytes(message.key)}")
    if record.value != message.value:
        raise ScenarioFailed(
            f"{where}: value {describe_bytes(record.value)}, expected {describe_bytes(message.value)}")
    if record.headers != message.headers:
        raise ScenarioFailed(f"{where}: headers {record.headers!r}, expected {message.headers!r}")
    if record.timestamp_ms != message.timestamp_ms:
        raise ScenarioFailed(f"{where}: timestamp {record.timestamp_ms}, expected {message.timestamp_ms}")
    if not record.timestamp_is_create_time:
        raise ScenarioFailed(f"{where}: timestamp type is not CreateTime")


# --- log-compaction (messages.md, "Log compaction") ---

LOG_COMPACTION_DEFAULT_COUNT = 3_000
LOG_COMPACTION_KEYS = 100
# Topic configs the runner creates the scenario's topic with: compaction only, and settings that let Apache
# Kafka clean within seconds (a segment rolls once its records span 100 ms; any dirty share is enough;
# tombstones may go 100 ms after cleaning). Skein takes the same names (segment.ms has no effect there).
LOG_COMPACTION_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "100",
}
# The roll records are produced this long after the last update was acknowledged, so that Kafka rolls its
# segment there (more than segment.ms later) and everything before them becomes cleanable.
LOG_COMPACTION_ROLL_DELAY_SECONDS = 1.0
# How long the driver keeps re-reading the topic for it to be compacted, and the pause between reads.
LOG_COMPACTION_WAIT_SECONDS = 60.0
LOG_COMPACTION_REREAD_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class CompactionRecord:
    """One record of the log-compaction scenario; value None is a tombstone."""
    partition: int
    key: bytes
    value: bytes | None


def log_compaction_key_index(seed: int, index: int) -> int:
    # Every block of 100 consecutive updates touches each of the 100 keys once, in an order that shifts
    # from block to block.
    return (index * 37 + (index // 100) * 11 + seed) % LOG_COMPACTION_KEYS


def log_compaction_update(seed: int, index: int) -> CompactionRecord:
    key_index = log_compaction_key_index(seed, index)
    value = None if (index * 13 + seed) % 10 == 0 else f"value-{index}".encode("ascii")
    return CompactionRecord(partition=key_index % PARTITIONS, key=f"key-{key_index}".encode("ascii"), value=value)


def log_compaction_updates(seed: int, count: int) -> list[CompactionRecord]:
    return [log_compaction_update(seed, index) for index in range(count)]


def log_compaction_roll_records() -> list[CompactionRecord]:
    """One per partition, produced LOG_COMPACTION_ROLL_DELAY_SECONDS after the updates: key and value `roll-{p}`."""
    return [CompactionRecord(partition, f"roll-{partition}".encode("ascii"), f"roll-{partition}".encode("ascii"))
            for partition in range(PARTITIONS)]


def check_log_compaction_deliveries(sent: list[CompactionRecord], delivered: list[tuple[int, int]]
                                    ) -> dict[int, list[tuple[int, bytes, bytes | None]]]:
    """sent[i] was acknowledged at delivered[i] = (partition, offset). Offsets in each partition must be 0, 1,
    2, ... in send order. Returns what each partition holds as produced: {partition: [(offset, key, value)]}."""
    produced: dict[int, list[tuple[int, bytes, bytes | None]]] = {partition: [] for partition in range(PARTITIONS)}
    for number, (record, (partition, offset)) in enumerate(zip(sent, delivered, strict=True)):
        if partition != record.partition:
            raise ScenarioFailed(f"record {number} (key {record.key!r}) acknowledged on partition {partition}, "
                                 f"sent to {record.partition}")
        expected_offset = len(produced[partition])
        if offset != expected_offset:
            raise ScenarioFailed(f"record {number} (key {record.key!r}) acknowledged at offset {offset} of "
                                 f"partition {partition}, expected {expected_offset}")
        produced[partition].append((offset, record.key, record.value))
    return produced


def fold_by_key(records) -> dict[bytes, bytes]:
    """The table a compacted log stands for: the latest value of each key; a tombstone removes the key."""
    table: dict[bytes, bytes] = {}
    for _offset, key, value in records:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


def check_log_compaction(produced: dict[int, list[tuple[int, bytes, bytes | None]]],
                         consumed: dict[int, list[tuple[int, bytes | None, bytes | None]]]) -> str | None:
    """One read of the whole topic (every partition from its beginning to its high watermark) against what was
    produced. Raises ScenarioFailed for what compaction may never do: a record that is not the one produced at
    its offset, a record twice, a key's latest live record missing. Returns None when the topic is compacted
    (each key's latest record alone remains; a latest tombstone may remain or be gone; fewer records than
    produced), else a description of what is left to clean."""
    not_yet: list[str] = []
    for partition in range(PARTITIONS):
        by_offset = {offset: (key, value) for offset, key, value in produced[partition]}
        latest_offset = {key: offset for offset, key, _value in produced[partition]}
        records = consumed.get(partition, [])
        seen_offsets: set[int] = set()
        previous = -1
        for offset, key, value in records:
            where = f"partition {partition} offset {offset}"
            if offset <= previous:
                raise ScenarioFailed(f"{where}: returned after offset {previous} (out of order or twice)")
            previous = offset
            if offset not in by_offset:
                raise ScenarioFailed(f"{where}: no record was produced at this offset "
                                     f"(produced 0..{len(produced[partition]) - 1})")
            if (key, value) != by_offset[offset]:
                expected_key, expected_value = by_offset[offset]
                raise ScenarioFailed(f"{where}: key {describe_bytes(key)} value {describe_bytes(value)}, produced "
                                     f"key {describe_bytes(expected_key)} value {describe_bytes(expected_value)}")
            seen_offsets.add(offset)
        for key, offset in latest_offset.items():
            if by_offset[offset][1] is not None and offset not in seen_offsets:
                raise ScenarioFailed(f"partition {partition}: the latest record of key {key!r} (offset {offset}) "
                                     f"is missing: compaction removed a live key's latest value")
        stale = sorted(offset for offset, key, _value in records if latest_offset[key] != offset)
        if stale:
            not_yet.append(f"partition {partition}: {len(records)} of {len(produced[partition])} records left, "
                           f"{len(stale)} superseded (first at offsets {stale[:5]})")
            continue
        if fold_by_key(records) != fold_by_key(produced[partition]):
            raise ScenarioFailed(f"partition {partition}: the records left do not fold to the latest values")
        if len(records) >= len(produced[partition]):
            raise ScenarioFailed(f"partition {partition}: {len(records)} records left of "
                                 f"{len(produced[partition])} produced: nothing was compacted")
    return "; ".join(not_yet) if not_yet else None


# --- cluster (messages.md, "Cluster scenario") ---

CLUSTER_DEFAULT_COUNT = 3_000
CLUSTER_BROKERS = 3
CLUSTER_REPLICATION_FACTOR = 3
# Right after CreateTopics the brokers learn the new partitions a moment apart; the driver re-reads the
# metadata for this long before it fails the check.
CLUSTER_METADATA_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class PartitionInfo:
    """One partition as the client's metadata shows it: broker ids."""
    leader: int
    replicas: list[int]
    isr: list[int]


def check_cluster_metadata(bootstrap: str, brokers: dict[int, tuple[str, int]],
                           partitions: dict[int, PartitionInfo]) -> None:
    """The cluster checks of messages.md ("Cluster scenario", step 1). brokers: node id -> (host, port) as
    advertised; partitions: TOPIC's partitions by number. Raises ScenarioFailed with what is wrong."""
    if len(brokers) != CLUSTER_BROKERS:
        raise ScenarioFailed(f"metadata lists {len(brokers)} brokers, expected {CLUSTER_BROKERS}: {brokers}")
    endpoints = {(host, port) for host, port in brokers.values()}
    if len(endpoints) != CLUSTER_BROKERS:
        raise ScenarioFailed(f"brokers share an advertised address: {brokers}")
    host, _, port = bootstrap.rpartition(":")
    if (host, int(port)) not in endpoints:
        raise ScenarioFailed(f"the bootstrap address {bootstrap} is not a listed broker: {brokers}")
    if sorted(partitions) != list(range(PARTITIONS)):
        raise ScenarioFailed(f"topic has partitions {sorted(partitions)}, expected 0..{PARTITIONS - 1}")
    for number, info in sorted(partitions.items()):
        where = f"partition {number} (leader {info.leader}, replicas {info.replicas}, isr {info.isr})"
        if len(info.replicas) != CLUSTER_REPLICATION_FACTOR or len(set(info.replicas)) != len(info.replicas):
            raise ScenarioFailed(f"{where}: expected {CLUSTER_REPLICATION_FACTOR} distinct replicas")
        if not set(info.replicas) <= set(brokers):
            raise ScenarioFailed(f"{where}: a replica is not a listed broker {sorted(brokers)}")
        if sorted(info.isr) != sorted(info.replicas):
            raise ScenarioFailed(f"{where}: the in-sync replicas are not all the replicas")
        if info.leader not in info.replicas:
            raise ScenarioFailed(f"{where}: the leader is not a replica")
    leaders = [partitions[number].leader for number in range(PARTITIONS)]
    if len(set(leaders)) != PARTITIONS:
        raise ScenarioFailed(f"partition leaders {leaders}: expected every partition led by a different broker")
