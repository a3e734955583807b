"""What the production stack needs from the zero-cost one, published to SSM."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra import parameters


class Handoff(Construct):
    """The old Redis (the data copy's source), the security group that Redis admits for
    the migration Lambdas, and the boxes the cutover switches."""

    def __init__(self, scope: Construct, id_: str, *, vpc: ec2.IVpc) -> None:
        super().__init__(scope, id_)
        self.migration_clients = ec2.SecurityGroup(
            self,
            "MigrationClients",
            vpc=vpc,
            description="Worn by the Redis migration Lambdas; the old Redis admits it",
            allow_all_outbound=True,
        )
        self._put(
            "MigrationClientsParam",
            parameters.REDIS_MIGRATION_CLIENT_SG,
            self.migration_clients.security_group_id,
        )

    def publish_redis(
        self,
        *,
        host: str,
        port: int,
        tls: bool,
        secret: secretsmanager.ISecret,
    ) -> None:
        self._put("RedisHostParam", parameters.OLD_REDIS_HOST, host)
        self._put("RedisPortParam", parameters.OLD_REDIS_PORT, str(port))
        self._put("RedisTlsParam", parameters.OLD_REDIS_TLS, "true" if tls else "false")
        self._put("RedisSecretParam", parameters.OLD_REDIS_SECRET_ARN, secret.secret_arn)

    def publish_boxes(
        self, *, instance_ids: list[str], role_arn: str, security_group_id: str
    ) -> None:
        self._put("BoxIdsParam", parameters.BOX_INSTANCE_IDS, ",".join(instance_ids))
        self._put("BoxRoleParam", parameters.BOX_ROLE_ARN, role_arn)
        self._put("BoxSecurityGroupParam", parameters.BOX_SECURITY_GROUP, security_group_id)

    def _put(self, id_: str, name: str, value: str) -> None:
        ssm.StringParameter(self, id_, parameter_name=name, string_value=value)
