"""Production's failover alarms: the shift's health gates (5xx rate, p99 latency, unhealthy
targets) in the form a Route53 health check can follow, notified to the alarm topic.

The gates use a percentile and metric math, which Route53 cannot read
(infra/constructs/alarm_health_check.py), so each failover alarm watches one load-balancer
metric with a plain statistic and alarms only when all of its periods breach:
  - unhealthy targets: any task failing its target-group health check (as the gate);
  - latency: the *average* target response time above the gates' p99 budget, which implies
    the p99 is above it too, so a failover never fires where the gate would pass;
  - 5xx: target and load-balancer 5xx each counted per minute (a rate needs metric math).
Missing data is not breaching: the load balancer publishes no 5xx count while there are no
errors and no latency while production has no traffic (weight 0).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.thresholds import FAILOVER_PERIODS, P99_LATENCY_SECONDS, SERVER_ERRORS_PER_MINUTE

MINUTE = Duration.minutes(1)


class FailoverAlarms(Construct):
    """Four single-metric alarms (`alarms`) for production's Route53 health check."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id_)
        self._notify = actions.SnsAction(topic)
        alb = load_balancer.metrics
        self.unhealthy_targets = self._alarm(
            "UnhealthyTargets",
            target_group.metrics.unhealthy_host_count(statistic="Maximum", period=MINUTE),
            threshold=0,
            description="Failover: a service task has failed its health check for "
            f"{FAILOVER_PERIODS} minutes",
        )
        self.latency = self._alarm(
            "Latency",
            alb.target_response_time(statistic="Average", period=MINUTE),
            threshold=P99_LATENCY_SECONDS,
            description="Failover: the average target response time has been above "
            f"{P99_LATENCY_SECONDS * 1000:.0f} ms (the p99 budget) for {FAILOVER_PERIODS} minutes",
        )
        self.target_errors = self._alarm(
            "TargetErrors",
            alb.http_code_target(
                elbv2.HttpCodeTarget.TARGET_5XX_COUNT, statistic="Sum", period=MINUTE
            ),
            threshold=SERVER_ERRORS_PER_MINUTE,
            description=f"Failover: the tasks answered over {SERVER_ERRORS_PER_MINUTE} 5xx a "
            f"minute for {FAILOVER_PERIODS} minutes",
        )
        self.load_balancer_errors = self._alarm(
            "LoadBalancerErrors",
            alb.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, statistic="Sum", period=MINUTE),
            threshold=SERVER_ERRORS_PER_MINUTE,
            description=f"Failover: the load balancer answered over {SERVER_ERRORS_PER_MINUTE} "
            f"5xx a minute for {FAILOVER_PERIODS} minutes (no task to send them to?)",
        )
        self.alarms: tuple[cloudwatch.Alarm, ...] = (
            self.unhealthy_targets,
            self.latency,
            self.target_errors,
            self.load_balancer_errors,
        )

    def _alarm(
        self, id_: str, metric: cloudwatch.IMetric, *, threshold: float, description: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            id_,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=FAILOVER_PERIODS,
            datapoints_to_alarm=FAILOVER_PERIODS,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._notify)
        alarm.add_ok_action(self._notify)
        return alarm
