"""The custom-resource handlers under moto (DynamoDB, Secrets Manager) with real redis-servers.

`run_provider` plays the Provider framework: on_event once, then is_complete with the
on_event result merged into the event, until it reports completion.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import copy_handler
import pytest
import redis
from copy_checkpoint import CheckpointBusy, DynamoDbCheckpointStore
from copy_engine import RedisCopier
from copy_state import CopyError, CopyState, PreconditionError
from copy_support import TARGET_PASSWORD
from copy_testdata import populate_all_types, populate_strings
from moto import mock_aws
from redis_servers import RedisServer

TABLE = "redis-copy-checkpoints"
STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/Prod/abc"


class FakeContext:
    def __init__(self, number: int) -> None:
        self.aws_request_id = f"invocation-{number}"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, target_server: RedisServer) -> Iterator[dict[str, str]]:
    """moto for DynamoDB and Secrets Manager, the checkpoint table and the target's secret."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "CHECKPOINT_TABLE": TABLE,
        "SLICE_SECONDS": "0",
        "COPY_BUDGET_SECONDS": "3000",
        "ASSUMED_KEYS_PER_SECOND": "20000",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SSL_CERT_FILE", str(target_server.ca_cert))
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        secrets = boto3.client("secretsmanager")
        plain = secrets.create_secret(Name="target-token", SecretString=TARGET_PASSWORD)
        as_json = secrets.create_secret(
            Name="target-json", SecretString=json.dumps({"authToken": TARGET_PASSWORD})
        )
        yield {"plain": plain["ARN"], "json": as_json["ARN"]}


@pytest.fixture
def props(
    aws: dict[str, str], source_server: RedisServer, target_server: RedisServer
) -> dict[str, str]:
    """The resource's properties for the session's servers, every value a string as
    CloudFormation delivers them; the target's token is in the plain-text secret.
    """
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
        "SourceHost": "127.0.0.1",
        "SourcePort": str(source_server.port),
        "SourceTls": "false",
        "SourceSecretArn": "",
        "TargetHost": "127.0.0.1",
        "TargetPort": str(target_server.port),
        "TargetTls": "true",
        "TargetSecretArn": aws["plain"],
        "Policy": "fail",
        "Verify": "full",
        "Generation": "1",
    }


def event(
    request_type: str,
    props: dict[str, Any],
    *,
    old: dict[str, Any] | None = None,
    request_id: str = "request-1",
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "RequestType": request_type,
        "RequestId": request_id,
        "StackId": STACK_ID,
        "LogicalResourceId": "RedisCopy",
        "ResourceType": "Custom::RedisCopy",
        "ResourceProperties": props,
    }
    if request_type != "Create":
        result["PhysicalResourceId"] = "redis-copy:RedisCopy"
    if old is not None:
        result["OldResourceProperties"] = old
    return result


def run_provider(
    request: dict[str, Any],
    *,
    between_polls: Callable[[dict[str, Any]], None] | None = None,
    max_polls: int = 500,
) -> tuple[dict[str, Any], dict[str, Any], int]:
    started = copy_handler.on_event(request, FakeContext(0))
    merged = {**request, **started}
    for poll in range(1, max_polls + 1):
        outcome = copy_handler.is_complete(merged, FakeContext(poll))
        if outcome["IsComplete"]:
            return started, outcome, poll
        if between_polls:
            between_polls(merged)
    raise AssertionError("the copy did not complete")


def saved_state(run_key: str) -> CopyState:
    store = DynamoDbCheckpointStore(boto3.client("dynamodb"), TABLE, run_key, owner="test")
    saved = store.load()
    assert saved is not None
    return CopyState.from_dict(saved)


def test_create_copies_in_slices_and_reports_counts(
    aws: dict[str, str], props: dict[str, str], source: redis.Redis, target: redis.Redis
) -> None:
    # Given every type on the source and a target whose token is a JSON secret
    populate_all_types(source, big=False)
    populate_strings(source, 3000)
    total = source.dbsize()

    # When CloudFormation creates the resource
    started, outcome, polls = run_provider(
        event("Create", {**props, "TargetSecretArn": aws["json"]})
    )

    # Then the copy ran over several is_complete calls and reports its counts
    assert started["PhysicalResourceId"] == "redis-copy:RedisCopy"
    assert polls > 2
    data = outcome["Data"]
    assert data["Copied"] == data["Scanned"] == data["Verified"] == str(total)
    assert data["Mismatched"] == "0"
    assert target.dbsize() == total
    assert saved_state(started["Data"]["RunKey"]).done


def test_update_with_a_new_generation_copies_again_and_other_updates_do_not(
    props: dict[str, str], source: redis.Redis, target: redis.Redis
) -> None:
    populate_strings(source, 200)
    first = {**props, "Policy": "replace"}
    run_provider(event("Create", first))
    source.set("k:1", "changed at the source")
    target.set("target-only", "kept")

    # Same generation: nothing is copied
    unchanged = {**first, "Verify": "sample"}
    started, outcome, polls = run_provider(
        event("Update", unchanged, old=first, request_id="request-2")
    )
    assert (started["Data"]["RunKey"], outcome, polls) == ("", {"IsComplete": True}, 1)
    assert target.get("k:1") == b"value-1"
    assert target.get("target-only") == b"kept"

    # A grown generation copies again (a key only on the target would fail its verification)
    target.delete("target-only")
    second = {**first, "Generation": "2"}
    started, outcome, _ = run_provider(event("Update", second, old=first, request_id="r-3"))
    assert started["PhysicalResourceId"] == "redis-copy:RedisCopy"
    assert outcome["Data"]["Copied"] == "200"
    assert target.get("k:1") == b"changed at the source"

    # The rollback of a failed update (old and new swapped) does not copy backwards
    source.set("k:2", "must not arrive")
    rollback = event("Update", first, old=second, request_id="r-4")
    started, outcome, _ = run_provider(rollback)
    assert started["Data"]["RunKey"] == ""
    assert target.get("k:2") == b"value-2"


def test_delete_leaves_the_data_alone(
    props: dict[str, str], source: redis.Redis, target: redis.Redis
) -> None:
    populate_strings(source, 50)
    run_provider(event("Create", props))

    started, outcome, _ = run_provider(event("Delete", props, request_id="request-9"))

    assert started == {"PhysicalResourceId": "redis-copy:RedisCopy", "Data": {"RunKey": ""}}
    assert outcome == {"IsComplete": True}
    assert target.dbsize() == source.dbsize() == 50


def test_failed_verification_fails_the_deploy_with_the_report(
    props: dict[str, str], source: redis.Redis, target: redis.Redis
) -> None:
    # Given a target key tampered with once the copy phase is over
    populate_strings(source, 500)

    def tamper_after_copy(merged: dict[str, Any]) -> None:
        if saved_state(merged["Data"]["RunKey"]).phase == "verify":
            target.set("k:7", "tampered")

    # Then is_complete raises with the verification report
    with pytest.raises(CopyError) as failure:
        run_provider(event("Create", props), between_polls=tamper_after_copy)
    message = str(failure.value)
    assert "verification failed: 1 mismatched key(s)" in message
    report = json.loads(message.split("report: ", 1)[1])
    assert report["mismatches"] == ["b'k:7': value differs"]
    assert report["copied"] == 500


def test_keyspace_too_big_for_one_hour_points_to_the_cli(
    aws: dict[str, str],
    props: dict[str, str],
    source: redis.Redis,
    target: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a keyspace that would take longer than the budget at the assumed rate
    populate_strings(source, 2000)
    monkeypatch.setenv("ASSUMED_KEYS_PER_SECOND", "1")

    with pytest.raises(CopyError, match=r"beyond the 50 min .* scripts/migrate_redis\.py"):
        copy_handler.on_event(event("Create", props), FakeContext(0))

    assert target.dbsize() == 0
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Count"] == 0


def test_measured_rate_too_slow_for_the_budget_fails_mid_copy() -> None:
    state = CopyState(
        source="a:1/0",
        target="b:1/0",
        source_run_id="x",
        policy="fail",
        verify="full",
        source_keys_at_start=1_000_000,
        seconds=10.0,
    )
    state.counts.scanned = 1000
    limits = copy_handler.Limits("t", 90, 3000, 20_000, poll_seconds=15)

    with pytest.raises(CopyError, match="at about 100 keys/s"):
        copy_handler.check_budget(state, elapsed_seconds=600, limits=limits, measured=True)
    copy_handler.check_budget(state, elapsed_seconds=600, limits=limits, measured=False)


def test_preconditions_and_bad_properties_fail_on_event(
    aws: dict[str, str], props: dict[str, str], source: redis.Redis, target: redis.Redis
) -> None:
    populate_strings(source, 10)
    target.set("occupied", "1")

    with pytest.raises(PreconditionError, match="policy is 'fail'"):
        copy_handler.on_event(event("Create", props), FakeContext(0))
    with pytest.raises(CopyError, match="property Generation='two' is not a whole number"):
        copy_handler.on_event(event("Create", {**props, "Generation": "two"}), FakeContext(0))
    with pytest.raises(CopyError, match="policy 'merge' is unknown"):
        copy_handler.on_event(event("Create", {**props, "Policy": "merge"}), FakeContext(0))
    wrong_secret = boto3.client("secretsmanager").create_secret(
        Name="wrong", SecretString="not-the-token"
    )
    with pytest.raises(PreconditionError, match="rejected the credentials"):
        copy_handler.on_event(
            event("Create", {**props, "TargetSecretArn": wrong_secret["ARN"]}), FakeContext(0)
        )
    assert target.dbsize() == 1


def test_dynamodb_lease_keeps_a_second_invocation_out(aws: dict[str, str]) -> None:
    client = boto3.client("dynamodb")
    first = DynamoDbCheckpointStore(client, TABLE, "run-1", owner="first", lease_seconds=60)
    second = DynamoDbCheckpointStore(client, TABLE, "run-1", owner="second", lease_seconds=60)
    assert first.create({"phase": "copy"}, started_at=1.0) is True
    assert second.create({"phase": "other"}, started_at=2.0) is False

    first.acquire()
    with pytest.raises(CheckpointBusy, match="another invocation holds"):
        second.acquire()
    with pytest.raises(CheckpointBusy, match="lost the copy's lease"):
        second.save({"phase": "verify"})
    first.save({"phase": "verify"})
    first.release()
    second.acquire()
    assert second.load() == {"phase": "verify"}
    assert second.started_at() == 1.0


def test_a_dropped_connection_mid_slice_is_retried_on_the_next_poll(
    props: dict[str, str],
    source: redis.Redis,
    target: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a copy whose second slice loses its connection
    populate_strings(source, 7000)
    advance = RedisCopier.advance
    calls = 0

    def flaky_advance(self: RedisCopier, *args: Any, **kwargs: Any) -> CopyState:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise redis.ConnectionError("connection reset by peer")
        return advance(self, *args, **kwargs)

    monkeypatch.setattr(RedisCopier, "advance", flaky_advance)

    # When the Provider keeps polling
    _, outcome, polls = run_provider(event("Create", props))

    # Then that poll reported "not complete" and the run still finished exactly
    assert calls == polls > 2
    assert outcome["Data"]["Copied"] == outcome["Data"]["Scanned"] == "7000"
    assert target.dbsize() == 7000
