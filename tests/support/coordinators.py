"""Where Kafka places a consumer group's or a transactional id's coordinator, and where a broker says it is.

A group's state lives in the internal topic `__consumer_offsets`, a transactional id's in `__transaction_state`. Its
coordinator is the leader of partition Utils.abs(key.hashCode()) % partitions of that topic (Kafka's
GroupCoordinator.partitionFor and TransactionStateManager.partitionFor), hashCode being Java's String.hashCode().

- `java_string_hash`, `partition_for`: that placement, computed here.
- `distinguishing_id`: a fresh key whose partition under abs(hash) differs from the tempting hash & 0x7fffffff, so a
  placement check tells the two apart.
- `coordinator_of`: the leader of the key's partition from Metadata (partition count and leader as the cluster
  lists them).
- `find_coordinator`: a FindCoordinator request sent straight to a broker: the node it names.
- `agreed_coordinator`: the coordinator when those two agree.
- `describe_transaction`: a DescribeTransactions request sent straight to a transactional id's coordinator (the one
  FindCoordinator names): its state, producer and partitions.
- `list_transactions`: a ListTransactions request sent straight to one broker: the transactional ids it coordinates.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import struct
import time
import uuid

from confluent_kafka import KafkaError, KafkaException

from support.frames import (MalformedResponse, ResponseReader, _compact_string, _read_uvarint, _skip_tagged_fields,
                            _uvarint, frame, request_header)
from support.replication_checker import partition_states

OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_STATE_TOPIC = "__transaction_state"
# FindCoordinator's key types, and the internal topic holding each kind of key.
GROUP = 0
TRANSACTION = 1
INTERNAL_TOPICS = {GROUP: OFFSETS_TOPIC, TRANSACTION: TRANSACTION_STATE_TOPIC}
# FindCoordinator's api key, and the correlation id find_coordinator sends (any value; the answer must echo it).
FIND_COORDINATOR = 10
FIND_COORDINATOR_CORRELATION_ID = 0x0C00_4D17
# The same for DescribeTransactions (KIP-664; v0 is a flexible version).
DESCRIBE_TRANSACTIONS = 65
DESCRIBE_TRANSACTIONS_CORRELATION_ID = 0x0D0C_0065
# The same for ListTransactions (KIP-664; v0 is a flexible version).
LIST_TRANSACTIONS = 66
LIST_TRANSACTIONS_CORRELATION_ID = 0x0C1D_0066
INT_MIN = -(1 << 31)


def java_string_hash(text: str) -> int:
    """Java's String.hashCode(): s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(key: str, partitions: int) -> int:
    """Kafka's partitionFor: Utils.abs(key.hashCode()) % partitions (Utils.abs maps Integer.MIN_VALUE to 0)."""
    h = java_string_hash(key)
    return (0 if h == INT_MIN else abs(h)) % partitions


def distinguishing_id(prefix: str, partitions: int, partition: int | None = None,
                      rng: random.Random | None = None) -> str:
    """A fresh id whose Java hash is negative and whose partition under abs(hash) differs from the one under
    hash & 0x7fffffff, so that a placement check tells the two apart; in `partition` when given (not every partition
    can be told apart: with 6 partitions, 1 and 4 cannot). `rng` makes it reproducible (default: uuid4)."""
    for _ in range(100_000):
        suffix = f"{rng.getrandbits(48):012x}" if rng is not None else uuid.uuid4().hex[:12]
        key = f"{prefix}-{suffix}"
        h = java_string_hash(key)
        chosen = partition_for(key, partitions)
        if h < 0 and chosen != (h & 0x7FFFFFFF) % partitions and partition in (None, chosen):
            return key
    raise ValueError(f"no id for partition {partition} of {partitions} tells abs(hash) from hash & 0x7fffffff")


@dataclasses.dataclass(frozen=True)
class Coordinator:
    node_id: int  # the partition's leader (-1: none)
    topic: str
    partition: int
    partitions: int  # how many partitions Metadata lists for the topic


def coordinator_of(bootstrap: str, key: str, key_type: int = GROUP, timeout: float = 10) -> Coordinator | None:
    """The coordinator Kafka's placement gives `key` (a group id, or a transactional id with key_type TRANSACTION):
    the leader of its partition of the internal topic, from one Metadata answer (all topics asked for, so the
    request cannot create one). None while the topic is not listed (the first FindCoordinator for such a key creates
    it)."""
    topic = INTERNAL_TOPICS[key_type]
    states = partition_states(bootstrap, topic, timeout)
    if not states:
        return None
    partition = partition_for(key, len(states))
    state = states.get(partition)
    return Coordinator(state.leader if state is not None else -1, topic, partition, len(states))


def agreed_coordinator(bootstraps: list[str], key: str, key_type: int = GROUP) -> Coordinator | str:
    """The coordinator of `key` when Metadata's placement (coordinator_of, asked through all of `bootstraps`) and a
    FindCoordinator request (find_coordinator) name the same live broker; else why not."""
    placed = coordinator_of(",".join(bootstraps), key, key_type)
    if placed is None or placed.node_id < 0:
        return f"Metadata: {placed}"
    named = find_coordinator(bootstraps, key, key_type)
    if named != placed.node_id:
        return f"Metadata: {placed}; FindCoordinator: broker {named}"
    return placed


def _request(address: tuple[str, int], body: bytes, timeout: float) -> bytes | None:
    """One request frame on a fresh connection: the response payload, or None when the broker closed it."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(frame(body))
        return ResponseReader(sock).next_response(deadline)


def find_coordinator_address(bootstraps: list[str], key: str, key_type: int = GROUP,
                             timeout: float = 5) -> tuple[int, str, int]:
    """FindCoordinator v2 (`key_type` GROUP or TRANSACTION) sent straight to each address in turn until one answers:
    the key's coordinator as (node id, host, port). Raises when none answers, or with the error the answer carries
    (COORDINATOR_NOT_AVAILABLE while no live broker leads the key's partition)."""
    body = request_header(FIND_COORDINATOR, 2, FIND_COORDINATOR_CORRELATION_ID, "skein-tests", flexible=False)
    encoded = key.encode()
    body += struct.pack(">h", len(encoded)) + encoded + struct.pack(">b", key_type)
    failures = []
    for bootstrap in bootstraps:
        host, port = bootstrap.rsplit(":", 1)
        try:
            payload = _request((host, int(port)), body, timeout)
        except (OSError, MalformedResponse) as error:
            failures.append(f"{bootstrap}: {error!r}")
            continue
        if payload is None:
            failures.append(f"{bootstrap}: closed the connection")
            continue
        # Response header v0 (correlation id), then throttle_time_ms, error_code, error_message (nullable string),
        # node_id, host, port.
        correlation_id, _throttle, error_code, message_length = struct.unpack_from(">iihh", payload)
        assert correlation_id == FIND_COORDINATOR_CORRELATION_ID, payload
        offset = 12 + max(message_length, 0)
        message = payload[12:offset].decode(errors="replace") if message_length > 0 else ""
        node_id, host_length = struct.unpack_from(">ih", payload, offset)
        offset += 6
        coordinator_host = payload[offset:offset + host_length].decode()
        coordinator_port = struct.unpack_from(">i", payload, offset + host_length)[0]
        if error_code != 0:
            raise KafkaException(KafkaError(error_code, f"FindCoordinator via {bootstrap}: {message}"))
        return node_id, coordinator_host, coordinator_port
    raise ConnectionError(f"FindCoordinator for {key!r} (key type {key_type}): no answer ({'; '.join(failures)})")


def find_coordinator(bootstraps: list[str], key: str, key_type: int = GROUP, timeout: float = 5) -> int:
    """The node id of the key's coordinator, as FindCoordinator names it (see find_coordinator_address)."""
    return find_coordinator_address(bootstraps, key, key_type, timeout)[0]


@dataclasses.dataclass(frozen=True)
class TransactionDescription:
    coordinator: int  # the node that answered
    state: str  # Kafka's names: "Empty", "Ongoing", "PrepareCommit", "CompleteCommit", ...
    producer_id: int
    producer_epoch: int
    start_time_ms: int  # of the current (or last) transaction; -1 when none
    partitions: dict  # {topic: [partition, ...]} in the transaction


def _compact_text(data: bytes, offset: int) -> tuple[str | None, int]:
    length, offset = _read_uvarint(data, offset)
    if length == 0:
        return None, offset
    return data[offset:offset + length - 1].decode(), offset + length - 1


def describe_transaction(bootstraps: list[str], transactional_id: str, timeout: float = 5) -> TransactionDescription:
    """DescribeTransactions v0 for one transactional id, sent straight to its coordinator (FindCoordinator through
    `bootstraps`). Raises with the error the answer carries (e.g. NOT_COORDINATOR, TRANSACTIONAL_ID_NOT_FOUND)."""
    node_id, host, port = find_coordinator_address(bootstraps, transactional_id, TRANSACTION, timeout)
    body = request_header(DESCRIBE_TRANSACTIONS, 0, DESCRIBE_TRANSACTIONS_CORRELATION_ID, "skein-tests",
                          flexible=True)
    body += _uvarint(1 + 1) + _compact_string(transactional_id) + b"\x00"  # transactional_ids, no tagged fields
    payload = _request((host, port), body, timeout)
    if payload is None:
        raise ConnectionError(f"DescribeTransactions: broker {node_id} ({host}:{port}) closed the connection")
    # Response header v1 (correlation id, tagged fields), throttle_time_ms, transaction_states (compact array).
    correlation_id = struct.unpack_from(">i", payload)[0]
    assert correlation_id == DESCRIBE_TRANSACTIONS_CORRELATION_ID, payload
    offset = _skip_tagged_fields(payload, 4) + 4
    count, offset = _read_uvarint(payload, offset)
    assert count == 1 + 1, f"DescribeTransactions for one id answered {count - 1} states: {payload!r}"
    error_code = struct.unpack_from(">h", payload, offset)[0]
    _answered_id, offset = _compact_text(payload, offset + 2)
    state, offset = _compact_text(payload, offset)
    _timeout_ms, start_time_ms, producer_id, producer_epoch = struct.unpack_from(">iqqh", payload, offset)
    offset += 22
    if error_code != 0:
        raise KafkaException(KafkaError(error_code,
                                        f"DescribeTransactions of {transactional_id!r} on broker {node_id}"))
    partitions = {}
    topics, offset = _read_uvarint(payload, offset)
    for _ in range(max(topics - 1, 0)):
        topic, offset = _compact_text(payload, offset)
        numbers, offset = _read_uvarint(payload, offset)
        partitions[topic] = list(struct.unpack_from(f">{max(numbers - 1, 0)}i", payload, offset))
        offset = _skip_tagged_fields(payload, offset + 4 * max(numbers - 1, 0))
    return TransactionDescription(node_id, state or "", producer_id, producer_epoch, start_time_ms, partitions)


@dataclasses.dataclass(frozen=True)
class ListedTransaction:
    transactional_id: str
    producer_id: int
    state: str  # Kafka's names, as in TransactionDescription


def list_transactions(bootstrap: str, timeout: float = 5) -> list[ListedTransaction]:
    """ListTransactions v0 (no filters) sent straight to one broker (`host:port`): the transactional ids it
    coordinates. Raises with the error the answer carries (e.g. COORDINATOR_LOAD_IN_PROGRESS), ConnectionError when
    the broker closed the connection."""
    host, port = bootstrap.rsplit(":", 1)
    body = request_header(LIST_TRANSACTIONS, 0, LIST_TRANSACTIONS_CORRELATION_ID, "skein-tests", flexible=True)
    body += _uvarint(0 + 1) + _uvarint(0 + 1) + b"\x00"  # no state filters, no producer id filters, no tagged fields
    payload = _request((host, int(port)), body, timeout)
    if payload is None:
        raise ConnectionError(f"ListTransactions: {bootstrap} closed the connection")
    # Response header v1 (correlation id, tagged fields), throttle_time_ms, error_code, unknown_state_filters (compact
    # array of compact strings), transaction_states (compact array), tagged fields.
    correlation_id = struct.unpack_from(">i", payload)[0]
    assert correlation_id == LIST_TRANSACTIONS_CORRELATION_ID, payload
    offset = _skip_tagged_fields(payload, 4) + 4
    error_code = struct.unpack_from(">h", payload, offset)[0]
    count, offset = _read_uvarint(payload, offset + 2)
    for _ in range(max(count - 1, 0)):
        _unknown_filter, offset = _compact_text(payload, offset)
    listed = []
    count, offset = _read_uvarint(payload, offset)
    for _ in range(max(count - 1, 0)):
        transactional_id, offset = _compact_text(payload, offset)
        producer_id = struct.unpack_from(">q", payload, offset)[0]
        state, offset = _compact_text(payload, offset + 8)
        offset = _skip_tagged_fields(payload, offset)
        listed.append(ListedTransaction(transactional_id or "", producer_id, state or ""))
    if error_code != 0:
        raise KafkaException(KafkaError(error_code, f"ListTransactions on {bootstrap}"))
    return listed
