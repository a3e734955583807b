"""The typed, frozen settings the stacks and constructs receive (built by infra.config.loader)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.config.shift_schedule import worst_case_seconds
from infra.parameters import Names

ZERO_COST_STACK = "ZeroCostStack"
PROD_STACK = "ProdStack"
STACK_NAMES = (ZERO_COST_STACK, PROD_STACK)

# RFC 2606 / RFC 6761 names reserved for documentation, and the placeholder zone id.
_EXAMPLE_SUFFIXES = ("example.com", "example.net", "example.org", "example", "test", "invalid")
_EXAMPLE_ZONE_ID = re.compile("EXAMPLE")


def _is_example_name(name: str) -> bool:
    return any(name == suffix or name.endswith("." + suffix) for suffix in _EXAMPLE_SUFFIXES)


@dataclass(frozen=True)
class DnsSettings:
    """The public name, the hosted zone that serves it, and an optional ACM certificate."""

    domain_name: str
    zone_name: str
    hosted_zone_id: str
    certificate_arn: str

    @property
    def has_zone(self) -> bool:
        return bool(self.hosted_zone_id)

    @property
    def publishes_name(self) -> bool:
        """The public name's records are created: a zone is set and it is not the example."""
        return self.has_zone and not self.example_values

    @property
    def example_values(self) -> dict[str, str]:
        """The flags still holding example values (reserved names, the placeholder zone id)."""
        found = {
            flag: value
            for flag, value in (("domain_name", self.domain_name), ("zone_name", self.zone_name))
            if value and _is_example_name(value)
        }
        if _EXAMPLE_ZONE_ID.search(self.hosted_zone_id):
            found["hosted_zone_id"] = self.hosted_zone_id
        return found


@dataclass(frozen=True)
class ZeroCostSettings:
    """The free-tier topology and its phase-2 increments."""

    separate_redis: bool
    alb: bool
    instances: int
    redis_node_type: str = "cache.t3.micro"
    instance_type: str = "t3.micro"
    api_workers: int = 1  # one asyncio worker per vCPU (docs/service.md)
    max_memory_mb: int = 1024


@dataclass(frozen=True)
class ShiftSettings:
    """The Route53 weighted shift run during `cdk deploy ProdStack`."""

    enabled: bool
    target_weight: int
    step: int
    interval_seconds: int

    @property
    def worst_case_seconds(self) -> int:
        return worst_case_seconds(
            target_weight=self.target_weight, step=self.step, interval_seconds=self.interval_seconds
        )


@dataclass(frozen=True)
class ProdSettings:
    """The production topology (built when phase is 3)."""

    min_tasks: int
    max_tasks: int
    redis_node_type: str
    redis_node_count: int
    alb_deletion_protection: bool
    alarm_email: str
    migrate_data: bool
    copy_generation: int
    shift: ShiftSettings
    # A snapshot of the production cache restored into a one-node drill group ("" = none).
    restore_drill: str = ""
    api_workers: int = 2  # one asyncio worker per vCPU of the 2-vCPU task
    max_memory_mb: int = 3072


@dataclass(frozen=True)
class Settings:
    phase: int
    region: str
    dns: DnsSettings
    zero_cost: ZeroCostSettings
    prod: ProdSettings
    environment: str = "production"
    # Stacks whose teardown guard this one deploy leaves out (`-c allow_teardown=...`).
    allow_teardown: frozenset[str] = frozenset()
    # Stacks whose cache group was created with an AUTH token and keeps it: CloudFormation
    # cannot move a group from its token to a user group in place (docs/security.md).
    cache_auth_token: frozenset[str] = frozenset()
    # One engine for both caches, so the copy restores in either direction.
    cache_engine: str = "valkey"
    budgets: bool = True
    cost_anomaly_detection: bool = False

    @property
    def prod_enabled(self) -> bool:
        return self.phase >= 3

    @property
    def names(self) -> Names:
        """This environment's physical names (stacks, SSM parameters, budgets)."""
        return Names(self.environment)
