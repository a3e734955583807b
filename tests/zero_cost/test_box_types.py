"""The boxes and their alarms for each box type the flags allow, built on a bare stack."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from aws_cdk import Stack
from synth_support import construct_template, context_for, resources_of_type

from infra.config import ZERO_COST_STACK, load_settings
from infra.constructs.network import Network
from infra.stacks.zero_cost_stack import alarms_of, web_boxes


@functools.cache
def boxes(instance_type: str, alarm_email: str = "") -> dict[str, Any]:
    """Phase 2's two boxes of `instance_type` with their alarms, as ZeroCostStack builds them."""
    settings = load_settings(
        context_for({"phase": "2", "instance_type": instance_type, "alarm_email": alarm_email})
    )

    def build(stack: Stack) -> None:
        network = Network(stack, "Network", names=settings.names)
        alarms_of(stack, web_boxes(stack, network, settings, cache=None), settings)

    return construct_template(build, name=ZERO_COST_STACK)


@pytest.mark.parametrize(
    ("instance_type", "architecture"),
    [
        ("t3.micro", "x86_64"),
        ("t3.small", "x86_64"),
        ("t2.micro", "x86_64"),
        ("t4g.micro", "arm64"),
        ("t4g.small", "arm64"),
    ],
)
def test_type_flag_picks_the_ami_of_its_architecture_with_launch_credits(
    instance_type: str, architecture: str
) -> None:
    found = resources_of_type(boxes(instance_type), "AWS::EC2::Instance").values()
    assert len(found) == 2
    for box in found:
        properties = box["Properties"]
        assert properties["InstanceType"] == instance_type
        assert properties["ImageId"] == (
            "resolve:ssm:/aws/service/ami-amazon-linux-latest/"
            f"al2023-ami-kernel-default-{architecture}"
        )
        # T3/T4g provision unlimited (no launch credits in standard) and are switched to
        # standard once healthy (tests/zero_cost/test_box_launch.py); T2 has launch credits.
        launch = "standard" if instance_type.startswith("t2.") else "unlimited"
        assert properties["CreditSpecification"] == {"CPUCredits": launch}


@pytest.mark.parametrize(
    ("instance_type", "threshold"),
    [("t3.micro", 57.6), ("t4g.small", 115.2), ("t2.micro", 28.8)],
)
def test_credit_balance_alarm_fires_with_a_fifth_of_a_full_balance_left(
    instance_type: str, threshold: float
) -> None:
    alarms = resources_of_type(boxes(instance_type), "AWS::CloudWatch::Alarm")
    credit_alarms = [
        alarm["Properties"]
        for logical_id, alarm in alarms.items()
        if logical_id.startswith("BoxAlarmsBoxCpuCredits")
        or logical_id.startswith("BoxAlarmsBox2CpuCredits")
    ]
    assert len(credit_alarms) == 2
    for alarm in credit_alarms:
        (expression,) = [metric for metric in alarm["Metrics"] if metric.get("ReturnData", True)]
        balance = {metric["Id"]: metric for metric in alarm["Metrics"]}["balance"]["MetricStat"]
        assert (balance["Metric"]["MetricName"], balance["Stat"]) == (
            "CPUCreditBalance",
            "Minimum",
        )
        assert f"balance < {threshold:g} AND" in expression["Expression"]
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
            "GreaterThanOrEqualToThreshold",
            1,
        )


def test_alarm_email_is_subscribed_to_the_box_topic() -> None:
    assert not resources_of_type(boxes("t3.micro"), "AWS::SNS::Subscription")
    template = boxes("t3.micro", alarm_email="ops@example.com")
    (subscription,) = resources_of_type(template, "AWS::SNS::Subscription").values()
    (topic,) = resources_of_type(template, "AWS::SNS::Topic")
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    assert subscription["Properties"]["TopicArn"] == {"Ref": topic}
