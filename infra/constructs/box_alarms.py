"""Alarms and automatic recovery for the zero-cost boxes, notified to their own SNS topic."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_ssm as ssm
from constructs import Construct

HEALTH_METRIC = "BoxHealthy"
HEALTH_ALARM_SUFFIX = "Health"
MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
# Credits a box earns per hour; it banks at most 24 hours of them.
CREDITS_PER_HOUR = {"t2.micro": 6, "t3.micro": 12, "t3.small": 24, "t4g.micro": 12, "t4g.small": 24}
# Warn with a fifth of a full balance left: at full load that is 30-40 minutes before the box
# falls to its baseline (10% of a vCPU on a micro).
CREDIT_WARNING_FRACTION = 0.2
# ... but only while the box spends at least this share of what it earns. A new box starts with
# an empty balance (T3/T4g get no launch credits) and fills it over hours while idle: a low
# balance alone is no warning. A box held at its baseline spends exactly what it earns.
CREDIT_DRAIN_FRACTION = 0.9
PROBE_UNIT = "prostudio-health-metric"
# Each box publishes 1 (its /health answered 200 on loopback) or 0 once a minute. A dead box
# publishes nothing, and missing data counts as unhealthy.
PROBE_SCRIPT = """#!/bin/bash
token=$(curl -fsS -m 2 -X PUT http://169.254.169.254/latest/api/token \\
  -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
instance=$(curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $token" \\
  http://169.254.169.254/latest/meta-data/instance-id)
value=0
curl -fsS -m 5 -o /dev/null http://127.0.0.1/health && value=1
exec aws cloudwatch put-metric-data --region {region} --namespace {namespace} \\
  --metric-name {metric} --dimensions InstanceId="$instance" --value "$value"
"""
PROBE_TIMER = """[Unit]
Description=Publish the ProStudio /health result to CloudWatch every minute
[Timer]
OnBootSec=60
OnUnitActiveSec=60
[Install]
WantedBy=timers.target
"""
PROBE_SERVICE = """[Unit]
Description=Publish the ProStudio /health result to CloudWatch
[Service]
Type=oneshot
ExecStart=/usr/local/bin/{unit}
"""


def credit_warning_threshold(instance_type: str) -> float:
    return CREDITS_PER_HOUR[instance_type] * 24 * CREDIT_WARNING_FRACTION


def credit_drain_threshold(instance_type: str) -> float:
    """Credits spent per five minutes that count as draining: 90% of those earned."""
    return CREDITS_PER_HOUR[instance_type] / 12 * CREDIT_DRAIN_FRACTION


def _heredoc(path: str, content: str) -> str:
    return f"cat > {path} <<'PROSTUDIO_EOF'\n{content}PROSTUDIO_EOF"


class BoxAlarms(Construct):
    """Per box: CPU credit balance low, system status check (EC2 recover action), instance
    status check (EC2 reboot action) and `/health` (a one-minute probe on the box itself,
    installed by an SSM association). Every alarm notifies ALARM and OK to one topic."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        boxes: Sequence[ec2.Instance],
        role: iam.IRole,
        instance_type: str,
        alarm_email: str,
        metric_namespace: str,
    ) -> None:
        """`metric_namespace` is the boxes' own (Names.box_metric_namespace): their role may
        write there and nowhere else, so a box cannot write the service's metrics."""
        super().__init__(scope, id_)
        self._namespace = metric_namespace
        self.topic = sns.Topic(self, "Topic", display_name="ProStudio box alarms", enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self._notify = actions.SnsAction(self.topic)
        self._install_probe(boxes, role)
        self.alarms: list[cloudwatch.Alarm] = []
        for box in boxes:
            self.alarms += self._box_alarms(box, instance_type)
        # One per box: what the old tier's Route53 health check follows.
        self.health_alarms = [
            alarm for alarm in self.alarms if alarm.node.id.endswith(HEALTH_ALARM_SUFFIX)
        ]

    def _install_probe(self, boxes: Sequence[ec2.Instance], role: iam.IRole) -> None:
        policy = iam.Policy(
            self,
            "ProbePolicy",
            statements=[
                iam.PolicyStatement(
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringEquals": {"cloudwatch:namespace": self._namespace}},
                )
            ],
        )
        policy.attach_to_role(role)
        script = PROBE_SCRIPT.format(
            region=Stack.of(self).region, namespace=self._namespace, metric=HEALTH_METRIC
        )
        commands = [
            _heredoc(f"/usr/local/bin/{PROBE_UNIT}", script),
            f"chmod 0755 /usr/local/bin/{PROBE_UNIT}",
            _heredoc(
                f"/etc/systemd/system/{PROBE_UNIT}.service", PROBE_SERVICE.format(unit=PROBE_UNIT)
            ),
            _heredoc(f"/etc/systemd/system/{PROBE_UNIT}.timer", PROBE_TIMER),
            "systemctl daemon-reload",
            f"systemctl enable --now {PROBE_UNIT}.timer",
        ]
        ssm.CfnAssociation(
            self,
            "ProbeInstall",
            name="AWS-RunShellScript",
            association_name=f"{Stack.of(self).stack_name}-health-probe",
            targets=[
                ssm.CfnAssociation.TargetProperty(
                    key="InstanceIds", values=[box.instance_id for box in boxes]
                )
            ],
            parameters={"commands": commands},
            # Re-applied daily, so a rebuilt box gets the probe back without a deploy.
            schedule_expression="rate(1 day)",
        )

    def _box_alarms(self, box: ec2.Instance, instance_type: str) -> list[cloudwatch.Alarm]:
        name = box.node.id

        def metric(metric_name: str, statistic: str, period: Duration) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/EC2",
                metric_name=metric_name,
                dimensions_map={"InstanceId": box.instance_id},
                statistic=statistic,
                period=period,
            )

        threshold = credit_warning_threshold(instance_type)
        drain = credit_drain_threshold(instance_type)
        low_and_draining = cloudwatch.MathExpression(
            expression=f"IF(balance < {threshold:g} AND usage >= {drain:g}, 1, 0)",
            using_metrics={
                "balance": metric("CPUCreditBalance", "Minimum", FIVE_MINUTES),
                "usage": metric("CPUCreditUsage", "Sum", FIVE_MINUTES),
            },
            label="Credit balance low while spending what it earns",
            period=FIVE_MINUTES,
        )
        return [
            self._alarm(
                f"{name}CpuCredits",
                low_and_draining,
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                periods=3,
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
                description=f"{name}: CPU credit balance below {threshold:.0f} (a fifth of "
                f"a full {instance_type} balance) while it spends {drain:g}+ credits per 5 "
                "minutes; at zero it runs at its baseline. A new box's empty balance, filling "
                "while idle, does not count",
            ),
            self._alarm(
                f"{name}SystemStatus",
                metric("StatusCheckFailed_System", "Maximum", MINUTE),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                periods=2,
                missing=cloudwatch.TreatMissingData.MISSING,
                description=f"{name}: the host failed its system status check; EC2 recovers "
                "the box onto healthy hardware (same id, IP and volume)",
                extra_action=actions.Ec2Action(actions.Ec2InstanceAction.RECOVER),
            ),
            self._alarm(
                f"{name}InstanceStatus",
                metric("StatusCheckFailed_Instance", "Maximum", MINUTE),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                periods=3,
                missing=cloudwatch.TreatMissingData.MISSING,
                description=f"{name}: the OS failed its instance status check; EC2 reboots it",
                extra_action=actions.Ec2Action(actions.Ec2InstanceAction.REBOOT),
            ),
            self._alarm(
                f"{name}{HEALTH_ALARM_SUFFIX}",
                cloudwatch.Metric(
                    namespace=self._namespace,
                    metric_name=HEALTH_METRIC,
                    dimensions_map={"InstanceId": box.instance_id},
                    statistic="Minimum",
                    period=MINUTE,
                ),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                periods=3,
                missing=cloudwatch.TreatMissingData.BREACHING,
                description=f"{name}: /health did not answer 200 for 3 minutes (or the box "
                "stopped reporting)",
            ),
        ]

    def _alarm(
        self,
        id_: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        periods: int,
        missing: cloudwatch.TreatMissingData,
        description: str,
        extra_action: cloudwatch.IAlarmAction | None = None,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            id_,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=missing,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._notify, *([extra_action] if extra_action else []))
        alarm.add_ok_action(self._notify)
        return alarm
