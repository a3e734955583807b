"""One Route53 health check per tier that follows the tier's CloudWatch alarms, for its weighted
record: a CLOUDWATCH_METRIC check per alarm, combined by a CALCULATED check when there are
several, optionally with an HTTPS probe of the tier's entry beside them.

Alarms on what users' requests produce (5xx counts, latency) go quiet once Route53 has sent
the users elsewhere, and would clear, bring the traffic back and fire again. The probe keeps
judging a tier that serves no traffic: it holds the tier out while it still fails, and lets it
back once it answers again.

Route53 reads an alarm's metric configuration, not only its state, so it accepts only alarms
on one standard-resolution metric with a plain statistic (Average, Minimum, Maximum, Sum,
SampleCount): no percentile, no metric math, no composite alarm. Its copy of the alarm
(CloudWatchAlarmConfiguration) has no DatapointsToAlarm either, so an alarm used here must
alarm on all of its evaluation periods (N of N), or Route53 and CloudWatch would disagree.
Each rule is checked at synth with one line naming the alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_route53 as route53
from constructs import Construct

from infra.thresholds import PROBE_FAILURE_THRESHOLD, PROBE_INTERVAL_SECONDS

ROUTE53_STATISTICS = frozenset({"Average", "Minimum", "Maximum", "Sum", "SampleCount"})
# CloudWatch's standard resolution: Route53 does not read high-resolution metrics.
MIN_PERIOD_SECONDS = 60


class InsufficientData(StrEnum):
    """What Route53 makes of an alarm in INSUFFICIENT_DATA (`InsufficientDataHealthStatus`)."""

    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    LAST_KNOWN = "LastKnownStatus"


class TierHealthy(StrEnum):
    """When the calculated check of several alarms is healthy."""

    # Every alarm OK: any one alarm failing takes the tier out (one service behind one ALB).
    ALL = "all"
    # At least one alarm OK: the tier is out only when every member fails (boxes behind an ALB).
    ANY = "any"


@dataclass(frozen=True)
class EndpointProbe:
    """An HTTPS GET of `path` on `host` (port 443): healthy on 2xx or 3xx."""

    host: str
    path: str


def route53_readable(alarm: cloudwatch.Alarm) -> None:
    """ValueError, naming the alarm, unless Route53 can follow it."""
    cfn = alarm.node.default_child
    assert isinstance(cfn, cloudwatch.CfnAlarm)
    where = alarm.node.path
    if cfn.metrics is not None:
        raise ValueError(
            f"{where}: Route53 health checks cannot follow a metric-math alarm; "
            "alarm on one metric instead"
        )
    if cfn.statistic not in ROUTE53_STATISTICS:
        statistic = cfn.statistic or cfn.extended_statistic
        raise ValueError(
            f"{where}: Route53 health checks read only {', '.join(sorted(ROUTE53_STATISTICS))}, "
            f"not {statistic}"
        )
    period = cfn.period
    if not isinstance(period, int | float) or period < MIN_PERIOD_SECONDS:
        raise ValueError(
            f"{where}: Route53 health checks read standard-resolution metrics only "
            f"(period of at least {MIN_PERIOD_SECONDS} s), not a period of {period}"
        )
    evaluation = cfn.evaluation_periods
    datapoints = cfn.datapoints_to_alarm
    if datapoints is not None and datapoints != evaluation:
        raise ValueError(
            f"{where}: alarms on {datapoints} of {evaluation} datapoints, which Route53 cannot "
            f"see; a health check's alarm must alarm on all its {evaluation} periods"
        )


class AlarmHealthCheck(Construct):
    """The health check of one tier, following `alarms` (checked with `route53_readable`).

    `health_check_id` is what the tier's weighted record carries. Route53 takes a record whose
    check is unhealthy out of its answers, gives its share to the other records, and answers
    with a weight-0 record when every non-zero one is unhealthy.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        tier: str,
        alarms: Sequence[cloudwatch.Alarm],
        insufficient_data: InsufficientData,
        healthy_when: TierHealthy = TierHealthy.ALL,
        probe: EndpointProbe | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if not alarms:
            raise ValueError(f"{self.node.path}: a tier health check needs at least one alarm")
        for alarm in alarms:
            route53_readable(alarm)
        stack = Stack.of(self)
        self.tier = tier
        self.insufficient_data = insufficient_data
        self.alarm_checks = [
            route53.CfnHealthCheck(
                self,
                alarm.node.id,
                health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                    type="CLOUDWATCH_METRIC",
                    alarm_identifier=route53.CfnHealthCheck.AlarmIdentifierProperty(
                        name=alarm.alarm_name, region=stack.region
                    ),
                    insufficient_data_health_status=insufficient_data.value,
                ),
                health_check_tags=[_name_tag(f"ProStudio {tier}: {alarm.node.id}")],
            )
            for alarm in alarms
        ]
        self.probe_check = None
        if probe is not None:
            self.probe_check = route53.CfnHealthCheck(
                self,
                "Probe",
                health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                    type="HTTPS",
                    fully_qualified_domain_name=probe.host,
                    port=443,
                    resource_path=probe.path,
                    enable_sni=True,
                    request_interval=PROBE_INTERVAL_SECONDS,
                    failure_threshold=PROBE_FAILURE_THRESHOLD,
                ),
                health_check_tags=[_name_tag(f"ProStudio {tier}: GET {probe.path}")],
            )
        checks = [*self.alarm_checks, *([self.probe_check] if self.probe_check else [])]
        if len(checks) == 1:
            self.health_check = checks[0]
        else:
            children = [check.attr_health_check_id for check in checks]
            self.health_check = route53.CfnHealthCheck(
                self,
                "Tier",
                health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                    type="CALCULATED",
                    child_health_checks=children,
                    health_threshold=len(children) if healthy_when is TierHealthy.ALL else 1,
                ),
                health_check_tags=[_name_tag(f"ProStudio {tier}")],
            )
        self.health_check_id: str = self.health_check.attr_health_check_id

    def attach(self, record: route53.CfnRecordSet) -> None:
        """Make `record` carry this tier's health check."""
        record.health_check_id = self.health_check_id


def _name_tag(value: str) -> route53.CfnHealthCheck.HealthCheckTagProperty:
    # The console lists health checks by their Name tag.
    return route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=value)
