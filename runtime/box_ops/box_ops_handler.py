"""Provider-framework handlers that run shell steps on the boxes, one at a time, through SSM Run
Command (AWS-RunShellScript), and fail the resource when a step fails.

Properties (CloudFormation hands every value over as a string):
  Apply   steps run on Create and Update; a rolled-back Update runs the OLD properties' steps,
          so whatever the previous deploy applied is applied again;
  Revert  steps run on Delete (also when CloudFormation deletes a resource whose Create failed).
  SkipNewBoxes     "true": leave out the Apply steps of boxes the previous properties did not
          name. Such a box was created (or replaced) by this very deploy and provisioned by
          cfn-init from this template before it signalled, so it is provisioned once.
  StandardCredits  "true": on Create and Update, first switch every Apply box to `standard`
          CPU credits. The boxes launch `unlimited`, so provisioning is not held to the
          baseline; by the time this resource runs each box has signalled it is healthy.
A step is {"Name", "InstanceId", "Commands": [shell lines], "TimeoutSeconds"}.

`on_event` sends the first step's command; each `is_complete` poll reads that command's
invocation and, once it succeeded, sends the next one. Nothing survives between polls, so the
progress (step index and command id) is kept in an SSM parameter named after the request,
deleted when the request ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from runtime.common import notices

DOCUMENT = "AWS-RunShellScript"
PENDING = frozenset({"Pending", "InProgress", "Delayed"})
# SSM may not know an invocation for a few seconds after SendCommand.
UNKNOWN_INVOCATION_GRACE_SECONDS = 60
# How long past its execution timeout a step may stay pending before it is cancelled.
DEADLINE_GRACE_SECONDS = 120
OUTPUT_TAIL_CHARACTERS = 1500
DATA_CHARACTERS = 1000
LOG = logging.getLogger("box_ops")
LOG.setLevel(logging.INFO)


class StepFailed(RuntimeError):
    """A step's command did not succeed; the message is what CloudFormation shows."""


@dataclass(frozen=True)
class Step:
    name: str
    instance_id: str
    commands: tuple[str, ...]
    timeout_seconds: int


def steps_from(properties: dict[str, Any], key: str) -> list[Step]:
    steps = []
    for index, raw in enumerate(properties.get(key) or []):
        try:
            step = Step(
                name=str(raw["Name"]),
                instance_id=str(raw["InstanceId"]),
                commands=tuple(str(line) for line in raw["Commands"]),
                timeout_seconds=int(str(raw["TimeoutSeconds"])),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StepFailed(
                f"{key} step {index + 1} is not {{Name, InstanceId, Commands, TimeoutSeconds}}: "
                f"{error}"
            ) from None
        if not step.instance_id.startswith("i-") or not step.commands:
            raise StepFailed(f"{key} step {index + 1} ({step.name}) has no instance or commands")
        steps.append(step)
    return steps


def _steps_of(event: dict[str, Any]) -> list[Step]:
    if event["RequestType"] == "Delete":
        return steps_from(event.get("ResourceProperties") or {}, "Revert")
    properties = event["ResourceProperties"]
    steps = steps_from(properties, "Apply")
    if str(properties.get("SkipNewBoxes", "")).lower() == "true":
        known = {
            step.instance_id
            for step in steps_from(event.get("OldResourceProperties") or {}, "Apply")
        }
        steps = [step for step in steps if step.instance_id in known]
    return steps


def _standard_credits(ec2: Any, event: dict[str, Any]) -> None:
    properties = event["ResourceProperties"]
    if str(properties.get("StandardCredits", "")).lower() != "true":
        return
    instance_ids = sorted({step.instance_id for step in steps_from(properties, "Apply")})
    if not instance_ids:
        return
    reply = (ec2 or _clients("ec2")).modify_instance_credit_specification(
        InstanceCreditSpecifications=[
            {"InstanceId": instance_id, "CpuCredits": "standard"} for instance_id in instance_ids
        ]
    )
    refused = reply.get("UnsuccessfulInstanceCreditSpecifications") or []
    if refused:
        details = "; ".join(
            f"{item.get('InstanceId')}: {item.get('Error', {}).get('Message', 'refused')}"
            for item in refused
        )
        raise StepFailed(f"switching the boxes to standard CPU credits failed: {details}")
    LOG.info("standard CPU credits: %s", ", ".join(instance_ids))


def _state_name(event: dict[str, Any]) -> str:
    return f"{os.environ['STATE_PARAMETER_PREFIX']}/{event['RequestId']}"


def _save(ssm: Any, event: dict[str, Any], state: dict[str, Any]) -> None:
    ssm.put_parameter(
        Name=_state_name(event), Value=json.dumps(state), Type="String", Overwrite=True
    )


def _load(ssm: Any, event: dict[str, Any]) -> dict[str, Any]:
    try:
        reply = ssm.get_parameter(Name=_state_name(event))
    except ssm.exceptions.ParameterNotFound:
        raise StepFailed(f"no progress recorded for request {event['RequestId']}") from None
    state: dict[str, Any] = json.loads(reply["Parameter"]["Value"])
    return state


def _forget(ssm: Any, event: dict[str, Any]) -> None:
    with contextlib.suppress(ssm.exceptions.ParameterNotFound):
        ssm.delete_parameter(Name=_state_name(event))


def _send(ssm: Any, step: Step, index: int, now: float) -> dict[str, Any]:
    reply = ssm.send_command(
        InstanceIds=[step.instance_id],
        DocumentName=DOCUMENT,
        Comment=f"ProStudio: {step.name}"[:100],
        TimeoutSeconds=300,
        Parameters={
            "commands": list(step.commands),
            "executionTimeout": [str(step.timeout_seconds)],
        },
    )
    LOG.info(
        "step %d: %s on %s: %s",
        index + 1,
        step.name,
        step.instance_id,
        reply["Command"]["CommandId"],
    )
    return {"step": index, "command": reply["Command"]["CommandId"], "sent": now}


def _tail(text: str | None) -> str:
    text = (text or "").strip()
    return text[-OUTPUT_TAIL_CHARACTERS:]


def _clients(service: str = "ssm") -> Any:
    import boto3  # noqa: PLC0415 - built per invocation so nothing is created at import

    return boto3.client(service)


def physical_id(event: dict[str, Any]) -> str:
    """Kept across Updates, so CloudFormation never deletes (reverts) us on an Update."""
    return str(event.get("PhysicalResourceId") or f"box-ops:{event['LogicalResourceId']}")


def on_event(
    event: dict[str, Any], _context: Any = None, ssm: Any = None, ec2: Any = None
) -> dict[str, Any]:
    ssm = ssm or _clients()
    steps = _steps_of(event)
    if event["RequestType"] != "Delete":
        _standard_credits(ec2, event)
    LOG.info("%s: %s", event["RequestType"], [step.name for step in steps])
    if steps:
        _save(ssm, event, _send(ssm, steps[0], 0, time.time()))
        _announce(event, "started", f"{len(steps)} steps; step 1: {steps[0].name}")
    return {"PhysicalResourceId": physical_id(event)}


def _announce(event: dict[str, Any], change: str, message: str) -> None:
    """A notice of this state change, when the construct asked for notices."""
    process = os.environ.get("NOTICE_PROCESS", "box steps")
    if event["RequestType"] == "Delete":
        process += " (revert)"
    notices.notify(
        notices.Notice(
            process=process,
            change=change,
            message=message,
            key=f"{process}/{event['RequestId']}/{change}/{message[:60]}",
            details={"operation": event["RequestType"], "request": event["RequestId"]},
        )
    )


def is_complete(
    event: dict[str, Any], _context: Any = None, ssm: Any = None, now: float | None = None
) -> dict[str, Any]:
    try:
        answer = _advance(event, ssm or _clients(), time.time() if now is None else now)
    except StepFailed as failed:
        _announce(event, "failed", str(failed))
        raise
    if answer["IsComplete"] and answer["Data"]["Steps"] != "0":
        _announce(event, "completed", f"{answer['Data']['Steps']} steps succeeded")
    return answer


def _advance(event: dict[str, Any], ssm: Any, now: float) -> dict[str, Any]:
    steps = _steps_of(event)
    if not steps:
        return {"IsComplete": True, "Data": {"Steps": "0", "LastOutput": ""}}
    state = _load(ssm, event)
    step = steps[state["step"]]
    try:
        invocation = ssm.get_command_invocation(
            CommandId=state["command"], InstanceId=step.instance_id
        )
    except ssm.exceptions.InvocationDoesNotExist:
        if now - state["sent"] < UNKNOWN_INVOCATION_GRACE_SECONDS:
            return {"IsComplete": False}
        _forget(ssm, event)
        raise StepFailed(
            f"{step.name}: SSM never ran command {state['command']} on {step.instance_id}; "
            "is the SSM agent online and the instance managed?"
        ) from None
    status = invocation["Status"]
    if status in PENDING:
        if now - state["sent"] > step.timeout_seconds + DEADLINE_GRACE_SECONDS:
            ssm.cancel_command(CommandId=state["command"], InstanceIds=[step.instance_id])
            _forget(ssm, event)
            raise StepFailed(f"{step.name}: still {status} after {step.timeout_seconds} s")
        return {"IsComplete": False}
    if status != "Success":
        _forget(ssm, event)
        raise StepFailed(
            f"{step.name} on {step.instance_id}: {status} (exit "
            f"{invocation.get('ResponseCode')}): {_tail(invocation.get('StandardErrorContent'))}"
            f" | stdout: {_tail(invocation.get('StandardOutputContent'))}"
        )
    LOG.info("step %d: %s: Success", state["step"] + 1, step.name)
    following = state["step"] + 1
    if following < len(steps):
        _save(ssm, event, _send(ssm, steps[following], following, now))
        _announce(event, "step", f"step {following + 1}/{len(steps)}: {steps[following].name}")
        return {"IsComplete": False}
    _forget(ssm, event)
    output = (invocation.get("StandardOutputContent") or "").strip().splitlines()
    return {
        "IsComplete": True,
        "Data": {
            "Steps": str(len(steps)),
            "LastOutput": (output[-1] if output else "")[:DATA_CHARACTERS],
        },
    }
