"""Physical names of one environment: its stacks and the SSM parameters through which they
find each other.

ZeroCostStack writes the parameters and ProdStack reads them at deploy time, so neither stack
holds a CloudFormation export that would pin the other in place. Every name is derived from
the environment (`-c environment=<name>`), so two environments share no name in one account
and region; `production` keeps the names it was first deployed with.
"""

from __future__ import annotations

from dataclasses import dataclass

PRODUCTION = "production"
PRODUCTION_PREFIX = "/prostudio"
PRODUCTION_METRIC_NAMESPACE = "ProStudio"

# Set identifiers of the public name's two weighted records ("old" in ZeroCostStack's Dns
# construct, "new" in ProdStack's); the shift CLI defaults to them. They live inside the
# environment's own record name.
OLD_SET_ID = "old"
NEW_SET_ID = "new"


@dataclass(frozen=True)
class Names:
    """The physical names of one environment."""

    environment: str = PRODUCTION

    @property
    def suffix(self) -> str:
        """ "" for production (its names predate environments), "-<environment>" otherwise."""
        return "" if self.environment == PRODUCTION else f"-{self.environment}"

    def stack(self, stack_id: str) -> str:
        """The CloudFormation stack name of ZeroCostStack or ProdStack."""
        return f"{stack_id}{self.suffix}"

    @property
    def prefix(self) -> str:
        """The environment's SSM hierarchy: /prostudio, or /prostudio-<environment> (a sibling,
        never below /prostudio, so no policy or path query on one reaches the other)."""
        return f"{PRODUCTION_PREFIX}{self.suffix}"

    def _parameter(self, path: str) -> str:
        return f"{self.prefix}/{path}"

    @property
    def vpc_id(self) -> str:
        return self._parameter("network/vpc-id")

    @property
    def app_subnet_ids(self) -> str:
        return self._parameter("network/app-subnet-ids")

    @property
    def data_subnet_ids(self) -> str:
        return self._parameter("network/data-subnet-ids")

    @property
    def app_route_table_ids(self) -> str:
        return self._parameter("network/app-route-table-ids")

    @property
    def public_subnet_ids(self) -> str:
        return self._parameter("network/public-subnet-ids")

    # The Redis the zero-cost topology serves from: the source of the data copy.
    @property
    def old_redis_host(self) -> str:
        return self._parameter("zero-cost/redis-host")

    @property
    def old_redis_port(self) -> str:
        return self._parameter("zero-cost/redis-port")

    @property
    def old_redis_tls(self) -> str:
        return self._parameter("zero-cost/redis-tls")

    @property
    def old_redis_secret_arn(self) -> str:
        return self._parameter("zero-cost/redis-secret-arn")

    @property
    def redis_migration_client_sg(self) -> str:
        """The security group the old Redis admits; operator hosts running the copy wear it."""
        return self._parameter("zero-cost/redis-migration-client-sg")

    # The zero-cost boxes, for the deploy-time Redis cutover that ProdStack runs on them; their
    # security group is admitted by production's VPC endpoints (the boxes call AWS APIs). Which
    # instances the cutover may command is decided by IAM (the CloudFormation stack tag), never by
    # these ids.
    @property
    def box_instance_ids(self) -> str:
        return self._parameter("zero-cost/box-instance-ids")

    def box_role_name(self, zero_cost_stack_id: str, region: str) -> str:
        """The boxes' instance role: ZeroCostStack names it, ProdStack grants to it by this name
        (IAM names are global to the account, so the region is part of it)."""
        return f"{self.stack(zero_cost_stack_id)}-box-{region}"

    @property
    def box_security_group(self) -> str:
        return self._parameter("zero-cost/box-sg")

    @property
    def prod_redis_host(self) -> str:
        """The production Redis primary endpoint: injected into the tasks as an ECS secret."""
        return self._parameter("prod/redis-host")

    @property
    def prod_phase(self) -> str:
        return self._parameter("prod/phase")

    @property
    def box_ops_state(self) -> str:
        """Where the box-steps custom resources keep their progress between polls."""
        return self._parameter("box-ops")

    @property
    def metric_namespace(self) -> str:
        """The CloudWatch namespace of the service's own metrics (errors, box health)."""
        return f"{PRODUCTION_METRIC_NAMESPACE}{self.suffix}"

    @property
    def box_metric_namespace(self) -> str:
        """The zero-cost boxes' own namespace (their health), below the service's."""
        return f"{self.metric_namespace}/Box"

    def launch_template(self, box_id: str) -> str:
        """A box's launch template (the name CDK gives it in production, where it is pinned:
        the instance's LaunchTemplate is create-only, so renaming it would replace the box)."""
        return f"{box_id}LaunchTemplate{self.suffix}"

    def budget(self, stack_id: str) -> str:
        return f"prostudio-{self.stack(stack_id)}"

    def cache_user_group(self, cache: str) -> str:
        """An ElastiCache user group (ids are unique per account and region)."""
        return f"prostudio{self.suffix}-{cache}"

    def cache_user(self, cache: str, user: str) -> str:
        """The id of one ElastiCache user of `cache` (the name it logs in with is `user`)."""
        return f"{self.cache_user_group(cache)}-{user}"

    @property
    def anomaly_monitor(self) -> str:
        return f"prostudio{self.suffix}-services"

    @property
    def anomaly_subscription(self) -> str:
        return f"prostudio{self.suffix}-anomalies"


PRODUCTION_NAMES = Names()
