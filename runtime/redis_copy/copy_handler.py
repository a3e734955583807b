"""Provider-framework handlers for the Redis copy custom resource.

`on_event` checks the preconditions and the one-hour budget, then records a new run in the
checkpoint table; `is_complete` advances that run for one bounded slice per call and, once it
is copied and verified, returns the counts as attributes (or raises with the report).

Create, and an Update whose `Generation` grew, copy. Any other Update (including the
rollback of a failed one, which arrives with old and new properties swapped) and Delete
change nothing: the copy never runs backwards and never deletes data.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from copy_checkpoint import CheckpointBusy, DynamoDbCheckpointStore
from copy_clients import make_client
from copy_engine import RedisCopier
from copy_state import CopyError, CopySettings, CopyState, VerificationFailed
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

DEFAULT_SLICE_SECONDS = 90
DEFAULT_BUDGET_SECONDS = 3000
DEFAULT_ASSUMED_KEYS_PER_SECOND = 20_000
DEFAULT_POLL_SECONDS = 15
# A rate measured over less work than this is too noisy to judge the budget by.
MIN_SECONDS_FOR_MEASURED_RATE = 5.0
PASSWORD_FIELDS = ("password", "authToken", "auth_token", "token")
MAX_REASON_EXAMPLES = 5


@dataclass(frozen=True)
class Side:
    """One Redis endpoint as the resource properties describe it."""

    host: str
    port: int
    tls: bool
    secret_arn: str

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}/0"


@dataclass(frozen=True)
class CopyRequest:
    """The validated resource properties."""

    source: Side
    target: Side
    settings: CopySettings
    generation: int


@dataclass(frozen=True)
class Limits:
    """Timing limits from the function's environment."""

    table: str
    slice_seconds: float
    budget_seconds: float
    assumed_keys_per_second: float
    poll_seconds: float = DEFAULT_POLL_SECONDS

    @classmethod
    def from_environment(cls) -> Limits:
        return cls(
            table=os.environ["CHECKPOINT_TABLE"],
            slice_seconds=float(os.environ.get("SLICE_SECONDS", DEFAULT_SLICE_SECONDS)),
            budget_seconds=float(os.environ.get("COPY_BUDGET_SECONDS", DEFAULT_BUDGET_SECONDS)),
            assumed_keys_per_second=float(
                os.environ.get("ASSUMED_KEYS_PER_SECOND", DEFAULT_ASSUMED_KEYS_PER_SECOND)
            ),
            poll_seconds=float(os.environ.get("POLL_SECONDS", DEFAULT_POLL_SECONDS)),
        )


def _flag(properties: dict[str, Any], key: str) -> bool:
    # CloudFormation hands every custom-resource property over as a string.
    text = str(properties.get(key, "false")).strip().lower()
    if text not in {"true", "false"}:
        raise CopyError(f"property {key}={properties.get(key)!r} must be true or false")
    return text == "true"


def _whole_number(properties: dict[str, Any], key: str) -> int:
    try:
        return int(str(properties[key]).strip())
    except (KeyError, ValueError):
        raise CopyError(f"property {key}={properties.get(key)!r} is not a whole number") from None


def _side(properties: dict[str, Any], prefix: str) -> Side:
    host = str(properties.get(f"{prefix}Host", "")).strip()
    if not host:
        raise CopyError(f"property {prefix}Host is missing")
    return Side(
        host=host,
        port=_whole_number(properties, f"{prefix}Port"),
        tls=_flag(properties, f"{prefix}Tls"),
        secret_arn=str(properties.get(f"{prefix}SecretArn", "")).strip(),
    )


def parse_request(properties: dict[str, Any]) -> CopyRequest:
    """Validate the resource properties; CopyError names the bad one."""
    return CopyRequest(
        source=_side(properties, "Source"),
        target=_side(properties, "Target"),
        settings=CopySettings(
            policy=str(properties.get("Policy", "fail")),
            verify=str(properties.get("Verify", "full")),
        ),
        generation=_whole_number(properties, "Generation"),
    )


def physical_id(event: dict[str, Any]) -> str:
    """Stable for the resource's lifetime, so an Update never makes CloudFormation delete it."""
    return str(event.get("PhysicalResourceId") or f"redis-copy:{event['LogicalResourceId']}")


def copies_on_update(event: dict[str, Any]) -> bool:
    """Only a larger Generation copies; a rollback arrives with the smaller one."""
    new = _whole_number(event["ResourceProperties"], "Generation")
    old_properties = event.get("OldResourceProperties") or {}
    try:
        old = int(str(old_properties.get("Generation")))
    except ValueError:
        return True
    return new > old


def read_password(secrets: Any, secret_arn: str) -> str | None:
    """The password in a secret: a plain string, or JSON with a password/authToken field."""
    if not secret_arn:
        return None
    text = secrets.get_secret_value(SecretId=secret_arn)["SecretString"]
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return str(text)
    if isinstance(document, dict):
        for field_name in PASSWORD_FIELDS:
            if document.get(field_name):
                return str(document[field_name])
        raise CopyError(f"secret {secret_arn} has none of the fields {', '.join(PASSWORD_FIELDS)}")
    return str(text)


def build_copier(request: CopyRequest, secrets: Any) -> RedisCopier:
    """Clients for both sides; passwords are read from Secrets Manager now, never stored."""
    clients = [
        make_client(
            side.host,
            side.port,
            tls=side.tls,
            password=read_password(secrets, side.secret_arn),
        )
        for side in (request.source, request.target)
    ]
    return RedisCopier(
        clients[0],
        clients[1],
        request.settings,
        source_label=request.source.label,
        target_label=request.target.label,
    )


def estimate_seconds(keys_left: int, verify: str, keys_per_second: float) -> float:
    """Copy time for the keys left, plus a full verification pass when one is asked for."""
    passes = 2.0 if verify == "full" else 1.0
    return keys_left * passes / max(keys_per_second, 1.0)


def check_budget(
    state: CopyState, *, elapsed_seconds: float, limits: Limits, measured: bool
) -> None:
    """Fail early, with the way out, when the copy cannot finish inside the budget."""
    rate = limits.assumed_keys_per_second
    if measured and state.seconds >= MIN_SECONDS_FOR_MEASURED_RATE:
        done = state.counts.scanned + state.verification.checked + state.verification.expired
        rate = done / state.seconds
    keys_left = max(state.source_keys_at_start - state.counts.scanned, 0)
    needed = estimate_seconds(keys_left, state.verify, rate)
    if state.phase == "verify":
        checked = state.verification.checked + state.verification.expired
        needed = max(state.source_keys_at_start - checked, 0) / max(rate, 1.0)
    if limits.slice_seconds > 0:
        # The Provider waits poll_seconds between slices: wall time per second of work.
        needed *= (limits.slice_seconds + limits.poll_seconds) / limits.slice_seconds
    if elapsed_seconds + needed > limits.budget_seconds:
        raise CopyError(
            f"the source holds {state.source_keys_at_start} keys: at about {rate:,.0f} keys/s "
            f"the copy needs ~{(elapsed_seconds + needed) / 60:.0f} min, beyond the "
            f"{limits.budget_seconds / 60:.0f} min a custom resource may take; copy with "
            "scripts/migrate_redis.py from a host in the VPC instead (docs/redis-copy.md)"
        )


def _aws() -> tuple[Any, Any]:
    import boto3  # noqa: PLC0415 - created per invocation, never at import

    return boto3.client("dynamodb"), boto3.client("secretsmanager")


def _run_key(event: dict[str, Any]) -> str:
    return f"{physical_id(event)}#{event['RequestId']}"


def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Start a copy for Create or a grown Generation; anything else is a no-op."""
    request_type = event["RequestType"]
    resource_id = physical_id(event)
    if request_type == "Delete" or (request_type == "Update" and not copies_on_update(event)):
        return {"PhysicalResourceId": resource_id, "Data": {"RunKey": ""}}
    request = parse_request(event["ResourceProperties"])
    limits = Limits.from_environment()
    dynamodb, secrets = _aws()
    copier = build_copier(request, secrets)
    state = copier.start()
    check_budget(state, elapsed_seconds=0.0, limits=limits, measured=False)
    run_key = _run_key(event)
    store = DynamoDbCheckpointStore(dynamodb, limits.table, run_key, owner=run_key)
    store.create(state.to_dict(), started_at=time.time())
    return {"PhysicalResourceId": resource_id, "Data": {"RunKey": run_key}}


def is_complete(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Advance the run for one slice; report the counts when it is copied and verified."""
    run_key = str((event.get("Data") or {}).get("RunKey") or "")
    if not run_key:
        return {"IsComplete": True}
    request = parse_request(event["ResourceProperties"])
    limits = Limits.from_environment()
    dynamodb, secrets = _aws()
    owner = str(getattr(context, "aws_request_id", "") or f"invocation-{time.time_ns()}")
    store = DynamoDbCheckpointStore(
        dynamodb,
        limits.table,
        run_key,
        owner=owner,
        lease_seconds=int(limits.slice_seconds * 3),
    )
    try:
        store.acquire()
    except CheckpointBusy:
        return {"IsComplete": False}
    try:
        saved = store.load()
        if saved is None:
            raise CopyError(f"copy run {run_key} has no checkpoint; redeploy to start it again")
        copier = build_copier(request, secrets)
        state = copier.resume(saved)
        if not state.done:
            check_budget(
                state,
                elapsed_seconds=time.time() - store.started_at(),
                limits=limits,
                measured=True,
            )
            try:
                copier.advance(state, store, deadline=time.monotonic() + limits.slice_seconds)
            except (RedisConnectionError, RedisTimeoutError) as error:
                # A dropped connection mid-slice: the next poll resumes from the checkpoint,
                # and its preflight fails the run if the server stays unreachable.
                print(f"redis copy slice interrupted, resuming next poll: {error}")  # noqa: T201
                return {"IsComplete": False}
    finally:
        store.release()
    if not state.done:
        return {"IsComplete": False}
    report = state.report()
    if not report["ok"]:
        report["mismatches"] = report["mismatches"][:MAX_REASON_EXAMPLES]
        failure = VerificationFailed(report)
        raise CopyError(f"{failure}; report: {json.dumps(report, separators=(',', ':'))}")
    return {"IsComplete": True, "Data": attributes(report)}


def attributes(report: dict[str, Any]) -> dict[str, str]:
    """The report as CloudFormation attributes (strings), e.g. Fn::GetAtt Copy.Copied."""
    names = ("scanned", "copied", "skipped", "expired", "mismatched", "verified", "seconds")
    return {name.capitalize(): str(report[name]) for name in names}
