"""Helpers for the box-operations tests: moto SSM with instances that play the boxes.

moto reports every Run Command invocation as an immediate Success; `Boxes` rewrites an
invocation in moto's backend so a test decides how each box answers (still running, failed,
its output), and lists the commands in the order they were sent.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ssm.models import ssm_backends

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "runtime" / "box_ops"))

REGION = "us-east-1"
STATE_PREFIX = "/prostudio/box-ops/state"


@dataclass(frozen=True)
class Sent:
    """One command as SSM received it."""

    command_id: str
    instance_id: str
    comment: str
    commands: list[str]
    execution_timeout: str


class Boxes:
    def __init__(self) -> None:
        self.backend = ssm_backends[DEFAULT_ACCOUNT_ID][REGION]

    def sent(self) -> list[Sent]:
        return [
            Sent(
                command_id=command.command_id,
                instance_id=command.instance_ids[0],
                comment=command.comment,
                commands=list(command.parameters["commands"]),
                execution_timeout=command.parameters["executionTimeout"][0],
            )
            for command in self.backend._commands
        ]

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


def step(name: str, instance_id: str, *commands: str, timeout: int = 600) -> dict[str, Any]:
    return {
        "Name": name,
        "InstanceId": instance_id,
        "Commands": list(commands),
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
        "ResourceProperties": {"Apply": apply, "Revert": revert or []},
        **extra,
    }
