"""Hardening against hostile input (issue 13, test items 2 and 3). Skein only.

* test_mutated_client_frames_never_crash_the_broker: a broker loaded with 2,000 known records sits behind a
  recording proxy (it advertises the proxy, so every client connection passes through it) while stock clients
  run ordinary sessions: idempotent producers with each codec, a transactional producer (commit with offsets,
  abort), classic and KIP-848 consumer groups, admin calls, kafka-python, and the Java clients when javac and
  the jars are there. The recorded request frames are deduplicated, mutated (bit flips; 2- and 4-byte integers
  set to 0, -1, max and random; varint bombs; truncations with the length prefix fixed and unfixed; appended
  junk; swapped api keys and versions; bad length prefixes) and sent on raw connections straight to the broker,
  after 20 decompression bombs (Produce requests whose record batch, CRC and all valid, inflates to 2 GiB).
  Every 500 frames the broker must be running and answer ApiVersions v3 on a fresh connection with error_code 0;
  its RSS, sampled every 50 ms, must stay below max(2 x RSS at start, 512 MiB). Afterwards every record produced
  at the start reads back intact at its offset, and a fresh producer and consumer work.
* test_ten_thousand_idle_connections: 10,000 connections, each answered one ApiVersions request and then left
  idle, cost little memory, do not stop clients from producing and consuming, and are closed by the broker once
  they have been idle for connections.max.idle.ms.
* test_max_connections_per_ip_refuses_extra_connections: with max.connections.per.ip 5 the sixth concurrent
  connection from 127.0.0.1 is closed at once while the first five are served.

Environment (test_mutated_client_frames_never_crash_the_broker):
  SKEIN_MUTATION_FRAMES    frames to send (default 100000; e.g. 1000000 for a soak; the timeout grows with it)
  SKEIN_MUTATION_SEED      the mutation seed (printed at start; the recorded frames differ between runs, so a
                           replay mutates the same way but not necessarily the same bytes)
  SKEIN_MUTATION_WORKERS   concurrent connections sending frames (default 12)
  SKEIN_MUTATION_JAVA      0 leaves the Java clients out of the recording (default: in when available)
  SKEIN_MUTATION_SKIP_APIS api keys to leave out of the corpus, e.g. "19,37" while a known bug in them is open
  SKEIN_MUTATION_CORPUS    a directory of request bodies (*.bin, as a failed run dumps them under corpus/) to
                           mutate instead of this run's recording: with the same seed, the same mutants byte for byte
  SKEIN_MUTATION_AGAINST_KAFKA=1  run it against Apache Kafka instead (by hand, never in CI)
On a failure the test names a temp dir with each connection's last frames and the corpus.

* test_saved_hostile_frames_leave_the_broker_serving: each frame under tests/support/regressions/ (inputs that
  once broke the broker, see the README there) is sent to a fresh broker, which must keep serving within the RSS
  bound.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import resource
import selectors
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from support.brokers import BrokerError, SkeinBroker, make_broker, metric_value, skein_binary
from support.client_traffic import (admin_session, create_topics, group_session, java_available, java_session,
                                    kafka_python_session, produce_data, transactional_session)
from support.frames import (PRODUCE, Mutant, Mutator, RecordingProxy, ResponseReader, api_key_version,
                            api_versions_ok, api_versions_request, correlation_id_of, decompression_bombs,
                            select_corpus, supported_versions)
from support.kafka_clients import create_topic, read_partitions, unique_topic_name
from support.mutation_run import MutationRun, rss_bytes

MUTATION_FRAMES = int(os.environ.get("SKEIN_MUTATION_FRAMES") or 100_000)
MUTATION_SEED = int(os.environ.get("SKEIN_MUTATION_SEED") or random.SystemRandom().randrange(2**32))
MUTATION_WORKERS = int(os.environ.get("SKEIN_MUTATION_WORKERS") or 12)
MUTATION_JAVA = os.environ.get("SKEIN_MUTATION_JAVA", "1") != "0"
MUTATION_KIND = "kafka" if os.environ.get("SKEIN_MUTATION_AGAINST_KAFKA") == "1" else "skein"
MUTATION_SKIP_APIS = {int(key) for key in (os.environ.get("SKEIN_MUTATION_SKIP_APIS") or "").split(",") if key.strip()}
MUTATION_CORPUS = os.environ.get("SKEIN_MUTATION_CORPUS")
# The default 100,000 frames take about 30 s at ~4,000 frames/s on 2 cores; a soak gets 1 s per 50 frames more.
MUTATION_TIMEOUT_SECONDS = 300 + max(0, MUTATION_FRAMES - 100_000) // 50
CHECK_EVERY_FRAMES = 500
DATA_RECORDS = 2000
CLIENT_TIMEOUT_SECONDS = 30
MUTATION_BROKER_CONFIG = {
    "group.initial.rebalance.delay.ms": 0,
    # Members that mutated heartbeats create expire quickly.
    "group.consumer.session.timeout.ms": 6000,
    "group.consumer.min.session.timeout.ms": 6000,
    "group.consumer.heartbeat.interval.ms": 500,
    "group.consumer.min.heartbeat.interval.ms": 500,
    # The compacted bomb topic gets cleaned during the run.
    "log.cleaner.backoff.ms": 2000,
}
# Mutated AlterConfigs could change the broker's defaults; the data topics pin their own.
DATA_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
BOMB_TOPIC_CONFIG = {"max.message.bytes": str(8 << 20)}
COMPACTED_BOMB_TOPIC_CONFIG = {**BOMB_TOPIC_CONFIG, "cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
                               "min.compaction.lag.ms": "0"}
# Api keys every recording must contain, or the clients' sessions did not run as meant.
REQUIRED_API_KEYS = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 14: "SyncGroup", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId", 24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit", 32: "DescribeConfigs", 33: "AlterConfigs",
    37: "CreatePartitions", 44: "IncrementalAlterConfigs", 68: "ConsumerGroupHeartbeat",
}

IDLE_CONNECTIONS = 10_000
IDLE_MS = 20_000
# Past connections.max.idle.ms, how long the broker gets to close every idle connection.
IDLE_CLOSE_MARGIN_SECONDS = 12
OPEN_FILES_NEEDED = IDLE_CONNECTIONS + 2_000
PER_IP_LIMIT = 5


# -- helpers -----------------------------------------------------------------------------------------------------
class _SkeinAdvertising(SkeinBroker):
    """A Skein broker that tells clients (Metadata, FindCoordinator) to connect to `advertised` instead of its own
    listener. The harness passes --advertised-listener, which wins over the YAML key, so the flag is replaced."""

    def __init__(self, config: dict, advertised: str):
        super().__init__(config)
        self.advertised = advertised

    def _command(self) -> list[str]:
        command = super()._command()
        command[command.index("--advertised-listener") + 1] = self.advertised
        return command


@contextlib.contextmanager
def broker_behind_recording_proxy(kind: str, config: dict):
    """A started broker of `kind` that advertises a RecordingProxy in front of it; yields (broker, proxy)."""
    if kind == "skein" and not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
    proxy = RecordingProxy()
    if kind == "skein":
        broker = _SkeinAdvertising(config, proxy.address)
    else:
        broker = make_broker(kind, {**config, "advertised.listeners": f"PLAINTEXT://{proxy.address}"})
    proxy.target_port = broker.port
    try:
        broker.start()
        yield broker, proxy
    finally:
        try:
            broker.close()
        finally:
            proxy.close()


def start_skein(start_broker, config: dict):
    """start_broker("skein", config), failing (not erroring) with the broker's words when it refuses the config."""
    try:
        return start_broker("skein", config)
    except BrokerError as error:
        pytest.fail(f"Skein did not start with {config} (not implemented yet?):\n{error}")


def broker_state(broker) -> str:
    """A few of Skein's gauges, as a hint in failure messages."""
    if broker.kind != "skein":
        return ""
    names = ("skein_topics", "skein_partitions", "skein_connections_active", "skein_producer_states",
             "skein_transactions_ongoing", "skein_storage_memtable_bytes")
    return ", ".join(f"{name}={metric_value(broker, name)}" for name in names)


def mib(value: int) -> str:
    return f"{value / (1 << 20):.1f}"


# Api keys whose well-formed requests destroy or change stored data: DeleteTopics, DeleteRecords, AlterConfigs,
# IncrementalAlterConfigs.
DESTRUCTIVE_API_KEYS = {20, 21, 33, 44}


def topic_names_and_ids(bootstrap: str, topics: list[str]) -> list[bytes]:
    """Each topic's name and its 16-byte topic id, as they appear in request frames."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_topics(TopicCollection(topics), request_timeout=CLIENT_TIMEOUT_SECONDS)
    keys = []
    for topic, future in described.items():
        topic_id = future.result(CLIENT_TIMEOUT_SECONDS).topic_id
        keys.append(topic.encode())
        keys.append(topic_id.get_most_significant_bits().to_bytes(8, "big", signed=True)
                    + topic_id.get_least_significant_bits().to_bytes(8, "big", signed=True))
    return keys


def spare_data_topics(mutant: Mutant, data_topic_keys: list[bytes]) -> Mutant:
    """A mutant turned into a valid destructive request on a data topic (a ListOffsets frame whose api key became
    DeleteRecords, say) is a legitimate admin call that Kafka obeys too; it would delete the records the run verifies
    at the end. Such a frame gets the data topics' names and ids replaced by same-length bytes no topic has, so it
    still reaches the same decoder and handler."""
    if len(mutant.data) < 6 or int.from_bytes(mutant.data[4:6], "big", signed=True) not in DESTRUCTIVE_API_KEYS:
        return mutant
    data = mutant.data
    for key in data_topic_keys:
        data = data.replace(key, b"~" * len(key))
    if data == mutant.data:
        return mutant
    return Mutant(mutant.index, f"{mutant.description} (data topics masked)", mutant.source, data, mutant.complete)


def read_back(bootstrap: str, produced: list, timeout: float = 60) -> tuple[dict, list[str], list[str]]:
    """Reads every partition of `produced` with assign() from its first produced offset until each produced offset
    has been seen. Returns ({(topic, partition): missing offsets}, mismatches, consumer errors)."""
    expected: dict[tuple[str, int], dict[int, object]] = collections.defaultdict(dict)
    for record in produced:
        expected[(record.topic, record.partition)][record.offset] = record
    missing = {tp: set(offsets) for tp, offsets in expected.items()}
    mismatches: list[str] = []
    errors: list[str] = []
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic_name("hostile-verify"),
                         "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(topic, partition, min(offsets))
                         for (topic, partition), offsets in expected.items()])
        deadline = time.monotonic() + timeout
        while any(missing.values()) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                errors.append(str(message.error()))
                continue
            tp = (message.topic(), message.partition())
            record = expected.get(tp, {}).get(message.offset())
            if record is None:
                continue
            missing[tp].discard(message.offset())
            if (message.key(), message.value()) != (record.key, record.value):
                mismatches.append(f"{tp} offset {message.offset()}: got {message.key()!r}={message.value()[:40]!r}, "
                                  f"produced {record.key!r}={record.value[:40]!r}")
            if not missing[tp]:
                # Past the produced records come whatever mutated frames appended; leave them alone.
                consumer.pause([TopicPartition(*tp)])
    finally:
        consumer.close()
    return {tp: offsets for tp, offsets in missing.items() if offsets}, mismatches, errors


def produce_and_consume(bootstrap: str, count: int, prefix: str) -> None:
    """A fresh idempotent producer writes `count` records to a new topic; a fresh consumer reads them all back."""
    topic = create_topic(bootstrap, unique_topic_name(prefix), 3)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    failures = []
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=f"{prefix} {i}".encode(),
                         on_delivery=lambda error, message: error is not None and failures.append(error))
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0, f"records still undelivered after {CLIENT_TIMEOUT_SECONDS}s"
    assert not failures, f"produce failed: {failures[:3]}"
    messages = read_partitions(bootstrap, topic, 3)
    values = sorted(message.value() for partition in messages.values() for message in partition)
    assert values == sorted(f"{prefix} {i}".encode() for i in range(count))


def highest_version(ranges: dict[int, tuple[int, int]], api_key: int, below: int) -> int:
    low, high = ranges[api_key]
    version = min(high, below)
    assert version >= low, f"api {api_key} supports {low}-{high}, none of them <= {below}"
    return version


# -- the mutation test -------------------------------------------------------------------------------------------
@pytest.mark.timeout(MUTATION_TIMEOUT_SECONDS)
def test_mutated_client_frames_never_crash_the_broker():
    print(f"\nmutation seed {MUTATION_SEED} ({MUTATION_FRAMES} frames against {MUTATION_KIND}, "
          f"{MUTATION_WORKERS} connections; replay with SKEIN_MUTATION_SEED={MUTATION_SEED})")
    prefix = unique_topic_name("hostile")
    with broker_behind_recording_proxy(MUTATION_KIND, MUTATION_BROKER_CONFIG) as (broker, proxy):
        bootstrap = proxy.address
        started = time.monotonic()

        # 1. Data to verify at the end, produced with every codec by idempotent producers (recorded too).
        data_topics = create_topics(bootstrap, [f"{prefix}-data-{n}" for n in range(3)], 3, DATA_TOPIC_CONFIG)
        produced = produce_data(bootstrap, data_topics, DATA_RECORDS)
        assert len(produced) == DATA_RECORDS

        # 2. Record what the other clients send. None of these writes to the data topics.
        scratch = create_topic(bootstrap, f"{prefix}-scratch", 3)
        classic_group, consumer_group, txn_group = (f"{prefix}-classic", f"{prefix}-consumer", f"{prefix}-txn")
        transactional_session(bootstrap, scratch, txn_group)
        group_session(bootstrap, data_topics[0], classic_group, "classic")
        group_session(bootstrap, data_topics[1], consumer_group, "consumer")
        admin_failures = admin_session(bootstrap, f"{prefix}-admin", [classic_group, consumer_group])
        kafka_python_session(bootstrap, scratch, f"{prefix}-kafka-python")
        java = MUTATION_JAVA and java_available()
        if java:
            java_session(bootstrap, scratch, f"{prefix}-java")
        proxy.recording = False
        recorded = proxy.recorded()
        corpus = select_corpus(recorded)
        keys = collections.Counter(api_key_version(body) for body in corpus)
        print(f"recorded {len(recorded)} request frames in {time.monotonic() - started:.0f}s "
              f"(java clients {'in' if java else 'left out'}); corpus of {len(corpus)} distinct frames over "
              f"{len(keys)} (api key, version) pairs: {sorted(keys)}")
        if admin_failures:
            print(f"admin calls that failed while recording: {admin_failures}")
        missing_keys = {name for key, name in REQUIRED_API_KEYS.items() if key not in {k for k, _ in keys}}
        assert not missing_keys, f"the recording lacks {sorted(missing_keys)}"
        if MUTATION_CORPUS:
            corpus = [path.read_bytes() for path in sorted(Path(MUTATION_CORPUS).glob("*.bin"))]
            print(f"mutating the {len(corpus)} frames of {MUTATION_CORPUS} instead")
        if MUTATION_SKIP_APIS:
            corpus = [body for body in corpus if api_key_version(body)[0] not in MUTATION_SKIP_APIS]
            print(f"left api keys {sorted(MUTATION_SKIP_APIS)} out: {len(corpus)} frames to mutate")

        # 3. Decompression bombs first, then the mutants, straight to the broker (not through the proxy).
        ranges = supported_versions("127.0.0.1", broker.port)
        bomb_topics = [create_topic(bootstrap, f"{prefix}-bomb", 1, BOMB_TOPIC_CONFIG),
                       create_topic(bootstrap, f"{prefix}-bomb-compacted", 1, COMPACTED_BOMB_TOPIC_CONFIG)]
        bombs = decompression_bombs(bomb_topics, produce_version=highest_version(ranges, PRODUCE, below=8))
        mutator = Mutator(corpus, MUTATION_SEED)
        data_topic_keys = topic_names_and_ids(bootstrap, data_topics)

        def source(index: int) -> Mutant:
            if index < len(bombs):
                return Mutant(index, bombs[index].description, (PRODUCE, -1), bombs[index].data, True)
            return spare_data_topics(mutator.mutant(index - len(bombs)), data_topic_keys)

        mutation_started = time.monotonic()

        def progress(stats) -> None:
            if stats.sent % 5000 < CHECK_EVERY_FRAMES:
                rate = stats.sent / (time.monotonic() - mutation_started)
                print(f"  {stats.sent} frames, {rate:.0f}/s so far, closed {stats.closed_by_broker}, "
                      f"timeouts {stats.timeouts}, RSS peak {mib(stats.rss_peak)} MiB")

        run = MutationRun("127.0.0.1", broker.port, broker.pid, broker.is_running, source, MUTATION_FRAMES,
                          workers=MUTATION_WORKERS, check_every=CHECK_EVERY_FRAMES, log_tail=broker.log_tail,
                          progress=progress, corpus=corpus, diagnostics=lambda: broker_state(broker))
        stats = run.run()
        active = metric_value(broker, "skein_connections_active") if MUTATION_KIND == "skein" else None
        print(f"mutation summary: frames={stats.sent} seconds={stats.seconds:.1f} "
              f"frames_per_second={stats.frames_per_second:.0f} bombs={len(bombs)} "
              f"answered={stats.answered} responses={stats.responses} closed_by_broker={stats.closed_by_broker} "
              f"half_closed={stats.half_closed} timeouts={stats.timeouts} "
              f"malformed_responses={stats.malformed_responses} connect_failures={stats.connect_failures} "
              f"health_checks={stats.health_checks} rss_start_mib={mib(stats.rss_start)} "
              f"rss_peak_mib={mib(stats.rss_peak)} rss_end_mib={mib(stats.rss_end)} "
              f"rss_bound_mib={mib(run.rss_bound)} connections_still_open_in_broker={active} "
              f"seed={MUTATION_SEED}")
        if stats.timeouts:
            print(f"some frames that got neither an answer nor a close within 2 s: {stats.timeout_samples}")
        assert stats.sent == MUTATION_FRAMES
        assert stats.malformed_responses == 0, f"malformed response frames: {stats.malformed_samples}"
        assert stats.connect_failures == 0, "the broker refused new connections during the run"
        assert stats.answered > 0 and stats.closed_by_broker > 0, "the mutants never reached the broker's decoder"

        # 5. Nothing stored was damaged, and ordinary clients still work.
        missing, mismatches, errors = read_back(broker.bootstrap, produced)
        if errors:
            print(f"consumer errors while reading back: {collections.Counter(errors).most_common(5)}")
        assert not missing, f"records not read back: { {tp: sorted(o)[:5] for tp, o in missing.items()} }"
        assert not mismatches, f"records changed: {mismatches[:5]}"
        produce_and_consume(broker.bootstrap, 100, f"{prefix}-after")
        assert broker.is_running()


# -- connection limits -------------------------------------------------------------------------------------------
def raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))
    except (ValueError, OSError) as error:
        pytest.skip(f"RLIMIT_NOFILE is {soft}/{hard} and cannot be raised to {needed}: {error}")


def process_open_files_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError(f"no 'Max open files' in /proc/{pid}/limits")


def open_answered_connections(port: int, count: int, batch: int = 500) -> list[socket.socket]:
    """`count` connections, each having sent one ApiVersions v0 request and read its answer."""
    connections: list[socket.socket] = []
    try:
        for start in range(0, count, batch):
            fresh = []
            for n in range(start, min(count, start + batch)):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                connections.append(sock)
                fresh.append((n, sock))
                sock.sendall(api_versions_request(n, version=0))
            deadline = time.monotonic() + 15
            for n, sock in fresh:
                payload = ResponseReader(sock).next_response(deadline)
                assert payload is not None, f"connection {n} of {count} was closed instead of answered"
                assert correlation_id_of(payload) == n
    except BaseException:
        for sock in connections:
            sock.close()
        raise
    return connections


def closed_by_peer(connections: list[socket.socket], wait: float) -> set[int]:
    """Indexes of connections the broker has closed (a read gives EOF or a reset) within `wait` seconds; stops
    early once all are closed."""
    closed: set[int] = set()
    with selectors.DefaultSelector() as selector:
        for index, sock in enumerate(connections):
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, index)
        deadline = time.monotonic() + wait
        while len(closed) < len(connections):
            remaining = deadline - time.monotonic()
            events = selector.select(timeout=max(0.0, remaining))
            for key, _ in events:
                try:
                    data = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    closed.add(key.data)
                    selector.unregister(key.fileobj)
            if remaining <= 0:
                break
    for sock in connections:
        sock.setblocking(True)
    return closed


@pytest.mark.timeout(150)
def test_ten_thousand_idle_connections(start_broker, new_topic):
    raise_open_files_limit(OPEN_FILES_NEEDED)
    broker = start_skein(start_broker, {"connections.max.idle.ms": IDLE_MS, "max.connections": 20_000})
    broker_limit = process_open_files_limit(broker.pid)
    if broker_limit < OPEN_FILES_NEEDED:
        resource.prlimit(broker.pid, resource.RLIMIT_NOFILE, (OPEN_FILES_NEEDED, OPEN_FILES_NEEDED))
        broker_limit = process_open_files_limit(broker.pid)
    assert broker_limit >= OPEN_FILES_NEEDED
    rss_before = rss_bytes(broker.pid)

    opened_at = time.monotonic()
    connections = open_answered_connections(broker.port, IDLE_CONNECTIONS)
    try:
        idle_since = time.monotonic()
        rss_with = rss_bytes(broker.pid)
        print(f"\nopened {IDLE_CONNECTIONS} connections (one ApiVersions request each, then idle) in "
              f"{idle_since - opened_at:.1f}s; broker RSS {mib(rss_before)} MiB before, {mib(rss_with)} MiB with "
              f"them open: {(rss_with - rss_before) / IDLE_CONNECTIONS / 1024:.1f} KiB per idle connection")

        # Clients are served while the idle connections are open.
        topic = new_topic(broker, partitions=3)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
        for i in range(1000):
            producer.produce(topic, value=f"while idle {i}".encode())
        assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0
        del producer  # destroyed now, so that its own connection does not idle out as well
        messages = read_partitions(broker.bootstrap, topic, 3)
        assert sorted(m.value() for p in messages.values() for m in p) == sorted(
            f"while idle {i}".encode() for i in range(1000))
        # None was idle for connections.max.idle.ms yet (the first has idled since about opened_at).
        served_at = time.monotonic()
        if served_at - opened_at < IDLE_MS / 1000 - 1:
            early = closed_by_peer(connections, 0)
            assert not early, (f"{len(early)} connections closed after at most {served_at - opened_at:.0f}s of "
                               f"idleness, before connections.max.idle.ms ({IDLE_MS} ms)")
        else:
            print(f"no check for connections closed too early: opening them and serving the clients took "
                  f"{served_at - opened_at:.0f}s")

        # Past connections.max.idle.ms the broker closes them.
        wait = idle_since + IDLE_MS / 1000 + IDLE_CLOSE_MARGIN_SECONDS - time.monotonic()
        closed = closed_by_peer(connections, wait)
        closed_at = time.monotonic()
        rss_after = rss_bytes(broker.pid)
        print(f"the broker closed {len(closed)} of {IDLE_CONNECTIONS} idle connections within "
              f"{closed_at - idle_since:.0f}s of idleness (connections.max.idle.ms {IDLE_MS}); RSS after "
              f"{mib(rss_after)} MiB")
        assert len(closed) >= IDLE_CONNECTIONS * 0.99, (
            f"the broker closed only {len(closed)} of {IDLE_CONNECTIONS} connections idle for "
            f"{closed_at - idle_since:.0f}s (connections.max.idle.ms {IDLE_MS})")
        ok, reason = api_versions_ok("127.0.0.1", broker.port)
        assert ok, reason
        assert broker.is_running()
    finally:
        for sock in connections:
            sock.close()


@pytest.mark.timeout(60)
def test_max_connections_per_ip_refuses_extra_connections(start_broker):
    broker = start_skein(start_broker, {"max.connections.per.ip": PER_IP_LIMIT})
    # The harness's readiness probe connected too: wait until the broker has let go of it.
    deadline = time.monotonic() + 10
    while metric_value(broker, "skein_connections_active") != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    allowed = open_answered_connections(broker.port, PER_IP_LIMIT)
    try:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as extra:
            try:
                extra.sendall(api_versions_request(99, version=0))
                answer = ResponseReader(extra).next_response(time.monotonic() + 3)
            except socket.timeout:
                pytest.fail(f"connection {PER_IP_LIMIT + 1} from 127.0.0.1 was neither served nor closed within 3 s "
                            f"(max.connections.per.ip {PER_IP_LIMIT})")
            except OSError:
                answer = None  # reset: closed
            assert answer is None, (f"connection {PER_IP_LIMIT + 1} from 127.0.0.1 was served although "
                                    f"max.connections.per.ip is {PER_IP_LIMIT}")
        # The first five are still served.
        for n, sock in enumerate(allowed):
            sock.sendall(api_versions_request(1000 + n, version=0))
            payload = ResponseReader(sock).next_response(time.monotonic() + 5)
            assert payload is not None and correlation_id_of(payload) == 1000 + n, f"allowed connection {n} lost"
        # Closing one frees its slot.
        allowed.pop().close()
        deadline = time.monotonic() + 5
        while True:
            ok, reason = api_versions_ok("127.0.0.1", broker.port, timeout=2)
            if ok:
                break
            assert time.monotonic() < deadline, f"a slot freed by a closed connection was not reused: {reason}"
            time.sleep(0.1)
    finally:
        for sock in allowed:
            sock.close()


# -- saved inputs that once broke the broker -----------------------------------------------------------------------
REGRESSIONS_DIR = Path(__file__).resolve().parent / "support" / "regressions"
REGRESSION_FRAMES = sorted(REGRESSIONS_DIR.glob("*.bin"))
# The topic the saved frames name when they need an existing one.
REGRESSION_TOPIC = "hostile-regression"
REGRESSION_RSS_BOUND = 512 << 20


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", REGRESSION_FRAMES, ids=[path.stem for path in REGRESSION_FRAMES])
def test_saved_hostile_frames_leave_the_broker_serving(start_broker, path):
    broker = start_broker("skein", {})
    create_topic(broker.bootstrap, REGRESSION_TOPIC, 1)
    peak = [rss_bytes(broker.pid) or 0]
    killed = []
    done = threading.Event()

    def sample() -> None:
        # SIGKILL at twice the bound: a broker allocating without limit must not take the machine down.
        while not done.is_set():
            rss = rss_bytes(broker.pid)
            if rss is None:
                return
            peak[0] = max(peak[0], rss)
            if rss > 2 * REGRESSION_RSS_BOUND:
                os.kill(broker.pid, signal.SIGKILL)
                killed.append(f" (SIGKILLed at {mib(rss)} MiB to protect the machine)")
                return
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    outcome = "no answer within 10 s"
    try:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
            sock.sendall(path.read_bytes())
            try:
                payload = ResponseReader(sock).next_response(time.monotonic() + 10)
                outcome = "closed" if payload is None else f"answered: {payload.hex()[:120]}"
            except OSError as error:
                outcome = f"{error!r}"
    finally:
        done.set()
        sampler.join(timeout=2)
    print(f"\n{path.name}: {outcome}; broker RSS peak {mib(peak[0])} MiB{''.join(killed)}")
    assert peak[0] <= REGRESSION_RSS_BOUND, f"{path.name} took the broker to {mib(peak[0])} MiB RSS{''.join(killed)}"
    assert broker.is_running(), f"the broker died on {path.name}\n{broker.log_tail()}"
    ok, reason = api_versions_ok("127.0.0.1", broker.port)
    assert ok, reason
