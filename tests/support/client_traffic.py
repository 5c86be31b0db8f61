"""Traffic from stock clients, for recording the request frames they send (tests/test_hostile_input.py).

Each function drives one kind of client through a short, ordinary session against `bootstrap` and returns what
the caller needs to check later. They touch only the topics and groups they are given (or create under a
prefix), so destructive admin calls never reach the data the caller verifies afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   NewTopic, OffsetSpec, ResourceType)

from support.brokers import _die_with_parent
from support.java_programs import JAVA_LIBS
from support.kafka_clients import create_topic, unique_topic_name

CLIENT_TIMEOUT_SECONDS = 30
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


@dataclass(frozen=True)
class ProducedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


def produce_data(bootstrap: str, topics: list[str], records: int) -> list[ProducedRecord]:
    """`records` keyed records spread over `topics` and over one idempotent acks=all producer per codec;
    returns where each landed. Keys are unique, values differ in size."""
    produced: list[ProducedRecord] = []
    failures: list[str] = []

    def delivered(error, message):
        if error is not None:
            failures.append(str(error))
        else:
            produced.append(ProducedRecord(message.topic(), message.partition(), message.offset(), message.key(),
                                           message.value()))

    per_codec = -(-records // len(CODECS))
    count = 0
    for codec in CODECS:
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             "compression.type": codec, "linger.ms": 5, "batch.num.messages": 64})
        for i in range(min(per_codec, records - count)):
            key = f"{codec}-{i:05d}".encode()
            value = (f"{codec} record {i} " + "abcdefghij" * (i % 23)).encode()
            producer.produce(topics[count % len(topics)], key=key, value=value, on_delivery=delivered)
            producer.poll(0)
            count += 1
        remaining = producer.flush(CLIENT_TIMEOUT_SECONDS)
        if remaining:
            raise TimeoutError(f"{remaining} {codec} records not delivered within {CLIENT_TIMEOUT_SECONDS}s")
    if failures:
        raise KafkaException(f"{len(failures)} records failed: {failures[:3]}")
    return produced


def transactional_session(bootstrap: str, topic: str, group_id: str) -> None:
    """init, begin, produce, send_offsets_to_transaction, commit; then begin, produce, abort."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": unique_topic_name("hostile-txn"),
                         "linger.ms": 5})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False})
    try:
        producer.init_transactions(CLIENT_TIMEOUT_SECONDS)
        producer.begin_transaction()
        for i in range(10):
            producer.produce(topic, key=f"txn-{i}".encode(), value=b"committed")
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, 5)], consumer.consumer_group_metadata(),
                                             CLIENT_TIMEOUT_SECONDS)
        producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)
        producer.begin_transaction()
        for i in range(5):
            producer.produce(topic, key=f"txn-abort-{i}".encode(), value=b"aborted")
        producer.flush(CLIENT_TIMEOUT_SECONDS)
        producer.abort_transaction(CLIENT_TIMEOUT_SECONDS)
    finally:
        consumer.close()


def group_session(bootstrap: str, topic: str, group_id: str, protocol: str, messages: int = 50) -> int:
    """A consumer in a group (`protocol` "classic" or "consumer", KIP-848) reads `messages` messages, commits
    synchronously and leaves. Returns how many it read."""
    config = {"bootstrap.servers": bootstrap, "group.id": group_id, "group.protocol": protocol,
              "auto.offset.reset": "earliest", "enable.auto.commit": False}
    if protocol == "classic":
        config["session.timeout.ms"] = 6000
    consumer = Consumer(config)
    read = 0
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
        while read < messages and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            read += 1
            if read % 10 == 0 or read == messages:
                consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    if read < messages:
        raise TimeoutError(f"{protocol} group member read {read} of {messages} messages")
    return read


def admin_session(bootstrap: str, prefix: str, groups: list[str]) -> list[str]:
    """Create topics, describe and alter configs, create partitions, delete records, list and describe groups,
    list offsets, delete topics, all on topics named `prefix`-*. Returns the calls that failed (not fatal:
    the session exists to be recorded)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    failures: list[str] = []

    def call(name, action):
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - any client error is only reported
            failures.append(f"{name}: {error}")
            return None

    first, second = f"{prefix}-a", f"{prefix}-b"
    timeout = CLIENT_TIMEOUT_SECONDS
    call("create_topics", lambda: [f.result(timeout) for f in admin.create_topics(
        [NewTopic(first, 1, 1), NewTopic(second, 2, 1, config={"cleanup.policy": "compact"})]).values()])
    call("create_topics validate_only", lambda: [f.result(timeout) for f in admin.create_topics(
        [NewTopic(f"{prefix}-c", 4, 1)], validate_only=True).values()])
    topic_resource = ConfigResource(ResourceType.TOPIC, first)
    call("describe_configs", lambda: [f.result(timeout) for f in admin.describe_configs(
        [topic_resource, ConfigResource(ResourceType.BROKER, "1")]).values()])
    call("incremental_alter_configs", lambda: [f.result(timeout) for f in admin.incremental_alter_configs(
        [ConfigResource(ResourceType.TOPIC, first, incremental_configs=[
            ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET)])]).values()])
    call("alter_configs", lambda: [f.result(timeout) for f in admin.alter_configs(
        [ConfigResource(ResourceType.TOPIC, second, set_config={"min.cleanable.dirty.ratio": "0.3"})]).values()])
    call("create_partitions", lambda: [f.result(timeout) for f in admin.create_partitions(
        [NewPartitions(first, 3)]).values()])
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(10):
        producer.produce(first, key=str(i).encode(), value=b"to be deleted", partition=0)
    producer.flush(timeout)
    call("delete_records", lambda: [f.result(timeout) for f in admin.delete_records(
        [TopicPartition(first, 0, 5)]).values()])
    call("list_offsets", lambda: [f.result(timeout) for f in admin.list_offsets(
        {TopicPartition(first, 0): OffsetSpec.earliest(), TopicPartition(first, 1): OffsetSpec.latest(),
         TopicPartition(first, 2): OffsetSpec.for_timestamp(int(time.time() * 1000) - 60_000)}).values()])
    call("list_consumer_groups", lambda: admin.list_consumer_groups().result(timeout))
    call("describe_consumer_groups", lambda: [f.result(timeout) for f in admin.describe_consumer_groups(
        groups).values()])
    call("list_consumer_group_offsets", lambda: [f.result(timeout) for f in admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(groups[0])]).values()])
    call("describe_cluster", lambda: admin.describe_cluster().result(timeout))
    call("list_topics", lambda: admin.list_topics(timeout=timeout))
    call("delete_topics", lambda: [f.result(timeout) for f in admin.delete_topics([first, second]).values()])
    return failures


def kafka_python_session(bootstrap: str, topic: str, group_id: str, messages: int = 20) -> int:
    """kafka-python: a gzip producer sends `messages` records, a group consumer reads them and commits."""
    from kafka import KafkaConsumer, KafkaProducer  # from .tools/venv

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip",
                             request_timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000)
    try:
        for i in range(messages):
            producer.send(topic, key=f"kp-{i}".encode(), value=f"kafka-python {i}".encode())
        producer.flush(timeout=CLIENT_TIMEOUT_SECONDS)
    finally:
        producer.close(timeout=10)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group_id, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=CLIENT_TIMEOUT_SECONDS * 1000)
    read = 0
    try:
        for _ in consumer:
            read += 1
            if read >= messages:
                break
        consumer.commit()
    finally:
        consumer.close()
    if read < messages:
        raise TimeoutError(f"kafka-python consumer read {read} of {messages} records")
    return read


def java_available() -> bool:
    return shutil.which("javac") is not None and (JAVA_LIBS / "kafka-clients-4.3.1.jar").is_file()


def java_session(bootstrap: str, topic: str, prefix: str, timeout: float = 120) -> None:
    """kafka-clients (Java): a transactional producer (one commit, one abort; tests/support/java/TxnProducer.java)
    and the admin operations of tests/support/java/AdminOps.java, on topics named `prefix`-*."""
    from support.java_programs import java_program_command

    for command in (java_program_command("TxnProducer") + [bootstrap, topic, unique_topic_name("java-txn"), "1", "1"],
                    java_program_command("AdminOps") + [bootstrap, prefix]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        if result.returncode != 0:
            raise RuntimeError(f"{command[-6:]} exited {result.returncode}\n{result.stdout}{result.stderr}")


def create_topics(bootstrap: str, names: list[str], partitions: int, config: dict | None = None) -> list[str]:
    return [create_topic(bootstrap, name, partitions, config) for name in names]
