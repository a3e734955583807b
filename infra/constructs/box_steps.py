"""Checked steps on running boxes: the project's own SSM documents, sent through Run Command one
box at a time by a custom resource (runtime/box_ops), each failing the deploy when it fails.

A `BoxScript` is a fixed shell script whose parameters SSM validates (`allowedValues` or
`allowedPattern`); each becomes an AWS::SSM::Document of type Command. The handlers accept
steps that name a document and its parameter values, never commands, and their role may send
only these documents, only to the boxes. Each step's whole output goes to a KMS-encrypted
CloudWatch Logs group of the stack (GetCommandInvocation keeps only its first 24,000/8,000
characters).

A document's construct id carries a digest of its content: a changed script is a new
document, and the old one (with the grant that sends it) is deleted only after the deploy
succeeded, so CloudFormation's rollback of a failed Update, which re-sends the old properties,
still finds the old document and may still send it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.acknowledgements import BOX_STEPS, acknowledge
from infra.config import CUSTOM_RESOURCE_LIMIT_SECONDS
from infra.constructs.notices import grant_notices, notice_environment
from infra.constructs.polled_provider import Handler, add_polled_provider, handler_code, log_group

ASSET_DIR = Path(__file__).resolve().parents[2] / "runtime" / "box_ops"
POLL_SECONDS = 15
TOTAL_TIMEOUT_SECONDS = CUSTOM_RESOURCE_LIMIT_SECONDS - 300
# Per step beyond its own timeout: SSM delivery and the handler's cancel grace.
STEP_OVERHEAD_SECONDS = 180
# The document's one step; SSM names the output streams <command>/<instance>/<step>/stdout.
RUN_STEP = "run"
EXECUTION_TIMEOUT = "executionTimeout"
EXECUTION_TIMEOUT_PATTERN = r"^[1-9][0-9]{0,3}$"
# Run Command and the agent's log upload, on the boxes' side.
OUTPUT_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")
OUTPUT_READ_ACTIONS = ("logs:DescribeLogStreams", "logs:GetLogEvents")
# CloudFormation tags every instance it creates with its stack's name; nobody else can set an
# aws: tag, so the tag names a stack's boxes without trusting any writable value.
STACK_NAME_TAG = "aws:cloudformation:stack-name"


@dataclass(frozen=True)
class Parameter:
    """A document parameter; SSM refuses a value outside `allowed_values` or the pattern."""

    description: str
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str = ""

    def __post_init__(self) -> None:
        if bool(self.allowed_values) == bool(self.allowed_pattern):
            raise ValueError(f"{self.description}: give allowed_values or allowed_pattern")

    def accepts(self, value: str) -> bool:
        if self.allowed_values:
            return value in self.allowed_values
        return re.fullmatch(self.allowed_pattern, value) is not None

    def to_content(self) -> dict[str, object]:
        content: dict[str, object] = {"type": "String", "description": self.description}
        if self.allowed_values:
            content["allowedValues"] = list(self.allowed_values)
        else:
            content["allowedPattern"] = self.allowed_pattern
        return content


@dataclass(frozen=True)
class BoxScript:
    """A fixed shell script run as root on a box; `{{ Name }}` in a line is a parameter."""

    id: str
    description: str
    lines: tuple[str, ...]
    parameters: Mapping[str, Parameter] = field(default_factory=dict)

    def all_parameters(self) -> dict[str, Parameter]:
        return {
            **self.parameters,
            EXECUTION_TIMEOUT: Parameter(
                "Seconds the script may run", allowed_pattern=EXECUTION_TIMEOUT_PATTERN
            ),
        }

    def content(self) -> dict[str, object]:
        return {
            "schemaVersion": "2.2",
            "description": self.description,
            "parameters": {
                name: parameter.to_content() for name, parameter in self.all_parameters().items()
            },
            "mainSteps": [
                {
                    "action": "aws:runShellScript",
                    "name": RUN_STEP,
                    "precondition": {"StringEquals": ["platformType", "Linux"]},
                    "inputs": {
                        "runCommand": list(self.lines),
                        "timeoutSeconds": f"{{{{ {EXECUTION_TIMEOUT} }}}}",
                    },
                }
            ],
        }


@dataclass(frozen=True)
class BoxStep:
    """One run of a script on one box."""

    name: str
    instance_id: str
    script: BoxScript
    timeout_seconds: int
    parameters: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.parameters) - set(self.script.parameters)
        missing = set(self.script.parameters) - set(self.parameters)
        if unknown or missing:
            raise ValueError(
                f"{self.name}: {self.script.id} takes {sorted(self.script.parameters)}, "
                f"not {sorted(self.parameters)}"
            )

    def values(self) -> dict[str, str]:
        return {**self.parameters, EXECUTION_TIMEOUT: str(self.timeout_seconds)}


@dataclass(frozen=True)
class Boxes:
    """The instances the steps may run on: their ids when the stack knows them, or else
    every instance CloudFormation created in the named stack."""

    instance_ids: Sequence[str] = ()
    stack_name: str | None = None

    def __post_init__(self) -> None:
        if bool(self.instance_ids) == bool(self.stack_name):
            raise ValueError("name the boxes by instance_ids or by stack_name")


def worst_case_seconds(steps: Sequence[BoxStep]) -> int:
    return sum(step.timeout_seconds + STEP_OVERHEAD_SECONDS for step in steps)


def document_arn(stack: Stack, document_name: str) -> str:
    return stack.format_arn(service="ssm", resource="document", resource_name=document_name)


class BoxDocument(Construct):
    """One script as an SSM Command document, and the grant that lets `sender` send it."""

    def __init__(self, scope: Construct, id_: str, *, script: BoxScript, sender: iam.IRole) -> None:
        super().__init__(scope, id_)
        self.script = script
        self.document = ssm.CfnDocument(
            self,
            "Resource",
            content=script.content(),
            document_type="Command",
            target_type="/AWS::EC2::Instance",
            # An SSM-resolved value that changes keeps the document's name (and its grant).
            update_method="NewVersion",
        )
        self.grant = iam.Policy(
            self,
            "Send",
            roles=[sender],
            statements=[
                iam.PolicyStatement(
                    actions=["ssm:SendCommand"],
                    resources=[document_arn(Stack.of(self), self.document.ref)],
                )
            ],
        )

    @property
    def name(self) -> str:
        return self.document.ref


def content_digest(scope: Construct, script: BoxScript) -> str:
    resolved = Stack.of(scope).resolve(script.content())
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:10]


class BoxSteps(Construct):
    """Runs `apply` on Create and Update, `revert` on Delete, step by step on the boxes.

    With `boxes_of_this_template` (the boxes are this stack's own, provisioned by cfn-init), a
    box created or replaced by the same deploy is left out (it was provisioned from this very
    template before it signalled), and every box is switched to standard CPU credits first.

    The handler role may send the steps' documents to `boxes` only (and, for boxes of this
    template, change their credit specification); `box_role` (the boxes' instance role) may
    write the steps' output to this construct's log group only."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        title: str,
        resource_type: str,
        boxes: Boxes,
        box_role: iam.IRole,
        apply: Sequence[BoxStep],
        revert: Sequence[BoxStep] = (),
        state_prefix: str,
        extra_properties: Mapping[str, str] | None = None,
        boxes_of_this_template: bool = False,
        notice_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, id_)
        if boxes_of_this_template and not boxes.instance_ids:
            raise ValueError(f"{title}: the boxes of this template are named by instance_ids")
        for label, steps in (("apply", apply), ("revert", revert)):
            if worst_case_seconds(steps) > TOTAL_TIMEOUT_SECONDS:
                raise ValueError(
                    f"{title}: the {label} steps may take {worst_case_seconds(steps)} s, more "
                    f"than the {TOTAL_TIMEOUT_SECONDS} s a custom resource is given"
                )
        stack = Stack.of(self)
        self.commands_by_stack_tag = boxes.stack_name is not None
        self.state_prefix = state_prefix = f"{state_prefix}/{self.node.path}"
        self.role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{title}: sends the project's box documents, reads their output",
        )
        self.output = log_group(self, "Output")
        self.box_output_grant = iam.Policy(
            self,
            "BoxOutput",
            roles=[box_role],
            statements=[
                iam.PolicyStatement(
                    actions=list(OUTPUT_WRITE_ACTIONS), resources=[self.output.log_group_arn]
                )
            ],
        )
        self.documents = self._documents([*apply, *revert])
        self.role.add_to_policy(_send_to(stack, boxes))
        self.role.add_to_policy(
            iam.PolicyStatement(
                # No resource-level permissions exist for these two (service authorization
                # reference): the commands they name are the ones this role sent.
                actions=["ssm:GetCommandInvocation", "ssm:CancelCommand"],
                resources=["*"],
            )
        )
        if boxes_of_this_template:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    # A statement of its own: SendCommand's, on the same instances, stays
                    # SendCommand only.
                    sid="StandardCredits",
                    actions=["ec2:ModifyInstanceCreditSpecification"],
                    resources=_instance_arns(stack, boxes.instance_ids),
                )
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(OUTPUT_READ_ACTIONS), resources=[self.output.log_group_arn]
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
                "Apply": [self._property(step) for step in apply],
                "Revert": [self._property(step) for step in revert],
                "OutputLogGroup": self.output.log_group_name,
                **dict(extra_properties or {}),
                **(
                    {"SkipNewBoxes": "true", "StandardCredits": "true"}
                    if boxes_of_this_template
                    else {}
                ),
            },
        )
        self.resource.node.add_dependency(
            self.box_output_grant, *(document.grant for document in self.documents.values())
        )
        acknowledge(self, BOX_STEPS)

    def _documents(self, steps: Sequence[BoxStep]) -> dict[str, BoxDocument]:
        documents: dict[str, BoxDocument] = {}
        for step in steps:
            script = step.script
            known = documents.get(script.id)
            if known is not None:
                if known.script != script:
                    raise ValueError(f"two different scripts are both named {script.id}")
                continue
            documents[script.id] = BoxDocument(
                self,
                f"{script.id}{content_digest(self, script)}",
                script=script,
                sender=self.role,
            )
        return documents

    def _property(self, step: BoxStep) -> dict[str, object]:
        return {
            "Name": step.name,
            "InstanceId": step.instance_id,
            "Document": self.documents[step.script.id].name,
            "Parameters": step.values(),
            "TimeoutSeconds": str(step.timeout_seconds),
        }

    @property
    def last_output(self) -> str:
        return self.resource.get_att_string("LastOutput")

    @property
    def output_group(self) -> logs.ILogGroup:
        return self.output


def _instance_arns(stack: Stack, instance_ids: Sequence[str]) -> list[str]:
    return [
        stack.format_arn(service="ec2", resource="instance", resource_name=instance_id)
        for instance_id in instance_ids
    ]


def _send_to(stack: Stack, boxes: Boxes) -> iam.PolicyStatement:
    if boxes.instance_ids:
        return iam.PolicyStatement(
            actions=["ssm:SendCommand"], resources=_instance_arns(stack, boxes.instance_ids)
        )
    return iam.PolicyStatement(
        actions=["ssm:SendCommand"],
        resources=[stack.format_arn(service="ec2", resource="instance", resource_name="*")],
        conditions={"StringEquals": {f"ssm:resourceTag/{STACK_NAME_TAG}": boxes.stack_name}},
    )
