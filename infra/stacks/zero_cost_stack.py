"""ZeroCostStack: the free-tier box, and the phase-2 increments behind their flags."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_elasticloadbalancingv2_targets as targets
from aws_cdk import aws_route53 as route53
from constructs import Construct, IDependable

from infra.acknowledgements import ZERO_COST, acknowledge
from infra.config import Settings
from infra.constructs.alarm_health_check import AlarmHealthCheck, InsufficientData, TierHealthy
from infra.constructs.box_alarms import BoxAlarms
from infra.constructs.box_update import BoxUpdate
from infra.constructs.handoff import Handoff
from infra.constructs.load_balancer import LoadBalancer, site_certificate
from infra.constructs.network import Network
from infra.constructs.patching import Patching
from infra.constructs.redis_cluster import RedisCluster, UserIds
from infra.constructs.stack_furniture import FURNITURE_ID, StackFurniture
from infra.constructs.web_hosts import WebHosts
from infra.constructs.weighted_dns import DNS_ID, AliasEntry, WeightedDns

# The phase-2 cache's user group and user ids:
# prostudio[-<environment>]-zero-cost-cache[-<user>].
CACHE_USERS = "zero-cost-cache"


class ZeroCostStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        self.settings = settings
        flags = settings.zero_cost
        names = settings.names
        furniture = StackFurniture(self, FURNITURE_ID, settings=settings)
        network = Network(self, "Network", names=names)
        handoff = Handoff(self, "Handoff", vpc=network.vpc, names=names)

        cache = zero_cost_cache(self, network, settings) if flags.separate_redis else None
        hosts = web_boxes(self, network, settings, cache=cache)
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
        self._hand_off(handoff, hosts, cache)
        box_alarms = alarms_of(self, hosts, settings)
        Patching(self, "Patching", boxes=hosts.instances)

        alias, address, entry_path = self._entry(network, hosts, furniture.zone)
        if furniture.zone and settings.dns.publishes_name:
            old_record = WeightedDns(
                self, DNS_ID, zone=furniture.zone, domain_name=settings.dns.domain_name
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
        CfnOutput(self, "BoxPublicIp", value=hosts.elastic_ip.ref)
        CfnOutput(self, "BoxInstanceId", value=hosts.instances[0].instance_id)
        # The environment's budget lives here: this stack exists in every phase.
        self.teardown_guard = furniture.finish(guard_examples=flags.alb, environment_budget=True)
        acknowledge(self, ZERO_COST)

    def _hand_off(self, handoff: Handoff, hosts: WebHosts, cache: RedisCluster | None) -> None:
        """Publish the boxes and the Redis they serve from, for production's cutover."""
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
                host=cache.host, port=cache.port, tls=True, secret=cache.follow.secret
            )
            # Granted whether or not production is migrating: a migration deploys only
            # ProdStack, and this stack must not change with production's increments.
            cache.grant_follow(hosts.role)
        else:
            hosts.allow_redis_from(handoff.migration_clients, "Redis copy hosts in the VPC")
            handoff.publish_redis(
                host=hosts.instances[0].instance_private_ip,
                port=hosts.local_redis_port,
                tls=False,
                secret=hosts.redis_password,
            )

    def _entry(
        self, network: Network, hosts: WebHosts, zone: route53.IHostedZone | None
    ) -> tuple[AliasEntry | None, str | None, list[IDependable]]:
        """Where the public name points: the load balancer (an alias) or the box's Elastic IP,
        and what must exist before the record does."""
        if not self.settings.zero_cost.alb:
            # nginx on the box serves HTTP only; HTTPS needs the ALB's certificate.
            return (
                None,
                hosts.elastic_ip.ref,
                [
                    hosts.open_to_internet(80, "Public web traffic to the box"),
                    hosts.elastic_ip_association,
                ],
            )
        dns = self.settings.dns
        balancer = LoadBalancer(
            self,
            "LoadBalancer",
            vpc=network.vpc,
            subnets=network.public_subnets,
            certificate=site_certificate(
                self,
                "Certificate",
                domain_name=dns.domain_name,
                certificate_arn=dns.certificate_arn,
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
        CfnOutput(self, "LoadBalancerDns", value=balancer.alb.load_balancer_dns_name)
        alias = AliasEntry(
            dns_name=balancer.alb.load_balancer_dns_name,
            hosted_zone_id=balancer.alb.load_balancer_canonical_hosted_zone_id,
        )
        return alias, None, [balancer, hosts.security_group]


def zero_cost_cache(stack: Stack, network: Network, settings: Settings) -> RedisCluster:
    """The phase-2 cache: one node over TLS with a day of backups. Its clients log in as their
    own users, unless the group was created with an AUTH token (`cache_auth_token`)."""
    return RedisCluster(
        stack,
        "Cache",
        vpc=network.vpc,
        subnets=network.data_subnets,
        node_type=settings.zero_cost.redis_node_type,
        node_count=1,
        description="ProStudio zero-cost cache",
        snapshot_retention_days=1,
        engine=settings.cache_engine,
        users=None
        if stack.node.id in settings.cache_auth_token
        else UserIds.named(settings.names, CACHE_USERS),
    )


def web_boxes(
    stack: Stack, network: Network, settings: Settings, *, cache: RedisCluster | None
) -> WebHosts:
    """The boxes, serving from `cache` or from the Redis on box 1."""
    flags, names = settings.zero_cost, settings.names
    return WebHosts(
        stack,
        "Web",
        vpc=network.vpc,
        subnets=network.public_subnets,
        count=flags.instances,
        instance_type=flags.instance_type,
        role_name=names.box_role_name(stack.node.id, settings.region),
        api_workers=flags.api_workers,
        max_memory_mb=flags.max_memory_mb,
        external_redis=cache.service_endpoint if cache else None,
        launch_template_name=names.launch_template,
    )


def alarms_of(stack: Stack, hosts: WebHosts, settings: Settings) -> BoxAlarms:
    """Each box's credit, status and health alarms, sent to the alarm e-mail."""
    return BoxAlarms(
        stack,
        "BoxAlarms",
        boxes=hosts.instances,
        role=hosts.role,
        instance_type=settings.zero_cost.instance_type,
        alarm_email=settings.prod.alarm_email,
        metric_namespace=settings.names.box_metric_namespace,
    )
