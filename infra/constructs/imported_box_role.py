"""The zero-cost boxes' role imported into production, granted what the Redis cutover needs."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import ZERO_COST_STACK
from infra.parameters import Names


class ImportedBoxRole(Construct):
    """The role ZeroCostStack gives its boxes, imported by the name it gives it, in this
    account: never by a writable parameter."""

    def __init__(self, scope: Construct, id_: str, *, names: Names) -> None:
        super().__init__(scope, id_)
        region = Stack.of(self).region
        # "Default" is left out of logical IDs: the role's policy keeps the one it was first
        # deployed with.
        self.role = iam.Role.from_role_name(
            self, "Default", names.box_role_name(ZERO_COST_STACK, region), mutable=True
        )

    def grant_secrets_read(self, secrets: Sequence[secretsmanager.ISecret], key: kms.IKey) -> None:
        """Read `secrets` and decrypt them with `key` through Secrets Manager. In the role's
        own policy, not the key's: a key policy naming a role keeps its old unique id if the
        role is ever recreated."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=sorted({secret.secret_arn for secret in secrets}),
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{Stack.of(self).region}.amazonaws.com"
                    }
                },
            )
        )
