"""The box-operations handlers against moto SSM: one box at a time, a failing box fails the
resource, a rollback runs the old properties, Delete runs the revert steps."""

from __future__ import annotations

import time
from typing import Any

import pytest
from box_ops_handler import StepFailed, is_complete, on_event
from box_ops_support import STATE_PREFIX, Boxes, event, step

BOX_1 = "i-0123456789abcdef0"
BOX_2 = "i-0fedcba9876543210"
TWO_BOXES = [
    step("provision Box", BOX_1, "echo one", timeout=900),
    step("provision Box2", BOX_2, "echo two", timeout=900),
]


def run(ssm: Any, boxes: Boxes, request: dict[str, Any]) -> dict[str, Any]:
    """Drive a request to its end with every box answering Success."""
    request = {**request, **on_event(request, ssm=ssm)}
    for _ in range(10):
        for sent in boxes.sent():
            boxes.answer(sent, "Success", stdout=f"done {sent.instance_id}\n")
        reply = is_complete(request, ssm=ssm)
        if reply["IsComplete"]:
            return reply
    raise AssertionError("never completed")


def state_parameters(ssm: Any) -> list[str]:
    reply = ssm.get_parameters_by_path(Path=STATE_PREFIX, Recursive=True)
    return [parameter["Name"] for parameter in reply["Parameters"]]


def test_boxes_are_updated_one_at_a_time_in_order(ssm: Any, boxes: Boxes) -> None:
    request = event("Update", TWO_BOXES)
    request = {**request, **on_event(request, ssm=ssm)}

    (first,) = boxes.sent()
    assert (first.instance_id, first.commands, first.execution_timeout) == (
        BOX_1,
        ["echo one"],
        "900",
    )
    boxes.answer(first, "InProgress")
    assert is_complete(request, ssm=ssm) == {"IsComplete": False}
    assert len(boxes.sent()) == 1, "box 2 must wait until box 1 is done"

    boxes.answer(first, "Success")
    assert is_complete(request, ssm=ssm) == {"IsComplete": False}
    second = boxes.sent()[1]
    assert (second.instance_id, second.commands) == (BOX_2, ["echo two"])

    boxes.answer(second, "Success", stdout='provision: ok\n{"box": 2}\n')
    reply = is_complete(request, ssm=ssm)

    assert reply == {"IsComplete": True, "Data": {"Steps": "2", "LastOutput": '{"box": 2}'}}
    assert state_parameters(ssm) == []


def test_a_failing_box_fails_the_resource_and_the_next_box_is_never_touched(
    ssm: Any, boxes: Boxes
) -> None:
    request = event("Update", TWO_BOXES)
    request = {**request, **on_event(request, ssm=ssm)}
    (first,) = boxes.sent()
    boxes.answer(first, "Failed", code=1, stderr="update: /health/ready never answered 200")

    with pytest.raises(StepFailed, match=r"provision Box on i-0123.*Failed \(exit 1\).*ready"):
        is_complete(request, ssm=ssm)

    assert [sent.instance_id for sent in boxes.sent()] == [BOX_1]
    assert state_parameters(ssm) == []


@pytest.mark.parametrize("status", ["TimedOut", "Cancelled"])
def test_a_command_that_timed_out_on_the_box_fails_the_resource(
    ssm: Any, boxes: Boxes, status: str
) -> None:
    request = event("Create", TWO_BOXES)
    request = {**request, **on_event(request, ssm=ssm)}
    boxes.answer(boxes.sent()[0], status)

    with pytest.raises(StepFailed, match=status):
        is_complete(request, ssm=ssm)


def test_a_rolled_back_update_applies_the_properties_it_is_given(ssm: Any, boxes: Boxes) -> None:
    """CloudFormation rolls a failed Update back by sending the old properties as the new."""
    previous = [step("provision Box", BOX_1, "apply release v1")]
    failed = [step("provision Box", BOX_1, "apply release v2")]
    rollback = event(
        "Update",
        previous,
        OldResourceProperties={"Apply": failed, "Revert": []},
        PhysicalResourceId="box-ops:BoxUpdate",
    )

    reply = run(ssm, boxes, rollback)

    assert reply["IsComplete"] is True
    assert [sent.commands for sent in boxes.sent()] == [["apply release v1"]]


def test_the_physical_id_is_kept_across_updates(ssm: Any) -> None:
    created = on_event(event("Create", []), ssm=ssm)
    updated = on_event(
        event("Update", [], PhysicalResourceId=created["PhysicalResourceId"]), ssm=ssm
    )

    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"] == "box-ops:BoxUpdate"


def test_delete_runs_the_revert_steps_and_not_the_apply_steps(ssm: Any, boxes: Boxes) -> None:
    revert = [step("switch Box2 back", BOX_2, "back two"), step("switch Box back", BOX_1, "b1")]
    request = event("Delete", TWO_BOXES, revert, PhysicalResourceId="box-ops:BoxUpdate")

    run(ssm, boxes, request)

    assert [(sent.instance_id, sent.commands) for sent in boxes.sent()] == [
        (BOX_2, ["back two"]),
        (BOX_1, ["b1"]),
    ]


def test_delete_without_revert_steps_touches_no_box(ssm: Any, boxes: Boxes) -> None:
    request = event("Delete", TWO_BOXES, PhysicalResourceId="box-ops:BoxUpdate")
    request = {**request, **on_event(request, ssm=ssm)}

    assert is_complete(request, ssm=ssm)["IsComplete"] is True
    assert boxes.sent() == []


def test_an_invocation_ssm_does_not_know_yet_is_waited_for_then_fails(
    ssm: Any, boxes: Boxes
) -> None:
    request = event("Create", TWO_BOXES)
    request = {**request, **on_event(request, ssm=ssm)}
    boxes.forget_invocations(boxes.sent()[0])

    assert is_complete(request, ssm=ssm, now=time.time() + 5) == {"IsComplete": False}
    with pytest.raises(StepFailed, match="SSM agent online"):
        is_complete(request, ssm=ssm, now=time.time() + 120)


class CancelRecorder:
    """moto has no CancelCommand: record it, pass every other call to moto."""

    def __init__(self, ssm: Any) -> None:
        self.ssm = ssm
        self.cancelled: list[tuple[str, list[str]]] = []

    def cancel_command(self, CommandId: str, InstanceIds: list[str]) -> None:
        self.cancelled.append((CommandId, InstanceIds))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ssm, name)


def test_a_box_that_never_finishes_is_cancelled_and_fails_the_resource(
    ssm: Any, boxes: Boxes
) -> None:
    client = CancelRecorder(ssm)
    request = event("Create", [step("provision Box", BOX_1, "sleep infinity", timeout=300)])
    request = {**request, **on_event(request, ssm=client)}
    (sent,) = boxes.sent()
    boxes.answer(sent, "InProgress")

    assert is_complete(request, ssm=client, now=time.time() + 200)["IsComplete"] is False
    with pytest.raises(StepFailed, match="still InProgress after 300 s"):
        is_complete(request, ssm=client, now=time.time() + 500)
    assert client.cancelled == [(sent.command_id, [BOX_1])]


@pytest.mark.parametrize(
    "bad",
    [
        {"Name": "x", "InstanceId": BOX_1, "Commands": ["true"]},
        {"Name": "x", "InstanceId": "not-an-instance", "Commands": ["true"], "TimeoutSeconds": "9"},
        {"Name": "x", "InstanceId": BOX_1, "Commands": [], "TimeoutSeconds": "9"},
    ],
)
def test_a_malformed_step_is_refused_before_any_box_is_touched(
    ssm: Any, boxes: Boxes, bad: dict[str, Any]
) -> None:
    with pytest.raises(StepFailed, match="Apply step 2"):
        on_event(event("Create", [TWO_BOXES[0], bad]), ssm=ssm)
    assert boxes.sent() == []
