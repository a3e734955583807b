"""The teardown guard: a custom resource that every other resource of its stack waits for.

Properties (CloudFormation hands every value over as a string):
  Stack      the stack's name, for the message;
  Stateful   the stack's stateful resources as `LogicalId=digest` entries, computed at synth
             (a changed digest means the resource is replaced);
  Confirmed  "true" when the deploy carries -c allow_teardown=<this stack>.

On Update CloudFormation hands over the previous deploy's entries (OldResourceProperties), so
the guard reads no record that might not exist: an entry gone or changed means this deploy
would delete or replace a stateful resource, and unless it is confirmed the guard fails. Every
other resource of the stack depends on the guard, so CloudFormation rolls back before any of
them has changed. Create (a first deploy) and Delete have nothing to compare. During a
rollback the guard accepts whatever it is handed: a rollback puts the previous deploy back.

CloudFormation invokes this function directly (no Provider framework): it answers on the
request's pre-signed ResponseURL.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from runtime.common.guard_entries import changes

LOG = logging.getLogger("teardown_guard")
LOG.setLevel(logging.INFO)
ROLLBACK_STATES = frozenset(
    {"ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "IMPORT_ROLLBACK_IN_PROGRESS"}
)
# How many logical IDs the refusal names before it says "and N more".
NAMED = 4
PHYSICAL_ID = "teardown-guard"


class Refused(RuntimeError):
    """The deploy would delete or replace a stateful resource; the message is one line."""


def refusal(stack: str, found: Mapping[str, str]) -> str:
    named = [f"{logical_id} ({what})" for logical_id, what in sorted(found.items())]
    shown = ", ".join(named[:NAMED]) + (f" and {len(named) - NAMED} more" if named[NAMED:] else "")
    return (
        f"This deploy would delete or replace stateful resources of {stack}: {shown}. "
        f"Review with make diff; to go ahead, deploy once with -c allow_teardown={stack}"
    )


def judge(event: Mapping[str, Any], stack_status: Callable[[], str]) -> None:
    """Raise Refused when the event is an unconfirmed Update that deletes or replaces."""
    if event["RequestType"] != "Update":
        return
    new, old = event["ResourceProperties"], event.get("OldResourceProperties", {})
    if str(new.get("Confirmed", "false")).lower() == "true":
        return
    found = changes(list(old.get("Stateful", [])), list(new.get("Stateful", [])))
    if not found:
        return
    status = stack_status()
    if status in ROLLBACK_STATES:
        LOG.info("rollback (%s): the previous deploy's resources come back", status)
        return
    raise Refused(refusal(str(new.get("Stack", "this stack")), found))


def respond(
    event: Mapping[str, Any], *, status: str, reason: str, put: Callable[[str, bytes], None]
) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason,
            "PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID),
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": {},
        }
    ).encode()
    put(event["ResponseURL"], body)


def _put(url: str, body: bytes) -> None:
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's pre-signed https URL
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - as above
        pass


def handle(
    event: Mapping[str, Any],
    *,
    stack_status: Callable[[], str],
    put: Callable[[str, bytes], None] = _put,
) -> None:
    """Judge the event and always answer CloudFormation, SUCCESS or FAILED with the reason."""
    try:
        judge(event, stack_status)
    except Refused as refused:
        LOG.warning("%s", refused)
        respond(event, status="FAILED", reason=str(refused), put=put)
        return
    except Exception as error:
        LOG.exception("teardown guard failed")
        respond(
            event,
            status="FAILED",
            reason=f"teardown guard could not judge this deploy: {type(error).__name__}",
            put=put,
        )
        return
    respond(event, status="SUCCESS", reason="no stateful resource deleted or replaced", put=put)


def on_event(event: Mapping[str, Any], _context: Any) -> None:
    import boto3  # noqa: PLC0415 - built per call, so a test's AWS mock is active first

    def stack_status() -> str:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=event["StackId"])
        return str(stacks["Stacks"][0]["StackStatus"])

    handle(event, stack_status=stack_status)
