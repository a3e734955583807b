"""ProdStack: the production topology (ALB -> ECS Fargate -> ElastiCache), built at phase 3.

Below phase 3 it holds only an SSM parameter recording the phase. At phase 3 it adds the "new"
weighted record of the public name; the "old" one lives in ZeroCostStack beside the entry it
points at, so rolling production back never touches it. It finds the zero-cost stack's VPC,
old Redis and boxes through SSM parameters, never through CloudFormation exports, and deploys
after ZeroCostStack (a declared stack dependency, app.py).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_route53 as route53
from constructs import Construct

from infra.acknowledgements import PROD, acknowledge
from infra.config import PROD_STACK, ZERO_COST_STACK, Settings
from infra.constructs.alarm_health_check import (
    AlarmHealthCheck,
    EndpointProbe,
    InsufficientData,
)
from infra.constructs.cache_key import CacheKey
from infra.constructs.egress import Egress
from infra.constructs.failover_alarms import FailoverAlarms
from infra.constructs.fargate_service import Capacity, FargateService
from infra.constructs.imported_box_role import ImportedBoxRole
from infra.constructs.load_balancer import LoadBalancer, site_certificate
from infra.constructs.monitoring import Monitoring, RedisNodes
from infra.constructs.redis_cluster import RedisCluster, UserIds
from infra.constructs.redis_cutover import Box, RedisCutover
from infra.constructs.shared_network import SharedNetwork
from infra.constructs.stack_furniture import FURNITURE_ID, StackFurniture
from infra.constructs.traffic_shift import TrafficShift
from infra.constructs.web_hosts import SERVICE_DIR
from infra.constructs.weighted_dns import DNS_ID, NEW, OLD, WeightedDns

CACHE_SNAPSHOT_RETENTION_DAYS = 7
# The service's readiness: 200 once it answers and reaches its Redis.
READY_PATH = "/health/ready"
# Production's user group and user ids: prostudio[-<environment>]-prod-cache[-<user>].
CACHE_USERS = "prod-cache"


class ProdStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.settings = settings
        furniture = StackFurniture(self, FURNITURE_ID, settings=settings)
        furniture.record_phase(settings.names.prod_phase)
        if settings.prod_enabled:
            assert furniture.zone is not None  # phase 3 requires a zone (infra.config)
            self._production(settings, furniture.zone)
        self.teardown_guard = furniture.finish(guard_examples=settings.prod_enabled)
        acknowledge(self, PROD)

    def _production(self, settings: Settings, zone: route53.IHostedZone) -> None:
        prod = settings.prod
        dns = WeightedDns(self, DNS_ID, zone=zone, domain_name=settings.dns.domain_name)
        self.network = SharedNetwork(self, "Network", names=settings.names)
        egress = Egress(self, "Egress", vpc=self.network.vpc, subnets=self.network.app_subnets)

        cache_key = CacheKey(self, "CacheKey").key
        self.cache = RedisCluster(
            self,
            "Cache",
            vpc=self.network.vpc,
            subnets=self.network.data_subnets,
            node_type=prod.redis_node_type,
            node_count=prod.redis_node_count,
            description="ProStudio production cache",
            snapshot_retention_days=CACHE_SNAPSHOT_RETENTION_DAYS,
            engine=settings.cache_engine,
            encryption_key=cache_key,
            users=None
            if PROD_STACK in settings.cache_auth_token
            else UserIds.named(settings.names, CACHE_USERS),
        )

        if prod.restore_drill:
            self.restore_drill = RedisCluster(
                self,
                "RestoreDrill",
                vpc=self.network.vpc,
                subnets=self.network.data_subnets,
                node_type=prod.redis_node_type,
                node_count=1,
                description="ProStudio restore drill",
                snapshot_retention_days=0,
                engine=settings.cache_engine,
                encryption_key=cache_key,
                snapshot_name=prod.restore_drill,
                disposable=f"restored from snapshot {prod.restore_drill}, which it leaves intact",
            )
            self.restore_drill.allow_from(
                [self.network.migration_clients], "The copy host that verifies the drill"
            )
            CfnOutput(self, "RestoreDrillEndpoint", value=self.restore_drill.host)
            CfnOutput(
                self, "RestoreDrillAuthTokenArn", value=self.restore_drill.follow.secret.secret_arn
            )

        self.load_balancer = LoadBalancer(
            self,
            "LoadBalancer",
            vpc=self.network.vpc,
            subnets=self.network.public_subnets,
            certificate=site_certificate(
                self,
                "Certificate",
                domain_name=settings.dns.domain_name,
                certificate_arn=settings.dns.certificate_arn,
                zone=zone,
            ),
            deletion_protection=prod.alb_deletion_protection,
        )
        self.service = FargateService(
            self,
            "Service",
            vpc=self.network.vpc,
            subnets=self.network.app_subnets,
            image_directory=SERVICE_DIR,
            load_balancer=self.load_balancer,
            redis=self.cache.service_endpoint,
            capacity=Capacity(minimum=prod.min_tasks, maximum=prod.max_tasks),
            api_workers=prod.api_workers,
            max_memory_mb=prod.max_memory_mb,
            redis_host_parameter_name=settings.names.prod_redis_host,
            family_suffix=settings.names.suffix,
        )
        clients: list[ec2.IConnectable] = [self.service.service, self.network.migration_clients]
        self.cache.allow_from(clients, "Service tasks and migration clients")
        egress.allow_from([*clients, self.network.boxes], "Clients of AWS APIs in the VPC")
        # The record appears once the path behind it admits traffic: listener, tasks' rules.
        new_record = dns.add_new(self.load_balancer.alb, after=[self.load_balancer, self.service])

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            load_balancer=self.load_balancer.alb,
            target_group=self.service.target_group,
            service=self.service.service,
            log_group=self.service.log_group,
            redis=RedisNodes(
                replication_group_id=self.cache.group.ref, node_count=prod.redis_node_count
            ),
            alarm_email=prod.alarm_email,
            metric_namespace=settings.names.metric_namespace,
        )
        self.service.roll_back_on(self.monitoring.named_alarms)
        failover = FailoverAlarms(
            self,
            "Failover",
            load_balancer=self.load_balancer.alb,
            target_group=self.service.target_group,
            topic=self.monitoring.topic,
        )
        self.monitoring.show("Failover (the new record's Route53 health check)", failover.alarms)
        self.health_check = AlarmHealthCheck(
            self,
            "NewTierHealth",
            tier="production",
            alarms=failover.alarms,
            insufficient_data=InsufficientData.HEALTHY,
            probe=EndpointProbe(
                host=self.load_balancer.alb.load_balancer_dns_name, path=READY_PATH
            ),
        )
        self.health_check.attach(new_record)

        cutover = None
        if prod.migrate_data:
            cutover = self._cutover(settings, cache_key)
            # The boxes switch once the endpoints and the cache's ingress rules exist.
            cutover.resource.node.add_dependency(egress, self.cache)
            CfnOutput(self, "CutoverSummary", value=cutover.summary)
        if prod.shift.enabled:
            shift = TrafficShift(
                self,
                "TrafficShift",
                hosted_zone_id=settings.dns.hosted_zone_id,
                record_name=settings.dns.domain_name,
                old_set_id=OLD,
                new_set_id=NEW,
                target_weight=prod.shift.target_weight,
                step=prod.shift.step,
                interval_seconds=prod.shift.interval_seconds,
                alarms=self.monitoring.gate_alarms,
                health_url=None,
                notice_topic=self.monitoring.topic,
            )
            # Traffic moves only after the records, a steady service and the Redis cutover.
            shift.resource.node.add_dependency(
                dns, self.service.service, *([cutover.resource] if cutover else [])
            )

        CfnOutput(self, "LoadBalancerDns", value=self.load_balancer.alb.load_balancer_dns_name)
        CfnOutput(self, "RedisPrimaryEndpoint", value=self.cache.host)
        CfnOutput(self, "PublicName", value=settings.dns.domain_name)
        CfnOutput(
            self,
            "HealthGateAlarms",
            value=",".join(alarm.alarm_name for alarm in self.monitoring.gate_alarms),
        )

    def _cutover(self, settings: Settings, cache_key: kms.IKey) -> RedisCutover:
        """The zero-cost boxes move to the production Redis; they reach it and read the passwords
        of its follow and service logins."""
        names = settings.names
        box_role = ImportedBoxRole(self, "BoxRole", names=names)
        # Box 1's follow logs in as `follow`, the switched boxes' service as `service`.
        box_role.grant_secrets_read(
            [self.cache.follow.secret, self.cache.service.secret], cache_key
        )
        self.cache.allow_from(
            [self.network.boxes], "Zero-cost boxes: the cutover's follow and the switched service"
        )
        instance_ids = self.network.box_instance_ids(settings.zero_cost.instances)
        return RedisCutover(
            self,
            "RedisCutover",
            boxes=[
                Box("Box" if index == 0 else f"Box{index + 1}", instance_id)
                for index, instance_id in enumerate(instance_ids)
            ],
            box_stack_name=names.stack(ZERO_COST_STACK),
            box_role=box_role.role,
            region=self.region,
            old=self.network.old_redis(
                tls=settings.zero_cost.separate_redis,
                username=(
                    "follow"
                    if settings.zero_cost.separate_redis
                    and ZERO_COST_STACK not in settings.cache_auth_token
                    else None
                ),
            ),
            new=self.cache.follow_endpoint,
            switched=self.cache.service_endpoint,
            generation=settings.prod.copy_generation,
            state_prefix=names.box_ops_state,
            notice_topic=self.monitoring.topic,
        )
