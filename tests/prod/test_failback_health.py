"""Production protects itself after the shift: the "new" record carries a Route53 health check
that follows production's failover alarms, and deployments roll back on the gate alarms."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Duration, Environment
from aws_cdk import aws_cloudwatch as cloudwatch
from prod_support import only
from synth_support import resources_of_type, synthesize, synthesize_stack

from infra.constructs.alarm_health_check import (
    AlarmHealthCheck,
    InsufficientData,
    TierHealthy,
    route53_readable,
)

Template = dict[str, Any]
ROUTE53_STATISTICS = {"Average", "Minimum", "Maximum", "Sum", "SampleCount"}


def _record(template: Template, set_id: str) -> dict[str, Any]:
    (record,) = [
        resource["Properties"]
        for resource in resources_of_type(template, "AWS::Route53::RecordSet").values()
        if resource["Properties"].get("SetIdentifier") == set_id
    ]
    return record


def _logical_id(value: dict[str, Any], attribute: str) -> str:
    logical_id, got = value["Fn::GetAtt"]
    assert got == attribute
    return str(logical_id)


def test_the_new_record_follows_every_failover_alarm(prod: Template) -> None:
    checks = resources_of_type(prod, "AWS::Route53::HealthCheck")
    record = _record(prod, "new")
    assert "HealthCheckId" in record, "the production record carries no health check"
    tier = checks[_logical_id(record["HealthCheckId"], "HealthCheckId")]["Properties"]
    config = tier["HealthCheckConfig"]
    assert config["Type"] == "CALCULATED"
    children = [_logical_id(child, "HealthCheckId") for child in config["ChildHealthChecks"]]
    # Healthy only while every child is: any one failover alarm takes production out.
    assert config["HealthThreshold"] == len(children) == 5
    # An HTTPS probe of the load balancer keeps judging production once users are gone, so
    # the quiet alarms cannot bring traffic back to a production that still fails
    (probe,) = [c for c in children if checks[c]["Properties"]["HealthCheckConfig"]["Type"]
                == "HTTPS"]  # fmt: skip
    probe_config = checks[probe]["Properties"]["HealthCheckConfig"]
    assert probe_config["ResourcePath"] == "/health/ready"
    assert probe_config["Port"] == 443 and probe_config["EnableSNI"] is True
    assert _logical_id(probe_config["FullyQualifiedDomainName"], "DNSName").startswith(
        "LoadBalancerAlb"
    )
    alarms = resources_of_type(prod, "AWS::CloudWatch::Alarm")
    followed = {}
    for child in (c for c in children if c != probe):
        child_config = checks[child]["Properties"]["HealthCheckConfig"]
        assert child_config["Type"] == "CLOUDWATCH_METRIC"
        # No traffic (weight 0) and no errors publish no datapoint: that is not a fault.
        assert child_config["InsufficientDataHealthStatus"] == "Healthy"
        assert child_config["AlarmIdentifier"]["Region"] == "us-east-1"
        alarm_id = child_config["AlarmIdentifier"]["Name"]["Ref"]
        followed[alarm_id] = alarms[alarm_id]["Properties"]
    metrics = {alarm["MetricName"]: alarm for alarm in followed.values()}
    assert set(metrics) == {
        "UnHealthyHostCount",
        "TargetResponseTime",
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_ELB_5XX_Count",
    }
    assert metrics["TargetResponseTime"]["Statistic"] == "Average"
    assert metrics["TargetResponseTime"]["Threshold"] == 0.1
    assert metrics["UnHealthyHostCount"]["Threshold"] == 0
    for alarm in followed.values():
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] and alarm["OKActions"], "failover is notified"


def test_every_alarm_a_health_check_follows_is_readable_by_route53(prod: Template) -> None:
    alarms = resources_of_type(prod, "AWS::CloudWatch::Alarm")
    followed = [
        check["Properties"]["HealthCheckConfig"]["AlarmIdentifier"]["Name"]["Ref"]
        for check in resources_of_type(prod, "AWS::Route53::HealthCheck").values()
        if check["Properties"]["HealthCheckConfig"]["Type"] == "CLOUDWATCH_METRIC"
    ]
    assert followed
    for alarm_id in followed:
        alarm = alarms[alarm_id]["Properties"]
        assert "Metrics" not in alarm, f"{alarm_id}: metric math"
        assert alarm["Statistic"] in ROUTE53_STATISTICS, f"{alarm_id}: {alarm}"
        assert "ExtendedStatistic" not in alarm
        assert alarm["Period"] >= 60
        assert (
            alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"])
            == (alarm["EvaluationPeriods"])
        ), f"{alarm_id}: Route53 sees no M-of-N"


REAL_ZONE = {
    "domain_name": "api.prostudio.io",
    "zone_name": "prostudio.io",
    "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
}


def test_the_old_record_follows_the_boxes_health_alarms_at_phase_3() -> None:
    zero_cost = synthesize(phase="3", **REAL_ZONE).template("ZeroCostStack")
    checks = resources_of_type(zero_cost, "AWS::Route53::HealthCheck")
    record = _record(zero_cost, "old")
    assert "HealthCheckId" in record, "the old record carries no health check"
    config = checks[_logical_id(record["HealthCheckId"], "HealthCheckId")]["Properties"][
        "HealthCheckConfig"
    ]
    # Two boxes behind the zero-cost ALB: the tier is healthy while either box is
    assert config["Type"] == "CALCULATED"
    assert config["HealthThreshold"] == 1
    alarms = resources_of_type(zero_cost, "AWS::CloudWatch::Alarm")
    followed = []
    for child in config["ChildHealthChecks"]:
        child_config = checks[_logical_id(child, "HealthCheckId")]["Properties"][
            "HealthCheckConfig"
        ]
        assert child_config["Type"] == "CLOUDWATCH_METRIC"
        # A box that stops reporting is a failed box, as its alarm treats missing data
        assert child_config["InsufficientDataHealthStatus"] == "Unhealthy"
        followed.append(alarms[child_config["AlarmIdentifier"]["Name"]["Ref"]]["Properties"])
    assert [alarm["MetricName"] for alarm in followed] == ["BoxHealthy", "BoxHealthy"]
    assert all(alarm["TreatMissingData"] == "breaching" for alarm in followed)


def test_below_phase_3_the_old_record_carries_no_health_check() -> None:
    zero_cost = synthesize(phase="2", **REAL_ZONE).template("ZeroCostStack")
    assert "HealthCheckId" not in _record(zero_cost, "old")
    assert not resources_of_type(zero_cost, "AWS::Route53::HealthCheck")


def test_deployments_roll_back_on_the_gate_alarms(prod: Template) -> None:
    service_id, service = only(prod, "AWS::ECS::Service")
    deployment = service["DeploymentConfiguration"]
    assert deployment.get("Alarms", {}).get("Enable") is True, deployment
    assert deployment["Alarms"]["Rollback"] is True
    # By literal names (a reference there draws CDK's circular-dependency notice), each an
    # alarm of the stack that the service waits for
    named = deployment["Alarms"]["AlarmNames"]
    assert named == [
        "ProdStack-P99Latency",
        "ProdStack-ServerErrorRate",
        "ProdStack-UnhealthyTargets",
    ]
    alarms = resources_of_type(prod, "AWS::CloudWatch::Alarm")
    by_name = {alarm["Properties"].get("AlarmName"): alarm_id for alarm_id, alarm in alarms.items()}
    assert set(named) <= set(by_name)
    assert {by_name[name] for name in named} <= set(prod["Resources"][service_id]["DependsOn"])
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


def _tier(*alarms: tuple[str, dict[str, Any]], healthy_when: TierHealthy) -> Template:
    def build(stack: Any) -> None:
        built = [
            cloudwatch.Alarm(
                stack,
                name,
                metric=cloudwatch.Metric(
                    namespace="ProStudio",
                    metric_name=name,
                    statistic=options.pop("statistic", "Minimum"),
                    period=options.pop("period", Duration.minutes(1)),
                ),
                threshold=1,
                evaluation_periods=3,
                **options,
            )
            for name, options in alarms
        ]
        AlarmHealthCheck(
            stack,
            "Health",
            tier="old",
            alarms=built,
            insufficient_data=InsufficientData.UNHEALTHY,
            healthy_when=healthy_when,
        )

    env = Environment(account="111111111111", region="eu-west-1")
    return synthesize_stack(build, name="Tier", env=env).template("Tier")


def test_a_tier_of_boxes_stays_healthy_while_any_box_is() -> None:
    template = _tier(("Box", {}), ("Box2", {}), healthy_when=TierHealthy.ANY)
    checks = [r["Properties"] for r in resources_of_type(template, "AWS::Route53::HealthCheck")
              .values()]  # fmt: skip
    (calculated,) = [c for c in checks if c["HealthCheckConfig"]["Type"] == "CALCULATED"]
    assert calculated["HealthCheckConfig"]["HealthThreshold"] == 1
    metric_checks = [c for c in checks if c["HealthCheckConfig"]["Type"] == "CLOUDWATCH_METRIC"]
    assert len(metric_checks) == 2
    for check in metric_checks:
        assert check["HealthCheckConfig"]["InsufficientDataHealthStatus"] == "Unhealthy"
        assert check["HealthCheckConfig"]["AlarmIdentifier"]["Region"] == "eu-west-1"


def test_one_alarm_needs_no_calculated_check() -> None:
    template = _tier(("Box", {}), healthy_when=TierHealthy.ALL)
    (check,) = resources_of_type(template, "AWS::Route53::HealthCheck").values()
    assert check["Properties"]["HealthCheckConfig"]["Type"] == "CLOUDWATCH_METRIC"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"statistic": "p99"}, "not p99"),
        ({"period": Duration.seconds(10)}, "standard-resolution"),
        ({"datapoints_to_alarm": 2}, "2 of 3 datapoints"),
    ],
)
def test_an_alarm_route53_cannot_follow_is_refused_at_synth(
    options: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        _tier(("Box", options), healthy_when=TierHealthy.ALL)


def test_a_metric_math_alarm_is_refused() -> None:
    def build(stack: Any) -> None:
        math = cloudwatch.MathExpression(
            expression="a + b",
            using_metrics={
                "a": cloudwatch.Metric(namespace="N", metric_name="A"),
                "b": cloudwatch.Metric(namespace="N", metric_name="B"),
            },
        )
        route53_readable(cloudwatch.Alarm(stack, "Rate", metric=math, threshold=1,
                                          evaluation_periods=1))  # fmt: skip

    env = Environment(account="111111111111", region="us-east-1")
    with pytest.raises(ValueError, match="metric-math"):
        synthesize_stack(build, name="Math", env=env)
