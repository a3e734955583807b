"""The TrafficShift construct: template shape, IAM scope, schedule validation, cdk-nag."""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Duration, Environment, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk.assertions import Match, Template
from shift_engine import POLL_SECONDS, SYNC_TIMEOUT_SECONDS
from synth_support import Synthesis, scratch_app, synthesize_stack, without_acknowledgements

from infra import config
from infra.config import ConfigError, load_settings, validate_schedule
from infra.constructs.traffic_shift import TrafficShift

ZONE_ID = "Z0123456789ABCDEFGHIJ"


def build(stack: Stack, **overrides: Any) -> TrafficShift:
    alarm = cloudwatch.Alarm(
        stack,
        "Errors",
        metric=cloudwatch.Metric(
            namespace="AWS/ApplicationELB",
            metric_name="HTTPCode_Target_5XX_Count",
            period=Duration.minutes(1),
        ),
        threshold=10,
        evaluation_periods=1,
    )
    settings: dict[str, Any] = {
        "hosted_zone_id": ZONE_ID,
        "record_name": "API.example.com.",
        "old_set_id": "old",
        "new_set_id": "new",
        "target_weight": 100,
        "step": 20,
        "interval_seconds": 300,
        "alarms": [alarm],
        "health_url": "https://api.example.com/health",
    }
    settings.update(overrides)
    return TrafficShift(stack, "TrafficShift", **settings)


def synthesize(*, acknowledge: bool = True) -> Synthesis:
    with contextlib.nullcontext() if acknowledge else without_acknowledgements():
        return synthesize_stack(build, name="ShiftStack", env=Environment(region="us-east-1"))


@functools.cache
def synthesized() -> Synthesis:
    return synthesize()


def template() -> Template:
    return Template.from_json(synthesized().template("ShiftStack"))


def test_custom_resource_carries_the_schedule_and_the_gates() -> None:
    template().has_resource_properties(
        "Custom::TrafficShift",
        {
            "ZoneId": ZONE_ID,
            "RecordName": "API.example.com.",
            "OldSetId": "old",
            "NewSetId": "new",
            "TargetWeight": "100",
            "Step": "20",
            "IntervalSeconds": "300",
            "Alarms": [{"Ref": Match.string_like_regexp("Errors")}],
            "HealthUrl": "https://api.example.com/health",
            "RollbackTo": "healthy",
            "ServiceTimeout": "3600",
        },
    )


def test_handlers_are_python_312_outside_any_vpc_with_retained_logs() -> None:
    functions = template().find_resources(
        "AWS::Lambda::Function", {"Properties": {"Runtime": "python3.12"}}
    )
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == ["shift_handler.is_complete", "shift_handler.on_event"]
    for function in functions.values():
        assert "VpcConfig" not in function["Properties"]
        assert "LoggingConfig" in function["Properties"]
    for group in template().find_resources("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 30


def test_provider_polls_every_10s_within_the_hour() -> None:
    # 5 steps x (300 s soak + 60 s INSYNC + 2 polls) + margin, rounded to the poll
    expected = 5 * (300 + 60 + 20) + 300
    state_machines = template().find_resources("AWS::StepFunctions::StateMachine")
    (machine,) = state_machines.values()
    definition = json.dumps(machine["Properties"]["DefinitionString"])
    assert f'\\"IntervalSeconds\\":{POLL_SECONDS}' in definition
    assert f'\\"MaxAttempts\\":{expected // POLL_SECONDS}' in definition


def test_role_may_change_only_the_record_and_its_lock() -> None:
    policies = template().find_resources("AWS::IAM::Policy")
    statements = [
        statement
        for policy in policies.values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    change = next(s for s in statements if s["Action"] == "route53:ChangeResourceRecordSets")
    assert change["Condition"] == {
        "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                "api.example.com",
                "_shift.api.example.com",
            ]
        }
    }
    assert json.dumps(change["Resource"]).endswith(f':route53:::hostedzone/{ZONE_ID}"]]}}')
    describe = next(s for s in statements if s["Action"] == "cloudwatch:DescribeAlarms")
    assert "Fn::GetAtt" in json.dumps(describe["Resource"])


def test_cdk_nag_passes_and_each_acknowledgement_silences_a_real_finding() -> None:
    # Given the construct as shipped, Then cdk-nag reports nothing
    shipped = synthesized()
    assert shipped.error is None, shipped.error
    assert shipped.report["pluginReports"] == []
    # And without its acknowledgements cdk-nag flags exactly the accepted findings
    bare = synthesize(acknowledge=False)
    assert bare.error is not None and bare.error.startswith("ValidationFailed")
    flagged = {
        violation["ruleName"].split("[")[0] + ("[*]" if "[" in violation["ruleName"] else "")
        for plugin in bare.report["pluginReports"]
        if plugin["pluginName"] == "AwsSolutions"
        for violation in plugin["violations"]
    }
    assert flagged == {
        "AwsSolutions-IAM5[*]",
        "AwsSolutions-L1",
        "AwsSolutions-SF1",
        "AwsSolutions-SF2",
    }


def test_composite_alarm_gate_reads_alarms_unscoped_and_passes_nag() -> None:
    def build_with_composite_gate(stack: Stack) -> TrafficShift:
        child = cloudwatch.Alarm(
            stack,
            "Child",
            metric=cloudwatch.Metric(
                namespace="AWS/ApplicationELB", metric_name="TargetResponseTime"
            ),
            threshold=1,
            evaluation_periods=1,
        )
        composite = cloudwatch.CompositeAlarm(
            stack,
            "Health",
            alarm_rule=cloudwatch.AlarmRule.from_alarm(child, cloudwatch.AlarmState.ALARM),
        )
        shift = build(stack, alarms=[composite])
        assert shift.reads_composite_alarms
        return shift

    synthesis = synthesize_stack(
        build_with_composite_gate, name="CompositeStack", env=Environment(region="us-east-1")
    )
    assert synthesis.error is None, synthesis.error
    statements = [
        statement
        for resource in synthesis.template("CompositeStack")["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    describe = next(s for s in statements if s["Action"] == "cloudwatch:DescribeAlarms")
    assert describe["Resource"] == "*"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"step": 10, "interval_seconds": 300}, "needs up to 3800s"),
        ({"step": 5, "interval_seconds": 120}, "walk in stages with an intermediate"),
        ({"target_weight": 50, "step": 20}, "is not a multiple of shift_step=20"),
        ({"step": 30}, "shift_step=30 does not divide 100"),
        ({"target_weight": 120}, "traffic_weight=120 is out of range"),
        ({"rollback_to": "anywhere"}, "rollback_to='anywhere'"),
    ],
)
def test_construct_refuses_a_schedule_that_cannot_fit(
    overrides: dict[str, Any], message: str
) -> None:
    stack = Stack(scratch_app(), "Refused")
    with pytest.raises(ValueError, match=message):
        build(stack, **overrides)


def test_intermediate_target_shortens_the_worst_case() -> None:
    # 0 -> 100 in steps of 10 with 240 s soaks fits; 300 s soaks need a stage at 50
    assert validate_schedule(target_weight=100, step=10, interval_seconds=240) <= 3600
    with pytest.raises(ValueError):
        validate_schedule(target_weight=100, step=10, interval_seconds=300)
    assert validate_schedule(target_weight=50, step=10, interval_seconds=300) <= 3600


def test_config_refuses_the_same_schedule_at_load(tmp_path: Path) -> None:
    context = {"phase": "3", "shift_traffic": "true", "shift_step": "10", "shift_interval": "300"}
    with pytest.raises(ConfigError, match="over CloudFormation's one-hour custom-resource limit"):
        load_settings(context)
    fits = load_settings({**context, "traffic_weight": "50"})
    assert fits.prod.shift.worst_case_seconds == 5 * (300 + 60 + 20)


def test_the_construct_and_the_config_share_one_schedule_rule() -> None:
    # The construct refuses exactly what loading the flags refuses, with the same line
    for target, step, interval in [(100, 10, 300), (50, 20, 60), (100, 30, 60), (100, 5, 120)]:
        context = {
            "phase": "3",
            "shift_traffic": "true",
            "traffic_weight": str(target),
            "shift_step": str(step),
            "shift_interval": str(interval),
        }
        with pytest.raises(ConfigError) as at_load:
            load_settings(context)
        with pytest.raises(ConfigError) as in_construct:
            build(
                Stack(scratch_app(), "Refused"),
                target_weight=target,
                step=step,
                interval_seconds=interval,
            )
        assert str(at_load.value) == str(in_construct.value)


def test_a_walk_back_to_old_is_one_change_whatever_the_soak() -> None:
    # Toward old there is no soak: the worst case of a walk to 0 is one change and its INSYNC
    assert validate_schedule(target_weight=0, step=10, interval_seconds=3600) == (
        config.ROLLBACK_SECONDS
    )
    assert config.ROLLBACK_SECONDS == SYNC_TIMEOUT_SECONDS + 2 * POLL_SECONDS
