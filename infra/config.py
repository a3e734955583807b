"""Turns CDK context into typed, validated, frozen settings.

This is the only module that interprets context. `app.py` hands it the raw context
mapping; stacks and constructs receive the dataclasses below and never read context
or the environment themselves. Values given with `-c` arrive as strings, so every
flag is parsed here ("false" is a string, and a truthy one).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A context value that cannot be used; the message is one line for the operator."""


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_DOMAIN_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_LABEL}\.)+[a-z]{{2,63}}$")
_REGION = re.compile(r"^[a-z]{2}(?:-gov)?-[a-z]+-\d$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
# One hour is CloudFormation's ceiling for a custom resource; the shift keeps a margin.
CUSTOM_RESOURCE_LIMIT_SECONDS = 3600
SHIFT_MARGIN_SECONDS = 300
# Per step the shift waits up to this long for Route53 to report INSYNC (a rising step still
# pending then is rolled back), and each phase is noticed up to one poll late. Kept equal to
# SYNC_TIMEOUT_SECONDS and POLL_SECONDS in runtime/traffic_shift/shift_engine.py.
SHIFT_SYNC_SECONDS = 60
SHIFT_POLL_SECONDS = 10


def parse_bool(flag: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{flag}={raw!r} is not a boolean; use true/false (or 1/0)")


def parse_int(flag: str, raw: Any, *, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise ConfigError(f"{flag}={raw!r} is not a whole number; allowed: {low}..{high}")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{flag}={raw!r} is not a whole number; allowed: {low}..{high}") from None
    if not low <= value <= high:
        raise ConfigError(f"{flag}={value} is out of range; allowed: {low}..{high}")
    return value


def parse_choice(flag: str, raw: Any, choices: tuple[int, ...]) -> int:
    allowed = ", ".join(str(c) for c in choices)
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{flag}={raw!r} is not allowed; use one of {allowed}") from None
    if value not in choices:
        raise ConfigError(f"{flag}={value} is not allowed; use one of {allowed}")
    return value


def parse_text(flag: str, raw: Any, pattern: re.Pattern[str], meaning: str) -> str:
    text = "" if raw is None else str(raw).strip()
    if text and not pattern.match(text):
        raise ConfigError(f"{flag}={text!r} is not {meaning}")
    return text


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


@dataclass(frozen=True)
class ZeroCostSettings:
    """The free-tier topology and its phase-2 increments."""

    separate_redis: bool
    alb: bool
    instances: int
    redis_node_type: str = "cache.t3.micro"
    instance_type: str = "t2.micro"
    api_workers: int = 2
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
        """The longest walk to this target (from the farther end of 0..100): every step waits
        for Route53 to apply it, soaks, and is noticed up to a poll late in both phases."""
        distance = max(self.target_weight, 100 - self.target_weight)
        steps = -(-distance // self.step)
        return steps * (self.interval_seconds + SHIFT_SYNC_SECONDS + 2 * SHIFT_POLL_SECONDS)


@dataclass(frozen=True)
class ProdSettings:
    """The production topology (built when phase is 3)."""

    task_count: int
    min_tasks: int
    max_tasks: int
    redis_node_type: str
    redis_node_count: int
    alb_deletion_protection: bool
    alarm_email: str
    migrate_data: bool
    copy_generation: int
    copy_policy: str
    shift: ShiftSettings
    api_workers: int = 4
    max_memory_mb: int = 3072


@dataclass(frozen=True)
class Settings:
    phase: int
    region: str
    dns: DnsSettings
    zero_cost: ZeroCostSettings
    prod: ProdSettings
    budgets: bool = True
    cost_anomaly_detection: bool = False

    @property
    def prod_enabled(self) -> bool:
        return self.phase >= 3


# Every flag this app understands, with its default. cdk.json carries the same defaults
# so `cdk context` shows them; a flag missing from both falls back to these.
DEFAULTS: dict[str, Any] = {
    "phase": 1,
    "region": "us-east-1",
    "separate_redis": "auto",
    "alb": "auto",
    "instances": "auto",
    "domain_name": "api.prostudio.example.com",
    "zone_name": "prostudio.example.com",
    "hosted_zone_id": "Z0000000000EXAMPLE",
    "certificate_arn": "",
    "ecs_task_count": 3,
    "ecs_min_tasks": 2,
    "ecs_max_tasks": 20,
    "redis_node_type": "cache.r7g.large",
    "redis_node_count": 3,
    "alb_deletion_protection": False,
    "alarm_email": "",
    "migrate_data": False,
    "copy_generation": 1,
    "copy_policy": "fail",
    "shift_traffic": False,
    "traffic_weight": 100,
    "shift_step": 10,
    "shift_interval": 240,
    "budgets": True,
    "cost_anomaly_detection": False,
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_NODE_TYPE = re.compile(r"^cache\.[a-z0-9]+\.[a-z0-9]+$")


def _is_foreign_key(key: str) -> bool:
    """CDK and the CLI put their own keys in context; they are namespaced or camelCase."""
    return any(mark in key for mark in (":", "@", "/")) or key != key.lower()


def _reject_unknown(context: Mapping[str, Any]) -> None:
    for key in sorted(context):
        if key in DEFAULTS or _is_foreign_key(key):
            continue
        close = difflib.get_close_matches(key, DEFAULTS, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known flags: {', '.join(DEFAULTS)}"
        raise ConfigError(f"unknown flag {key}={context[key]!r}; {hint}")


def _optional(context: Mapping[str, Any], key: str, parse: Callable[[Any], T], default: T) -> T:
    raw = context.get(key)
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in {"", "auto"}):
        return default
    return parse(raw)


def _zero_cost(context: Mapping[str, Any], phase: int) -> ZeroCostSettings:
    phase_two = phase >= 2
    separate_redis = _optional(
        context, "separate_redis", lambda v: parse_bool("separate_redis", v), phase_two
    )
    alb = _optional(context, "alb", lambda v: parse_bool("alb", v), phase_two)
    instances = _optional(
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
    return ZeroCostSettings(separate_redis=separate_redis, alb=alb, instances=instances)


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
    if 100 % shift.step:
        raise ConfigError(f"shift_step={shift.step} does not divide 100; use 5, 10, 20, 25 or 50")
    if shift.target_weight % shift.step:
        raise ConfigError(
            f"traffic_weight={shift.target_weight} is not a multiple of shift_step={shift.step}; "
            "the walk moves in whole steps"
        )
    budget = CUSTOM_RESOURCE_LIMIT_SECONDS - SHIFT_MARGIN_SECONDS
    if shift.enabled and shift.worst_case_seconds > budget:
        raise ConfigError(
            f"shift_step={shift.step} with shift_interval={shift.interval_seconds} needs up to "
            f"{shift.worst_case_seconds}s, over CloudFormation's one-hour custom-resource limit "
            f"({budget}s with margin); use a bigger shift_step, a shorter shift_interval, "
            "or walk in stages with an intermediate traffic_weight"
        )
    return shift


COPY_POLICIES = ("fail", "skip", "replace")


def _copy_policy(raw: Any) -> str:
    policy = str(raw).strip().lower()
    if policy not in COPY_POLICIES:
        raise ConfigError(
            f"copy_policy={raw!r} is not allowed; use fail (target must be empty), skip (keep "
            "keys the target has) or replace (overwrite them)"
        )
    return policy


def _prod(context: Mapping[str, Any]) -> ProdSettings:
    min_tasks = parse_int("ecs_min_tasks", context["ecs_min_tasks"], low=2, high=20)
    max_tasks = parse_int("ecs_max_tasks", context["ecs_max_tasks"], low=2, high=20)
    if min_tasks > max_tasks:
        raise ConfigError(f"ecs_min_tasks={min_tasks} is above ecs_max_tasks={max_tasks}")
    task_count = parse_int("ecs_task_count", context["ecs_task_count"], low=2, high=20)
    if not min_tasks <= task_count <= max_tasks:
        raise ConfigError(
            f"ecs_task_count={task_count} is outside ecs_min_tasks..ecs_max_tasks "
            f"({min_tasks}..{max_tasks})"
        )
    node_type = str(context["redis_node_type"]).strip()
    if not _NODE_TYPE.match(node_type):
        raise ConfigError(
            f"redis_node_type={node_type!r} is not an ElastiCache node type (cache.<family>.<size>)"
        )
    node_count = parse_choice("redis_node_count", context["redis_node_count"], (3,))
    email = parse_text("alarm_email", context.get("alarm_email"), _EMAIL, "an e-mail address")
    return ProdSettings(
        task_count=task_count,
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
        copy_policy=_copy_policy(context["copy_policy"]),
        shift=_shift(context),
    )


def load_settings(raw_context: Mapping[str, Any]) -> Settings:
    """Validate every flag; raise ConfigError with a one-line message on the first bad one."""
    _reject_unknown(raw_context)
    context = {**DEFAULTS, **{k: v for k, v in raw_context.items() if k in DEFAULTS}}
    phase = parse_choice("phase", context["phase"], (1, 2, 3))
    region = parse_text("region", context["region"], _REGION, "an AWS region such as us-east-1")
    if not region:
        raise ConfigError("region='' is empty; set an AWS region such as us-east-1")
    settings = Settings(
        phase=phase,
        region=region,
        dns=_dns(context),
        zero_cost=_zero_cost(context, phase),
        prod=_prod(context),
        budgets=parse_bool("budgets", context["budgets"]),
        cost_anomaly_detection=parse_bool(
            "cost_anomaly_detection", context["cost_anomaly_detection"]
        ),
    )
    if settings.cost_anomaly_detection and not settings.prod.alarm_email:
        raise ConfigError(
            "cost_anomaly_detection=true needs alarm_email: anomaly summaries go to an e-mail"
        )
    if settings.zero_cost.alb and not (settings.dns.certificate_arn or settings.dns.has_zone):
        raise ConfigError(
            "alb=true needs an HTTPS certificate: set certificate_arn, or hosted_zone_id and "
            "zone_name for a DNS-validated one"
        )
    if settings.prod_enabled and not settings.dns.has_zone:
        raise ConfigError(
            "phase=3 needs hosted_zone_id and zone_name: production is served by weighted "
            "records in that zone"
        )
    return settings
