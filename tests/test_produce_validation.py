"""Produce validation of compacted topics and of record timestamps, and the ACL APIs without an authorizer, each run
against Apache Kafka (the reference) and Skein with confluent-kafka and kafka-python.

* A record without a key cannot go to a topic whose cleanup.policy includes `compact`: the broker refuses the
  whole batch with INVALID_RECORD and, from Produce v8 (KIP-467), names each keyless record by its index in the
  batch. Clients read those record errors: the keyless records fail with INVALID_RECORD (kafka-python: with the
  broker's per-record message), the batch's other records with librdkafka's _INVALID_DIFFERENT_RECORD (kafka-python:
  a plain KafkaError). Nothing of the batch is written. A keyless record to a topic that is not compacted is taken.
* A record whose timestamp is further in the past than the topic's `message.timestamp.before.max.ms` or further
  ahead than its `message.timestamp.after.max.ms` (one hour by default) fails its batch with INVALID_TIMESTAMP and a
  record error naming it; the batch's other records fail as above, and nothing is written.
* With no authorizer configured, DescribeAcls, CreateAcls and DeleteAcls are served (in the same versions) and
  answered SECURITY_DISABLED with Kafka's message ("No Authorizer is configured on the broker" at the top level
  for DescribeAcls; "No Authorizer is configured." per creation for CreateAcls, per filter for DeleteAcls).
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType)
from kafka import KafkaAdminClient, KafkaProducer
from kafka import errors as kafka_python_errors
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern,
                         ResourcePatternFilter)
from kafka.admin import ResourceType as KafkaPythonResourceType

from support.frames import supported_versions
from support.kafka_clients import high_watermarks

CLIENT_TIMEOUT_SECONDS = 30
SECURITY_DISABLED = 54
# Apache Kafka 4.3's messages: DescribeAcls words it differently from CreateAcls and DeleteAcls.
NO_AUTHORIZER_DESCRIBE = "No Authorizer is configured on the broker"
NO_AUTHORIZER = "No Authorizer is configured."
ACL_API_KEYS = {"DescribeAcls": 29, "CreateAcls": 30, "DeleteAcls": 31}
# Batches close after this, so the records a test sends together travel in one batch.
LINGER_MS = 200


def keyless_message(topic: str) -> str:
    return f"Compacted topic cannot accept message without key in topic partition {topic}-0"


def produce_with_confluent(bootstrap: str, topic: str, keys: list[bytes | None],
                           timestamps: list[int] | None = None) -> list[tuple[int | None, bytes | None]]:
    """Sends one record per key (with its timestamp, if given) to partition 0, all in one batch; returns (error code
    or None, key) per record."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": LINGER_MS, "enable.idempotence": False})
    reports: dict[int, tuple[int | None, bytes | None]] = {}

    def report(index):
        return lambda err, msg: reports.__setitem__(index, (err.code() if err else None, msg.key()))

    for index, key in enumerate(keys):
        producer.produce(topic, key=key, value=f"value-{index}".encode(), partition=0, on_delivery=report(index),
                         timestamp=timestamps[index] if timestamps else 0)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0, "records left undelivered"
    return [reports[index] for index in range(len(keys))]


def produce_with_kafka_python(bootstrap: str, topic: str, keys: list[bytes | None],
                              timestamps: list[int] | None = None) -> list[BaseException | int]:
    """Sends one record per key (with its timestamp, if given) to partition 0, all in one batch; returns the offset
    or the exception per record."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=LINGER_MS, retries=0)
    try:
        futures = [producer.send(topic, key=key, value=b"value", partition=0,
                                 timestamp_ms=timestamps[index] if timestamps else None)
                   for index, key in enumerate(keys)]
        producer.flush(CLIENT_TIMEOUT_SECONDS)
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.get(CLIENT_TIMEOUT_SECONDS).offset)
            except kafka_python_errors.KafkaError as err:
                outcomes.append(err)
        return outcomes
    finally:
        producer.close(CLIENT_TIMEOUT_SECONDS)


# ------------------------------------------------------------------------------------------ compacted topics

@pytest.mark.parametrize("policy", ["compact", "compact,delete"])
def test_a_compacted_topic_refuses_a_batch_with_records_without_a_key(broker, new_topic, policy):
    topic = new_topic(broker, partitions=1, config={"cleanup.policy": policy})
    assert produce_with_confluent(broker.bootstrap, topic, [b"k0"]) == [(None, b"k0")]

    reports = produce_with_confluent(broker.bootstrap, topic, [None, b"k1", None])
    assert reports == [(KafkaError.INVALID_RECORD, None), (KafkaError._INVALID_DIFFERENT_RECORD, b"k1"),
                       (KafkaError.INVALID_RECORD, None)]
    assert high_watermarks(broker.bootstrap, topic, 1) == [1], "a record of the refused batch was written"

    outcomes = produce_with_kafka_python(broker.bootstrap, topic, [b"k2", None, None, b"k3"])
    kinds = [type(outcome) for outcome in outcomes]
    assert kinds == [kafka_python_errors.KafkaError, kafka_python_errors.InvalidRecordError,
                     kafka_python_errors.InvalidRecordError, kafka_python_errors.KafkaError], outcomes
    # kafka-python raises a keyless record's error with the broker's message for that record.
    assert [str(outcome.args[0]) for outcome in outcomes[1:3]] == [keyless_message(topic)] * 2, outcomes
    assert high_watermarks(broker.bootstrap, topic, 1) == [1], "a record of the refused batch was written"

    # Keyed records still go in, right after the first.
    assert produce_with_kafka_python(broker.bootstrap, topic, [b"k4", b"k5"]) == [1, 2]
    assert high_watermarks(broker.bootstrap, topic, 1) == [3]


def test_a_topic_that_is_not_compacted_takes_records_without_a_key(broker, new_topic):
    topic = new_topic(broker, partitions=1, config={"cleanup.policy": "delete"})
    assert produce_with_confluent(broker.bootstrap, topic, [None, b"k", None]) == [(None, None), (None, b"k"),
                                                                                    (None, None)]
    assert high_watermarks(broker.bootstrap, topic, 1) == [3]


# ------------------------------------------------------------------------------------------ timestamps

HOUR_MS = 3_600_000


def test_records_with_timestamps_out_of_bounds_are_refused_with_their_batch(broker, new_topic):
    """message.timestamp.before.max.ms (set here) and message.timestamp.after.max.ms (default: one hour): a batch
    holding a record outside them is refused with INVALID_TIMESTAMP and a record error per such record; nothing of
    it is written."""
    topic = new_topic(broker, partitions=1, config={"message.timestamp.before.max.ms": HOUR_MS})
    now = int(time.time() * 1000)
    reports = produce_with_confluent(broker.bootstrap, topic, [b"now", b"ahead", b"behind"],
                                     [now, now + 2 * HOUR_MS, now - 2 * HOUR_MS])
    # librdkafka reports the refused records as INVALID_TIMESTAMP or INVALID_RECORD and the batch's other record as
    # _INVALID_DIFFERENT_RECORD or the batch's error, from one run to the next against Apache Kafka alike.
    assert reports[0] in [(KafkaError._INVALID_DIFFERENT_RECORD, b"now"), (KafkaError.INVALID_TIMESTAMP, b"now")], \
        reports
    refused = {KafkaError.INVALID_TIMESTAMP, KafkaError.INVALID_RECORD}
    assert [key for _, key in reports[1:]] == [b"ahead", b"behind"] and {code for code, _ in reports[1:]} <= refused, \
        reports
    assert high_watermarks(broker.bootstrap, topic, 1) == [0], "a record of the refused batch was written"

    outcomes = produce_with_kafka_python(broker.bootstrap, topic, [b"ahead", b"now"], [now + 3 * HOUR_MS, now])
    assert [type(outcome) for outcome in outcomes] == [kafka_python_errors.InvalidTimestampError,
                                                       kafka_python_errors.KafkaError], outcomes
    # kafka-python raises the refused record's error with the broker's message for it.
    assert str(outcomes[0].args[0]).startswith(f"Timestamp {now + 3 * HOUR_MS} of message with offset 0 is out of "
                                               f"range. The timestamp should be within ["), outcomes
    assert high_watermarks(broker.bootstrap, topic, 1) == [0], "a record of the refused batch was written"

    # Within the bounds, records go in.
    assert produce_with_kafka_python(broker.bootstrap, topic, [b"a", b"b"], [now - HOUR_MS // 2, now + HOUR_MS // 2]) \
        == [0, 1]


# ------------------------------------------------------------------------------------------ ACLs

def test_the_acl_apis_are_served_in_kafkas_versions(kafka, skein):
    ranges = {kind: supported_versions("127.0.0.1", broker.port) for kind, broker in
              [("kafka", kafka), ("skein", skein)]}
    for name, key in ACL_API_KEYS.items():
        assert key in ranges["kafka"], f"Kafka does not serve {name}"
        assert ranges["skein"].get(key) == ranges["kafka"][key], name


def test_acl_apis_answer_security_disabled_to_confluent_kafka(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    match_any = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                 AclPermissionType.ANY)
    # librdkafka reports no error for DescribeAcls' top-level SECURITY_DISABLED: it lists no bindings.
    assert admin.describe_acls(match_any, request_timeout=CLIENT_TIMEOUT_SECONDS).result(CLIENT_TIMEOUT_SECONDS) == []

    bindings = [AclBinding(ResourceType.TOPIC, name, ResourcePatternType.LITERAL, "User:alice", "*",
                           AclOperation.READ, AclPermissionType.ALLOW) for name in ("orders", "payments")]
    created = admin.create_acls(bindings, request_timeout=CLIENT_TIMEOUT_SECONDS)
    by_name = {binding.name: future for binding, future in created.items()}
    deleted = admin.delete_acls([match_any], request_timeout=CLIENT_TIMEOUT_SECONDS)
    for what, future in [*sorted(by_name.items()), ("delete", deleted[match_any])]:
        with pytest.raises(KafkaException) as refused:
            future.result(CLIENT_TIMEOUT_SECONDS)
        error = refused.value.args[0]
        assert (error.code(), error.str()) == (KafkaError.SECURITY_DISABLED, NO_AUTHORIZER), what


def test_acl_apis_answer_security_disabled_to_kafka_python(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000)
    try:
        match_any = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                              permission_type=ACLPermissionType.ANY,
                              resource_pattern=ResourcePatternFilter(KafkaPythonResourceType.ANY, None,
                                                                     ACLResourcePatternType.ANY))
        with pytest.raises(kafka_python_errors.SecurityDisabledError) as refused:
            admin.describe_acls(match_any)
        assert refused.value.errno == SECURITY_DISABLED
        assert str(refused.value.args[0]) == NO_AUTHORIZER_DESCRIBE

        acls = [ACL(principal="User:alice", host="*", operation=ACLOperation.READ,
                    permission_type=ACLPermissionType.ALLOW,
                    resource_pattern=ResourcePattern(KafkaPythonResourceType.TOPIC, name,
                                                     ACLResourcePatternType.LITERAL))
                for name in ("orders", "payments", "refunds")]
        # One result per creation.
        assert admin.create_acls(acls) == {"succeeded": [],
                                           "failed": [kafka_python_errors.SecurityDisabledError] * 3}
        # One result per filter, matching nothing.
        named = ACLFilter(principal="User:alice", host=None, operation=ACLOperation.ANY,
                          permission_type=ACLPermissionType.ANY,
                          resource_pattern=ResourcePatternFilter(KafkaPythonResourceType.TOPIC, "orders",
                                                                 ACLResourcePatternType.LITERAL))
        results = admin.delete_acls([match_any, named])
        assert [(matching, error) for _, matching, error in results] == [
            ([], kafka_python_errors.SecurityDisabledError)] * 2
    finally:
        admin.close()
