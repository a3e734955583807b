"""The Redis data copy (old Redis -> production Redis) as a custom resource run by `cdk deploy`.

Two Lambdas inside the VPC run runtime/redis_copy under the Provider framework: `on_event`
checks the preconditions and the one-hour budget and records a run in a DynamoDB table;
`is_complete` copies for one bounded slice per poll, then verifies. The handlers reach
Secrets Manager and DynamoDB through VPC endpoints (no NAT): the stack must provide both.
The framework's own functions stay outside the VPC; they only invoke the handlers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import (
    CustomResource,
    Duration,
    RemovalPolicy,
)
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import CUSTOM_RESOURCE_LIMIT_SECONDS
from infra.constructs.polled_provider import Handler, InVpc, add_polled_provider, handler_code
from infra.stacks.acknowledgements import REDIS_COPY, acknowledge
from runtime.common.copy_rules import COPY_POLICIES, VERIFY_MODES

ASSET_DIR = Path(__file__).resolve().parents[2] / "runtime" / "redis_copy"
POLL_SECONDS = 15
# The Provider gives up 5 minutes before CloudFormation would.
TOTAL_TIMEOUT_SECONDS = CUSTOM_RESOURCE_LIMIT_SECONDS - 300
# Work per is_complete call: well inside HANDLER_TIMEOUT, which also covers connecting,
# the last batch in flight and the checkpoint write.
SLICE_SECONDS = 90
HANDLER_TIMEOUT = Duration.minutes(4)
# The copy itself must be projected to end this long before the Provider's timeout.
COPY_BUDGET_SECONDS = TOTAL_TIMEOUT_SECONDS - 300
# Pure-Python redis-py on one Lambda vCPU, used until a run has measured its own rate.
ASSUMED_KEYS_PER_SECOND = 20_000


@dataclass(frozen=True)
class RedisEndpoint:
    """One side of the copy; values may be CDK tokens (e.g. from SSM or another construct)."""

    host: str
    port: str | int
    tls: bool
    secret: secretsmanager.ISecret


def runtime_code() -> lambda_.Code:
    """The handler asset: runtime/redis_copy, runtime/common, `redis` and `structlog`
    (pure Python: hiredis is optional and left out), bundled locally."""
    return handler_code(ASSET_DIR, packages=("redis", "structlog"))


def _flag(value: bool) -> str:
    return "true" if value else "false"


class RedisCopy(Construct):
    """Copies every key from `source` to `target` on Create, and on an Update that raises
    `generation`; verifies the copy and fails the deploy with the report on any mismatch.
    Delete leaves both servers untouched. `security_groups` must be admitted by both Redis
    servers; `subnets` must reach them and the Secrets Manager and DynamoDB endpoints.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_groups: Sequence[ec2.ISecurityGroup],
        source: RedisEndpoint,
        target: RedisEndpoint,
        generation: int,
        encryption_key: kms.IKey | None = None,
        policy: str = "fail",
        verify: str = "full",
    ) -> None:
        super().__init__(scope, id_)
        if policy not in COPY_POLICIES:
            raise ValueError(f"policy={policy!r} is not one of {', '.join(COPY_POLICIES)}")
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify={verify!r} is not one of {', '.join(VERIFY_MODES)}")
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise ValueError(f"generation={generation!r} must be a whole number >= 0")

        # Progress only: losing it means at worst re-running a copy, so it goes with the stack.
        # It holds key names of the cache's data: on the cache's key when one is given.
        encryption_key = encryption_key or kms.Key(
            self,
            "CheckpointKey",
            description="Encrypts the Redis copy's checkpoints",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.table = dynamodb.Table(
            self,
            "Checkpoints",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=encryption_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Redis copy handlers: both Redis secrets and the checkpoint table",
        )
        self.role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AWSLambdaVPCAccessExecutionRole"
            )
        )
        self.table.grant(self.role, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
        # What DynamoDB asks of a caller of a table on a customer key; no wildcard actions.
        encryption_key.grant(
            self.role, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"
        )
        source.secret.grant_read(self.role)
        target.secret.grant_read(self.role)

        polled = add_polled_provider(
            self,
            title="Redis data copy",
            code=runtime_code(),
            role=self.role,
            on_event=Handler("copy_handler.on_event", memory_mb=512),
            is_complete=Handler("copy_handler.is_complete", memory_mb=1769),
            handler_timeout=HANDLER_TIMEOUT,
            query_interval=Duration.seconds(POLL_SECONDS),
            total_timeout=Duration.seconds(TOTAL_TIMEOUT_SECONDS),
            slice_time=Duration.seconds(SLICE_SECONDS),
            environment={
                "CHECKPOINT_TABLE": self.table.table_name,
                "SLICE_SECONDS": str(SLICE_SECONDS),
                "POLL_SECONDS": str(POLL_SECONDS),
                "COPY_BUDGET_SECONDS": str(COPY_BUDGET_SECONDS),
                "ASSUMED_KEYS_PER_SECOND": str(ASSUMED_KEYS_PER_SECOND),
            },
            in_vpc=InVpc(vpc=vpc, subnets=subnets, security_groups=security_groups),
        )
        self.on_event, self.is_complete = polled.on_event, polled.is_complete
        self.provider, self.framework_roles = polled.provider, polled.framework_roles
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type="Custom::RedisCopy",
            service_timeout=Duration.seconds(CUSTOM_RESOURCE_LIMIT_SECONDS),
            properties={
                "SourceHost": source.host,
                "SourcePort": str(source.port),
                "SourceTls": _flag(source.tls),
                "SourceSecretArn": source.secret.secret_arn,
                "TargetHost": target.host,
                "TargetPort": str(target.port),
                "TargetTls": _flag(target.tls),
                "TargetSecretArn": target.secret.secret_arn,
                "Policy": policy,
                "Verify": verify,
                "Generation": str(generation),
            },
        )
        acknowledge(self, REDIS_COPY)

    @property
    def copied_keys(self) -> str:
        """The number of keys the last run copied (a token for outputs)."""
        return self.resource.get_att_string("Copied")
