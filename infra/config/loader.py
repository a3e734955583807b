"""`load_settings`: a pure function from the merged context to validated Settings.

Each flag is parsed once here, and the rules that tie flags together (instances=2 needs a
shared Redis and an ALB, phase 3 needs a zone, ...) are checked before anything is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from infra.config.flags import DEFAULTS, reject_unknown
from infra.config.parsing import (
    ConfigError,
    parse_bool,
    parse_choice,
    parse_int,
    parse_one_of,
    parse_optional,
    parse_text,
)
from infra.config.releases import BOX_REDIS, CACHE_ENGINES, CACHE_RELEASES
from infra.config.settings import (
    STACK_NAMES,
    DnsSettings,
    ProdSettings,
    Settings,
    ShiftSettings,
    ZeroCostSettings,
)
from infra.config.shift_schedule import validate_schedule

_DOMAIN_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_LABEL}\.)+[a-z]{{2,63}}$")
# Commercial-partition regions only: the stacks name `arn:aws:` resources and AWS's free tier.
_REGION = re.compile(r"^(?!cn-)[a-z]{2}-[a-z]+-\d$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_NODE_TYPE = re.compile(r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
# ElastiCache snapshot names: a letter first, letters, digits and single hyphens, no final one.
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z](?:-?[A-Za-z0-9]){0,254}$")
# Burstable types the box runs on: the Free Plan (accounts from 2025-07-15) launches t3/t4g
# micro and small only; t2.micro is free on legacy accounts alone.
BOX_INSTANCE_TYPES = ("t3.micro", "t3.small", "t4g.micro", "t4g.small", "t2.micro")


def _zero_cost(context: Mapping[str, Any], phase: int) -> ZeroCostSettings:
    phase_two = phase >= 2
    separate_redis = parse_optional(
        context, "separate_redis", lambda v: parse_bool("separate_redis", v), phase_two
    )
    alb = parse_optional(context, "alb", lambda v: parse_bool("alb", v), phase_two)
    instances = parse_optional(
        context,
        "instances",
        lambda v: parse_int("instances", v, low=1, high=2),
        2 if phase_two else 1,
    )
    if instances == 2 and not separate_redis:
        raise ConfigError(
            "instances=2 needs separate_redis=true: two boxes with their own Redis would diverge"
        )
    if instances == 2 and not alb:
        raise ConfigError("instances=2 needs alb=true: nothing would spread traffic to box 2")
    return ZeroCostSettings(
        separate_redis=separate_redis,
        alb=alb,
        instances=instances,
        instance_type=parse_one_of("instance_type", context["instance_type"], BOX_INSTANCE_TYPES),
    )


def _dns(context: Mapping[str, Any]) -> DnsSettings:
    domain = parse_text("domain_name", context.get("domain_name"), _DOMAIN, "a lower-case DNS name")
    zone = parse_text("zone_name", context.get("zone_name"), _DOMAIN, "a lower-case DNS name")
    if not domain:
        raise ConfigError("domain_name='' is empty; set a name such as api.example.com")
    if zone and not (domain == zone or domain.endswith("." + zone)):
        raise ConfigError(f"domain_name={domain!r} is not inside zone_name={zone!r}")
    zone_id = parse_text(
        "hosted_zone_id",
        context.get("hosted_zone_id"),
        _HOSTED_ZONE_ID,
        "a Route53 hosted zone id (Z...)",
    )
    if zone_id and not zone:
        raise ConfigError("hosted_zone_id is set but zone_name is empty; set both")
    certificate = parse_text(
        "certificate_arn",
        context.get("certificate_arn"),
        _CERTIFICATE_ARN,
        "an ACM certificate ARN",
    )
    return DnsSettings(
        domain_name=domain, zone_name=zone, hosted_zone_id=zone_id, certificate_arn=certificate
    )


def _shift(context: Mapping[str, Any]) -> ShiftSettings:
    shift = ShiftSettings(
        enabled=parse_bool("shift_traffic", context["shift_traffic"]),
        target_weight=parse_int("traffic_weight", context["traffic_weight"], low=0, high=100),
        step=parse_int("shift_step", context["shift_step"], low=1, high=100),
        interval_seconds=parse_int("shift_interval", context["shift_interval"], low=0, high=3600),
    )
    if shift.enabled:
        validate_schedule(
            target_weight=shift.target_weight,
            step=shift.step,
            interval_seconds=shift.interval_seconds,
        )
    return shift


def _prod(context: Mapping[str, Any]) -> ProdSettings:
    min_tasks = parse_int("ecs_min_tasks", context["ecs_min_tasks"], low=2, high=20)
    max_tasks = parse_int("ecs_max_tasks", context["ecs_max_tasks"], low=2, high=20)
    if min_tasks > max_tasks:
        raise ConfigError(f"ecs_min_tasks={min_tasks} is above ecs_max_tasks={max_tasks}")
    node_type = str(context["redis_node_type"]).strip()
    if not _NODE_TYPE.match(node_type):
        raise ConfigError(
            f"redis_node_type={node_type!r} is not an ElastiCache node type (cache.<family>.<size>)"
        )
    node_count = parse_choice("redis_node_count", context["redis_node_count"], (3,))
    email = parse_text("alarm_email", context.get("alarm_email"), _EMAIL, "an e-mail address")
    return ProdSettings(
        min_tasks=min_tasks,
        max_tasks=max_tasks,
        redis_node_type=node_type,
        redis_node_count=node_count,
        alb_deletion_protection=parse_bool(
            "alb_deletion_protection", context["alb_deletion_protection"]
        ),
        alarm_email=email,
        migrate_data=parse_bool("migrate_data", context["migrate_data"]),
        copy_generation=parse_int(
            "copy_generation", context["copy_generation"], low=1, high=1_000_000
        ),
        shift=_shift(context),
        restore_drill=parse_text(
            "restore_drill",
            context["restore_drill"],
            _SNAPSHOT_NAME,
            "an ElastiCache snapshot name (a letter, then letters, digits and single hyphens)",
        ),
    )


def _stack_ids(flag: str, raw: Any) -> frozenset[str]:
    names = frozenset(part.strip() for part in str(raw).split(",") if part.strip())
    unknown = sorted(names - set(STACK_NAMES))
    if unknown:
        raise ConfigError(
            f"{flag}={raw} names no stack {unknown[0]!r}; use {' or '.join(STACK_NAMES)}"
            " (comma-separated for both)"
        )
    return names


def _refuse_a_revert_that_cannot_restore(settings: Settings) -> None:
    """Handing the boxes back copies production's DUMP payloads into the old Redis: refuse a
    cutover whose old Redis could never restore them, before anything is deployed."""
    if not (settings.prod_enabled and settings.prod.migrate_data):
        return
    production = CACHE_RELEASES[settings.cache_engine]
    old = CACHE_RELEASES[settings.cache_engine] if settings.zero_cost.separate_redis else BOX_REDIS
    if production.dump_format > old.dump_format:
        raise ConfigError(
            f"migrate_data=true cannot be rolled back here: handing the boxes back copies "
            f"{production.name} DUMP payloads into {old.name}, which cannot restore a newer "
            "DUMP format; keep separate_redis=true (the phase-2 cache on the same engine)"
        )


def load_settings(raw_context: Mapping[str, Any]) -> Settings:
    """Validate every flag; raise ConfigError with a one-line message on the first bad one."""
    reject_unknown(raw_context)
    context = {**DEFAULTS, **{k: v for k, v in raw_context.items() if k in DEFAULTS}}
    phase = parse_choice("phase", context["phase"], (1, 2, 3))
    region = parse_text(
        "region",
        context["region"],
        _REGION,
        "a commercial AWS region such as eu-west-1 (China and GovCloud are not supported)",
    )
    if not region:
        raise ConfigError("region='' is empty; set an AWS region such as us-east-1")
    settings = Settings(
        phase=phase,
        region=region,
        dns=_dns(context),
        zero_cost=_zero_cost(context, phase),
        prod=_prod(context),
        environment=str(context["environment"]).strip(),
        allow_teardown=_stack_ids("allow_teardown", context["allow_teardown"]),
        cache_auth_token=_stack_ids("cache_auth_token", context["cache_auth_token"]),
        cache_engine=parse_one_of("cache_engine", context["cache_engine"], CACHE_ENGINES),
        budgets=parse_bool("budgets", context["budgets"]),
        cost_anomaly_detection=parse_bool(
            "cost_anomaly_detection", context["cost_anomaly_detection"]
        ),
    )
    _refuse_flags_that_contradict(settings)
    return settings


def _refuse_flags_that_contradict(settings: Settings) -> None:
    if settings.cost_anomaly_detection and not settings.prod.alarm_email:
        raise ConfigError(
            "cost_anomaly_detection=true needs alarm_email: anomaly summaries go to an e-mail"
        )
    if settings.zero_cost.alb and not (settings.dns.certificate_arn or settings.dns.has_zone):
        raise ConfigError(
            "alb=true needs an HTTPS certificate: set certificate_arn, or hosted_zone_id and "
            "zone_name for a DNS-validated one"
        )
    if settings.prod_enabled and not settings.zero_cost.alb:
        raise ConfigError(
            "phase=3 needs alb=true: the box serves plain HTTP, so the weighted name would "
            "answer HTTPS on production and HTTP on the old entry"
        )
    _refuse_a_revert_that_cannot_restore(settings)
    if settings.prod.restore_drill and not settings.prod_enabled:
        raise ConfigError(
            f"restore_drill={settings.prod.restore_drill!r} restores a production snapshot into "
            "ProdStack; it needs phase=3"
        )
    if settings.prod_enabled and not settings.dns.has_zone:
        raise ConfigError(
            "phase=3 needs hosted_zone_id and zone_name: production is served by weighted "
            "records in that zone"
        )
