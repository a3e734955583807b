"""The box-operations handlers against moto SSM: one box at a time, a failing box fails the
resource, a rollback runs the old properties, Delete runs the revert steps."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
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


def test_a_created_box_update_touches_no_box_cfn_init_provisioned(ssm: Any, boxes: Boxes) -> None:
    """The stack's own boxes were provisioned by cfn-init before they signalled; the resource
    created with them must not provision them a second time."""
    request = with_properties(event("Create", TWO_BOXES), SkipNewBoxes="true")
    reply = run(ssm, boxes, request)
    assert boxes.sent() == []
    assert reply["Data"]["Steps"] == "0"


def test_an_update_skips_only_the_box_this_deploy_created(ssm: Any, boxes: Boxes) -> None:
    """Box 2 added in this deploy (a new instance id) was provisioned by cfn-init; box 1, named
    by the previous properties, gets the new release."""
    request = with_properties(
        event(
            "Update",
            TWO_BOXES,
            OldResourceProperties={"Apply": [step("provision Box", BOX_1, "echo old")]},
        ),
        SkipNewBoxes="true",
    )
    run(ssm, boxes, request)
    assert [sent.instance_id for sent in boxes.sent()] == [BOX_1]


def test_without_the_option_a_create_runs_every_step(ssm: Any, boxes: Boxes) -> None:
    """The Redis cutover's boxes belong to another stack: its Create runs on all of them."""
    run(ssm, boxes, event("Create", TWO_BOXES))
    assert [sent.instance_id for sent in boxes.sent()] == [BOX_1, BOX_2]


def with_properties(request: dict[str, Any], **properties: str) -> dict[str, Any]:
    return {
        **request,
        "ResourceProperties": {**request["ResourceProperties"], **properties},
    }


class CreditCalls:
    """A real EC2 client: botocore serializes and validates each request against the service
    model, and it is answered here, not sent (moto has no ModifyInstanceCreditSpecification)."""

    def __init__(self, unsuccessful: str = "") -> None:
        self.client = boto3.client(
            "ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.bodies: list[str] = []
        failure = (
            "<unsuccessfulInstanceCreditSpecificationSet><item><instanceId>"
            f"{unsuccessful}</instanceId><error><code>IncorrectInstanceState</code><message>"
            "The instance is not in a valid state</message></error></item>"
            "</unsuccessfulInstanceCreditSpecificationSet>"
            if unsuccessful
            else ""
        )
        body = (
            '<ModifyInstanceCreditSpecificationResponse xmlns="http://ec2.amazonaws.com/doc/'
            '2016-11-15/"><requestId>r</requestId><successfulInstanceCreditSpecificationSet/>'
            f"{failure}</ModifyInstanceCreditSpecificationResponse>"
        ).encode()

        def answer(request: Any, **_: Any) -> Any:
            self.bodies.append(
                request.body.decode() if isinstance(request.body, bytes) else request.body
            )
            return AWSResponse(request.url, 200, {}, _Raw(body))

        self.client.meta.events.register_first(
            "before-send.ec2.ModifyInstanceCreditSpecification", answer
        )


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def test_every_box_is_switched_to_standard_credits_once_healthy() -> None:
    calls = CreditCalls()
    request = with_properties(
        event("Create", TWO_BOXES), SkipNewBoxes="true", StandardCredits="true"
    )
    on_event(request, ec2=calls.client)
    (body,) = calls.bodies
    assert "Action=ModifyInstanceCreditSpecification" in body
    for index, box in enumerate(sorted([BOX_1, BOX_2]), start=1):
        assert f"InstanceCreditSpecification.{index}.InstanceId={box}" in body
        assert f"InstanceCreditSpecification.{index}.CpuCredits=standard" in body


def test_a_refused_credit_switch_fails_the_resource_in_one_line() -> None:
    calls = CreditCalls(unsuccessful=BOX_2)
    request = with_properties(event("Update", TWO_BOXES), StandardCredits="true")
    with pytest.raises(
        StepFailed,
        match=rf"^switching the boxes to standard CPU credits failed: {BOX_2}: The instance",
    ):
        on_event(request, ec2=calls.client)


def test_delete_switches_no_credits(ssm: Any) -> None:
    calls = CreditCalls()
    on_event(
        with_properties(event("Delete", TWO_BOXES), StandardCredits="true"),
        ssm=ssm,
        ec2=calls.client,
    )
    assert calls.bodies == []
