"""Transactions with stock clients: what read_committed and read_uncommitted consumers see, where the
transaction markers sit, the last stable offset, fencing of a zombie producer, the broker aborting a
transaction that outlived its timeout, transactional producers of three clients (confluent-kafka,
kafka-clients via tests/support/java/TxnProducer.java, kafka-python), and consumer group offsets sent
to a transaction (send_offsets_to_transaction). Runs against Apache Kafka (the oracle) and Skein."""

from __future__ import annotations

import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from kafka import KafkaProducer

from support.brokers import BROKER_KINDS, _die_with_parent, make_broker, skein_binary
from support.java_programs import java_program_command
from support.kafka_clients import create_topic, end_offsets, read_to_end, unique_topic_name

PARTITIONS = 3
# The same settings on both brokers (Apache Kafka's single-node transaction log settings are set by
# KafkaBroker itself). The broker looks for timed-out transactions every second, so the timeout test
# sees its transaction aborted within about a second of its 3 s timeout; groups start without delay.
BROKER_CONFIG = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000,
    "group.initial.rebalance.delay.ms": 0,
}
CLIENT_TIMEOUT_SECONDS = 30
# Records a transaction writes into each partition; its marker takes the offset after them.
MESSAGES_PER_PARTITION = 10


@pytest.fixture(scope="module", params=BROKER_KINDS)
def txn_broker(request):
    """One broker per kind for the module, started with BROKER_CONFIG."""
    if request.param == "skein" and not skein_binary().is_file():
        pytest.skip(f"skein binary not built: {skein_binary()} (run `cargo build --release`)")
    broker = make_broker(request.param, BROKER_CONFIG)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


def transactional_producer(bootstrap: str, transactional_id: str, **settings) -> Producer:
    """A confluent-kafka transactional producer, initialized (init_transactions done)."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, **settings})
    producer.init_transactions(CLIENT_TIMEOUT_SECONDS)
    return producer


def produce_to_every_partition(producer: Producer, topic: str, prefix: str) -> None:
    """MESSAGES_PER_PARTITION records "PREFIX-P-I" into every partition P, flushed to the broker."""
    for partition in range(PARTITIONS):
        for i in range(MESSAGES_PER_PARTITION):
            producer.produce(topic, value=f"{prefix}-{partition}-{i}".encode(), partition=partition)
    assert producer.flush(CLIENT_TIMEOUT_SECONDS) == 0


def values_by_partition(messages: dict[int, list]) -> dict[int, list[str]]:
    return {partition: [m.value().decode() for m in ms] for partition, ms in messages.items()}


def offsets_by_partition(messages: dict[int, list]) -> dict[int, list[int]]:
    return {partition: [m.offset() for m in ms] for partition, ms in messages.items()}


def expected_values(*prefixes: str) -> dict[int, list[str]]:
    return {p: [f"{prefix}-{p}-{i}" for prefix in prefixes for i in range(MESSAGES_PER_PARTITION)]
            for p in range(PARTITIONS)}


def kafka_error(exception_info) -> KafkaError:
    return exception_info.value.args[0]


# ---- 1. committed and aborted transactions, markers and the last stable offset ---------------------

def test_read_committed_sees_only_committed_transactions(txn_broker):
    topic = create_topic(txn_broker.bootstrap, unique_topic_name("txn"), PARTITIONS)
    producer = transactional_producer(txn_broker.bootstrap, unique_topic_name("txn-id"))

    producer.begin_transaction()
    produce_to_every_partition(producer, topic, "A")
    producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)

    producer.begin_transaction()
    produce_to_every_partition(producer, topic, "B")
    # B is open: its records are in the log, but the last stable offset stays at B's first offset (11:
    # A's records at 0-9, A's commit marker at 10) until B ends.
    assert end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_uncommitted") == [21] * PARTITIONS
    assert end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_committed") == [11] * PARTITIONS
    producer.abort_transaction(CLIENT_TIMEOUT_SECONDS)

    producer.begin_transaction()
    produce_to_every_partition(producer, topic, "C")
    producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)

    # Per partition: A at 0-9, marker 10, B at 11-20, marker 21, C at 22-31, marker 32.
    a_offsets, b_offsets, c_offsets = list(range(0, 10)), list(range(11, 21)), list(range(22, 32))
    assert end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_uncommitted") == [33] * PARTITIONS
    assert end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_committed") == [33] * PARTITIONS

    committed = read_to_end(txn_broker.bootstrap, topic, PARTITIONS, "read_committed")
    assert values_by_partition(committed) == expected_values("A", "C")
    assert offsets_by_partition(committed) == {p: a_offsets + c_offsets for p in range(PARTITIONS)}

    uncommitted = read_to_end(txn_broker.bootstrap, topic, PARTITIONS, "read_uncommitted")
    assert values_by_partition(uncommitted) == expected_values("A", "B", "C")
    assert offsets_by_partition(uncommitted) == {p: a_offsets + b_offsets + c_offsets for p in range(PARTITIONS)}


# ---- 2. zombie fencing --------------------------------------------------------------------------------

def test_a_new_producer_fences_the_zombie_and_aborts_its_transaction(txn_broker):
    topic = create_topic(txn_broker.bootstrap, unique_topic_name("txn"), PARTITIONS)
    transactional_id = unique_topic_name("txn-id")
    zombie = transactional_producer(txn_broker.bootstrap, transactional_id)
    zombie.begin_transaction()
    produce_to_every_partition(zombie, topic, "zombie")  # offsets 0-9, never committed
    assert end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_committed") == [0] * PARTITIONS

    # Same transactional.id: init_transactions bumps the epoch and aborts the zombie's open
    # transaction (abort marker at offset 10 of every partition).
    successor = transactional_producer(txn_broker.bootstrap, transactional_id)
    assert end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_uncommitted") == [11] * PARTITIONS
    assert end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_committed") == [11] * PARTITIONS

    # The zombie's next produce is rejected (old epoch) and it is fenced for good: librdkafka raises a
    # fatal _FENCED from flush and/or from the commit.
    fenced_errors: list[KafkaError] = []
    zombie.produce(topic, value=b"zombie-late", partition=0)
    try:
        zombie.flush(CLIENT_TIMEOUT_SECONDS)
    except KafkaException as exception:
        fenced_errors.append(exception.args[0])
    with pytest.raises(KafkaException) as commit_error:
        zombie.commit_transaction(CLIENT_TIMEOUT_SECONDS)
    fenced_errors.append(kafka_error(commit_error))
    for error in fenced_errors:
        assert (error.code(), error.fatal()) == (KafkaError._FENCED, True), f"expected a fatal _FENCED: {error}"
    assert end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_uncommitted") == [11] * PARTITIONS, (
        "the fenced producer's late record reached the log")

    successor.begin_transaction()
    produce_to_every_partition(successor, topic, "successor")  # offsets 11-20, commit marker 21
    successor.commit_transaction(CLIENT_TIMEOUT_SECONDS)

    committed = read_to_end(txn_broker.bootstrap, topic, PARTITIONS, "read_committed")
    assert values_by_partition(committed) == expected_values("successor")
    assert offsets_by_partition(committed) == {p: list(range(11, 21)) for p in range(PARTITIONS)}
    uncommitted = read_to_end(txn_broker.bootstrap, topic, PARTITIONS, "read_uncommitted")
    assert values_by_partition(uncommitted) == expected_values("zombie", "successor")


# ---- 3. transaction timeout ---------------------------------------------------------------------------

TRANSACTION_TIMEOUT_MS = 3000
# The broker checks every second (BROKER_CONFIG); allow for a slow, shared machine.
ABORT_DEADLINE_SECONDS = 20


def test_the_broker_aborts_a_transaction_that_outlives_its_timeout(txn_broker):
    topic = create_topic(txn_broker.bootstrap, unique_topic_name("txn"), PARTITIONS)
    # Initialized first, so its transaction runs right after the stale one starts.
    other = transactional_producer(txn_broker.bootstrap, unique_topic_name("txn-id"))
    stale = transactional_producer(txn_broker.bootstrap, unique_topic_name("txn-id"),
                                   **{"transaction.timeout.ms": TRANSACTION_TIMEOUT_MS})
    started = time.monotonic()  # the broker starts the transaction's clock after this
    stale.begin_transaction()
    produce_to_every_partition(stale, topic, "stale")  # offsets 0-9; then the producer goes quiet

    other.begin_transaction()
    produce_to_every_partition(other, topic, "other")  # offsets 10-19, commit marker 20
    other.commit_transaction(CLIENT_TIMEOUT_SECONDS)
    # The open stale transaction holds the last stable offset at its first record: the committed
    # records after it are not visible yet.
    last_stable = end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_committed")
    elapsed = time.monotonic() - started
    assert last_stable == [0] * PARTITIONS, f"{elapsed:.1f}s after the stale transaction started"
    assert end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_uncommitted") == [21] * PARTITIONS

    # The broker aborts it (marker at 21) once it is older than its timeout; the LSO moves to the end.
    while True:
        last_stable = end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_committed")
        high_watermarks = end_offsets(txn_broker.bootstrap, topic, PARTITIONS, "read_uncommitted")
        if last_stable == high_watermarks:
            break
        assert time.monotonic() - started < ABORT_DEADLINE_SECONDS, (
            f"transaction not aborted {ABORT_DEADLINE_SECONDS}s after it started "
            f"(timeout {TRANSACTION_TIMEOUT_MS} ms): LSO {last_stable}, high watermarks {high_watermarks}")
        time.sleep(0.2)
    aborted_after = time.monotonic() - started
    assert aborted_after >= TRANSACTION_TIMEOUT_MS / 1000, f"aborted after {aborted_after:.1f}s, before its timeout"
    assert high_watermarks == [22] * PARTITIONS

    committed = read_to_end(txn_broker.bootstrap, topic, PARTITIONS, "read_committed")
    assert values_by_partition(committed) == expected_values("other")
    assert offsets_by_partition(committed) == {p: list(range(10, 20)) for p in range(PARTITIONS)}

    # The broker bumped the stale producer's epoch when it aborted: the producer is fenced.
    with pytest.raises(KafkaException) as commit_error:
        stale.commit_transaction(CLIENT_TIMEOUT_SECONDS)
    error = kafka_error(commit_error)
    assert (error.code(), error.fatal()) == (KafkaError._FENCED, True), f"expected a fatal _FENCED: {error}"


# ---- 4. kafka-clients (Java) and kafka-python transactional producers ------------------------------

COMMIT_COUNT = 3
ABORT_COUNT = 2
# Records per transaction of TxnProducer.java and of the kafka-python producer; record i goes to
# partition i % PARTITIONS.
MESSAGES_PER_TRANSACTION = 10
JAVA_TIMEOUT_SECONDS = 120


def planned_outcomes(commit_count: int, abort_count: int) -> list[str]:
    """Commits and aborts alternately, as TxnProducer.java does: transaction t commits when t is even
    and commits remain, or when no aborts remain."""
    outcomes: list[str] = []
    for t in range(commit_count + abort_count):
        commits_left = outcomes.count("commit") < commit_count
        aborts_left = outcomes.count("abort") < abort_count
        outcomes.append("commit" if (t % 2 == 0 and commits_left) or not aborts_left else "abort")
    return outcomes


def planned_values(client: str, outcomes: list[str], only: str | None = None) -> dict[int, list[str]]:
    """Per partition, the values of the planned transactions in order (only the committed or aborted
    ones when `only` says so)."""
    values: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for t, outcome in enumerate(outcomes):
        if only is None or outcome == only:
            for i in range(MESSAGES_PER_TRANSACTION):
                values[i % PARTITIONS].append(f"{client}-{t}-{outcome}-{i}")
    return values


def assert_read_back(bootstrap: str, topic: str, client: str) -> None:
    outcomes = planned_outcomes(COMMIT_COUNT, ABORT_COUNT)
    committed = read_to_end(bootstrap, topic, PARTITIONS, "read_committed")
    assert values_by_partition(committed) == planned_values(client, outcomes, only="commit")
    # The aborted records did reach the log: read_uncommitted sees them.
    uncommitted = read_to_end(bootstrap, topic, PARTITIONS, "read_uncommitted")
    assert values_by_partition(uncommitted) == planned_values(client, outcomes)


def test_java_transactional_producer(txn_broker):
    command = java_program_command("TxnProducer")
    topic = create_topic(txn_broker.bootstrap, unique_topic_name("txn-java"), PARTITIONS)
    result = subprocess.run(
        command + [txn_broker.bootstrap, topic, unique_topic_name("txn-id"), str(COMMIT_COUNT), str(ABORT_COUNT)],
        capture_output=True, text=True, timeout=JAVA_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    assert result.returncode == 0, f"TxnProducer exited {result.returncode}\n{result.stdout}{result.stderr}"
    assert result.stdout.strip() == (
        f"committed {COMMIT_COUNT} aborted {ABORT_COUNT} messages_per_transaction {MESSAGES_PER_TRANSACTION}")
    assert_read_back(txn_broker.bootstrap, topic, "java")


def test_kafka_python_transactional_producer(txn_broker):
    topic = create_topic(txn_broker.bootstrap, unique_topic_name("txn-kafka-python"), PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=txn_broker.bootstrap, transactional_id=unique_topic_name("txn-id"),
                             max_block_ms=CLIENT_TIMEOUT_SECONDS * 1000)
    try:
        producer.init_transactions()
        for t, outcome in enumerate(planned_outcomes(COMMIT_COUNT, ABORT_COUNT)):
            producer.begin_transaction()
            for i in range(MESSAGES_PER_TRANSACTION):
                producer.send(topic, value=f"kafka-python-{t}-{outcome}-{i}".encode(), partition=i % PARTITIONS)
            # Flushed before either outcome, so an abort has records in the log to undo.
            producer.flush(timeout=CLIENT_TIMEOUT_SECONDS)
            if outcome == "commit":
                producer.commit_transaction()
            else:
                producer.abort_transaction()
    finally:
        producer.close(timeout=CLIENT_TIMEOUT_SECONDS)
    assert_read_back(txn_broker.bootstrap, topic, "kafka-python")


# ---- 5. consumer group offsets inside a transaction ----------------------------------------------------

def consume(consumer: Consumer, count: int) -> list:
    messages = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
    while len(messages) < count:
        assert time.monotonic() < deadline, f"consumed {len(messages)} of {count} messages"
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            raise KafkaException(message.error())
        messages.append(message)
    return messages


def group_offsets(bootstrap: str, group_id: str, topic: str, isolation_level: str) -> list[int | None]:
    """The group's committed offset per partition (None: nothing committed), as OffsetFetch returns
    it to a consumer with this isolation level. A read_committed consumer asks for stable offsets: the
    broker answers only once no transaction with offsets for the group is pending (the client retries
    meanwhile); a read_uncommitted one gets the last committed offsets right away."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "isolation.level": isolation_level,
                         "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                                       timeout=CLIENT_TIMEOUT_SECONDS)
    finally:
        consumer.close()
    for tp in committed:
        if tp.error is not None:
            raise KafkaException(tp.error)
    return [tp.offset if tp.offset >= 0 else None for tp in sorted(committed, key=lambda tp: tp.partition)]


def test_offsets_sent_to_a_transaction_are_committed_with_it(txn_broker):
    input_topic = create_topic(txn_broker.bootstrap, unique_topic_name("txn-in"), PARTITIONS)
    output_topic = create_topic(txn_broker.bootstrap, unique_topic_name("txn-out"), PARTITIONS)
    group_id = unique_topic_name("txn-group")
    plain_producer = Producer({"bootstrap.servers": txn_broker.bootstrap})
    produce_to_every_partition(plain_producer, input_topic, "first")  # offsets 0-9

    consumer = Consumer({
        "bootstrap.servers": txn_broker.bootstrap, "group.id": group_id, "isolation.level": "read_committed",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
    })
    producer = transactional_producer(txn_broker.bootstrap, unique_topic_name("txn-id"))
    try:
        consumer.subscribe([input_topic])

        def process_in_transaction(count: int) -> list[TopicPartition]:
            """Consumes `count` records, and in an open transaction produces one output record per input
            record and sends the consumer's positions as the group's offsets; returns the positions."""
            messages = consume(consumer, count)
            producer.begin_transaction()
            for message in messages:
                producer.produce(output_topic, value=b"out-" + message.value(), partition=message.partition())
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), CLIENT_TIMEOUT_SECONDS)
            return positions

        positions = process_in_transaction(PARTITIONS * MESSAGES_PER_PARTITION)
        assert sorted((tp.partition, tp.offset) for tp in positions) == [(p, 10) for p in range(PARTITIONS)]
        # Pending: not committed until the transaction is.
        assert group_offsets(txn_broker.bootstrap, group_id, input_topic, "read_uncommitted") == [None] * PARTITIONS
        producer.commit_transaction(CLIENT_TIMEOUT_SECONDS)
        assert group_offsets(txn_broker.bootstrap, group_id, input_topic, "read_committed") == [10] * PARTITIONS

        produce_to_every_partition(plain_producer, input_topic, "second")  # offsets 10-19
        positions = process_in_transaction(PARTITIONS * MESSAGES_PER_PARTITION)
        assert sorted((tp.partition, tp.offset) for tp in positions) == [(p, 20) for p in range(PARTITIONS)]
        assert group_offsets(txn_broker.bootstrap, group_id, input_topic, "read_uncommitted") == [10] * PARTITIONS
        producer.abort_transaction(CLIENT_TIMEOUT_SECONDS)
        # Aborted with the transaction: the group's offsets are still those of the first one.
        assert group_offsets(txn_broker.bootstrap, group_id, input_topic, "read_committed") == [10] * PARTITIONS
    finally:
        consumer.close()

    output = read_to_end(txn_broker.bootstrap, output_topic, PARTITIONS, "read_committed")
    assert values_by_partition(output) == {p: [f"out-{v}" for v in expected_values("first")[p]]
                                           for p in range(PARTITIONS)}
