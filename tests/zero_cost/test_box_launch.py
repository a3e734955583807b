"""A new box: provisioned once, by cfn-init, with the CPU it needs, and no alarm left firing.

The credit alarm is judged by replaying CloudWatch's evaluation of the synthesized alarm over
the metric series a box produces (five-minute periods): a normal launch, and a box that really
runs out of credits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from synth_support import resources_of_type, synthesize

OPERATORS = {
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
}
# t3.micro: 12 credits an hour (1 per five minutes), 2 vCPUs; at 100% of both it spends 10
# credits per five minutes, idle (2%) 0.1.
EARNED = 1.0
FULL_LOAD, IDLE = 10.0, 0.1


def _value(alarm: Mapping[str, Any], series: Mapping[str, float]) -> float:
    """One period's value of the alarm's metric or expression (metric math's IF/AND)."""
    if "MetricName" in alarm:
        return series[alarm["MetricName"]]
    values = {
        metric["Id"]: series[metric["MetricStat"]["Metric"]["MetricName"]]
        for metric in alarm["Metrics"]
        if "MetricStat" in metric
    }
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
    python = re.sub(r"\bAND\b", "and", re.sub(r"\bIF\(", "_if(", expression))
    assert re.fullmatch(r"[\w\s.<>=()_,]+", python), expression
    return float(eval(python, {"_if": lambda c, a, b: a if c else b}, values))


def alarm_states(alarm: Mapping[str, Any], periods: Sequence[Mapping[str, float]]) -> list[bool]:
    """ALARM (True) or not after each period, as CloudWatch evaluates M of N datapoints."""
    breaching = [
        OPERATORS[alarm["ComparisonOperator"]](_value(alarm, series), alarm["Threshold"])
        for series in periods
    ]
    window, needed = alarm["EvaluationPeriods"], alarm.get("DatapointsToAlarm", 1)
    return [
        sum(breaching[max(0, end - window + 1) : end + 1]) >= needed
        for end in range(len(breaching))
    ]


def normal_launch(hours: int = 8) -> list[dict[str, float]]:
    """Ten minutes of provisioning flat out (unlimited: nothing banked), then idle, banking
    what it does not spend until the balance is full."""
    periods, balance = [], 0.0
    for period in range(hours * 12):
        usage = FULL_LOAD if period < 2 else IDLE
        balance = min(288.0, max(0.0, balance + EARNED - usage))
        periods.append({"CPUCreditBalance": balance, "CPUCreditUsage": usage})
    return periods


def running_out(hours: int = 6) -> list[dict[str, float]]:
    """A full box under full load: the balance falls until the box is held at its baseline."""
    periods, balance = [], 288.0
    for _ in range(hours * 12):
        usage = FULL_LOAD if balance > 0 else EARNED
        balance = max(0.0, balance + EARNED - usage)
        periods.append({"CPUCreditBalance": balance, "CPUCreditUsage": usage})
    return periods


@pytest.fixture(scope="module")
def zero_cost() -> dict[str, Any]:
    synthesis = synthesize(phase=2)
    assert synthesis.error is None, synthesis.error
    return synthesis.template("ZeroCostStack")


def _credit_alarm(template: dict[str, Any]) -> dict[str, Any]:
    (alarm,) = [
        resource["Properties"]
        for logical_id, resource in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
        if logical_id.startswith("BoxAlarmsBoxCpuCredits")
    ]
    return alarm


def test_a_normal_launch_leaves_the_credit_alarm_quiet(zero_cost: dict[str, Any]) -> None:
    states = alarm_states(_credit_alarm(zero_cost), normal_launch())
    assert not any(states), f"ALARM in {sum(states)} of {len(states)} periods after launch"


def test_a_box_running_out_of_credits_alarms_before_it_hits_the_baseline(
    zero_cost: dict[str, Any],
) -> None:
    periods = running_out()
    states = alarm_states(_credit_alarm(zero_cost), periods)
    first_alarm = states.index(True)
    at_baseline = next(i for i, p in enumerate(periods) if p["CPUCreditBalance"] == 0)
    assert first_alarm < at_baseline
    assert all(states[at_baseline:]), "a box held at its baseline stays in ALARM"


def test_boxes_launch_unlimited(zero_cost: dict[str, Any]) -> None:
    boxes = resources_of_type(zero_cost, "AWS::EC2::Instance").values()
    assert [box["Properties"]["CreditSpecification"] for box in boxes] == [
        {"CPUCredits": "unlimited"}
    ] * 2


def test_box_update_leaves_new_boxes_to_cfn_init_and_sets_standard_credits(
    zero_cost: dict[str, Any],
) -> None:
    (update,) = resources_of_type(zero_cost, "Custom::BoxUpdate").values()
    properties = update["Properties"]
    assert (properties["SkipNewBoxes"], properties["StandardCredits"]) == ("true", "true")
    boxes = sorted(resources_of_type(zero_cost, "AWS::EC2::Instance"))
    statements = [
        statement
        for policy in resources_of_type(zero_cost, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "ec2:ModifyInstanceCreditSpecification"
    ]
    (statement,) = statements
    resources = statement["Resource"]
    assert len(resources) == len(boxes)
    assert (
        sorted(
            part["Ref"]
            for arn in resources
            for part in arn["Fn::Join"][1]
            if isinstance(part, dict) and "Ref" in part and part["Ref"].startswith("WebBox")
        )
        == boxes
    )
