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
