"""An ElastiCache (Valkey or Redis OSS) replication group with TLS, per-client users (or, for
a group created before them, an AUTH token) and encryption at rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.cache_users import ACCESS, CacheUsers, RedisLogin
from infra.constructs.deploy_guards import mark_disposable

# The port is create-only: changing it replaces the group and its data.
REDIS_PORT = 6380


@dataclass(frozen=True)
class Engine:
    name: str
    version: str
    parameter_family: str


# Redis OSS on ElastiCache ends at 7.1. Valkey 8 restores DUMP payloads of Redis OSS up to 7.2,
# so either cache is a valid copy target from the box's Redis 6.2.
ENGINES = {
    "redis": Engine(name="redis", version="7.1", parameter_family="redis7"),
    "valkey": Engine(name="valkey", version="8.2", parameter_family="valkey8"),
}
# Keyspace and keyevent notifications for every event class (A = g$lshzxet): the change feed
# a live copy follows. ElastiCache takes it only from a parameter group, never CONFIG SET.
KEYSPACE_EVENTS = "AKE"


@dataclass(frozen=True)
class UserIds:
    """Physical ids of a group's ElastiCache users and of their user group."""

    group: str
    users: dict[str, str]

    @classmethod
    def of(cls, group: str, user: Callable[[str], str]) -> UserIds:
        return cls(group=group, users={name: user(name) for name in ACCESS})


class RedisCluster(Construct):
    """A replication group even for a single node: only replication groups support TLS
    with AUTH, and cdk-nag checks only replication groups.

    Clients log in as their own ElastiCache user (`service`, `follow`; `default` is off)
    when `users` is given. A group given none keeps the AUTH token it was created with:
    CloudFormation cannot move a group from its token to a user group in place. Either needs
    in-transit encryption, so it is always on.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        node_type: str,
        node_count: int,
        description: str,
        snapshot_retention_days: int,
        engine: str,
        encryption_key: kms.IKey | None = None,
        snapshot_name: str | None = None,
        disposable: str | None = None,
        users: UserIds | None = None,
    ) -> None:
        """`snapshot_name` seeds the group from a snapshot (create-only: a new name replaces
        the group). A `disposable` group, whose data is kept elsewhere (the reason), leaves
        no final snapshot and is not held by the teardown guard."""
        super().__init__(scope, id_)
        self.engine = ENGINES[engine]
        self.port = REDIS_PORT
        self.users: CacheUsers | None = None
        self.auth_token: secretsmanager.Secret | None = None
        if users:
            self.users = CacheUsers(
                self,
                "Users",
                group_id=users.group,
                user_id=users.users,
                description=description,
                encryption_key=encryption_key,
            )
            self.service: RedisLogin = self.users.service
            self.follow: RedisLogin = self.users.follow
        else:
            self.auth_token = secretsmanager.Secret(
                self,
                "AuthToken",
                description=f"AUTH token of {description}",
                encryption_key=encryption_key,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=64, exclude_punctuation=True
                ),
            )
            self.service = self.follow = RedisLogin(None, self.auth_token)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{description}: Redis clients only",
            allow_all_outbound=False,
        )
        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            description=f"{description} subnets",
            subnet_ids=vpc.select_subnets(
                subnet_group_name=subnets.subnet_group_name, subnets=subnets.subnets
            ).subnet_ids,
        )
        # Named by engine: a family is create-only, so a switch gets a new group of its own.
        self.parameter_group = elasticache.CfnParameterGroup(
            self,
            f"{self.engine.name.title()}Parameters",
            cache_parameter_group_family=self.engine.parameter_family,
            description=f"{description}: keyspace notifications for a live copy",
            properties={"notify-keyspace-events": KEYSPACE_EVENTS},
        )
        multi_node = node_count > 1
        self.group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_description=description,
            engine=self.engine.name,
            engine_version=self.engine.version,
            cache_parameter_group_name=self.parameter_group.ref,
            cache_node_type=node_type,
            num_cache_clusters=node_count,
            automatic_failover_enabled=multi_node,
            multi_az_enabled=multi_node,
            port=REDIS_PORT,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            at_rest_encryption_enabled=True,
            kms_key_id=encryption_key.key_arn if encryption_key else None,
            auth_token=(self.auth_token.secret_value.unsafe_unwrap() if self.auth_token else None),
            user_group_ids=[self.users.group.ref] if self.users else None,
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=[self.security_group.security_group_id],
            snapshot_retention_limit=snapshot_retention_days,
            snapshot_name=snapshot_name,
            auto_minor_version_upgrade=True,
        )
        if disposable:
            self.group.apply_removal_policy(RemovalPolicy.DESTROY)
            mark_disposable(self.group, disposable)
        else:
            # A deleted or replaced group leaves a final snapshot behind.
            self.group.apply_removal_policy(RemovalPolicy.SNAPSHOT)
        self.host = self.group.attr_primary_end_point_address
        self.connections = ec2.Connections(
            security_groups=[self.security_group],
            default_port=ec2.Port.tcp(REDIS_PORT),
        )

    def allow_from(self, clients: Sequence[ec2.IConnectable], why: str) -> None:
        for client in clients:
            self.connections.allow_default_port_from(client, why)
