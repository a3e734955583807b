"""What the production stack needs from the zero-cost one, published to SSM."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.parameters import Names


class Handoff(Construct):
    """The old Redis (the data copy's source), the security group that Redis admits for
    the migration Lambdas, and the boxes the cutover switches."""

    def __init__(self, scope: Construct, id_: str, *, vpc: ec2.IVpc, names: Names) -> None:
        super().__init__(scope, id_)
        self._names = names
        self.migration_clients = ec2.SecurityGroup(
            self,
            "MigrationClients",
            vpc=vpc,
            description="Worn by the Redis migration Lambdas; the old Redis admits it",
            allow_all_outbound=True,
        )
        self._put(
            "MigrationClientsParam",
            names.redis_migration_client_sg,
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
        self._put("RedisHostParam", self._names.old_redis_host, host)
        self._put("RedisPortParam", self._names.old_redis_port, str(port))
        self._put("RedisTlsParam", self._names.old_redis_tls, "true" if tls else "false")
        self._put("RedisSecretParam", self._names.old_redis_secret_arn, secret.secret_arn)

    def publish_boxes(self, *, instance_ids: list[str], security_group_id: str) -> None:
        self._put("BoxIdsParam", self._names.box_instance_ids, ",".join(instance_ids))
        self._put("BoxSecurityGroupParam", self._names.box_security_group, security_group_id)

    def _put(self, id_: str, name: str, value: str) -> None:
        ssm.StringParameter(self, id_, parameter_name=name, string_value=value)
