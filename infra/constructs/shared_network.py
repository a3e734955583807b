"""The zero-cost stack's VPC, imported into production from SSM at deploy time."""

from __future__ import annotations

from aws_cdk import Annotations, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.constructs.redis_copy import RedisEndpoint
from infra.parameters import Names

AZ_COUNT = 2
# Only the app subnets' route tables are published: gateway endpoints attach to them.
# The other subnets are used for placement only, where CDK never reads a route table.
_NO_ROUTE_TABLE_WARNING = "@aws-cdk/aws-ec2:noSubnetRouteTableId"


class SharedNetwork(Construct):
    """The VPC and subnets that ZeroCostStack owns, read from its SSM parameters.

    Nothing here creates or changes a subnet, so production never replaces one, and no
    CloudFormation export ties the two stacks together.
    """

    def __init__(self, scope: Construct, id_: str, *, names: Names) -> None:
        super().__init__(scope, id_)
        self._names = names
        zones = Stack.of(self).availability_zones[:AZ_COUNT]
        self.vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=self._read(names.vpc_id),
            availability_zones=zones,
        )
        self.public_subnets = self._subnets("Public", names.public_subnet_ids, zones)
        self.app_subnets = self._subnets(
            "App", names.app_subnet_ids, zones, names.app_route_table_ids
        )
        self.data_subnets = self._subnets("Data", names.data_subnet_ids, zones)
        self.migration_clients = self._imported_group(
            "MigrationClients", names.redis_migration_client_sg
        )
        self.boxes = self._imported_group("Boxes", names.box_security_group)

    def _imported_group(self, id_: str, parameter_name: str) -> ec2.ISecurityGroup:
        return ec2.SecurityGroup.from_security_group_id(
            self, id_, self._read(parameter_name), allow_all_outbound=True, mutable=False
        )

    def old_redis(self, *, tls: bool, username: str | None = None) -> RedisEndpoint:
        """The zero-cost Redis (the copy's source). Whether it speaks TLS, and the user the
        follow logs in as, are decided at synth by the settings that decide what
        ZeroCostStack publishes."""
        return RedisEndpoint(
            host=self._read(self._names.old_redis_host),
            port=self._read(self._names.old_redis_port),
            tls=tls,
            username=username,
            secret=secretsmanager.Secret.from_secret_complete_arn(
                self, "OldRedisSecret", self._read(self._names.old_redis_secret_arn)
            ),
        )

    def _read(self, name: str) -> str:
        return ssm.StringParameter.value_for_string_parameter(self, name)

    def _subnets(
        self, id_: str, ids_parameter: str, zones: list[str], route_tables_parameter: str = ""
    ) -> ec2.SubnetSelection:
        subnet_ids = Fn.split(",", self._read(ids_parameter), AZ_COUNT)
        route_table_ids = (
            Fn.split(",", self._read(route_tables_parameter), AZ_COUNT)
            if route_tables_parameter
            else [None] * AZ_COUNT
        )
        subnets = []
        for index, (subnet_id, zone, route_table_id) in enumerate(
            zip(subnet_ids, zones, route_table_ids, strict=True)
        ):
            subnet = ec2.Subnet.from_subnet_attributes(
                self,
                f"{id_}{index + 1}",
                subnet_id=subnet_id,
                availability_zone=zone,
                route_table_id=route_table_id,
            )
            if route_table_id is None:
                Annotations.of(subnet).acknowledge_warning(
                    _NO_ROUTE_TABLE_WARNING, "placement only; no route is added here"
                )
            subnets.append(subnet)
        return ec2.SubnetSelection(subnets=subnets)
