"""The VPC shared by every phase, laid out once so no later phase replaces a subnet."""

from __future__ import annotations

from aws_cdk import Fn, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.parameters import PRODUCTION_NAMES, Names

PUBLIC = "public"
APP = "app"
DATA = "data"


class Network(Construct):
    """Two AZs of public subnets (boxes, load balancers), app subnets (Fargate tasks) and
    data subnets (ElastiCache). No NAT gateway: the free tier has
    none, and production reaches AWS APIs through VPC endpoints it adds itself."""

    def __init__(self, scope: Construct, id_: str, *, names: Names) -> None:
        super().__init__(scope, id_)
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.0.0.0/16"),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name=PUBLIC,
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=True,
                ),
                ec2.SubnetConfiguration(
                    name=APP, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                ),
                ec2.SubnetConfiguration(
                    name=DATA, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
            ],
            flow_logs={
                "RejectedTraffic": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.REJECT,
                )
            },
        )
        self.public_subnets = ec2.SubnetSelection(subnet_group_name=PUBLIC)
        self.app_subnets = ec2.SubnetSelection(subnet_group_name=APP)
        self.data_subnets = ec2.SubnetSelection(subnet_group_name=DATA)
        self._publish(names)

    def _publish(self, names: Names) -> None:
        """Write the ids ProdStack needs to SSM, so it never holds an export on this stack."""
        app = self.vpc.select_subnets(subnet_group_name=APP)
        # Construct ids follow production's names, so every environment has the same logical ids.
        values = {
            "vpc_id": self.vpc.vpc_id,
            "public_subnet_ids": _joined(
                self.vpc.select_subnets(subnet_group_name=PUBLIC).subnet_ids
            ),
            "app_subnet_ids": _joined(app.subnet_ids),
            "data_subnet_ids": _joined(self.vpc.select_subnets(subnet_group_name=DATA).subnet_ids),
            "app_route_table_ids": _joined(
                [subnet.route_table.route_table_id for subnet in app.subnets]
            ),
        }
        for field, value in values.items():
            ssm.StringParameter(
                self,
                "Param" + _id_from(getattr(PRODUCTION_NAMES, field)),
                parameter_name=getattr(names, field),
                string_value=value,
            )


def _joined(values: list[str]) -> str:
    return Fn.join(",", values)


def _id_from(parameter_name: str) -> str:
    return "".join(part.title() for part in parameter_name.replace("/", "-").split("-"))
