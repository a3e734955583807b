"""The Provider-framework plumbing shared by the long-running custom resources.

`on_event` starts the work and `is_complete` advances it one bounded slice per poll, so no
Lambda invocation sleeps or runs long, and the whole stays inside CloudFormation's hour.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.acknowledgements import POLLED_PROVIDER, acknowledge
from infra.constructs.log_encryption import stack_log_key

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "runtime"
COMMON_DIR = RUNTIME_DIR / "common"
_NOT_BUNDLED = shutil.ignore_patterns("__pycache__", "*.pyc")
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
RUNTIME = lambda_.Runtime.PYTHON_3_12
FAILED_EVENT_RETENTION = Duration.days(14)


@jsii.implements(ILocalBundling)
class _LocalBundle:
    """A handler folder's modules, runtime/common (as `runtime.common`) and the synthesizing
    venv's copy of each pure-Python package named, bundled without Docker."""

    def __init__(self, source: Path, packages: Sequence[str]) -> None:
        self.source, self.packages = source, tuple(packages)

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        output = Path(output_dir)
        for module in self.source.iterdir():
            if module.suffix == ".py" or module.name == "requirements.txt":
                shutil.copy2(module, output / module.name)
        shutil.copytree(COMMON_DIR, output / "runtime" / "common", ignore=_NOT_BUNDLED)
        for package in self.packages:
            location = Path(importlib.import_module(package).__path__[0])
            shutil.copytree(location, output / package, ignore=_NOT_BUNDLED, dirs_exist_ok=True)
        return True


def handler_code(source: Path, packages: Sequence[str] = ()) -> lambda_.Code:
    """A handler asset bundled locally; hashed by its output, so a change in runtime/common or
    in a bundled package's version deploys a new asset."""
    return lambda_.Code.from_asset(
        str(source),
        exclude=["__pycache__", "*.pyc"],
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("unused"), local=_LocalBundle(source, packages)
        ),
    )


@dataclass(frozen=True)
class Handler:
    """One handler function: its `module.function` entry point and memory."""

    entry_point: str
    memory_mb: int = 256


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
    slice_time: Duration | None = None,
) -> PolledProvider:
    """Add the two handlers (sharing `role`), their log groups and the Provider to `scope`,
    and acknowledge the cdk-nag findings the framework itself causes.

    The waiter makes total_timeout / query_interval attempts, each a wait plus one
    is_complete call of up to `slice_time`; the attempts are cut so that the whole,
    attempts x (interval + slice), stays within `total_timeout`."""
    attempts = waiter_attempts(total_timeout, query_interval, slice_time or Duration.seconds(0))

    def function(id_: str, handler: Handler) -> lambda_.Function:
        logs_of_function = log_group(scope, f"{id_}Logs")
        logs_of_function.grant_write(role)
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
            description=f"{title} ({handler.entry_point.rsplit('.', maxsplit=1)[-1]})",
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
        total_timeout=Duration.seconds(attempts * query_interval.to_seconds()),
        log_group=provider_logs,
        framework_on_event_role=framework_roles[0],
        framework_complete_and_timeout_role=framework_roles[1],
        disable_waiter_state_machine_logging=False,
        # Errors only, without execution data: the data carries CloudFormation's pre-signed
        # response URL, with which anyone could answer for this resource.
        waiter_state_machine_log_options=cr.LogOptions(
            destination=log_group(scope, "WaiterLogs"),
            include_execution_data=False,
            level=sfn.LogLevel.ERROR,
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


def waiter_attempts(total_timeout: Duration, query_interval: Duration, slice_time: Duration) -> int:
    """How many polls fit in `total_timeout` when each waits and then works `slice_time`."""
    attempts = int(
        total_timeout.to_seconds() // (query_interval.to_seconds() + slice_time.to_seconds())
    )
    if attempts < 1:
        raise ValueError(f"total_timeout {total_timeout} leaves no room for a single poll")
    return attempts


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
