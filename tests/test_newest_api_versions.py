"""The newest versions of Produce, Fetch, Metadata, ListOffsets and DescribeLogDirs that Apache Kafka 4.3.1
serves, each sent raw at exactly that version (kafka-python's protocol classes, built from Kafka 4.3's message
schemas, encode the requests and decode the answers; a stock client would pick its own version), against Apache
Kafka (the reference) and Skein, one broker per kind for the module, with the same assertions: what Kafka answers.

Shown for both brokers, on a one-partition topic:
- ApiVersions advertises exactly Produce max 13, Fetch max 18, Metadata max 13, ListOffsets max 11 and
  DescribeLogDirs max 5.
- Produce v13 (KIP-516: topics named by topic id, not name), acks=-1: two produces to the topic by its id (the id
  confluent-kafka's AdminClient describes) get base offsets 0 then 1, error 0, log start offset 0, and a response
  naming the topic by that id (v13 responses carry no topic name); a confluent-kafka consumer reads the two records
  back byte for byte (key, value, header, timestamp). A Produce v13 to a random topic id no topic has, for
  partitions 0 and 1, gets UNKNOWN_TOPIC_ID (100) for each partition, with base offset -1, log start offset -1 and
  no error message, the response naming the sent id.
- Metadata v13: top-level error code 0 (the field v13 adds), the topic listed with error 0 and its id, partition 0
  led by node 1 at leader epoch 0.
- ListOffsets v11 (KIP-1023): timestamp -6 (EARLIEST_PENDING_UPLOAD) without tiered storage answers offset -1,
  timestamp -1, leader epoch -1, error 0; timestamp -1 (latest) answers offset 2 after the two produces (timestamp
  -1, leader epoch 0).
- Fetch v18 by topic id from offset 0: error 0, high watermark 2 (and last stable offset 2, log start offset 0),
  and the records are the two batches as produced (one record each), byte for byte from the magic byte on, with
  base offsets 0 and 1 and the leader's epoch 0 filled in.
- DescribeLogDirs v5: one log dir, error 0, listing the topic's partition 0 (offset lag 0, not a future replica,
  its size the bytes of the two batches), with is_cordoned false (the field v5 adds).
"""

from __future__ import annotations

import socket
import struct
import time
import uuid

import pytest
from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient
from kafka.protocol.admin.cluster import DescribeLogDirsRequest, DescribeLogDirsResponse
from kafka.protocol.consumer.fetch import FetchRequest, FetchResponse
from kafka.protocol.consumer.offsets import ListOffsetsRequest, ListOffsetsResponse
from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse

from support.brokers import BROKER_KINDS, make_broker, skein_binary
from support.frames import (ResponseReader, _zigzag_varint, api_versions_request, parse_api_versions_response,
                            record_batch)
from support.kafka_clients import CLIENT_TIMEOUT_SECONDS, create_topic, read_partitions, unique_topic_name

REQUEST_TIMEOUT_SECONDS = 30

# Api keys and the newest version of each that Kafka 4.3.1 serves.
PRODUCE, FETCH, LIST_OFFSETS, METADATA, DESCRIBE_LOG_DIRS = 0, 1, 2, 3, 35
NEWEST_VERSIONS = {PRODUCE: 13, FETCH: 18, METADATA: 13, LIST_OFFSETS: 11, DESCRIBE_LOG_DIRS: 5}

UNKNOWN_TOPIC_ID = 100
EARLIEST_PENDING_UPLOAD = -6
LATEST = -1

# The two produced records: (key, value, header key, header value), one record batch each.
RECORDS = [(b"key-0", b"value-0 \x00\xff", "origin", b"first"), (b"key-1", b"value-1 \x01\xfe", "origin", b"second")]


# ------------------------------------------------------------------------------------------ wire helpers


def send(bootstrap: str, request, response_class, version: int, correlation_id: int):
    """Sends `request` at `version` on a fresh connection and decodes the answer at the same version."""
    request.with_header(correlation_id=correlation_id, client_id="skein-newest-versions")
    host, port = bootstrap.split(":")
    deadline = time.monotonic() + REQUEST_TIMEOUT_SECONDS
    with socket.create_connection((host, int(port)), timeout=REQUEST_TIMEOUT_SECONDS) as sock:
        sock.sendall(request.encode(version=version, header=True, framed=True))
        payload = ResponseReader(sock).next_response(deadline)
    assert payload is not None, f"{bootstrap} closed the connection instead of answering {request.name} v{version}"
    response = response_class.decode(payload, version=version, header=True)
    assert response.header.correlation_id == correlation_id
    return response


def record(offset_delta: int, key: bytes, value: bytes, header_key: str, header_value: bytes) -> bytes:
    """One record of a v2 batch (attributes 0, timestamp delta 0) with one header."""
    body = b"\x00" + _zigzag_varint(0) + _zigzag_varint(offset_delta)
    body += _zigzag_varint(len(key)) + key + _zigzag_varint(len(value)) + value
    body += _zigzag_varint(1) + _zigzag_varint(len(header_key)) + header_key.encode()
    body += _zigzag_varint(len(header_value)) + header_value
    return _zigzag_varint(len(body)) + body


def batches(records: bytes) -> list[tuple[int, int, bytes]]:
    """(base offset, partition leader epoch, the bytes from the magic byte to the end) of each batch in a records
    field."""
    out = []
    position = 0
    while position < len(records):
        base_offset, batch_length, leader_epoch = struct.unpack_from(">qii", records, position)
        end = position + 12 + batch_length
        assert end <= len(records), f"truncated batch at {position}: {records.hex()}"
        out.append((base_offset, leader_epoch, records[position + 16:end]))
        position = end
    return out


def uuid_of(topic_id) -> uuid.UUID:
    """A confluent-kafka Uuid as a Python UUID."""
    return uuid.UUID(bytes=topic_id.get_most_significant_bits().to_bytes(8, "big", signed=True)
                     + topic_id.get_least_significant_bits().to_bytes(8, "big", signed=True))


def produce_v13(bootstrap: str, topic_id: uuid.UUID, partitions: dict[int, bytes], correlation_id: int):
    """Produce v13 (acks=-1) of one record batch to each of `partitions` of the topic with id `topic_id`."""
    T = ProduceRequest.TopicProduceData
    request = ProduceRequest(
        transactional_id=None, acks=-1, timeout_ms=REQUEST_TIMEOUT_SECONDS * 1000,
        topic_data=[T(topic_id=topic_id, partition_data=[
            T.PartitionProduceData(index=index, records=records) for index, records in partitions.items()])])
    return send(bootstrap, request, ProduceResponse, 13, correlation_id)


# ------------------------------------------------------------------------------------------ fixtures


class Scenario:
    """The module's broker, its topic (one partition) with its id, and the two Produce v13 answers."""

    def __init__(self, broker):
        self.broker = broker
        self.bootstrap = broker.bootstrap
        self.topic = create_topic(self.bootstrap, unique_topic_name("newest-versions"), partitions=1)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        described = admin.describe_topics(TopicCollection([self.topic]), request_timeout=CLIENT_TIMEOUT_SECONDS)
        self.topic_id = uuid_of(described[self.topic].result(CLIENT_TIMEOUT_SECONDS).topic_id)
        self.timestamp_ms = int(time.time() * 1000)
        self.batches = [record_batch(record(0, *fields), 1, timestamp_ms=self.timestamp_ms + index)
                        for index, fields in enumerate(RECORDS)]
        self.produced = [produce_v13(self.bootstrap, self.topic_id, {0: batch}, 0x1300 + index)
                         for index, batch in enumerate(self.batches)]


@pytest.fixture(scope="module", params=BROKER_KINDS)
def scenario(request):
    if request.param == "skein" and not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
    with make_broker(request.param) as started:
        yield Scenario(started)


# ------------------------------------------------------------------------------------------ tests


def test_api_versions_advertise_the_newest_versions(scenario):
    host, port = scenario.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=REQUEST_TIMEOUT_SECONDS) as sock:
        sock.sendall(api_versions_request(0xA11))
        payload = ResponseReader(sock).next_response(time.monotonic() + REQUEST_TIMEOUT_SECONDS)
    error_code, ranges = parse_api_versions_response(payload)
    assert error_code == 0
    assert {key: ranges.get(key, (None, None))[1] for key in NEWEST_VERSIONS} == NEWEST_VERSIONS, ranges


def partition_answer(partition) -> tuple:
    return (partition.index, partition.error_code, partition.base_offset, partition.log_append_time_ms,
            partition.log_start_offset, partition.record_errors, partition.error_message)


def test_produce_v13_names_the_topic_by_id(scenario):
    for expected_offset, response in enumerate(scenario.produced):
        assert [topic.topic_id for topic in response.responses] == [scenario.topic_id], response
        assert [partition_answer(p) for p in response.responses[0].partition_responses] == \
            [(0, 0, expected_offset, -1, 0, [], None)], response

    messages = read_partitions(scenario.bootstrap, scenario.topic, partitions=1)[0]
    read = [(m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in messages]
    assert read == [(index, key, value, [(header_key, header_value)], scenario.timestamp_ms + index)
                    for index, (key, value, header_key, header_value) in enumerate(RECORDS)]


def test_produce_v13_to_an_unknown_topic_id(scenario):
    unknown_id = uuid.uuid4()
    response = produce_v13(scenario.bootstrap, unknown_id, {0: scenario.batches[0], 1: scenario.batches[1]}, 0x1310)
    assert [topic.topic_id for topic in response.responses] == [unknown_id], response
    # Kafka answers the partitions in no fixed order.
    answers = sorted(partition_answer(p) for p in response.responses[0].partition_responses)
    assert answers == [(0, UNKNOWN_TOPIC_ID, -1, -1, -1, [], None), (1, UNKNOWN_TOPIC_ID, -1, -1, -1, [], None)], \
        response


def test_metadata_v13(scenario):
    T = MetadataRequest.MetadataRequestTopic
    request = MetadataRequest(topics=[T(topic_id=None, name=scenario.topic)], allow_auto_topic_creation=False,
                              include_topic_authorized_operations=False)
    response = send(scenario.bootstrap, request, MetadataResponse, 13, 0x0313)
    assert response.error_code == 0, response
    assert [(t.error_code, t.name, t.topic_id, t.is_internal) for t in response.topics] == \
        [(0, scenario.topic, scenario.topic_id, False)], response
    partitions = response.topics[0].partitions
    assert [(p.error_code, p.partition_index, p.leader_id, p.leader_epoch, p.replica_nodes, p.isr_nodes,
             p.offline_replicas) for p in partitions] == [(0, 0, 1, 0, [1], [1], [])], response


def list_offsets_v11(scenario, timestamp: int, correlation_id: int):
    T = ListOffsetsRequest.ListOffsetsTopic
    request = ListOffsetsRequest(
        replica_id=-1, isolation_level=0, timeout_ms=REQUEST_TIMEOUT_SECONDS * 1000,
        topics=[T(name=scenario.topic, partitions=[
            T.ListOffsetsPartition(partition_index=0, current_leader_epoch=-1, timestamp=timestamp)])])
    response = send(scenario.bootstrap, request, ListOffsetsResponse, 11, correlation_id)
    assert [t.name for t in response.topics] == [scenario.topic], response
    return [(p.partition_index, p.error_code, p.offset, p.timestamp, p.leader_epoch)
            for p in response.topics[0].partitions]


def test_list_offsets_v11_earliest_pending_upload_and_latest(scenario):
    assert list_offsets_v11(scenario, EARLIEST_PENDING_UPLOAD, 0x0211) == [(0, 0, -1, -1, -1)]
    assert list_offsets_v11(scenario, LATEST, 0x0212) == [(0, 0, 2, -1, 0)]


def test_fetch_v18_by_topic_id(scenario):
    T = FetchRequest.FetchTopic
    request = FetchRequest(
        max_wait_ms=500, min_bytes=1, max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
        topics=[T(topic_id=scenario.topic_id, partitions=[
            T.FetchPartition(partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
                             log_start_offset=-1, partition_max_bytes=1 << 20)])],
        forgotten_topics_data=[], rack_id="")
    response = send(scenario.bootstrap, request, FetchResponse, 18, 0x0118)
    assert (response.error_code, response.session_id) == (0, 0), response
    assert [t.topic_id for t in response.responses] == [scenario.topic_id], response
    [partition] = response.responses[0].partitions
    assert (partition.partition_index, partition.error_code, partition.high_watermark, partition.last_stable_offset,
            partition.log_start_offset) == (0, 0, 2, 2, 0), response
    assert batches(partition.records) == [(offset, 0, batch[16:]) for offset, batch in enumerate(scenario.batches)]


def test_describe_log_dirs_v5(scenario):
    T = DescribeLogDirsRequest.DescribableLogDirTopic
    request = DescribeLogDirsRequest(topics=[T(topic=scenario.topic, partitions=[0])])
    response = send(scenario.bootstrap, request, DescribeLogDirsResponse, 5, 0x2305)
    assert response.error_code == 0, response
    [result] = response.results
    assert (result.error_code, result.is_cordoned) == (0, False), response
    assert result.log_dir, response
    assert result.total_bytes > 0 and 0 <= result.usable_bytes <= result.total_bytes, response
    assert [(t.name, [(p.partition_index, p.partition_size, p.offset_lag, p.is_future_key) for p in t.partitions])
            for t in result.topics] == \
        [(scenario.topic, [(0, sum(len(batch) for batch in scenario.batches), 0, False)])], response
