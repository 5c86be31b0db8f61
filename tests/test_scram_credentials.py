"""SCRAM credentials (KIP-554: AlterUserScramCredentials, DescribeUserScramCredentials) with confluent-kafka's
AdminClient and kafka-configs, against Apache Kafka (the reference) and Skein: the same answers, error codes and
messages from both; credentials survive a restart.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                   UserScramCredentialUpsertion)

from support.brokers import BROKER_KINDS, make_broker
from support.kafka_tools import run_kafka_tool, tool_output

CLIENT_TIMEOUT_SECONDS = 30
CONFIG_COMMAND = "kafka.admin.ConfigCommand"
SHA256, SHA512 = ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512


@pytest.fixture(params=BROKER_KINDS)
def broker(request):
    with make_broker(request.param) as started:
        yield started


def outcomes(futures: dict) -> dict:
    """{user: None or (error name, message)} from per-user futures."""
    result = {}
    for user, future in futures.items():
        try:
            future.result(timeout=CLIENT_TIMEOUT_SECONDS)
            result[user] = None
        except KafkaException as raised:
            error: KafkaError = raised.args[0]
            result[user] = (error.name(), error.str())
    return result


def described(admin: AdminClient, users: list[str] | None = None) -> dict:
    """{user: sorted [(mechanism name, iterations)]} or, for a failed user, (error name, message)."""
    answer = admin.describe_user_scram_credentials(users, request_timeout=CLIENT_TIMEOUT_SECONDS)
    if users is None:
        descriptions = answer.result(timeout=CLIENT_TIMEOUT_SECONDS)
    else:
        descriptions = {}
        for user, future in answer.items():
            try:
                descriptions[user] = future.result(timeout=CLIENT_TIMEOUT_SECONDS)
            except KafkaException as raised:
                # librdkafka (2.16) leaves a stray byte at the end of this message, whichever broker sent it.
                descriptions[user] = (raised.args[0].name(), raised.args[0].str().rstrip("\x01"))
    return {
        user: d if isinstance(d, tuple) else sorted((i.mechanism.name, i.iterations) for i in d.scram_credential_infos)
        for user, d in descriptions.items()
    }


def described_eventually(admin: AdminClient, expected: dict) -> dict:
    """`described(admin)` once it is `expected`, within CLIENT_TIMEOUT_SECONDS: Kafka
    answers an alteration once its controller committed it, and describes from the broker's metadata cache, which
    may not have it yet. (Skein answers once its own image has it.)"""
    deadline = time.monotonic() + CLIENT_TIMEOUT_SECONDS
    while True:
        current = described(admin)
        if current == expected or time.monotonic() > deadline:
            return current
        time.sleep(0.2)


def test_scram_credentials_are_set_described_and_deleted(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert described(admin) == {}

    set_up = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("alice", ScramCredentialInfo(SHA256, 8192), b"alice-secret"),
        UserScramCredentialUpsertion("bob", ScramCredentialInfo(SHA512, 16384), b"bob-secret"),
    ], request_timeout=CLIENT_TIMEOUT_SECONDS)
    assert outcomes(set_up) == {"alice": None, "bob": None}
    # One alteration per user and request: a user's second mechanism comes in a request of its own.
    second = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("alice", ScramCredentialInfo(SHA512, 4096), b"alice-secret", salt=b"pepper"),
    ], request_timeout=CLIENT_TIMEOUT_SECONDS)
    assert outcomes(second) == {"alice": None}
    both = {"alice": [("SCRAM_SHA_256", 8192), ("SCRAM_SHA_512", 4096)], "bob": [("SCRAM_SHA_512", 16384)]}
    assert described_eventually(admin, both) == both
    assert described(admin, ["bob", "nobody"]) == {
        "bob": [("SCRAM_SHA_512", 16384)],
        "nobody": ("RESOURCE_NOT_FOUND", "Attempt to describe a user credential that does not exist: nobody"),
    }

    refused = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(SHA256, 1000), b"too-few"),
        UserScramCredentialUpsertion("dave", ScramCredentialInfo(SHA256, 20000), b"too-many"),
        UserScramCredentialDeletion("erin", SHA256),
        # A user named twice in one request fails as a whole, whatever the mechanisms.
        UserScramCredentialUpsertion("bob", ScramCredentialInfo(SHA256, 4096), b"bob-new"),
        UserScramCredentialDeletion("bob", SHA512),
    ], request_timeout=CLIENT_TIMEOUT_SECONDS)
    assert outcomes(refused) == {
        "carol": ("UNACCEPTABLE_CREDENTIAL", "Too few iterations"),
        "dave": ("UNACCEPTABLE_CREDENTIAL", "Too many iterations"),
        "erin": ("RESOURCE_NOT_FOUND", "Attempt to delete a user credential that does not exist"),
        "bob": ("DUPLICATE_RESOURCE", "A user credential cannot be altered twice in the same request"),
    }

    deleted = admin.alter_user_scram_credentials([UserScramCredentialDeletion("alice", SHA256)],
                                                 request_timeout=CLIENT_TIMEOUT_SECONDS)
    assert outcomes(deleted) == {"alice": None}
    expected = {"alice": [("SCRAM_SHA_512", 4096)], "bob": [("SCRAM_SHA_512", 16384)]}
    assert described_eventually(admin, expected) == expected

    broker.restart()
    assert described_eventually(AdminClient({"bootstrap.servers": broker.bootstrap}), expected) == expected


def test_kafka_configs_manages_users(broker):
    """`kafka-configs --entity-type users --alter` adds and deletes SCRAM credentials."""
    def configs(*arguments):
        result = run_kafka_tool(CONFIG_COMMAND, "--bootstrap-server", broker.bootstrap, "--entity-type", "users",
                                *arguments)
        assert result.returncode == 0, tool_output(result)
        return result.stdout

    # Both brokers refuse two mechanisms of one user in one request (DUPLICATE_RESOURCE): one at a time.
    configs("--alter", "--entity-name", "frank", "--add-config", "SCRAM-SHA-256=[iterations=8192,password=frank-secret]")
    configs("--alter", "--entity-name", "frank", "--add-config", "SCRAM-SHA-512=[password=frank-secret]")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    both = {"frank": [("SCRAM_SHA_256", 8192), ("SCRAM_SHA_512", 4096)]}
    assert described_eventually(admin, both) == both
    configs("--alter", "--entity-name", "frank", "--delete-config", "SCRAM-SHA-256")
    one = {"frank": [("SCRAM_SHA_512", 4096)]}
    assert described_eventually(admin, one) == one
