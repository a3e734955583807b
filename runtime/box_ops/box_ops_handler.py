"""Provider-framework handlers that run the project's own SSM documents on the boxes, one step
at a time, and fail the resource when a step fails.

Properties (CloudFormation hands every value over as a string):
  Apply          steps run on Create and Update; a rolled-back Update runs the OLD properties'
                 steps, so whatever the previous deploy applied is applied again;
  Revert         steps run on Delete (also when CloudFormation deletes a resource whose
                 Create failed);
  OutputLogGroup the CloudWatch Logs group each step's whole output is written to;
  SkipNewBoxes   "true": leave out the Apply steps of boxes the previous properties did not
                 name. Such a box was created (or replaced) by this very deploy and provisioned
                 by cfn-init from this template before it signalled, so it is provisioned once;
  StandardCredits "true": on Create and Update, first switch every Apply box to `standard`
                 CPU credits. The boxes launch `unlimited`, so provisioning is not held to the
                 baseline; by the time this resource runs each box has signalled it is healthy.
A step is {"Name", "InstanceId", "Document", "Parameters": {name: value}, "TimeoutSeconds"}:
a document of the project's (a fixed script whose parameters SSM validates) and the values of
its parameters. A step never carries commands, and AWS's own documents are refused.

`on_event` sends the first step; each `is_complete` poll reads that command's invocation and,
once it succeeded, sends the next one. Nothing survives between polls, so the progress (step
index and command id) is kept in an SSM parameter named after the request, deleted when the
request ends.

GetCommandInvocation returns only the first 24,000 characters of stdout and 8,000 of stderr,
so a failure reports the last lines of the step's CloudWatch Logs streams when SSM's copy was
cut, and always names the streams that hold the whole output.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from runtime.common import notices

PENDING = frozenset({"Pending", "InProgress", "Delayed"})
# SSM may not know an invocation for a few seconds after SendCommand.
UNKNOWN_INVOCATION_GRACE_SECONDS = 60
# How long past its execution timeout a step may stay pending before it is cancelled.
DEADLINE_GRACE_SECONDS = 120
# How long SSM may take to hand a command to the box's agent.
DELIVERY_TIMEOUT_SECONDS = 300
OUTPUT_TAIL_CHARACTERS = 1500
DATA_CHARACTERS = 1000
# What GetCommandInvocation keeps of each output.
INVOCATION_LIMITS = {"stdout": 24_000, "stderr": 8_000}
TAIL_EVENTS = 40
AWS_DOCUMENT_PREFIXES = ("AWS-", "Amazon", "AWSEC2-", "AWSSupport-")
_DOCUMENT_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,128}$")
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9]{1,64}$")
LOG = logging.getLogger("box_ops")
LOG.setLevel(logging.INFO)


class StepFailed(RuntimeError):
    """A step's command did not succeed; the message is what CloudFormation shows."""


@dataclass(frozen=True)
class Step:
    name: str
    instance_id: str
    document: str
    parameters: tuple[tuple[str, str], ...]
    timeout_seconds: int


def _step(key: str, index: int, raw: Any) -> Step:
    label = f"{key} step {index + 1}"
    if not isinstance(raw, dict):
        raise StepFailed(f"{label} is not an object")
    if "Commands" in raw:
        raise StepFailed(
            f"{label} carries commands; a step names one of the project's SSM documents and its "
            "parameters"
        )
    try:
        parameters = raw.get("Parameters") or {}
        step = Step(
            name=str(raw["Name"]),
            instance_id=str(raw["InstanceId"]),
            document=str(raw["Document"]),
            parameters=tuple(sorted((str(k), str(v)) for k, v in dict(parameters).items())),
            timeout_seconds=int(str(raw["TimeoutSeconds"])),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise StepFailed(
            f"{label} is not {{Name, InstanceId, Document, Parameters, TimeoutSeconds}}: {error}"
        ) from None
    if not step.instance_id.startswith("i-"):
        raise StepFailed(f"{label} ({step.name}) names no instance")
    if not _DOCUMENT_NAME.match(step.document) or step.document.startswith(AWS_DOCUMENT_PREFIXES):
        raise StepFailed(f"{label} ({step.name}): {step.document!r} is not a project document")
    bad = [name for name, _ in step.parameters if not _PARAMETER_NAME.match(name)]
    if bad:
        raise StepFailed(f"{label} ({step.name}): parameter name {bad[0]!r} is not allowed")
    return step


def steps_from(properties: dict[str, Any], key: str) -> list[Step]:
    return [_step(key, index, raw) for index, raw in enumerate(properties.get(key) or [])]


def _properties(event: dict[str, Any]) -> dict[str, Any]:
    return dict(event.get("ResourceProperties") or {})


def _steps_of(event: dict[str, Any]) -> list[Step]:
    if event["RequestType"] == "Delete":
        return steps_from(_properties(event), "Revert")
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
    reply = (ec2 or _client("ec2")).modify_instance_credit_specification(
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


def _output_group(event: dict[str, Any]) -> str:
    group = str(_properties(event).get("OutputLogGroup") or "")
    if not group:
        raise StepFailed("OutputLogGroup is not set: no step runs without its output kept")
    return group


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


def _send(ssm: Any, step: Step, index: int, now: float, output_group: str) -> dict[str, Any]:
    reply = ssm.send_command(
        InstanceIds=[step.instance_id],
        DocumentName=step.document,
        Comment=f"ProStudio: {step.name}"[:100],
        TimeoutSeconds=DELIVERY_TIMEOUT_SECONDS,
        Parameters={name: [value] for name, value in step.parameters},
        CloudWatchOutputConfig={
            "CloudWatchLogGroupName": output_group,
            "CloudWatchOutputEnabled": True,
        },
    )
    command = reply["Command"]["CommandId"]
    LOG.info("step %d: %s on %s: %s", index + 1, step.name, step.instance_id, command)
    return {"step": index, "command": command, "sent": now}


def _tail(text: str | None) -> str:
    text = (text or "").strip()
    return text[-OUTPUT_TAIL_CHARACTERS:]


@dataclass(frozen=True)
class Output:
    """One of a step's outputs: what to show of it, and where all of it is."""

    text: str
    stream: str | None


def _streams(logs: Any, group: str, command: str, instance_id: str) -> dict[str, str]:
    """{"stdout"|"stderr": stream name} of the streams SSM wrote for this invocation."""
    prefix = f"{command}/{instance_id}/"
    try:
        reply = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix)
    except Exception as error:  # noqa: BLE001 - the failure is reported whatever happens here
        LOG.warning("cannot list the output streams of %s: %s", command, error)
        return {}
    found: dict[str, str] = {}
    for stream in reply.get("logStreams", []):
        name = stream["logStreamName"]
        kind = name.rsplit("/", 1)[-1]
        if kind in INVOCATION_LIMITS:
            found.setdefault(kind, name)
    return found


def _stream_tail(logs: Any, group: str, stream: str) -> str | None:
    try:
        reply = logs.get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=False, limit=TAIL_EVENTS
        )
    except Exception as error:  # noqa: BLE001 - fall back to SSM's copy
        LOG.warning("cannot read %s: %s", stream, error)
        return None
    lines = [event["message"].rstrip("\n") for event in reply.get("events", [])]
    return "\n".join(lines) if lines else None


def _output(
    logs: Any, group: str, streams: dict[str, str], kind: str, content: str | None
) -> Output:
    stream = streams.get(kind)
    cut = len(content or "") >= INVOCATION_LIMITS[kind]
    if cut:
        real = _stream_tail(logs, group, stream) if stream else None
        if real is not None:
            return Output(_tail(real), stream)
        return Output(f"(cut by SSM at {INVOCATION_LIMITS[kind]} characters; see the log)", stream)
    return Output(_tail(content), stream)


def _failure(
    logs: Any, group: str, step: Step, command: str, invocation: dict[str, Any]
) -> StepFailed:
    streams = _streams(logs, group, command, step.instance_id)
    stderr = _output(logs, group, streams, "stderr", invocation.get("StandardErrorContent"))
    stdout = _output(logs, group, streams, "stdout", invocation.get("StandardOutputContent"))
    named = [stream for stream in (stdout.stream, stderr.stream) if stream]
    where = ", ".join(named) if named else f"{command}/{step.instance_id}/*"
    return StepFailed(
        f"{step.name} on {step.instance_id}: {invocation['Status']} (exit "
        f"{invocation.get('ResponseCode')}): {stderr.text} | stdout: {stdout.text}"
        f" | whole output: log group {group}, streams {where}"
    )


def _client(service: str) -> Any:
    import boto3  # noqa: PLC0415 - built per invocation so nothing is created at import

    return boto3.client(service)


def physical_id(event: dict[str, Any]) -> str:
    """Kept across Updates, so CloudFormation never deletes (reverts) us on an Update."""
    return str(event.get("PhysicalResourceId") or f"box-ops:{event['LogicalResourceId']}")


def on_event(
    event: dict[str, Any], _context: Any = None, ssm: Any = None, ec2: Any = None
) -> dict[str, Any]:
    ssm = ssm or _client("ssm")
    steps = _steps_of(event)
    if event["RequestType"] != "Delete":
        _standard_credits(ec2, event)
    LOG.info("%s: %s", event["RequestType"], [step.name for step in steps])
    if steps:
        _save(ssm, event, _send(ssm, steps[0], 0, time.time(), _output_group(event)))
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
    event: dict[str, Any],
    _context: Any = None,
    ssm: Any = None,
    now: float | None = None,
    logs: Any = None,
) -> dict[str, Any]:
    try:
        answer = _advance(
            event,
            ssm or _client("ssm"),
            logs or _client("logs"),
            time.time() if now is None else now,
        )
    except StepFailed as failed:
        _announce(event, "failed", str(failed))
        raise
    if answer["IsComplete"] and answer["Data"]["Steps"] != "0":
        _announce(event, "completed", f"{answer['Data']['Steps']} steps succeeded")
    return answer


def _advance(event: dict[str, Any], ssm: Any, logs: Any, now: float) -> dict[str, Any]:
    steps = _steps_of(event)
    if not steps:
        return {"IsComplete": True, "Data": {"Steps": "0", "LastOutput": ""}}
    group = _output_group(event)
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
            raise StepFailed(
                f"{step.name}: still {status} after {step.timeout_seconds} s; its output so far "
                f"is in log group {group}, streams {state['command']}/{step.instance_id}/*"
            )
        return {"IsComplete": False}
    if status != "Success":
        _forget(ssm, event)
        raise _failure(logs, group, step, state["command"], invocation)
    LOG.info("step %d: %s: Success", state["step"] + 1, step.name)
    following = state["step"] + 1
    if following < len(steps):
        _save(ssm, event, _send(ssm, steps[following], following, now, group))
        _announce(event, "step", f"step {following + 1}/{len(steps)}: {steps[following].name}")
        return {"IsComplete": False}
    _forget(ssm, event)
    stdout = invocation.get("StandardOutputContent") or ""
    if len(stdout) >= INVOCATION_LIMITS["stdout"]:
        streams = _streams(logs, group, state["command"], step.instance_id)
        stdout = (_stream_tail(logs, group, streams["stdout"]) if "stdout" in streams else "") or ""
    output = stdout.strip().splitlines()
    return {
        "IsComplete": True,
        "Data": {
            "Steps": str(len(steps)),
            "LastOutput": (output[-1] if output else "")[:DATA_CHARACTERS],
        },
    }
