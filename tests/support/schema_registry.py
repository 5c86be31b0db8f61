"""A small schema registry that keeps its schemas in a Kafka topic, the way Confluent's Schema Registry and Karapace
do, for tests of that flow against Apache Kafka and Skein (neither registry can be installed here).

Run as a process (`SchemaRegistry` below starts it: python -m support.schema_registry --bootstrap B --port P), it
serves the part of Confluent's Schema Registry REST API that confluent-kafka's SchemaRegistryClient, AvroSerializer
and AvroDeserializer use, for Avro schemas:

- POST /subjects/{subject}/versions          register ({"id": N}); a schema already in the subject returns its id
                                              and writes nothing; the same schema in another subject keeps its id
- POST /subjects/{subject}                   look a schema up in a subject ({"subject", "version", "id", "schema"})
- GET  /schemas/ids/{id}                     {"schema": ...}
- GET  /schemas/ids/{id}/versions            [{"subject", "version"}, ...]
- GET  /subjects                             the subjects, sorted
- GET  /subjects/{subject}/versions          the subject's versions
- GET  /subjects/{subject}/versions/{v}      v a number, `latest` or -1
- POST /compatibility/subjects/{subject}/versions/{v}   {"is_compatible": bool} (and "messages" with ?verbose=true)
- GET  /config, GET /config/{subject}        {"compatibilityLevel": "BACKWARD"}
- GET  /schemas/types                        ["AVRO"]

Compatibility is BACKWARD, Confluent's default, checked against the subject's latest version: the new schema must
read what the latest wrote, by Avro's schema resolution rules (a field added with a default is compatible; one
added without a default is not). A refused registration answers 409 with error_code 409. Errors are Confluent's
{"error_code": ..., "message": ...} with its codes: 40401 subject not found, 40402 version not found, 40403 schema
not found, 42201 invalid schema, 42202 invalid version, 50001 store error, 50002 store timeout; any other path is
404 with error_code 404 (as a registry without, e.g., the associations API answers, which confluent-kafka's default
ASSOCIATED subject name strategy takes as "fall back to the topic name strategy").

Storage, as in the real registries: one topic (`_schemas` by default) of one partition with cleanup.policy=compact,
created by the registry with replication factor 1 if absent; the registry refuses to start if it has more than one
partition or is not compacted. Each schema version is one record, written by an idempotent producer with acks=all:
the key {"keytype":"SCHEMA","subject":S,"version":V,"magic":1}, the value {"subject":S,"version":V,"id":N,
"schema":"...","deleted":false} (a null value deletes the version). The registry's state (ids, subjects, versions)
is only ever changed by its reader of that topic: at start it reads the topic from the beginning up to the end
offset it had then, and only then opens its HTTP port; a write is answered only once the produce is acknowledged and
the reader has applied the record at the acknowledged offset ("wait for the write to be consumed"), so an answered
write is in the topic and every later GET shows it. The next id is one more than the largest id read.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support.brokers import log_tail

DEFAULT_TOPIC = "_schemas"
# How long a write may wait for its produce to be acknowledged, and then for the reader to apply it.
WRITE_TIMEOUT_SECONDS = 30
# How long start-up may take to create the topic and read it to its end.
INIT_TIMEOUT_SECONDS = 60
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
COMPATIBILITY_LEVEL = "BACKWARD"

log = logging.getLogger("schema-registry")


class RegistryError(Exception):
    """An error answered to the HTTP caller: HTTP status, Confluent error code and message."""

    def __init__(self, status: int, error_code: int, message: str):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


# ------------------------------------------------------------------------------------------------ Avro schemas

AVRO_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# Avro's schema resolution: a writer's type (key) that a reader's type (value) may read.
AVRO_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


def canonical_schema(schema_text: str) -> str:
    """The schema's JSON without whitespace, keys in their given order: what the registry stores and answers.
    Raises RegistryError 42201 when it is not a valid Avro schema."""
    import fastavro

    try:
        parsed = json.loads(schema_text)
    except (TypeError, ValueError) as error:
        raise RegistryError(422, 42201, f"Invalid schema: not JSON: {error}") from None
    try:
        fastavro.parse_schema(parsed, _write_hint=False)
    except Exception as error:  # fastavro raises several kinds for bad schemas
        raise RegistryError(422, 42201, f"Invalid schema: {error}") from None
    return json.dumps(parsed, separators=(",", ":"))


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _avro_tree(schema, namespace: str | None, names: dict) -> dict:
    """The schema as nodes {"type": ...}; named types are registered in `names` (full name -> node) before their
    fields are read, so a reference, recursive ones included, resolves to the same node."""
    if isinstance(schema, str):
        if schema in AVRO_PRIMITIVES:
            return {"type": schema}
        return names.get(_full_name(schema, namespace)) or names[schema]
    if isinstance(schema, list):
        return {"type": "union", "branches": [_avro_tree(branch, namespace, names) for branch in schema]}
    kind = schema["type"]
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in AVRO_PRIMITIVES and kind not in (
            "record", "error", "enum", "fixed", "array", "map")):
        return _avro_tree(kind, namespace, names)
    if kind in AVRO_PRIMITIVES:
        return {"type": kind}
    if kind == "array":
        return {"type": "array", "items": _avro_tree(schema["items"], namespace, names)}
    if kind == "map":
        return {"type": "map", "values": _avro_tree(schema["values"], namespace, names)}
    full_name = _full_name(schema["name"], schema.get("namespace", namespace))
    node = {"type": "record" if kind == "error" else kind, "name": full_name,
            "aliases": {_full_name(alias, full_name.rpartition(".")[0] or None) for alias in schema.get("aliases", [])}}
    names[full_name] = node
    inner_namespace = full_name.rpartition(".")[0] or None
    if kind in ("record", "error"):
        node["fields"] = [
            {"name": field["name"], "aliases": set(field.get("aliases", [])), "has_default": "default" in field,
             "type": _avro_tree(field["type"], inner_namespace, names)}
            for field in schema["fields"]
        ]
    elif kind == "enum":
        node["symbols"] = list(schema["symbols"])
        node["has_default"] = "default" in schema
    else:
        node["size"] = schema["size"]
    return node


def _describe(node: dict) -> str:
    return node.get("name", node["type"])


def _names_match(reader: dict, writer: dict) -> bool:
    def short(name: str) -> str:
        return name.rpartition(".")[2]

    return (reader["name"] == writer["name"] or writer["name"] in reader["aliases"]
            or short(reader["name"]) == short(writer["name"]))


def _read_problems(reader: dict, writer: dict, path: str, seen: set) -> list[str]:
    """Why data written with `writer` cannot be read with `reader` (empty when it can), by Avro's resolution rules."""
    if writer["type"] == "union":
        problems = []
        for index, branch in enumerate(writer["branches"]):
            problems += _read_problems(reader, branch, f"{path}/{index}", seen)
        return problems
    if reader["type"] == "union":
        if any(not _read_problems(branch, writer, path, seen) for branch in reader["branches"]):
            return []
        return [f"MISSING_UNION_BRANCH at '{path or '/'}': the new union has no branch for {_describe(writer)}"]
    if reader["type"] != writer["type"]:
        if reader["type"] in AVRO_PROMOTIONS.get(writer["type"], ()):
            return []
        return [f"TYPE_MISMATCH at '{path or '/'}': the new schema has {_describe(reader)}, "
                f"the old one {_describe(writer)}"]
    kind = reader["type"]
    if kind in AVRO_PRIMITIVES:
        return []
    if kind == "array":
        return _read_problems(reader["items"], writer["items"], f"{path}/items", seen)
    if kind == "map":
        return _read_problems(reader["values"], writer["values"], f"{path}/values", seen)
    if not _names_match(reader, writer):
        return [f"NAME_MISMATCH at '{path or '/'}': the new schema names {reader['name']}, "
                f"the old one {writer['name']}"]
    if kind == "fixed":
        if reader["size"] != writer["size"]:
            return [f"FIXED_SIZE_MISMATCH at '{path}/size': {reader['size']} in the new schema, "
                    f"{writer['size']} in the old one"]
        return []
    if kind == "enum":
        missing = [symbol for symbol in writer["symbols"] if symbol not in reader["symbols"]]
        if missing and not reader["has_default"]:
            return [f"MISSING_ENUM_SYMBOLS at '{path}/symbols': the new schema lacks {missing}"]
        return []
    pair = (id(reader), id(writer))
    if pair in seen:  # a recursive type already being compared
        return []
    seen.add(pair)
    writer_fields = {field["name"]: field for field in writer["fields"]}
    problems = []
    for index, field in enumerate(reader["fields"]):
        written = writer_fields.get(field["name"]) or next(
            (writer_fields[alias] for alias in field["aliases"] if alias in writer_fields), None)
        if written is None:
            if not field["has_default"]:
                problems.append(f"READER_FIELD_MISSING_DEFAULT_VALUE at '{path}/fields/{index}': the field "
                                f"'{field['name']}' in the new schema has no default value and is missing in the "
                                f"old schema")
        else:
            problems += _read_problems(field["type"], written["type"], f"{path}/fields/{index}/type", seen)
    return problems


def backward_problems(new_schema: str, old_schema: str) -> list[str]:
    """BACKWARD compatibility: why the new schema cannot read data written with the old one (empty when it can)."""
    return _read_problems(_avro_tree(json.loads(new_schema), None, {}), _avro_tree(json.loads(old_schema), None, {}),
                          "", set())


# ------------------------------------------------------------------------------------------------ the store


class SchemaStore:
    """The registry's state, rebuilt from the schemas topic by one reader thread and changed only by it; writes go
    through the topic."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap = bootstrap
        self.topic = topic
        # Guards the state below; notified whenever the reader advances.
        self._changed = threading.Condition()
        self._schemas: dict[int, str] = {}  # id -> canonical schema
        self._ids: dict[str, int] = {}  # canonical schema -> id
        self._subjects: dict[str, dict[int, int]] = {}  # subject -> {version: id}
        self._next_offset = 0  # the offset after the last one the reader applied (or saw the end at)
        self._reader_error: str | None = None
        # One write at a time: an id and version are chosen from the state and written before the next is chosen.
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._producer = None
        self._reader = None

    # -- start-up --------------------------------------------------------------------------------------------
    def start(self) -> None:
        from confluent_kafka import Producer

        self._ensure_topic()
        self._producer = Producer({
            "bootstrap.servers": self.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,
            "client.id": "schema-registry-producer",
        })
        end_offset = self._end_offset()
        log.info("replaying %s up to offset %d", self.topic, end_offset)
        self._reader = threading.Thread(target=self._read_forever, name="schemas-reader", daemon=True)
        self._reader.start()
        self._wait_applied(end_offset - 1, INIT_TIMEOUT_SECONDS)
        with self._changed:
            log.info("replayed %s: %d schemas, %d subjects, next offset %d", self.topic, len(self._schemas),
                     len(self._subjects), self._next_offset)

    def _ensure_topic(self) -> None:
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "client.id": "schema-registry-admin"})
        deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
        # Listing every topic never asks the broker to auto-create this one.
        if self.topic not in admin.list_topics(timeout=INIT_TIMEOUT_SECONDS).topics:
            log.info("creating topic %s (1 partition, replication factor 1, cleanup.policy=compact)", self.topic)
            future = admin.create_topics([NewTopic(self.topic, num_partitions=1, replication_factor=1,
                                                   config={"cleanup.policy": "compact"})])[self.topic]
            try:
                future.result(timeout=INIT_TIMEOUT_SECONDS)
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        while True:
            metadata = admin.list_topics(timeout=INIT_TIMEOUT_SECONDS).topics.get(self.topic)
            if metadata is not None and metadata.error is None and metadata.partitions and all(
                    partition.leader >= 0 for partition in metadata.partitions.values()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {self.topic} has no leader within {INIT_TIMEOUT_SECONDS}s: {metadata}")
            time.sleep(0.2)
        if len(metadata.partitions) != 1:
            raise RuntimeError(f"the schemas topic {self.topic} must have 1 partition, it has "
                               f"{len(metadata.partitions)}")
        resource = ConfigResource(ConfigResource.Type.TOPIC, self.topic)
        configs = admin.describe_configs([resource])[resource].result(timeout=INIT_TIMEOUT_SECONDS)
        policy = configs["cleanup.policy"].value
        if policy != "compact":
            raise RuntimeError(f"the schemas topic {self.topic} must have cleanup.policy=compact, it has {policy!r}")

    def _end_offset(self) -> int:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "schema-registry-init",
                             "enable.auto.commit": False})
        try:
            return consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=INIT_TIMEOUT_SECONDS)[1]
        finally:
            consumer.close()

    # -- the reader ------------------------------------------------------------------------------------------
    def _read_forever(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

        consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            # Never joined nor committed: the partition is assigned and always read from its beginning.
            "group.id": "schema-registry",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "client.id": "schema-registry-reader",
        })
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        try:
            while not self._stop.is_set():
                message = consumer.poll(0.2)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        # The end of the log: offsets below it that compaction removed are read past too.
                        with self._changed:
                            self._next_offset = max(self._next_offset, message.offset())
                            self._changed.notify_all()
                        continue
                    log.warning("reading %s: %s", self.topic, error)
                    if error.fatal():
                        raise RuntimeError(str(error))
                    continue
                with self._changed:
                    self._apply(message.key(), message.value(), message.offset())
                    self._next_offset = max(self._next_offset, message.offset() + 1)
                    self._changed.notify_all()
        except BaseException as error:
            with self._changed:
                self._reader_error = f"the reader of {self.topic} stopped: {error}"
                self._changed.notify_all()
            log.exception("the reader of %s stopped", self.topic)
        finally:
            consumer.close()

    def _apply(self, key_bytes: bytes | None, value_bytes: bytes | None, offset: int) -> None:
        try:
            key = json.loads(key_bytes) if key_bytes else None
        except ValueError:
            log.warning("offset %d: key is not JSON, skipped", offset)
            return
        if not isinstance(key, dict) or key.get("keytype") != "SCHEMA":
            return  # CONFIG, MODE, NOOP, DELETE_SUBJECT... records: nothing this registry keeps
        subject, version = key["subject"], key["version"]
        value = json.loads(value_bytes) if value_bytes else None
        versions = self._subjects.setdefault(subject, {})
        if value is None or value.get("deleted"):
            versions.pop(version, None)
            if not versions:
                del self._subjects[subject]
            log.info("offset %d: %s version %d deleted", offset, subject, version)
            return
        schema_id, schema = value["id"], value["schema"]
        self._schemas[schema_id] = schema
        self._ids.setdefault(schema, schema_id)
        versions[version] = schema_id
        log.info("offset %d: %s version %d is schema id %d", offset, subject, version, schema_id)

    def _wait_applied(self, offset: int, timeout: float) -> None:
        """Waits until the reader has applied the record at `offset` (read past it)."""
        with self._changed:
            done = self._changed.wait_for(lambda: self._next_offset > offset or self._reader_error, timeout)
            if self._reader_error:
                raise RegistryError(500, 50001, self._reader_error)
            if not done:
                raise RegistryError(500, 50002, f"the reader of {self.topic} did not reach offset {offset} within "
                                                f"{timeout}s (it is at {self._next_offset})")

    # -- reads -----------------------------------------------------------------------------------------------
    def subjects(self) -> list[str]:
        with self._changed:
            return sorted(self._subjects)

    def versions(self, subject: str) -> list[int]:
        with self._changed:
            if subject not in self._subjects:
                raise subject_not_found(subject)
            return sorted(self._subjects[subject])

    def version(self, subject: str, version_text: str) -> dict:
        with self._changed:
            versions = self._subjects.get(subject)
            if not versions:
                raise subject_not_found(subject)
            if version_text in ("latest", "-1"):
                version = max(versions)
            else:
                try:
                    version = int(version_text)
                except ValueError:
                    version = 0
                if version <= 0:
                    raise RegistryError(422, 42202, "The specified version '{}' is not a valid version id. Allowed "
                                        "values are between [1, 2^31-1] and the string \"latest\"".format(version_text))
                if version not in versions:
                    raise RegistryError(404, 40402, f"Version {version} not found.")
            schema_id = versions[version]
            return {"subject": subject, "version": version, "id": schema_id, "schema": self._schemas[schema_id]}

    def schema(self, schema_id: int) -> dict:
        with self._changed:
            if schema_id not in self._schemas:
                raise RegistryError(404, 40403, f"Schema {schema_id} not found")
            return {"schema": self._schemas[schema_id]}

    def schema_versions(self, schema_id: int) -> list[dict]:
        with self._changed:
            if schema_id not in self._schemas:
                raise RegistryError(404, 40403, f"Schema {schema_id} not found")
            return [{"subject": subject, "version": version}
                    for subject in sorted(self._subjects)
                    for version, version_id in sorted(self._subjects[subject].items()) if version_id == schema_id]

    def lookup(self, subject: str, schema_text: str) -> dict:
        canonical = canonical_schema(schema_text)
        with self._changed:
            versions = self._subjects.get(subject)
            if not versions:
                raise subject_not_found(subject)
            for version, schema_id in sorted(versions.items()):
                if self._schemas[schema_id] == canonical:
                    return {"subject": subject, "version": version, "id": schema_id, "schema": canonical}
        raise RegistryError(404, 40403, "Schema not found")

    def compatibility(self, subject: str, version_text: str, schema_text: str) -> list[str]:
        """Why the schema is not BACKWARD compatible with the subject's version (empty when it is). A subject
        without versions accepts anything at `latest`, as Confluent's registry does."""
        canonical = canonical_schema(schema_text)
        with self._changed:
            if not self._subjects.get(subject) and version_text in ("latest", "-1"):
                return []
        return backward_problems(canonical, self.version(subject, version_text)["schema"])

    # -- writes ----------------------------------------------------------------------------------------------
    def register(self, subject: str, schema_text: str) -> int:
        canonical = canonical_schema(schema_text)
        with self._write_lock:
            with self._changed:
                versions = dict(self._subjects.get(subject, {}))
                for schema_id in versions.values():
                    if self._schemas[schema_id] == canonical:
                        return schema_id  # already registered in this subject: nothing written
                schema_id = self._ids.get(canonical) or max(self._schemas, default=0) + 1
                latest = max(versions, default=0)
                latest_schema = self._schemas[versions[latest]] if versions else None
            if latest_schema is not None:
                problems = backward_problems(canonical, latest_schema)
                if problems:
                    details = ", ".join([f"{{{problem}}}" for problem in problems]
                                        + [f"{{oldSchemaVersion: {latest}}}", f"{{compatibility: "
                                                                              f"'{COMPATIBILITY_LEVEL}'}}"])
                    raise RegistryError(409, 409, f'Schema being registered is incompatible with an earlier schema '
                                                  f'for subject "{subject}", details: [{details}]')
            version = latest + 1
            key = {"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}
            value = {"subject": subject, "version": version, "id": schema_id, "schema": canonical, "deleted": False}
            offset = self._append(key, value)
            self._wait_applied(offset, WRITE_TIMEOUT_SECONDS)
            log.info("registered %s version %d as schema id %d (offset %d)", subject, version, schema_id, offset)
            return schema_id

    def _append(self, key: dict, value: dict) -> int:
        """Produces one record to the schemas topic and waits for its acknowledgement; its offset."""
        outcome = {}

        def delivered(error, message):
            outcome["error"] = error
            outcome["offset"] = message.offset() if error is None else None

        self._producer.produce(self.topic, key=json.dumps(key, separators=(",", ":")).encode(),
                               value=json.dumps(value, separators=(",", ":")).encode(), partition=0,
                               on_delivery=delivered)
        self._producer.flush(WRITE_TIMEOUT_SECONDS)
        if "error" not in outcome:
            raise RegistryError(500, 50002, f"the write to {self.topic} was not acknowledged within "
                                            f"{WRITE_TIMEOUT_SECONDS}s")
        if outcome["error"] is not None:
            raise RegistryError(500, 50001, f"the write to {self.topic} failed: {outcome['error']}")
        return outcome["offset"]


# ------------------------------------------------------------------------------------------------ HTTP


class RegistryHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without this a keep-alive client waits on a delayed ACK for each.
    disable_nagle_algorithm = True
    server_version = "test-schema-registry"
    store: SchemaStore  # set on the class by serve()

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        split = urllib.parse.urlsplit(self.path)
        # Split before unquoting: a subject may hold an encoded '/'.
        parts = [urllib.parse.unquote(part) for part in split.path.strip("/").split("/") if part]
        query = dict(urllib.parse.parse_qsl(split.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        try:
            status, answer = self._route(method, parts, query, raw_body)
        except RegistryError as error:
            status, answer = error.status, {"error_code": error.error_code, "message": error.message}
        except Exception as error:  # an unexpected failure is still answered in Confluent's form
            log.exception("%s %s failed", method, self.path)
            status, answer = 500, {"error_code": 50001, "message": f"Error in the backend data store: {error}"}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, method: str, parts: list[str], query: dict, raw_body: bytes):
        store = self.store
        match method, parts:
            case "GET", ["subjects"]:
                return 200, store.subjects()
            case "GET", ["subjects", subject, "versions"]:
                return 200, store.versions(subject)
            case "GET", ["subjects", subject, "versions", version]:
                return 200, store.version(subject, version)
            case "GET", ["schemas", "ids", schema_id] if schema_id.isdigit():
                return 200, store.schema(int(schema_id))
            case "GET", ["schemas", "ids", schema_id, "versions"] if schema_id.isdigit():
                return 200, store.schema_versions(int(schema_id))
            case "GET", ["schemas", "types"]:
                return 200, ["AVRO"]
            case "GET", ["config"] | ["config", _]:
                return 200, {"compatibilityLevel": COMPATIBILITY_LEVEL}
            case "POST", ["subjects", subject, "versions"]:
                return 200, {"id": store.register(subject, self._schema_text(raw_body))}
            case "POST", ["subjects", subject]:
                return 200, store.lookup(subject, self._schema_text(raw_body))
            case "POST", ["compatibility", "subjects", subject, "versions", version]:
                problems = store.compatibility(subject, version, self._schema_text(raw_body))
                answer = {"is_compatible": not problems}
                if query.get("verbose", "").lower() == "true":
                    answer["messages"] = problems
                return 200, answer
        raise RegistryError(404, 404, "HTTP 404 Not Found")

    @staticmethod
    def _schema_text(raw_body: bytes) -> str:
        try:
            body = json.loads(raw_body or b"null")
        except ValueError as error:
            raise RegistryError(400, 400, f"Unrecognized request body: {error}") from None
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise RegistryError(422, 42201, "Invalid schema: the request has no \"schema\" string")
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type != "AVRO":
            raise RegistryError(422, 42201, f"Invalid schema: schema type {schema_type} is not supported")
        return body["schema"]

    def log_message(self, format, *args):
        log.info("%s %s", self.address_string(), format % args)


def serve(bootstrap: str, host: str, port: int, topic: str) -> None:
    store = SchemaStore(bootstrap, topic)
    store.start()
    RegistryHandler.store = store
    server = ThreadingHTTPServer((host, port), RegistryHandler)
    server.daemon_threads = True
    log.info("serving on http://%s:%d", host, port)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="the Kafka bootstrap servers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help="the schemas topic")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s.%(msecs)03d %(levelname)s %(threadName)s %(message)s", datefmt="%H:%M:%S")
    # SIGTERM exits at once, like SIGINT: the registry keeps nothing but what is in the topic.
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    serve(arguments.bootstrap, arguments.host, arguments.port, arguments.topic)


# ------------------------------------------------------------------------------------------------ the process


class SchemaRegistry:
    """The registry as a child process of the test: started on a free port of 127.0.0.1 (kept across restarts),
    logging to `log_path`, killed with the test process if that dies first."""

    def __init__(self, bootstrap: str, work_dir: Path, topic: str = DEFAULT_TOPIC):
        from support.brokers import free_port

        self.bootstrap = bootstrap
        self.topic = topic
        self.host = "127.0.0.1"
        self.port = free_port()
        self.log_path = Path(work_dir) / "schema-registry.log"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = INIT_TIMEOUT_SECONDS + 30) -> "SchemaRegistry":
        """Starts the process and waits until it serves (it opens its port once it has read the schemas topic)."""
        from support.brokers import _die_with_parent, http_get_status

        if self._process is not None:
            raise RuntimeError(f"schema registry already running (pid {self.pid})")
        tests_dir = Path(__file__).resolve().parents[1]
        environment = dict(os.environ, PYTHONPATH=str(tests_dir), PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"==== start {time.strftime('%H:%M:%S')} ====\n".encode())
            log_file.flush()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "support.schema_registry", "--bootstrap", self.bootstrap,
                 "--host", self.host, "--port", str(self.port), "--topic", self.topic],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=tests_dir,
                env=environment, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while http_get_status(f"{self.url}/config") != 200:
            exit_code = self._process.poll()
            if exit_code is not None:
                self._process = None
                raise RuntimeError(f"schema registry exited with code {exit_code} during start-up\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"schema registry not serving within {timeout}s\n{self.log_tail()}")
            time.sleep(0.2)
        return self

    def kill(self) -> int | None:
        """SIGKILL (kill -9) and wait; the exit code, None when it was not running."""
        if self._process is None:
            return None
        self._process.kill()
        exit_code = self._process.wait(timeout=30)
        self._process = None
        return exit_code

    def close(self) -> None:
        self.kill()

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log_path, lines)

    def __enter__(self) -> "SchemaRegistry":
        return self.start() if self._process is None else self

    def __exit__(self, *exc_info) -> None:
        self.close()


if __name__ == "__main__":
    main()
