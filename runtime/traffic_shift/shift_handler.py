"""Provider-framework handlers: `on_event` validates and takes the lock, `is_complete` advances
the shift by at most one phase per poll (no sleeping in a Lambda).

Create/Update walk to `TargetWeight`: toward new in `Step`s, each soaked and gated; toward
old (`traffic_weight=0`, or a rolled-back Update arriving with the old properties) in one
change with no soak, since no gate applies there. Delete puts all traffic back on old the same
way and waits for Route53 to apply it.
"""

from __future__ import annotations

import re
from typing import Any

from shift_engine import (
    FAILED,
    ROLLBACK_TO_HEALTHY,
    LockLost,
    ShiftContext,
    ShiftError,
    ShiftFailed,
    ShiftRequest,
    advance,
    start,
)
from shift_records import MAX_WEIGHT, Route53Records

from runtime.common import aws, notices
from runtime.common import properties as cfn_properties
from runtime.common.json_logs import lambda_logger

_STACK_NAME = re.compile(r":stack/([^/]+)/")
LOG = lambda_logger("traffic_shift")
PROCESS = "traffic shift"
# Route53 publishes its health checks' metrics in us-east-1 only.
ROUTE53_METRICS_REGION = "us-east-1"
# shift_retry's backoff is the one retry layer: botocore makes a single attempt.
SINGLE_ATTEMPT = 1


def _clients() -> ShiftContext:
    return ShiftContext(
        route53=aws.client("route53", botocore_attempts=SINGLE_ATTEMPT),
        cloudwatch=aws.client("cloudwatch", botocore_attempts=SINGLE_ATTEMPT),
        route53_metrics=aws.client(
            "cloudwatch", botocore_attempts=SINGLE_ATTEMPT, region_name=ROUTE53_METRICS_REGION
        ),
    )


def physical_id(properties: dict[str, Any]) -> str:
    """Stable per zone and record name, so an Update never makes CloudFormation delete us."""
    return f"traffic-shift:{properties['ZoneId']}:{str(properties['RecordName']).rstrip('.')}"


def owner_of(event: dict[str, Any]) -> str:
    """The same for every operation of one resource, so a new one can take over a dead run."""
    match = _STACK_NAME.search(str(event.get("StackId", "")))
    stack = match.group(1) if match else "stack"
    return f"cfn:{stack}/{event.get('LogicalResourceId', 'resource')}"


def _int(properties: dict[str, Any], key: str) -> int:
    return cfn_properties.whole_number(properties, key, error=ShiftError)


def request_from(properties: dict[str, Any]) -> ShiftRequest:
    alarms = properties.get("Alarms") or []
    return ShiftRequest(
        zone_id=str(properties["ZoneId"]),
        name=str(properties["RecordName"]),
        old_id=str(properties["OldSetId"]),
        new_id=str(properties["NewSetId"]),
        target=_int(properties, "TargetWeight"),
        step=_int(properties, "Step"),
        interval_seconds=_int(properties, "IntervalSeconds"),
        alarms=tuple(str(name) for name in alarms),
        health_url=str(properties.get("HealthUrl") or "") or None,
        use_health_check=str(properties.get("UseHealthCheck", "true")).lower() == "true",
        rollback_to=str(properties.get("RollbackTo") or ROLLBACK_TO_HEALTHY),
        step_toward_old=MAX_WEIGHT,
        deadline_seconds=_int(properties, "TimeoutSeconds")
        if "TimeoutSeconds" in properties
        else None,
    )


def delete_request(ctx: ShiftContext, properties: dict[str, Any]) -> ShiftRequest | None:
    """All traffic to old in one step, or None when there is nothing left to restore (the
    records or the zone are gone, or the properties never described a usable shift)."""
    try:
        request = request_from(properties)
    except (ShiftError, KeyError):
        return None
    records = Route53Records(ctx.route53, request.zone_id, request.name, ctx.call)
    try:
        records.read_pair(request.old_id, request.new_id)
    except ShiftError:
        return None
    return ShiftRequest(
        zone_id=request.zone_id,
        name=request.name,
        old_id=request.old_id,
        new_id=request.new_id,
        target=0,
        step=MAX_WEIGHT,
        interval_seconds=0,
        use_health_check=False,
    )


def handle_event(event: dict[str, Any], ctx: ShiftContext) -> dict[str, Any]:
    properties = event["ResourceProperties"]
    request_type = event["RequestType"]
    if request_type == "Delete":
        request = delete_request(ctx, properties)
        if request is None:
            return {"PhysicalResourceId": event["PhysicalResourceId"], "Data": {"Skipped": "true"}}
    else:
        request = request_from(properties)
    progress = start(request, ctx, run_id=event["RequestId"], owner=owner_of(event), take_over=True)
    announce(
        request,
        event,
        change=progress.notice,
        message=progress.message,
        new_weight=progress.new_weight,
        ctx=ctx,
    )
    resource_id = (
        event["PhysicalResourceId"] if request_type == "Delete" else physical_id(properties)
    )
    return {
        "PhysicalResourceId": resource_id,
        "Data": {"OldWeight": progress.old_weight, "NewWeight": progress.new_weight},
    }


def check_event(event: dict[str, Any], ctx: ShiftContext) -> dict[str, Any]:
    data = event.get("Data") or {}
    if data.get("Skipped") == "true":
        return {"IsComplete": True}
    properties = event["ResourceProperties"]
    if event["RequestType"] == "Delete":
        request = delete_request(ctx, properties)
        if request is None:
            return {"IsComplete": True}
    else:
        request = request_from(properties)
    try:
        progress = advance(request, ctx, event["RequestId"])
    except ShiftFailed as failed:
        announce(
            request,
            event,
            change=failed.change,
            message=str(failed),
            new_weight=failed.new_weight,
            ctx=ctx,
        )
        raise
    except LockLost as lost:
        announce(request, event, change=FAILED, message=str(lost), new_weight=None, ctx=ctx)
        raise
    # The Lambda's log is how a deploy is followed.
    LOG.info(progress.message, done=progress.done)
    announce(
        request,
        event,
        change=progress.notice,
        message=progress.message,
        new_weight=progress.new_weight,
        ctx=ctx,
    )
    if not progress.done:
        return {"IsComplete": False}
    return {
        "IsComplete": True,
        "Data": {"OldWeight": progress.old_weight, "NewWeight": progress.new_weight},
    }


def on_event(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """Provider `onEvent`: validate, take the lock; raises (and changes nothing) on bad input."""
    return handle_event(event, _clients())


def is_complete(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """Provider `isComplete`: one phase of the shift per poll; raises after a rollback."""
    return check_event(event, _clients())


def announce(
    request: ShiftRequest,
    event: dict[str, Any],
    *,
    change: str,
    message: str,
    new_weight: int | None,
    ctx: ShiftContext,
) -> None:
    """One notice for a state change the engine reported (nothing for a poll that made none)."""
    if not change:
        return
    run = str(event["RequestId"])
    where = "" if new_weight is None else f"new {new_weight}"
    notices.notify(
        notices.Notice(
            process=PROCESS,
            change=change,
            message=f"{request.name}: {message}",
            key=f"traffic-shift/{run}/{change}/{where or '-'}/{ctx.now()}",
            details={
                "record": request.name,
                "target_new_weight": request.target,
                "new_weight": "unknown" if new_weight is None else new_weight,
                "operation": f"{event['RequestType']} {event.get('LogicalResourceId', '')}",
                "run": run,
            },
        )
    )
