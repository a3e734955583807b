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

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    CfnResource,
    CfnRule,
    CfnRuleAssertion,
    CustomResource,
    Duration,
    Fn,
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
from infra.acknowledgements import TEARDOWN_GUARD, acknowledge
from infra.constructs.polled_provider import handler_code

ASSET_DIR = Path(__file__).resolve().parents[2] / "runtime" / "teardown_guard"
RESOURCE_TYPE = "Custom::TeardownGuard"
RUNTIME = lambda_.Runtime.PYTHON_3_12
HANDLER_TIMEOUT = Duration.seconds(60)
SERVICE_TIMEOUT = Duration.minutes(5)


def mark_disposable(resource: CfnResource, why: str) -> None:
    """Leave a stateful resource out of the teardown guard: it holds nothing that is not
    kept elsewhere (`why` says where, in the template's metadata)."""
    resource.add_metadata(stateful.DISPOSABLE, why)


class _Resource(Mapping[str, Any]):
    """One resource as its template will hold it; properties resolved only when read."""

    def __init__(self, stack: Stack, node: CfnResource) -> None:
        self._stack, self._node = stack, node
        self._properties: Mapping[str, Any] | None = None

    def __getitem__(self, key: str) -> Any:
        if key == "Type":
            return self._node.cfn_resource_type
        if key == "Metadata":
            disposable = self._node.get_metadata(stateful.DISPOSABLE)
            return {stateful.DISPOSABLE: disposable} if disposable else {}
        if key == "Properties":
            if self._properties is None:
                resolved = self._stack.resolve(self._node._cfn_properties)
                self._properties = self._node._render_properties(resolved) or {}
            return self._properties
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("Type", "Properties", "Metadata"))

    def __len__(self) -> int:
        return 3


def template_resources(stack: Stack, *, outside: IConstruct) -> dict[str, Mapping[str, Any]]:
    """The stack's resources as its template will hold them, except those below `outside`."""
    skipped = outside.node.path + "/"
    return {
        stack.resolve(stack.get_logical_id(node)): _Resource(stack, node)
        for node in stack.node.find_all()
        if isinstance(node, CfnResource)
        and not node.node.path.startswith(skipped)
        and Stack.of(node) is stack
    }


@jsii.implements(IStableListProducer)
class _Entries:
    def __init__(self, guard: Construct) -> None:
        self._guard = guard

    def produce(self) -> list[str]:
        return stateful.entries(template_resources(Stack.of(self._guard), outside=self._guard))


class TeardownGuard(Construct):
    """Refuses a deploy that deletes or replaces a stateful resource the last deploy held,
    unless `confirmed` (the operator's `-c allow_teardown=<stack>` for this one deploy).

    Build it last in its stack: every resource built before it waits for it. (Resources CDK
    adds while it synthesizes, such as the boxes' launch template, hold nothing; the boxes
    that launch from them wait.)"""

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
            code=handler_code(ASSET_DIR),
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
        guard = self.resource.node.default_child
        assert isinstance(guard, CfnResource)
        own = self.node.path + "/"
        for node in stack.node.find_all():
            if (
                isinstance(node, CfnResource)
                and Stack.of(node) is stack
                and not node.node.path.startswith(own)
            ):
                node.add_resource_dependency(guard)
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
