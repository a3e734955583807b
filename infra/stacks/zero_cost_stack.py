"""ZeroCostStack: the free-tier box, and the phase-2 increments behind their flags."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_elasticloadbalancingv2_targets as targets
from constructs import Construct, IDependable

from infra.config import Settings
from infra.constructs.alarm_health_check import AlarmHealthCheck, InsufficientData, TierHealthy
from infra.constructs.box_alarms import BoxAlarms
from infra.constructs.box_update import BoxUpdate
from infra.constructs.budgets import CostAnomalyDetection, EnvironmentBudget, environment_cost
from infra.constructs.deploy_guards import ExampleValuesGuard, TeardownGuard
from infra.constructs.handoff import Handoff
from infra.constructs.load_balancer import LoadBalancer, site_certificate
from infra.constructs.network import Network
from infra.constructs.patching import Patching
from infra.constructs.redis_cluster import RedisCluster, UserIds
from infra.constructs.redis_endpoint import RedisEndpoint
from infra.constructs.web_hosts import WebHosts
from infra.constructs.weighted_dns import DNS_ID, AliasEntry, WeightedDns, public_zone
from infra.stacks.acknowledgements import ZERO_COST, acknowledge

# The phase-2 cache's user group and user ids:
# prostudio[-<environment>]-zero-cost-cache[-<user>].
CACHE_USERS = "zero-cost-cache"


class ZeroCostStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.settings = settings
        flags = settings.zero_cost
        names = settings.names
        network = Network(self, "Network", names=names)
        handoff = Handoff(self, "Handoff", vpc=network.vpc, names=names)

        cache = None
        if flags.separate_redis:
            cache = RedisCluster(
                self,
                "Cache",
                vpc=network.vpc,
                subnets=network.data_subnets,
                node_type=flags.redis_node_type,
                node_count=1,
                description="ProStudio zero-cost cache",
                snapshot_retention_days=1,
                engine=settings.cache_engine,
                users=None
                if id_ in settings.cache_auth_token
                else UserIds.of(
                    names.cache_user_group(CACHE_USERS),
                    lambda user: names.cache_user(CACHE_USERS, user),
                ),
            )
        hosts = WebHosts(
            self,
            "Web",
            vpc=network.vpc,
            subnets=network.public_subnets,
            count=flags.instances,
            instance_type=flags.instance_type,
            role_name=names.box_role_name(id_, settings.region),
            api_workers=flags.api_workers,
            max_memory_mb=flags.max_memory_mb,
            external_redis=(
                RedisEndpoint(
                    host=cache.host,
                    port=cache.port,
                    auth_token=cache.service.secret,
                    username=cache.service.username,
                )
                if cache
                else None
            ),
            launch_template_name=names.launch_template,
        )
        BoxUpdate(
            self,
            "BoxUpdate",
            boxes=[(box.node.id, box.instance_id) for box in hosts.instances],
            box_role=hosts.role,
            app=hosts.app_asset,
            tools=hosts.tools_asset,
            env=hosts.provision_env(),
            state_prefix=names.box_ops_state,
        )
        handoff.publish_boxes(
            instance_ids=[box.instance_id for box in hosts.instances],
            security_group_id=hosts.security_group.security_group_id,
        )
        if cache:
            cache.allow_from(
                [hosts.security_group, handoff.migration_clients], "ProStudio boxes and migration"
            )
            # The cutover's follow (box 1) logs in as `follow`; ProdStack names the user.
            handoff.publish_redis(
                host=cache.host,
                port=cache.port,
                tls=True,
                secret=cache.follow.secret,
            )
            # Granted whether or not production is migrating: a migration deploys only
            # ProdStack, and this stack must not change with production's increments.
            if cache.users:
                cache.follow.secret.grant_read(hosts.role)
        else:
            hosts.allow_redis_from(handoff.migration_clients, "Redis migration Lambdas")
            handoff.publish_redis(
                host=hosts.instances[0].instance_private_ip,
                port=hosts.local_redis_port,
                tls=False,
                secret=hosts.redis_password,
            )
        box_alarms = BoxAlarms(
            self,
            "BoxAlarms",
            boxes=hosts.instances,
            role=hosts.role,
            instance_type=flags.instance_type,
            alarm_email=settings.prod.alarm_email,
            metric_namespace=names.box_metric_namespace,
        )
        Patching(self, "Patching", boxes=hosts.instances)

        zone = public_zone(self, settings.dns) if settings.dns.has_zone else None
        alias, address = None, None
        if flags.alb:
            balancer = LoadBalancer(
                self,
                "LoadBalancer",
                vpc=network.vpc,
                subnets=network.public_subnets,
                certificate=site_certificate(
                    self,
                    "Certificate",
                    domain_name=settings.dns.domain_name,
                    certificate_arn=settings.dns.certificate_arn,
                    zone=zone,
                ),
                deletion_protection=False,
            )
            balancer.forward_to(
                "Boxes",
                port=80,
                targets=[targets.InstanceTarget(box, 80) for box in hosts.instances],
            )
            hosts.allow_web_from(balancer.alb, (80,), "HTTP from the load balancer only")
            alias = AliasEntry(
                dns_name=balancer.alb.load_balancer_dns_name,
                hosted_zone_id=balancer.alb.load_balancer_canonical_hosted_zone_id,
            )
            entry_path: list[IDependable] = [balancer, hosts.security_group]
            CfnOutput(self, "LoadBalancerDns", value=balancer.alb.load_balancer_dns_name)
        else:
            # nginx on the box serves HTTP only; HTTPS needs the ALB's certificate.
            address = hosts.elastic_ip.ref
            entry_path = [
                hosts.open_to_internet(80, "Public web traffic to the box"),
                hosts.elastic_ip_association,
            ]
        if zone and settings.dns.publishes_name:
            old_record = WeightedDns(
                self, DNS_ID, zone=zone, domain_name=settings.dns.domain_name
            ).add_old(alias=alias, address=address, after=entry_path)
            if settings.prod_enabled:
                # Beside production's record, the old tier's takes its share when a box fails:
                # it is healthy while any box answers /health, and a box that stops reporting
                # counts as failed (as its alarm treats missing data).
                AlarmHealthCheck(
                    self,
                    "OldTierHealth",
                    tier="old",
                    alarms=box_alarms.health_alarms,
                    insufficient_data=InsufficientData.UNHEALTHY,
                    healthy_when=TierHealthy.ANY,
                ).attach(old_record)
        if flags.alb and settings.dns.example_values:
            ExampleValuesGuard(self, "ExampleValuesGuard", values=settings.dns.example_values)
        CfnOutput(self, "BoxPublicIp", value=hosts.elastic_ip.ref)
        CfnOutput(self, "BoxInstanceId", value=hosts.instances[0].instance_id)
        if settings.budgets:
            # One budget for the environment, here since this stack exists in every phase.
            EnvironmentBudget(
                self,
                "Budget",
                budget_name=names.budget(id_),
                region=self.region,
                limit_usd=environment_cost(settings.phase),
                email=settings.prod.alarm_email,
            )
        if settings.cost_anomaly_detection:
            CostAnomalyDetection(
                self,
                "CostAnomalies",
                email=settings.prod.alarm_email,
                monitor_name=names.anomaly_monitor,
                subscription_name=names.anomaly_subscription,
            )
        self.teardown_guard = TeardownGuard(
            self, "TeardownGuard", confirmed=id_ in settings.allow_teardown
        )
        acknowledge(self, ZERO_COST)
