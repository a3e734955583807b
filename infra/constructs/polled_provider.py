"""The Provider-framework plumbing shared by the long-running custom resources.

`on_event` starts the work and `is_complete` advances it one bounded slice per poll, so no
Lambda invocation sleeps or runs long, and the whole stays inside CloudFormation's hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.constructs.log_encryption import stack_log_key
from infra.stacks.acknowledgements import POLLED_PROVIDER, acknowledge

LOG_RETENTION = logs.RetentionDays.ONE_MONTH
RUNTIME = lambda_.Runtime.PYTHON_3_12
HANDLER_CONCURRENCY = 1
FAILED_EVENT_RETENTION = Duration.days(14)


@dataclass(frozen=True)
class Handler:
    """One handler function: its `module.function` entry point and memory."""

    entry_point: str
    memory_mb: int = 256


@dataclass(frozen=True)
class InVpc:
    """Where VPC-bound handlers run; the Provider's own functions stay outside the VPC."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_groups: Sequence[ec2.ISecurityGroup]


@dataclass(frozen=True)
class PolledProvider:
    on_event: lambda_.Function
    is_complete: lambda_.Function
    provider: cr.Provider
    framework_roles: tuple[iam.Role, iam.Role]


def log_group(scope: Construct, id_: str) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        id_,
        retention=LOG_RETENTION,
        removal_policy=RemovalPolicy.DESTROY,
        encryption_key=stack_log_key(scope),
    )


def add_polled_provider(
    scope: Construct,
    *,
    title: str,
    code: lambda_.Code,
    role: iam.IRole,
    on_event: Handler,
    is_complete: Handler,
    handler_timeout: Duration,
    query_interval: Duration,
    total_timeout: Duration,
    environment: Mapping[str, str] | None = None,
    in_vpc: InVpc | None = None,
) -> PolledProvider:
    """Add the two handlers (sharing `role`), their log groups and the Provider to `scope`,
    and acknowledge the cdk-nag findings the framework itself causes."""

    def function(id_: str, handler: Handler) -> lambda_.Function:
        logs_of_function = log_group(scope, f"{id_}Logs")
        logs_of_function.grant_write(role)
        network: dict[str, Any] = (
            {
                "vpc": in_vpc.vpc,
                "vpc_subnets": in_vpc.subnets,
                "security_groups": list(in_vpc.security_groups),
            }
            if in_vpc
            else {}
        )
        return lambda_.Function(
            scope,
            id_,
            runtime=RUNTIME,
            code=code,
            handler=handler.entry_point,
            role=role,
            timeout=handler_timeout,
            memory_size=handler.memory_mb,
            environment=dict(environment or {}),
            log_group=logs_of_function,
            # The Provider calls each handler once at a time for its one resource; the limit
            # also keeps a retry storm from taking the account's whole concurrency.
            reserved_concurrent_executions=HANDLER_CONCURRENCY,
            description=f"{title} ({handler.entry_point.rsplit('.', maxsplit=1)[-1]})",
            **network,
        )

    on_event_function = function("OnEvent", on_event)
    is_complete_function = function("IsComplete", is_complete)
    provider_logs = log_group(scope, "ProviderLogs")
    # Roles without AWS managed policies; two, since one shared role would make the waiter
    # state machine depend on itself.
    framework_roles = (
        _framework_role(scope, "FrameworkOnEventRole", f"{title} Provider: starts the waiter"),
        _framework_role(
            scope,
            "FrameworkWaiterRole",
            f"{title} Provider: polls is_complete and reports timeouts",
        ),
    )
    for framework_role in framework_roles:
        provider_logs.grant_write(framework_role)
    provider = cr.Provider(
        scope,
        "Provider",
        on_event_handler=on_event_function,
        is_complete_handler=is_complete_function,
        query_interval=query_interval,
        total_timeout=total_timeout,
        log_group=provider_logs,
        framework_on_event_role=framework_roles[0],
        framework_complete_and_timeout_role=framework_roles[1],
        disable_waiter_state_machine_logging=False,
        waiter_state_machine_log_options=cr.LogOptions(
            destination=log_group(scope, "WaiterLogs"),
            include_execution_data=True,
            level=sfn.LogLevel.ALL,
        ),
    )
    _dead_letter_queue(scope, provider, framework_roles[0])
    polled = PolledProvider(
        on_event=on_event_function,
        is_complete=is_complete_function,
        provider=provider,
        framework_roles=framework_roles,
    )
    acknowledge(scope, POLLED_PROVIDER)
    return polled


def _framework_role(scope: Construct, id_: str, description: str) -> iam.Role:
    return iam.Role(
        scope,
        id_,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )


def _dead_letter_queue(scope: Construct, provider: cr.Provider, role: iam.IRole) -> sqs.Queue:
    """CloudFormation invokes the framework's onEvent function asynchronously: an event that
    fails every retry would leave the stack waiting out the custom resource's hour with no
    trace. The queue keeps each such event (its ResponseURL included) for the operator."""
    queue = sqs.Queue(
        scope,
        "FailedEvents",
        encryption=sqs.QueueEncryption.KMS_MANAGED,
        enforce_ssl=True,
        retention_period=FAILED_EVENT_RETENTION,
    )
    queue.grant_send_messages(role)
    framework_on_event = provider.node.find_child("framework-onEvent").node.default_child
    assert isinstance(framework_on_event, lambda_.CfnFunction)
    framework_on_event.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
        target_arn=queue.queue_arn
    )
    return queue
