"""The production service: ECS Fargate tasks behind the load balancer, autoscaled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.constructs.load_balancer import LoadBalancer
from infra.constructs.log_encryption import stack_log_key
from infra.constructs.redis_endpoint import RedisEndpoint

CONTAINER_NAME = "service"
# runtime/service/Dockerfile runs gunicorn bound to 0.0.0.0:8000.
CONTAINER_PORT = 8000
# Two vCPUs for four gunicorn workers; 4 GiB leaves headroom above MAX_MEMORY_MB=3072.
TASK_CPU = 2048
TASK_MEMORY_MIB = 4096
CPU_TARGET_PERCENT = 60
# ALBRequestCountPerTarget is per minute: 3000 is 50 requests/s per task, well inside what
# four workers serve, so scale-out starts before latency does.
REQUESTS_PER_TASK_PER_MINUTE = 3000
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# Graviton: Fargate on ARM64 is 20% cheaper, and the image's base and wheels are multi-arch.
# One architecture for the image and the tasks.
IMAGE_PLATFORM = ecr_assets.Platform.LINUX_ARM64
CPU_ARCHITECTURE = ecs.CpuArchitecture.ARM64
IMAGE_EXCLUDES = ["**/__pycache__", "**/*.pyc", ".pytest_cache", "*.rdb"]


@dataclass(frozen=True)
class Capacity:
    """The autoscaling range. The template sets no desired count: CloudFormation would put it
    back on every deploy and undo a scale-out (aws-cdk#3919). A new service starts one task
    and autoscaling raises it to `minimum` within a minute or two."""

    minimum: int
    maximum: int


class FargateService(Construct):
    """Fargate tasks in the app subnets (no public IP), forwarded to by the load balancer.

    Deployments keep 100% of the desired tasks healthy and may run 200%; the circuit
    breaker rolls back a deployment whose tasks fail to start, and `roll_back_on` adds
    deployment alarms that roll back one whose tasks start and then misbehave. REDIS_HOST
    and REDIS_AUTH_TOKEN (the `service` user's password, or a group's AUTH token) reach the
    container as ECS secrets (an SSM parameter and a Secrets Manager secret), so neither
    appears as a plain value in the task definition; REDIS_USERNAME names the user.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        image_directory: Path,
        load_balancer: LoadBalancer,
        redis: RedisEndpoint,
        capacity: Capacity,
        api_workers: int,
        max_memory_mb: int,
        redis_host_parameter_name: str,
        family_suffix: str,
    ) -> None:
        super().__init__(scope, id_)
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENHANCED
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
            encryption_key=stack_log_key(self),
        )
        self.redis_host_parameter = ssm.StringParameter(
            self,
            "RedisHost",
            parameter_name=redis_host_parameter_name,
            description="Primary endpoint of the production Redis",
            string_value=redis.host,
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="ProStudio service tasks: no AWS permissions; Redis is reached over TLS",
        )
        task = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=TASK_CPU,
            memory_limit_mib=TASK_MEMORY_MIB,
            task_role=self.task_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=CPU_ARCHITECTURE,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        # CDK names the family after the construct path, the same in every environment.
        cast(
            ecs.CfnTaskDefinition, task.node.default_child
        ).family = f"{task.family}{family_suffix}"
        task.add_container(
            CONTAINER_NAME,
            image=ecs.ContainerImage.from_asset(
                str(image_directory), exclude=IMAGE_EXCLUDES, platform=IMAGE_PLATFORM
            ),
            port_mappings=[ecs.PortMapping(container_port=CONTAINER_PORT)],
            logging=ecs.LogDriver.aws_logs(stream_prefix="service", log_group=self.log_group),
            environment={
                "API_WORKERS": str(api_workers),
                "MAX_MEMORY_MB": str(max_memory_mb),
                "REDIS_PORT": str(redis.port),
                "REDIS_TLS": "true",
                **({"REDIS_USERNAME": redis.username} if redis.username else {}),
            },
            secrets={
                "REDIS_HOST": ecs.Secret.from_ssm_parameter(self.redis_host_parameter),
                "REDIS_AUTH_TOKEN": ecs.Secret.from_secrets_manager(redis.auth_token),
            },
            # The image's own probe of /health; ECS replaces a task that fails it.
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-m", "prostudio.healthcheck"],
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(30),
            ),
            stop_timeout=Duration.seconds(30),
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="ProStudio service tasks: from the load balancer only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(443),
            "AWS APIs via VPC endpoints; the app subnets have no internet route",
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=task,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            vpc_subnets=subnets,
            assign_public_ip=False,
            security_groups=[self.security_group],
            health_check_grace_period=Duration.seconds(60),
        )
        self.target_group = load_balancer.forward_to(
            "Service", port=CONTAINER_PORT, targets=[self.service]
        )
        scaling = self.service.auto_scale_task_count(
            min_capacity=capacity.minimum, max_capacity=capacity.maximum
        )
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=CPU_TARGET_PERCENT)
        scaling.scale_on_request_count(
            "Requests",
            requests_per_target=REQUESTS_PER_TASK_PER_MINUTE,
            target_group=self.target_group,
        )
        self.connections = self.service.connections

    def roll_back_on(self, alarms: Mapping[str, cloudwatch.IAlarm]) -> None:
        """ECS deployment alarms: a deployment during which any of `alarms` (by their literal
        names) goes to ALARM, while it runs and for the bake time after its tasks are steady,
        rolls back to the previous task definition, alongside the circuit breaker. The service
        is created after them. The alarms must not watch the service itself (ECS's own metrics
        by ServiceName): the service's template would then name alarms that name the service,
        a cycle."""
        for alarm in alarms.values():
            self.service.node.add_dependency(alarm)
        self.service.enable_deployment_alarms(
            list(alarms), behavior=ecs.AlarmBehavior.ROLLBACK_ON_ALARM
        )
