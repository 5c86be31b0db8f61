"""One consumer-group member in its own process, for tests/test_coordinator_failover.py.

`python coordinator_member.py BOOTSTRAP GROUP_ID TOPIC CLIENT_ID COMMIT_INTERVAL_SECONDS CONFIG_JSON` subscribes a
confluent-kafka Consumer (CONFIG_JSON: extra consumer settings such as group.protocol or
partition.assignment.strategy) to TOPIC, consumes, and commits synchronously (Consumer.commit(asynchronous=False)) what
it consumed every COMMIT_INTERVAL_SECONDS and when partitions are revoked. It reports on stdout, one JSON object a line,
times on time.monotonic() (CLOCK_MONOTONIC, shared by every process of the machine):
  {"consumed": [[partition, offset, value], ...]}          records a consume() call returned
  {"commit": [sent, answered, [[partition, offset], ...]]}  a commit the coordinator acknowledged
  {"commit_error": name}                                    a commit that failed (whole, or for one partition)
  {"rebalance": [when, "assign" | "revoke" | "lost", [partition, ...]]}
  {"client_error": name}, {"message_error": name}           error_cb, and consume() errors
  {"failed": repr}                                           the member gave up (an exception)
  {"closed": true}                                           close() returned; the process exits
A line "stop" on stdin (or stdin closing) ends the poll loop; the consumer is then closed (it leaves the group).

Why a process: librdkafka can block forever inside a rebalance callback during close() (rd_kafka_rebalance_protocol
after the group was torn down, confluentinc/librdkafka#4041), and confluent-kafka holds the GIL there, which froze a
whole test process (pytest-timeout could not fire) when Skein's group coordinator lost its state. A member process
that hangs is killed instead.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException

_output_lock = threading.Lock()


def report(**event) -> None:
    line = json.dumps(event)
    with _output_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Member:
    def __init__(self, bootstrap: str, group_id: str, topic: str, client_id: str, commit_interval: float,
                 extra: dict):
        self.topic = topic
        self.commit_interval = commit_interval
        self.uncommitted = False
        self.stopping = threading.Event()
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "client.id": client_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
            "topic.metadata.refresh.interval.ms": 5000,
            "error_cb": lambda error: report(client_error=error.name()),
            "log_level": 0,
            **extra,
        })

    def run(self) -> None:
        consumer = self.consumer
        try:
            consumer.subscribe([self.topic], on_assign=self._callback("assign"), on_revoke=self._callback("revoke"),
                               on_lost=self._callback("lost"))
            last_commit = time.monotonic()
            while not self.stopping.is_set():
                consumed = []
                for message in consumer.consume(500, timeout=0.2):
                    if message.error() is not None:
                        report(message_error=message.error().name())
                        continue
                    consumed.append([message.partition(), message.offset(),
                                     (message.value() or b"").decode(errors="replace")])
                if consumed:
                    self.uncommitted = True
                    report(consumed=consumed)
                if self.uncommitted and time.monotonic() - last_commit >= self.commit_interval:
                    self.commit()
                    last_commit = time.monotonic()
        except Exception as error:  # reported; the test decides
            report(failed=repr(error))
        finally:
            consumer.close()
            report(closed=True)

    def commit(self) -> None:
        """Commits the offsets after what was consumed (stored when consume() returned it) and waits for the answer;
        on a failure the next commit carries the offsets again."""
        sent = time.monotonic()
        try:
            result = self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError._NO_OFFSET:  # nothing new to commit
                self.uncommitted = False
            else:
                report(commit_error=error.name())
            return
        answered = time.monotonic()
        self.uncommitted = False
        acknowledged = []
        for tp in result or []:
            if tp.error is not None:
                report(commit_error=tp.error.name())
                self.uncommitted = True
            elif tp.offset >= 0:
                acknowledged.append([tp.partition, tp.offset])
        if acknowledged:
            report(commit=[sent, answered, acknowledged])

    def _callback(self, kind: str):
        def callback(consumer, partitions):
            report(rebalance=[time.monotonic(), kind, sorted(p.partition for p in partitions)])
            if kind == "revoke" and self.uncommitted:
                # Hand over what was consumed: the next owner starts after it. (Lost partitions are not committed:
                # the group has moved on without this member.)
                self.commit()
        return callback


def main() -> None:
    bootstrap, group_id, topic, client_id, commit_interval, extra = sys.argv[1:7]
    member = Member(bootstrap, group_id, topic, client_id, float(commit_interval), json.loads(extra))

    def watch_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        member.stopping.set()
    threading.Thread(target=watch_stdin, daemon=True).start()
    member.run()


if __name__ == "__main__":
    main()
