"""Avro records through a schema registry that keeps its schemas in Kafka, against Apache Kafka (the reference) and
Skein, with the same assertions.

Confluent's Schema Registry and Karapace store every schema version as a record of one compacted, single-partition
topic (`_schemas`), written with acks=all, and rebuild their ids and versions by reading that topic back at start;
a write is answered only once the registry has read its own record back. Neither can be installed here, so the
registry is support.schema_registry: a Python HTTP server in its own process that serves the part of Confluent's
REST API that confluent-kafka's SchemaRegistryClient, AvroSerializer and AvroDeserializer use, with that storage (an
idempotent producer, a reader from the beginning of the topic) and BACKWARD compatibility. Its state is only ever
changed by its reader of `_schemas`, so what its GET endpoints answer is what it read from the broker.

The scenario (test_avro_schema_evolution_survives_a_registry_kill):
- The registry creates `_schemas` (absent from the fresh broker): one partition, one replica, cleanup.policy=compact.
- An AvroSerializer with auto.register.schemas registers Payment v1 under `<topic>-value` (the subject of the topic
  name strategy, which confluent-kafka's default strategy falls back to when the registry has no associations API)
  and produces V1_RECORDS records; v2 adds a field with a default, is BACKWARD compatible (the compatibility
  endpoint says so) and is registered the same way with the next id; V2_RECORDS more are produced with it.
- A third schema adding a field without a default is refused: 409 with error_code 409 through the serializer and
  the raw REST call, nothing written to `_schemas`, the subject still at version 2.
- Each record's raw value is Confluent's wire format: magic byte 0, the 4-byte big-endian id of the schema it was
  written with, then the Avro body of exactly the record (decoded here with fastavro and that schema).
- An AvroDeserializer without a reader schema reads each record with the writer schema its id names (v1 records
  without the new field); one given v2 as reader schema fills in the field's default for v1 records.
- `_schemas` holds exactly one record per version, keys {"keytype":"SCHEMA","subject":..,"version":..,"magic":1}
  and values naming the subject, version, id and schema.
- The registry is killed with SIGKILL and started again: it reads `_schemas` back before serving, and its GET
  endpoints answer exactly what they answered before (subjects, versions, each version, `latest`, schemas by id);
  fresh clients (no cache) decode every record again; a serializer without auto-registration finds v2 by lookup;
  a new compatible v3 gets the next id and version 3 (the counters were rebuilt, not restarted), and a
  deserializer with use.latest.version reads every record with v3.
"""

from __future__ import annotations

import io
import json
import struct

import fastavro
import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from support.kafka_clients import create_topic, end_offsets, read_partitions, unique_topic_name
from support.schema_registry import SchemaRegistry

CLIENT_TIMEOUT_SECONDS = 30
SCHEMAS_TOPIC = "_schemas"
PARTITIONS = 3
V1_RECORDS = 12
V2_RECORDS = 12
V3_RECORDS = 4


def payment_schema(*extra_fields: dict) -> str:
    fields = [
        {"name": "id", "type": "long"},
        {"name": "amount", "type": "double"},
        {"name": "currency", "type": "string"},
        *extra_fields,
    ]
    return json.dumps({"type": "record", "name": "Payment", "namespace": "skein.test", "fields": fields}, indent=2)


CHANNEL = {"name": "channel", "type": "string", "default": "web"}
PRIORITY = {"name": "priority", "type": "int", "default": 0}
PAYMENT_V1 = payment_schema()
# BACKWARD compatible with v1: the added field has a default, so v2 reads what v1 wrote.
PAYMENT_V2 = payment_schema(CHANNEL)
# Not BACKWARD compatible with v2: the added field has no default.
PAYMENT_INCOMPATIBLE = payment_schema(CHANNEL, {"name": "region", "type": "string"})
PAYMENT_V3 = payment_schema(CHANNEL, PRIORITY)


def v1_record(number: int) -> dict:
    return {"id": number, "amount": number * 1.25, "currency": ["EUR", "USD", "JPY"][number % 3]}


def v2_record(number: int) -> dict:
    return {**v1_record(number), "channel": ["mobile", "api"][number % 2]}


def v3_record(number: int) -> dict:
    return {**v2_record(number), "priority": number}


def produce(bootstrap: str, topic: str, serializer, records: dict[str, dict]) -> None:
    """Produces each record (key: its text key) serialized by `serializer`, acks=all, and waits for every ack."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    failures = []
    for key, record in records.items():
        value = serializer(record, SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, key=key.encode(), value=value,
                         on_delivery=lambda error, message: failures.append(error) if error else None)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0, "records not acknowledged in time"
    assert failures == []


def raw_values(bootstrap: str, topic: str) -> dict[str, bytes]:
    """Every record of the topic, key -> raw value."""
    return {message.key().decode(): message.value()
            for messages in read_partitions(bootstrap, topic, PARTITIONS, CLIENT_TIMEOUT_SECONDS).values()
            for message in messages}


def decode_all(values: dict[str, bytes], topic: str, deserializer) -> dict[str, dict]:
    return {key: deserializer(value, SerializationContext(topic, MessageField.VALUE)) for key, value in values.items()}


def rest(registry: SchemaRegistry, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    """The registry's answer to one REST call: HTTP status and JSON body."""
    response = requests.request(method, f"{registry.url}{path}", json=body, timeout=CLIENT_TIMEOUT_SECONDS,
                                headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    return response.status_code, response.json()


def registry_snapshot(registry: SchemaRegistry, subject: str, ids: list[int]) -> dict:
    """What the registry's GET endpoints answer about the subject and the schema ids."""
    paths = ["/subjects", f"/subjects/{subject}/versions", f"/subjects/{subject}/versions/latest",
             *[f"/subjects/{subject}/versions/{version}" for version in (1, 2)],
             *[f"/schemas/ids/{schema_id}" for schema_id in ids],
             *[f"/schemas/ids/{schema_id}/versions" for schema_id in ids]]
    return {path: rest(registry, "GET", path) for path in paths}


def schemas_topic_records(bootstrap: str, subject: str) -> list[tuple[dict, dict]]:
    """The (key, value) JSON records of the subject in the schemas topic, in offset order."""
    messages = read_partitions(bootstrap, SCHEMAS_TOPIC, 1, CLIENT_TIMEOUT_SECONDS)[0]
    records = [(json.loads(message.key()), json.loads(message.value())) for message in messages]
    return [(key, value) for key, value in records if key.get("subject") == subject]


def same_schema(text: str, expected: str) -> bool:
    return json.loads(text) == json.loads(expected)


def test_avro_schema_evolution_survives_a_registry_kill(broker, tmp_path):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert SCHEMAS_TOPIC not in admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics
    with SchemaRegistry(broker.bootstrap, tmp_path) as registry:
        try:
            run_scenario(broker.bootstrap, admin, registry)
        except BaseException:
            print(registry.log_tail(120))
            raise


def run_scenario(bootstrap: str, admin: AdminClient, registry: SchemaRegistry) -> None:
    # -- the schemas topic the registry created: one partition, one replica, compacted
    schemas_topic = admin.list_topics(timeout=CLIENT_TIMEOUT_SECONDS).topics[SCHEMAS_TOPIC]
    assert schemas_topic.error is None
    assert list(schemas_topic.partitions) == [0]
    assert schemas_topic.partitions[0].replicas == [schemas_topic.partitions[0].leader]
    resource = ConfigResource(ConfigResource.Type.TOPIC, SCHEMAS_TOPIC)
    configs = admin.describe_configs([resource])[resource].result(timeout=CLIENT_TIMEOUT_SECONDS)
    assert configs["cleanup.policy"].value == "compact"

    topic = create_topic(bootstrap, unique_topic_name("avro-payments"), PARTITIONS)
    subject = f"{topic}-value"
    client = SchemaRegistryClient({"url": registry.url})

    # -- v1, registered by the serializer on first use
    produce(bootstrap, topic, AvroSerializer(client, PAYMENT_V1),
            {f"v1-{number}": v1_record(number) for number in range(V1_RECORDS)})
    assert rest(registry, "GET", f"/subjects/{subject}/versions") == (200, [1])
    status, version_1 = rest(registry, "GET", f"/subjects/{subject}/versions/1")
    assert status == 200 and version_1["subject"] == subject and version_1["version"] == 1, version_1
    assert same_schema(version_1["schema"], PAYMENT_V1)
    id_1 = version_1["id"]
    status, by_id = rest(registry, "GET", f"/schemas/ids/{id_1}")
    assert status == 200 and same_schema(by_id["schema"], PAYMENT_V1), by_id

    # -- v2: compatible, registered with the next id
    assert client.test_compatibility(subject, Schema(PAYMENT_V2, "AVRO")) is True
    produce(bootstrap, topic, AvroSerializer(client, PAYMENT_V2),
            {f"v2-{number}": v2_record(number) for number in range(V2_RECORDS)})
    assert rest(registry, "GET", f"/subjects/{subject}/versions") == (200, [1, 2])
    status, latest = rest(registry, "GET", f"/subjects/{subject}/versions/latest")
    assert status == 200 and latest["version"] == 2 and latest["id"] == id_1 + 1, latest
    assert same_schema(latest["schema"], PAYMENT_V2)
    id_2 = latest["id"]

    # -- a field without a default: refused, nothing written
    schemas_end = end_offsets(bootstrap, SCHEMAS_TOPIC, 1)
    assert client.test_compatibility(subject, Schema(PAYMENT_INCOMPATIBLE, "AVRO")) is False
    with pytest.raises(SchemaRegistryError) as refused:
        AvroSerializer(client, PAYMENT_INCOMPATIBLE)(
            {**v2_record(0), "region": "north"}, SerializationContext(topic, MessageField.VALUE))
    assert (refused.value.http_status_code, refused.value.error_code) == (409, 409), refused.value
    status, error = rest(registry, "POST", f"/subjects/{subject}/versions", {"schema": PAYMENT_INCOMPATIBLE})
    assert status == 409 and error["error_code"] == 409 and "region" in error["message"], error
    assert rest(registry, "GET", f"/subjects/{subject}/versions") == (200, [1, 2])
    assert rest(registry, "GET", f"/schemas/ids/{id_2 + 1}") == (
        404, {"error_code": 40403, "message": f"Schema {id_2 + 1} not found"})
    assert end_offsets(bootstrap, SCHEMAS_TOPIC, 1) == schemas_end

    # -- the wire format: magic byte 0, the writer schema's id (4 bytes, big-endian), the Avro body
    expected_v1 = {f"v1-{number}": v1_record(number) for number in range(V1_RECORDS)}
    expected_v2 = {f"v2-{number}": v2_record(number) for number in range(V2_RECORDS)}
    values = raw_values(bootstrap, topic)
    assert sorted(values) == sorted([*expected_v1, *expected_v2])
    writers = {id_1: fastavro.parse_schema(json.loads(PAYMENT_V1)), id_2: fastavro.parse_schema(json.loads(PAYMENT_V2))}
    for key, value in values.items():
        expected_id = id_1 if key.startswith("v1-") else id_2
        assert value[:5] == struct.pack(">bI", 0, expected_id), (key, value[:5])
        body = io.BytesIO(value[5:])
        assert fastavro.schemaless_reader(body, writers[expected_id], None) == {**expected_v1, **expected_v2}[key]
        assert body.read() == b"", key

    # -- decoding: with each record's writer schema, and with v2 as the reader schema
    assert decode_all(values, topic, AvroDeserializer(client)) == {**expected_v1, **expected_v2}
    with_defaults = {key: {**record, "channel": "web"} for key, record in expected_v1.items()}
    assert decode_all(values, topic, AvroDeserializer(client, PAYMENT_V2)) == {**with_defaults, **expected_v2}
    client.close()

    # -- the schemas topic: one record per version
    records = schemas_topic_records(bootstrap, subject)
    assert [key for key, _ in records] == [{"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}
                                           for version in (1, 2)]
    assert [(value["subject"], value["version"], value["id"]) for _, value in records] == [
        (subject, 1, id_1), (subject, 2, id_2)]
    assert same_schema(records[0][1]["schema"], PAYMENT_V1) and same_schema(records[1][1]["schema"], PAYMENT_V2)

    # -- kill -9 and start again: everything is read back from the topic
    before = registry_snapshot(registry, subject, [id_1, id_2])
    assert all(status == 200 for status, _ in before.values()), before
    assert registry.kill() == -9
    registry.start()
    assert registry_snapshot(registry, subject, [id_1, id_2]) == before

    client = SchemaRegistryClient({"url": registry.url})
    assert decode_all(values, topic, AvroDeserializer(client)) == {**expected_v1, **expected_v2}
    # Without auto-registration the serializer looks v2 up (POST /subjects/{subject}) and writes with its id.
    lookup_serializer = AvroSerializer(client, PAYMENT_V2, conf={"auto.register.schemas": False})
    encoded = lookup_serializer(v2_record(99), SerializationContext(topic, MessageField.VALUE))
    assert encoded[:5] == struct.pack(">bI", 0, id_2)
    stored_v2 = before[f"/subjects/{subject}/versions/2"][1]["schema"]
    assert rest(registry, "POST", f"/subjects/{subject}", {"schema": PAYMENT_V2}) == (
        200, {"subject": subject, "version": 2, "id": id_2, "schema": stored_v2})

    # -- v3 after the restart: the next id and version
    expected_v3 = {f"v3-{number}": v3_record(number) for number in range(V3_RECORDS)}
    produce(bootstrap, topic, AvroSerializer(client, PAYMENT_V3), expected_v3)
    status, latest = rest(registry, "GET", f"/subjects/{subject}/versions/latest")
    assert status == 200 and (latest["version"], latest["id"]) == (3, id_2 + 1), latest
    values = raw_values(bootstrap, topic)
    assert {key: value[:5] for key, value in values.items() if key.startswith("v3-")} == {
        key: struct.pack(">bI", 0, id_2 + 1) for key in expected_v3}
    latest_reader = AvroDeserializer(client, conf={"use.latest.version": True})
    assert decode_all(values, topic, latest_reader) == {
        **{key: {**record, "priority": 0} for key, record in with_defaults.items()},
        **{key: {**record, "priority": 0} for key, record in expected_v2.items()},
        **expected_v3,
    }
    client.close()
    assert [key["version"] for key, _ in schemas_topic_records(bootstrap, subject)] == [1, 2, 3]
