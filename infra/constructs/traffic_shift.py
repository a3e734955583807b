"""The Route53 weighted traffic shift as a custom resource run by `cdk deploy`.

Two Lambdas (outside any VPC: they reach only the Route53 and CloudWatch APIs) run
runtime/traffic_shift under the Provider framework: `on_event` validates and takes the lock,
`is_complete` advances the shift by at most one phase per poll. The schedule is checked at
synth against CloudFormation's one-hour custom-resource limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import (
    CustomResource,
    Duration,
    Stack,
    Token,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.acknowledgements import TRAFFIC_SHIFT, acknowledge
from infra.config import CUSTOM_RESOURCE_LIMIT_SECONDS, SHIFT_MARGIN_SECONDS, validate_schedule
from infra.constructs.notices import grant_notices, notice_environment
from infra.constructs.polled_provider import Handler, add_polled_provider, handler_code
from runtime.common.shift_rules import LOCK_PREFIX, POLL_SECONDS, ROLLBACK_CHOICES

ASSET_DIR = Path(__file__).resolve().parents[2] / "runtime" / "traffic_shift"
HANDLER_TIMEOUT = Duration.minutes(2)


def provider_timeout_seconds(*, target_weight: int, step: int, interval_seconds: int) -> int:
    """The Provider's total timeout: the schedule's worst case (validated by the one rule in
    infra.config) plus a margin, within the hour, in whole polls."""
    worst = validate_schedule(
        target_weight=target_weight, step=step, interval_seconds=interval_seconds
    )
    total = min(worst + SHIFT_MARGIN_SECONDS, CUSTOM_RESOURCE_LIMIT_SECONDS - POLL_SECONDS)
    return -(-total // POLL_SECONDS) * POLL_SECONDS


def _normalized(name: str) -> str:
    return name if Token.is_unresolved(name) else name.lower().rstrip(".")


class TrafficShift(Construct):
    """Walks the `new_set_id` record of `record_name` to `target_weight` percent (old gets the
    rest) in `step`-point steps, soaking `interval_seconds` each, gated by `alarms`, the new
    record's Route53 health check and an optional `health_url`. Delete puts all traffic back
    on old. Make it depend on the records it shifts so it is deleted before them. At every
    poll it reads the operator's control record (pause, resume, promote, abort), and it
    publishes a notice of each state change to `notice_topic` and EventBridge.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        hosted_zone_id: str,
        record_name: str,
        old_set_id: str,
        new_set_id: str,
        target_weight: int,
        step: int,
        interval_seconds: int,
        alarms: Sequence[cloudwatch.IAlarm],
        health_url: str | None,
        use_health_check: bool = True,
        rollback_to: str = "healthy",
        notice_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if rollback_to not in ROLLBACK_CHOICES:
            raise ValueError(f"rollback_to={rollback_to!r} is not one of {ROLLBACK_CHOICES}")
        self.total_timeout_seconds = provider_timeout_seconds(
            target_weight=target_weight, step=step, interval_seconds=interval_seconds
        )
        stack = Stack.of(self)
        name = _normalized(record_name)
        self.uses_health_check = use_health_check

        self.role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Traffic shift handlers: the two weighted records and their lock only",
        )
        zone_arn = stack.format_arn(
            service="route53",
            region="",
            account="",
            resource="hostedzone",
            resource_name=hosted_zone_id,
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["route53:ListResourceRecordSets"], resources=[zone_arn])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["route53:ChangeResourceRecordSets"],
                resources=[zone_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                            name,
                            LOCK_PREFIX + name,
                        ]
                    }
                },
            )
        )
        self._change_arn = stack.format_arn(
            service="route53", region="", account="", resource="change/*"
        )
        self._health_check_arn = stack.format_arn(
            service="route53", region="", account="", resource="healthcheck/*"
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["route53:GetChange"], resources=[self._change_arn])
        )
        if use_health_check:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["route53:GetHealthCheck", "route53:GetHealthCheckStatus"],
                    resources=[self._health_check_arn],
                )
            )
            # A calculated or alarm-following check is read from Route53's HealthCheckStatus
            # metric; GetMetricStatistics has no resource-level permissions.
            self.role.add_to_policy(
                iam.PolicyStatement(actions=["cloudwatch:GetMetricStatistics"], resources=["*"])
            )
        self.reads_composite_alarms = any(
            isinstance(alarm, cloudwatch.CompositeAlarm) for alarm in alarms
        )
        if alarms:
            # CloudWatch shows composite alarms only to a DescribeAlarms scoped to "*".
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=(
                        ["*"]
                        if self.reads_composite_alarms
                        else [alarm.alarm_arn for alarm in alarms]
                    ),
                )
            )

        self.publishes_notices = notice_topic is not None
        if notice_topic is not None:
            grant_notices(self.role, notice_topic)
        polled = add_polled_provider(
            self,
            title="Route53 weighted traffic shift",
            code=handler_code(ASSET_DIR, packages=("structlog",)),
            role=self.role,
            on_event=Handler("shift_handler.on_event"),
            is_complete=Handler("shift_handler.is_complete"),
            handler_timeout=HANDLER_TIMEOUT,
            query_interval=Duration.seconds(POLL_SECONDS),
            total_timeout=Duration.seconds(self.total_timeout_seconds),
            environment=notice_environment(notice_topic) if notice_topic is not None else None,
        )
        self.on_event, self.is_complete = polled.on_event, polled.is_complete
        self.provider, self.framework_roles = polled.provider, polled.framework_roles
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type="Custom::TrafficShift",
            service_timeout=Duration.seconds(CUSTOM_RESOURCE_LIMIT_SECONDS),
            properties={
                "ZoneId": hosted_zone_id,
                "RecordName": record_name,
                "OldSetId": old_set_id,
                "NewSetId": new_set_id,
                "TargetWeight": str(target_weight),
                "Step": str(step),
                "IntervalSeconds": str(interval_seconds),
                "Alarms": [alarm.alarm_name for alarm in alarms],
                "HealthUrl": health_url or "",
                "UseHealthCheck": "true" if use_health_check else "false",
                "RollbackTo": rollback_to,
                # The shift fails with its own reason (a pause held too long) before the
                # Provider's timeout does.
                "TimeoutSeconds": str(self.total_timeout_seconds),
            },
        )
        acknowledge(self, TRAFFIC_SHIFT)
