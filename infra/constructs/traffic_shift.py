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
    Acknowledgment,
    CustomResource,
    Duration,
    Stack,
    Token,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import (
    CUSTOM_RESOURCE_LIMIT_SECONDS,
    SHIFT_MARGIN_SECONDS,
    SHIFT_POLL_SECONDS,
    validate_schedule,
)
from infra.constructs.polled_provider import Handler, add_polled_provider

ASSET_DIR = Path(__file__).resolve().parents[2] / "runtime" / "traffic_shift"
ASSET_EXCLUDES = ["__pycache__", "*.pyc"]
LOCK_PREFIX = "_shift."
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
HANDLER_TIMEOUT = Duration.minutes(2)
ROLLBACK_CHOICES = ("healthy", "old")


def provider_timeout_seconds(*, target_weight: int, step: int, interval_seconds: int) -> int:
    """The Provider's total timeout: the schedule's worst case (validated by the one rule in
    infra.config) plus a margin, within the hour, in whole polls."""
    worst = validate_schedule(
        target_weight=target_weight, step=step, interval_seconds=interval_seconds
    )
    total = min(worst + SHIFT_MARGIN_SECONDS, CUSTOM_RESOURCE_LIMIT_SECONDS - SHIFT_POLL_SECONDS)
    return -(-total // SHIFT_POLL_SECONDS) * SHIFT_POLL_SECONDS


def _normalized(name: str) -> str:
    return name if Token.is_unresolved(name) else name.lower().rstrip(".")


class TrafficShift(Construct):
    """Walks the `new_set_id` record of `record_name` to `target_weight` percent (old gets the
    rest) in `step`-point steps, soaking `interval_seconds` each, gated by `alarms`, the new
    record's Route53 health check and an optional `health_url`. Delete puts all traffic back
    on old. Make it depend on the records it shifts so it is deleted before them.
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
    ) -> None:
        super().__init__(scope, id_)
        if rollback_to not in ROLLBACK_CHOICES:
            raise ValueError(f"rollback_to={rollback_to!r} is not one of {ROLLBACK_CHOICES}")
        self.total_timeout_seconds = provider_timeout_seconds(
            target_weight=target_weight, step=step, interval_seconds=interval_seconds
        )
        stack = Stack.of(self)
        name = _normalized(record_name)

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
                    actions=["route53:GetHealthCheckStatus"],
                    resources=[self._health_check_arn],
                )
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

        polled = add_polled_provider(
            self,
            title="Route53 weighted traffic shift",
            code=lambda_.Code.from_asset(str(ASSET_DIR), exclude=ASSET_EXCLUDES),
            role=self.role,
            on_event=Handler("shift_handler.on_event"),
            is_complete=Handler("shift_handler.is_complete"),
            handler_timeout=HANDLER_TIMEOUT,
            query_interval=Duration.seconds(SHIFT_POLL_SECONDS),
            total_timeout=Duration.seconds(self.total_timeout_seconds),
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
            },
        )
        self._acknowledge()

    def _acknowledge(self) -> None:
        """The findings this construct accepts beyond the Provider framework's own."""
        accepted = [
            (
                f"AwsSolutions-IAM5[Resource::{self._as_nag_names(self._change_arn)}]",
                "route53:GetChange is called with the id Route53 returns for each batch; change "
                "ids do not exist before the change is submitted.",
            ),
            (
                f"AwsSolutions-IAM5[Resource::{self._as_nag_names(self._health_check_arn)}]",
                "The health gate reads the HealthCheckId attached to the new record at run "
                "time; GetHealthCheckStatus is read-only.",
            ),
        ]
        if self.reads_composite_alarms:
            accepted.append(
                (
                    "AwsSolutions-IAM5[Resource::*]",
                    "cloudwatch:DescribeAlarms returns composite alarms only when the "
                    "permission is scoped to *; the statement grants that one read-only action.",
                )
            )
        for rule, reason in accepted:
            Validations.of(self.role).acknowledge(Acknowledgment(id=rule, reason=reason))

    def _as_nag_names(self, arn: str) -> str:
        """The ARN as cdk-nag names it in a finding: literal, or with <AWS::Partition> when the
        partition is a token (it is a literal under @aws-cdk/core:enablePartitionLiterals)."""
        resolved = Stack.of(self).resolve(arn)
        if isinstance(resolved, str):
            return resolved
        return "".join(
            part if isinstance(part, str) else f"<{part['Ref']}>"
            for part in resolved["Fn::Join"][1]
        )
