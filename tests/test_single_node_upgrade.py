"""A data directory is tied to its cluster and node, and one written before the metadata quorum is upgraded.

- Before the quorum, a Skein data directory held only the partition storage (`data.dir/rocksdb`: topics, their
  ids, configs, records, the cluster id and the producer-id high mark). Started on such a directory, Skein
  brings its topics into the new metadata log with the same ids and configs, keeps the cluster id, serves every
  record, and hands out producer ids above the ones given before. The directory is made by running Skein and
  removing `data.dir/metadata` afterwards: the partition storage format did not change.
- A data directory formatted for one node id refuses to start under another (the process exits non-zero and
  says why), as Kafka refuses a `meta.properties` of another node.
"""

from __future__ import annotations

import shutil
import subprocess

from confluent_kafka import Producer, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from support.brokers import free_port
from support.frames import init_producer_id
from support.kafka_clients import create_topic, high_watermarks, read_partitions, unique_topic_name

RECORDS = 300
PARTITIONS = 3
CLIENT_TIMEOUT_SECONDS = 30
REFUSED_WITHIN_SECONDS = 60


def produce_idempotently(bootstrap: str, topic: str) -> None:
    """RECORDS records, record i to partition i % 3, by an idempotent producer."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(RECORDS):
        producer.produce(topic, value=f"record-{i}".encode(), partition=i % PARTITIONS)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0


def values(bootstrap: str, topic: str) -> dict[int, list[bytes]]:
    return {p: [m.value() for m in messages] for p, messages in read_partitions(bootstrap, topic, PARTITIONS).items()}


def producer_id(bootstrap: str) -> int:
    error_code, producer_id, _epoch = init_producer_id(bootstrap, correlation_id=7)
    assert error_code == 0, error_code
    return producer_id


def describe(bootstrap: str, topic: str) -> tuple[str, str, str]:
    """(cluster id, topic id, retention.ms of the topic) as a client sees them."""
    client = AdminClient({"bootstrap.servers": bootstrap})
    metadata = client.list_topics(timeout=CLIENT_TIMEOUT_SECONDS)
    topic_id = client.describe_topics(TopicCollection([topic]))[topic].result(timeout=CLIENT_TIMEOUT_SECONDS).topic_id
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = client.describe_configs([resource])[resource].result(timeout=CLIENT_TIMEOUT_SECONDS)
    return metadata.cluster_id, str(topic_id), configs["retention.ms"].value


def test_a_data_directory_from_before_the_quorum_is_upgraded_in_place(start_broker):
    broker = start_broker("skein")
    topic = unique_topic_name("legacy")
    create_topic(broker.bootstrap, topic, PARTITIONS, {"retention.ms": "86400000"})
    produce_idempotently(broker.bootstrap, topic)
    before_records = values(broker.bootstrap, topic)
    before = describe(broker.bootstrap, topic)
    ids_before = producer_id(broker.bootstrap)
    assert broker.stop() == broker.clean_exit_code, broker.log_tail()

    metadata_dir = broker.data_dir / "metadata"
    assert (metadata_dir).is_dir() and (broker.data_dir / "rocksdb").is_dir()
    shutil.rmtree(metadata_dir)  # what a data directory of a Skein before the quorum holds: the partitions alone

    broker.start()
    assert "single-node data directory upgraded" in broker.log_tail(200), broker.log_tail()
    assert describe(broker.bootstrap, topic) == before
    assert high_watermarks(broker.bootstrap, topic) == [RECORDS // PARTITIONS] * PARTITIONS
    assert values(broker.bootstrap, topic) == before_records
    # Producer ids continue above every id handed out before the upgrade.
    assert producer_id(broker.bootstrap) > ids_before
    # The topic takes writes again, and new topics coexist with the imported one.
    produce_idempotently(broker.bootstrap, topic)
    assert [len(v) for v in values(broker.bootstrap, topic).values()] == [2 * RECORDS // PARTITIONS] * PARTITIONS
    fresh = unique_topic_name("after-upgrade")
    create_topic(broker.bootstrap, fresh, PARTITIONS)
    assert high_watermarks(broker.bootstrap, fresh) == [0] * PARTITIONS

    # Restarted once more (metadata directory present now): still the same.
    assert broker.stop() == broker.clean_exit_code, broker.log_tail()
    broker.start()
    assert describe(broker.bootstrap, topic) == before
    assert high_watermarks(broker.bootstrap, topic) == [2 * RECORDS // PARTITIONS] * PARTITIONS


def test_a_data_directory_refuses_another_node_id(start_broker):
    broker = start_broker("skein")
    assert broker.stop() == broker.clean_exit_code, broker.log_tail()
    command = [
        str(broker.binary),
        "--listen", f"127.0.0.1:{free_port()}",
        "--data-dir", str(broker.data_dir),
        "--metrics-listen", f"127.0.0.1:{free_port()}",
        "--node-id", "2",
    ]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=REFUSED_WITHIN_SECONDS)
    assert result.returncode != 0, result.stderr
    assert "node" in result.stderr and "2" in result.stderr and "1" in result.stderr, result.stderr
    # The directory still works for its own node.
    broker.start()
    assert AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).brokers.keys() == {1}
