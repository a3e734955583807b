"""The zero-cost boxes: burstable instances running nginx, gunicorn and (optionally) Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.box_assets import TOOLS_DIR, tools_asset
from infra.constructs.box_role import agent_policy, release_policy
from infra.constructs.redis_endpoint import RedisEndpoint

SERVICE_DIR = Path(__file__).resolve().parents[2] / "runtime" / "service"
APP_DIR = "/opt/prostudio/app"
PROVISION_SCRIPT = f"{APP_DIR}/deploy/provision.sh"
SERVICE_EXCLUDES = ["**/__pycache__", "**/*.pyc", ".pytest_cache"]
LOCAL_REDIS_PORT = 6379
# resolve:ssm is read by EC2 at launch, so a newer AMI never changes the template and
# never replaces a running box. The parameter must match the instance type's architecture.
AL2023_AMI_PARAMETERS = {
    ec2.InstanceArchitecture.X86_64: (
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    ),
    ec2.InstanceArchitecture.ARM_64: (
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    ),
}


def launch_credits(instance_type: str) -> ec2.CpuCredits:
    return ec2.CpuCredits.STANDARD if instance_type.startswith("t2.") else ec2.CpuCredits.UNLIMITED


HEALTH_WAIT = (
    "for attempt in $(seq 90); do "
    "curl -fsS -o /dev/null http://127.0.0.1/health && exit 0; sleep 2; "
    "done; echo 'prostudio /health never answered 200' >&2; exit 1"
)


class WebHosts(Construct):
    """One or two identical boxes provisioned by cfn-init from a versioned asset of
    runtime/service. Each box signals CloudFormation only after its /health answers 200.

    The boxes keep their logical IDs whatever the flags, so turning an increment on or off
    never replaces box 1. cfn-init provisions a new box; later versions are applied in place,
    box by box and checked, by BoxUpdate (infra/constructs/box_update.py), not by cfn-hup.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        count: int,
        instance_type: str,
        role_name: str,
        api_workers: int,
        max_memory_mb: int,
        external_redis: RedisEndpoint | None,
        launch_template_name: Callable[[str], str],
    ) -> None:
        super().__init__(scope, id_)
        self._launch_template_name = launch_template_name
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="ProStudio boxes: web traffic and Redis migration clients only",
            allow_all_outbound=True,
        )
        self.redis_password = secretsmanager.Secret(
            self,
            "RedisPassword",
            description="requirepass of the Redis on the ProStudio box",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
        )
        # A name of its own, so production's stack grants to this role by a name it derives
        # rather than by an ARN read from a writable parameter.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            role_name=role_name,
            description="ProStudio boxes: SSM agent, their secrets, assets, metrics, output",
        )
        self.agent_policy = agent_policy(self, "AgentPolicy", role=self.role)
        redis_secret = external_redis.auth_token if external_redis else self.redis_password
        redis_secret.grant_read(self.role)
        self._external_redis = external_redis
        self._settings = {
            "API_WORKERS": str(api_workers),
            "MAX_MEMORY_MB": str(max_memory_mb),
            "PROSTUDIO_REDIS_SECRET_ARN": redis_secret.secret_arn,
        }
        # Box N goes to the Nth public subnet, so two boxes never share an AZ.
        public = vpc.select_subnets(
            subnet_group_name=subnets.subnet_group_name, subnets=subnets.subnets
        ).subnets
        self.app_asset = s3_assets.Asset(
            self, "AppAsset", path=str(SERVICE_DIR), exclude=SERVICE_EXCLUDES
        )
        self.tools_asset = tools_asset(self, "ToolsAsset")
        self.release_policy = release_policy(
            self, role=self.role, assets=(self.app_asset, self.tools_asset)
        )
        self.instances = [
            self._box(
                "Box" if index == 0 else f"Box{index + 1}",
                vpc,
                ec2.SubnetSelection(subnets=[public[index % len(public)]]),
                instance_type,
            )
            for index in range(count)
        ]
        self.elastic_ip = ec2.CfnEIP(self, "ElasticIp", domain="vpc")
        # The address users may have published: a stack deletion keeps it (release it by hand).
        self.elastic_ip.apply_removal_policy(RemovalPolicy.RETAIN)
        self.elastic_ip_association = ec2.CfnEIPAssociation(
            self,
            "ElasticIpAssociation",
            allocation_id=self.elastic_ip.attr_allocation_id,
            instance_id=self.instances[0].instance_id,
        )
        self.connections = self.security_group.connections

    @property
    def local_redis_port(self) -> int:
        return LOCAL_REDIS_PORT

    def _box(
        self, id_: str, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, instance_type: str
    ) -> ec2.Instance:
        box_type = ec2.InstanceType(instance_type)
        instance = ec2.Instance(
            self,
            id_,
            vpc=vpc,
            vpc_subnets=subnets,
            instance_type=box_type,
            machine_image=ec2.MachineImage.resolve_ssm_parameter_at_launch(
                AL2023_AMI_PARAMETERS[box_type.architecture], os=ec2.OperatingSystemType.LINUX
            ),
            # A new box provisions in unlimited mode (a standard T3/T4g gets no launch credits
            # and would provision at its 10% baseline); BoxUpdate switches it to standard
            # once it has signalled healthy. A T2 gets launch credits, so it stays standard.
            credit_specification=launch_credits(instance_type),
            security_group=self.security_group,
            # The CDK's own grants (the whole assets bucket for cfn-init) are left out: the
            # role's policies above say exactly what a box may do.
            role=self.role.without_policy_updates(),
            associate_public_ip_address=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        8, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                    ),
                )
            ],
            detailed_monitoring=False,
            ssm_session_permissions=False,
        )
        # cfn-init reads the assets and signals with these policies at the box's first boot.
        instance.node.add_dependency(self.role, self.agent_policy, self.release_policy)
        # IMDSv2 only, through a launch template named per environment (CDK's require_imdsv2
        # names it after the construct alone); same construct id, so the same logical id.
        template_name = self._launch_template_name(id_)
        template = ec2.CfnLaunchTemplate(
            instance,
            "LaunchTemplate",
            launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                    http_tokens="required"
                )
            ),
            launch_template_name=template_name,
        )
        instance.instance.launch_template = ec2.CfnInstance.LaunchTemplateSpecificationProperty(
            launch_template_name=template_name, version=template.attr_latest_version_number
        )
        # cfn-lint's AMI pattern predates EC2's resolve:ssm image ids.
        instance.instance.add_metadata("cfn-lint", {"config": {"ignore_checks": ["E1152"]}})
        instance.apply_cloud_formation_init(
            self._init(),
            timeout=Duration.minutes(20),
            # Updates are applied in place by BoxUpdate; a fingerprint in the user data would
            # restart the box without re-running cfn-init (aws-cdk #12749).
            embed_fingerprint=False,
            print_log=True,
        )
        return instance

    def provision_env(self) -> dict[str, str]:
        """The variables provision.sh runs with, on a new box and on every update."""
        env = {**self._settings, "AWS_REGION": Stack.of(self).region}
        if self._external_redis:
            env |= {
                "PROSTUDIO_REDIS_MODE": "external",
                "REDIS_HOST": self._external_redis.host,
                "REDIS_PORT": str(self._external_redis.port),
                "REDIS_TLS": "true",
            }
            if self._external_redis.username:
                env["REDIS_USERNAME"] = self._external_redis.username
        else:
            env["PROSTUDIO_REDIS_MODE"] = "local"
        return env

    def _init(self) -> ec2.CloudFormationInit:
        return ec2.CloudFormationInit.from_config_sets(
            config_sets={"default": ["app", "health"]},
            configs={
                "app": ec2.InitConfig(
                    [
                        ec2.InitSource.from_existing_asset(APP_DIR, self.app_asset),
                        ec2.InitSource.from_existing_asset(TOOLS_DIR, self.tools_asset),
                        ec2.InitCommand.shell_command(
                            f"bash {PROVISION_SCRIPT}",
                            key="10-provision",
                            env=self.provision_env(),
                        ),
                    ]
                ),
                "health": ec2.InitConfig(
                    [ec2.InitCommand.shell_command(HEALTH_WAIT, key="20-wait-for-health")]
                ),
            },
        )

    def allow_web_from(self, peer: ec2.IConnectable, ports: tuple[int, ...], why: str) -> None:
        for port in ports:
            self.connections.allow_from(peer, ec2.Port.tcp(port), why)

    def open_to_internet(self, port: int, why: str) -> ec2.CfnSecurityGroupIngress:
        """`port` open to anyone, as a rule of its own rather than inline in the group: removed
        from the template, CloudFormation deletes it in its cleanup phase, after every update of
        the deploy (the public record moving off the box among them)."""
        return ec2.CfnSecurityGroupIngress(
            self,
            "PublicWeb",
            group_id=self.security_group.security_group_id,
            ip_protocol="tcp",
            cidr_ip="0.0.0.0/0",
            from_port=port,
            to_port=port,
            description=why,
        )

    def allow_redis_from(self, client: ec2.IConnectable, why: str) -> None:
        self.connections.allow_from(client, ec2.Port.tcp(LOCAL_REDIS_PORT), why)
