"""Guards that stop a deploy before it changes a stateful resource.

`TeardownGuard` is a small custom resource that every other resource of its stack depends on,
so CloudFormation runs it first. Its properties list the stack's stateful resources as
`LogicalId=digest` entries (infra/stateful.py: a digest changes exactly when CloudFormation
would replace the resource). On Update CloudFormation hands it the previous deploy's entries;
one gone or changed fails the deploy with one line, and CloudFormation rolls back before any
other resource has changed, unless the deploy carries `-c allow_teardown=<stack>`. It reads no
record that might not exist: a first deploy is a Create, with nothing to compare.

`ExampleValuesGuard` is a CloudFormation Rule that always fails: the stack is built with the
repository's example DNS values, so a deploy is refused before it touches anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    AspectPriority,
    Aspects,
    CfnResource,
    CfnRule,
    CfnRuleAssertion,
    CustomResource,
    Duration,
    Fn,
    IAspect,
    IStableListProducer,
    Lazy,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra import stateful
from infra.stacks.acknowledgements import TEARDOWN_GUARD, acknowledge

ASSET_DIR = Path(__file__).resolve().parents[2] / "runtime" / "teardown_guard"
RESOURCE_TYPE = "Custom::TeardownGuard"
RUNTIME = lambda_.Runtime.PYTHON_3_12
HANDLER_TIMEOUT = Duration.seconds(60)
SERVICE_TIMEOUT = Duration.minutes(5)


def mark_disposable(resource: CfnResource, why: str) -> None:
    """Leave a stateful resource out of the teardown guard: it holds nothing that is not
    kept elsewhere (`why` says where, in the template's metadata)."""
    resource.add_metadata(stateful.DISPOSABLE, why)


def template_resources(stack: Stack, *, outside: IConstruct) -> dict[str, dict[str, Any]]:
    """The stack's resources as its template will hold them, except those below `outside`."""
    resources: dict[str, dict[str, Any]] = {}
    skipped = outside.node.path + "/"
    for node in stack.node.find_all():
        if not isinstance(node, CfnResource) or node.node.path.startswith(skipped):
            continue
        if Stack.of(node) is not stack:
            continue
        logical_id = stack.resolve(stack.get_logical_id(node))
        resources[logical_id] = {
            "Type": node.cfn_resource_type,
            "Properties": node._render_properties(stack.resolve(node._cfn_properties)) or {},
            "Metadata": {stateful.DISPOSABLE: node.get_metadata(stateful.DISPOSABLE)}
            if node.get_metadata(stateful.DISPOSABLE)
            else {},
        }
    return resources


@jsii.implements(IAspect)
class _WaitForGuard:
    """Makes every resource of the guard's stack, except the guard's own, depend on it."""

    def __init__(self, guard: TeardownGuard) -> None:
        self._guard = guard

    def visit(self, node: IConstruct) -> None:
        guard = self._guard.resource.node.default_child
        assert isinstance(guard, CfnResource)
        if (
            isinstance(node, CfnResource)
            and Stack.of(node) is Stack.of(self._guard)
            and not node.node.path.startswith(self._guard.node.path + "/")
        ):
            node.add_resource_dependency(guard)


@jsii.implements(IStableListProducer)
class _Entries:
    def __init__(self, guard: Construct) -> None:
        self._guard = guard

    def produce(self) -> list[str]:
        return stateful.entries(template_resources(Stack.of(self._guard), outside=self._guard))


class TeardownGuard(Construct):
    """Refuses a deploy that deletes or replaces a stateful resource the last deploy held,
    unless `confirmed` (the operator's `-c allow_teardown=<stack>` for this one deploy).
    Every other resource of the stack waits for it."""

    def __init__(self, scope: Construct, id_: str, *, confirmed: bool) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Teardown guard: reads its own stack's status, writes its log group",
        )
        log_group.grant_write(role)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks"], resources=[stack.stack_id]
            )
        )
        self.function = lambda_.Function(
            self,
            "Handler",
            runtime=RUNTIME,
            code=lambda_.Code.from_asset(str(ASSET_DIR), exclude=["__pycache__", "*.pyc"]),
            handler="teardown_guard_handler.on_event",
            role=role,
            timeout=HANDLER_TIMEOUT,
            memory_size=128,
            log_group=log_group,
            description=f"Teardown guard of {stack.stack_name}",
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            service_timeout=SERVICE_TIMEOUT,
            properties={
                "Stack": stack.stack_name,
                "Stateful": Lazy.list(_Entries(self)),
                "Confirmed": "true" if confirmed else "false",
            },
        )
        self.confirmed = confirmed
        # An aspect, so resources that other aspects add at synth (the boxes' launch template)
        # wait too.
        Aspects.of(stack).add(_WaitForGuard(self), priority=AspectPriority.MUTATING + 100)
        acknowledge(self, TEARDOWN_GUARD)


class ExampleValuesGuard(Construct):
    """A Rule that fails every deploy: `values` are the repository's examples."""

    def __init__(self, scope: Construct, id_: str, *, values: dict[str, str]) -> None:
        super().__init__(scope, id_)
        shown = ", ".join(f"{key}={value}" for key, value in values.items())
        self.rule = CfnRule(
            self,
            "Rule",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_not(
                        Fn.condition_contains(sorted(values.values()), next(iter(values.values())))
                    ),
                    assert_description=(
                        f"Example DNS values ({shown}) cannot be deployed; set your zone and "
                        "domain in the committed environment file (environments/)"
                    ),
                )
            ],
        )
