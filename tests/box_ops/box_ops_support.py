"""Helpers for the box-operations tests: moto SSM with instances that play the boxes.

moto reports every Run Command invocation as an immediate Success; `Boxes` rewrites an
invocation in moto's backend so a test decides how each box answers (still running, failed,
its output), lists the commands in the order they were sent, records each SendCommand request
as the client sent it (moto drops CloudWatchOutputConfig), and writes a command's output to
CloudWatch Logs as the SSM agent does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.logs.models import logs_backends
from moto.ssm.models import ssm_backends

REGION = "us-east-1"
STATE_PREFIX = "/prostudio/box-ops/state"
OUTPUT_GROUP = "ZeroCostStack-BoxUpdateStepsOutput"
DOCUMENT = "ZeroCostStack-BoxUpdateStepsUpdate-AbCdEf"


@dataclass(frozen=True)
class Sent:
    """One command as SSM received it."""

    command_id: str
    instance_id: str
    comment: str
    document: str
    parameters: dict[str, list[str]]


class Boxes:
    def __init__(self, ssm: Any) -> None:
        self.backend = ssm_backends[DEFAULT_ACCOUNT_ID][REGION]
        self.requests: list[dict[str, Any]] = []
        ssm.meta.events.register("provide-client-params.ssm.SendCommand", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(dict(params))

    def sent(self) -> list[Sent]:
        return [
            Sent(
                command_id=command.command_id,
                instance_id=command.instance_ids[0],
                comment=command.comment,
                document=str(command.document_name),
                parameters={k: list(v) for k, v in command.parameters.items()},
            )
            for command in self.backend._commands
        ]

    def write_output(self, sent: Sent, kind: str, lines: list[str]) -> str:
        """Write `lines` to the invocation's stream as the SSM agent would; its name."""
        logs = logs_backends[DEFAULT_ACCOUNT_ID][REGION]
        if OUTPUT_GROUP not in logs.groups:
            logs.create_log_group(OUTPUT_GROUP, {})
        stream = f"{sent.command_id}/{sent.instance_id}/run/{kind}"
        now = int(time.time() * 1000)
        logs.create_log_stream(OUTPUT_GROUP, stream)
        logs.put_log_events(
            OUTPUT_GROUP,
            stream,
            [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
        )
        return stream

    def answer(
        self,
        sent: Sent,
        status: str,
        *,
        code: int = 0,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        command = self.backend.get_command_by_id(sent.command_id)
        for invocation in command.invocations:
            invocation.update(
                Status=status,
                StatusDetails=status,
                ResponseCode=code,
                StandardOutputContent=stdout,
                StandardErrorContent=stderr,
            )

    def forget_invocations(self, sent: Sent) -> None:
        """As SSM does for a few seconds after SendCommand."""
        self.backend.get_command_by_id(sent.command_id).invocations = []


def step(
    name: str, instance_id: str, action: str, *, timeout: int = 600, document: str = DOCUMENT
) -> dict[str, Any]:
    return {
        "Name": name,
        "InstanceId": instance_id,
        "Document": document,
        "Parameters": {"Action": action, "executionTimeout": str(timeout)},
        "TimeoutSeconds": str(timeout),
    }


def event(
    request_type: str,
    apply: list[dict[str, Any]],
    revert: list[dict[str, Any]] | None = None,
    request_id: str = "req-1",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "RequestId": request_id,
        "LogicalResourceId": "BoxUpdate",
        "ResourceProperties": {
            "Apply": apply,
            "Revert": revert or [],
            "OutputLogGroup": OUTPUT_GROUP,
        },
        **extra,
    }
