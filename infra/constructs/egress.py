"""How the private app subnets reach AWS APIs: VPC endpoints, no NAT and no internet route."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

# What the Fargate tasks call, and nothing else: ECR (image manifests and auth), CloudWatch
# Logs (awslogs driver), Secrets Manager (the Redis AUTH token), SSM (the REDIS_HOST parameter
# injected as an ECS secret).
# Private DNS makes the whole VPC resolve these names to the endpoints, so every client in
# the VPC (the zero-cost boxes too) must be given to `allow_from`.
INTERFACE_SERVICES: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
}
# Gateway endpoints are free: S3 carries the ECR image layers.
GATEWAY_SERVICES: dict[str, ec2.GatewayVpcEndpointAwsService] = {
    "S3": ec2.GatewayVpcEndpointAwsService.S3,
}


class Egress(Construct):
    """Interface endpoints in the app subnets (one ENI per AZ) and gateway endpoints on their
    route tables. The endpoints admit HTTPS only from the clients given to `allow_from`."""

    def __init__(
        self, scope: Construct, id_: str, *, vpc: ec2.IVpc, subnets: ec2.SubnetSelection
    ) -> None:
        super().__init__(scope, id_)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="VPC interface endpoints: HTTPS from production clients only",
            allow_all_outbound=False,
        )
        self.interface_endpoints = {
            name: ec2.InterfaceVpcEndpoint(
                self,
                name,
                vpc=vpc,
                service=service,
                subnets=subnets,
                private_dns_enabled=True,
                open=False,
                security_groups=[self.security_group],
            )
            for name, service in INTERFACE_SERVICES.items()
        }
        self.gateway_endpoints = {
            name: ec2.GatewayVpcEndpoint(self, name, vpc=vpc, service=service, subnets=[subnets])
            for name, service in GATEWAY_SERVICES.items()
        }
        self.connections = ec2.Connections(
            security_groups=[self.security_group], default_port=ec2.Port.tcp(443)
        )

    def allow_from(self, clients: Sequence[ec2.IConnectable], why: str) -> None:
        for client in clients:
            self.connections.allow_default_port_from(client, why)
