"""Checked changes to running boxes: shell steps sent through SSM Run Command one box at a
time by a custom resource (runtime/box_ops), each failing the deploy when it fails.

BoxSteps is the mechanism; BoxUpdate applies a new release of the service with it. A failed
Update is rolled back by CloudFormation with the old properties, which re-applies the
previous release the same way. The boxes are never replaced.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import CUSTOM_RESOURCE_LIMIT_SECONDS
from infra.constructs.notices import grant_notices, notice_environment
from infra.constructs.polled_provider import Handler, add_polled_provider, handler_code
from infra.stacks.acknowledgements import BOX_STEPS, acknowledge

ASSET_DIR = Path(__file__).resolve().parents[2] / "runtime" / "box_ops"
DOCUMENT = "AWS-RunShellScript"
POLL_SECONDS = 15
TOTAL_TIMEOUT_SECONDS = CUSTOM_RESOURCE_LIMIT_SECONDS - 300
# Per step beyond its own timeout: SSM delivery and the handler's cancel grace.
STEP_OVERHEAD_SECONDS = 180
UPDATE_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class BoxStep:
    name: str
    instance_id: str
    commands: Sequence[str]
    timeout_seconds: int

    def to_property(self) -> dict[str, object]:
        return {
            "Name": self.name,
            "InstanceId": self.instance_id,
            "Commands": list(self.commands),
            "TimeoutSeconds": str(self.timeout_seconds),
        }


def worst_case_seconds(steps: Sequence[BoxStep]) -> int:
    return sum(step.timeout_seconds + STEP_OVERHEAD_SECONDS for step in steps)


class BoxSteps(Construct):
    """Runs `apply` on Create and Update, `revert` on Delete, step by step on the named boxes.

    With `boxes_of_this_template` (the boxes are this stack's own, provisioned by cfn-init), a
    box created or replaced by the same deploy is left out (it was provisioned from this very
    template before it signalled), and every box is switched to standard CPU credits first.

    The handler's role may run AWS-RunShellScript on `instance_ids` only."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        title: str,
        resource_type: str,
        instance_ids: Sequence[str],
        apply: Sequence[BoxStep],
        revert: Sequence[BoxStep] = (),
        state_prefix: str,
        extra_properties: Mapping[str, str] | None = None,
        boxes_of_this_template: bool = False,
        notice_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, id_)
        for label, steps in (("apply", apply), ("revert", revert)):
            if worst_case_seconds(steps) > TOTAL_TIMEOUT_SECONDS:
                raise ValueError(
                    f"{title}: the {label} steps may take {worst_case_seconds(steps)} s, more "
                    f"than the {TOTAL_TIMEOUT_SECONDS} s a custom resource is given"
                )
        stack = Stack.of(self)
        self.state_prefix = state_prefix = f"{state_prefix}/{self.node.path}"
        self.role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{title}: Run Command on the boxes, its own progress parameters",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:SendCommand"],
                resources=[
                    stack.format_arn(
                        service="ssm",
                        resource="document",
                        resource_name=DOCUMENT,
                        account="",
                    ),
                    *[
                        stack.format_arn(
                            service="ec2",
                            resource="instance",
                            resource_name=instance_id,
                        )
                        for instance_id in instance_ids
                    ],
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetCommandInvocation", "ssm:CancelCommand"], resources=["*"]
            )
        )
        if boxes_of_this_template:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["ec2:ModifyInstanceCreditSpecification"],
                    resources=[
                        stack.format_arn(
                            service="ec2", resource="instance", resource_name=instance_id
                        )
                        for instance_id in instance_ids
                    ],
                )
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter"],
                resources=[
                    stack.format_arn(
                        service="ssm",
                        resource="parameter",
                        resource_name=f"{state_prefix.lstrip('/')}/*",
                    )
                ],
            )
        )
        environment = {"STATE_PARAMETER_PREFIX": state_prefix}
        if notice_topic is not None:
            # A notice for each start, step, failure and completion (runtime/common/notices.py).
            grant_notices(self.role, notice_topic)
            environment.update(notice_environment(notice_topic), NOTICE_PROCESS=title)
        polled = add_polled_provider(
            self,
            title=title,
            code=handler_code(ASSET_DIR),
            role=self.role,
            on_event=Handler("box_ops_handler.on_event"),
            is_complete=Handler("box_ops_handler.is_complete"),
            handler_timeout=Duration.minutes(1),
            query_interval=Duration.seconds(POLL_SECONDS),
            total_timeout=Duration.seconds(TOTAL_TIMEOUT_SECONDS),
            environment=environment,
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=polled.provider.service_token,
            resource_type=resource_type,
            service_timeout=Duration.seconds(CUSTOM_RESOURCE_LIMIT_SECONDS),
            properties={
                "Apply": [step.to_property() for step in apply],
                "Revert": [step.to_property() for step in revert],
                **dict(extra_properties or {}),
                **(
                    {"SkipNewBoxes": "true", "StandardCredits": "true"}
                    if boxes_of_this_template
                    else {}
                ),
            },
        )
        acknowledge(self, BOX_STEPS)

    @property
    def last_output(self) -> str:
        return self.resource.get_att_string("LastOutput")


def update_commands(
    app: s3_assets.Asset, tools: s3_assets.Asset, env: Mapping[str, str]
) -> list[str]:
    """Shell lines that fetch both assets and run the NEW release's deploy/update.sh."""
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return [
        "set -euo pipefail",
        'stage="$(mktemp -d /opt/prostudio/stage.XXXXXX)"',
        "trap 'rm -rf \"$stage\"' EXIT",
        f"aws s3 cp --only-show-errors s3://{app.s3_bucket_name}/{app.s3_object_key} "
        '"$stage/app.zip"',
        f"aws s3 cp --only-show-errors s3://{tools.s3_bucket_name}/{tools.s3_object_key} "
        '"$stage/tools.zip"',
        'python3 -m zipfile -e "$stage/app.zip" "$stage/app"',
        'python3 -m zipfile -e "$stage/tools.zip" "$stage/tools"',
        f'env {exports} bash "$stage/app/deploy/update.sh" "$stage/app" "$stage/tools"',
    ]


class BoxUpdate(Construct):
    """Applies the service and tools assets to each box in turn through deploy/update.sh; a new
    box is provisioned by cfn-init alone and then set to standard CPU credits."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        boxes: Sequence[tuple[str, str]],
        app: s3_assets.Asset,
        tools: s3_assets.Asset,
        env: Mapping[str, str],
        state_prefix: str,
    ) -> None:
        super().__init__(scope, id_)
        commands = update_commands(app, tools, env)
        self.steps = BoxSteps(
            self,
            "Steps",
            title="Box update",
            resource_type="Custom::BoxUpdate",
            state_prefix=state_prefix,
            instance_ids=[instance_id for _, instance_id in boxes],
            boxes_of_this_template=True,
            apply=[
                BoxStep(f"update {name}", instance_id, commands, UPDATE_TIMEOUT_SECONDS)
                for name, instance_id in boxes
            ],
        )
