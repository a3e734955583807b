"""Turns CDK context into typed, validated, frozen settings.

This is the only module that interprets context. `app.py` lays the raw context over the
committed environment file (`with_environment`) and hands the mapping to `load_settings`, a
pure function of it; stacks and constructs receive the dataclasses below and never read
context or the environment themselves. Values given with `-c` arrive as strings, so every
flag is parsed here ("false" is a string, and a truthy one).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from infra.parameters import Names
from runtime.common.copy_rules import COPY_POLICIES

T = TypeVar("T")


class ConfigError(ValueError):
    """A context value that cannot be used; the message is one line for the operator."""


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_DOMAIN_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?:{_DOMAIN_LABEL}\.)+[a-z]{{2,63}}$")
# Commercial-partition regions only: the stacks name `arn:aws:` resources and AWS's free tier.
_REGION = re.compile(r"^(?!cn-)[a-z]{2}-[a-z]+-\d$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
# RFC 2606 / RFC 6761 names reserved for documentation, and the placeholder zone id.
_EXAMPLE_SUFFIXES = ("example.com", "example.net", "example.org", "example", "test", "invalid")
_EXAMPLE_ZONE_ID = re.compile("EXAMPLE")
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
# One hour is CloudFormation's ceiling for a custom resource; the shift keeps a margin.
CUSTOM_RESOURCE_LIMIT_SECONDS = 3600
SHIFT_MARGIN_SECONDS = 300
# Per step the shift waits up to this long for Route53 to report INSYNC (a rising step still
# pending then is rolled back), and each phase is noticed up to one poll late. Kept equal to
# SYNC_TIMEOUT_SECONDS and POLL_SECONDS in runtime/traffic_shift/shift_engine.py.
SHIFT_SYNC_SECONDS = 60
SHIFT_POLL_SECONDS = 10
# "Everything back to old" from any weight: one Route53 change (the walk toward old takes the
# whole distance in one step and never soaks), its INSYNC, and a poll late on each side.
ROLLBACK_SECONDS = SHIFT_SYNC_SECONDS + 2 * SHIFT_POLL_SECONDS


def _is_example_name(name: str) -> bool:
    return any(name == suffix or name.endswith("." + suffix) for suffix in _EXAMPLE_SUFFIXES)


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
        """The longest deploy-time walk to this target. Toward new (from 0 at worst) every step
        waits for Route53 to apply it, soaks, and is noticed up to a poll late in both phases.
        Toward old (from 100 at worst) the walk is one change with no soak: ROLLBACK_SECONDS."""
        steps = -(-self.target_weight // self.step)
        rising = steps * (self.interval_seconds + SHIFT_SYNC_SECONDS + 2 * SHIFT_POLL_SECONDS)
        return max(rising, ROLLBACK_SECONDS)


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


# Every flag this app understands, with its default: the one home of the defaults (cdk.json
# holds only CDK's own keys). The committed environment file overrides them, `-c` overrides
# both (see with_environment).
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
    "restore_drill": "",
    "shift_traffic": False,
    "traffic_weight": 100,
    "shift_step": 10,
    "shift_interval": 240,
    "environment": "production",
    "allow_teardown": "",
    "cache_auth_token": "",
    "instance_type": "t3.micro",
    "cache_engine": "valkey",
    "budgets": True,
    "cost_anomaly_detection": False,
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_NODE_TYPE = re.compile(r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
# ElastiCache snapshot names: a letter first, letters, digits and single hyphens, no final one.
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z](?:-?[A-Za-z0-9]){0,254}$")


# CDK's own context keys, named rather than guessed: the CLI and cx-api put `aws:cdk:*`
# keys in context, cdk.json holds `@aws-cdk/*` feature flags, cdk.context.json holds the CLI's
# own settings and one cached result per lookup (`<provider>:account=...:region=...`).
CDK_KEY_PREFIXES = ("aws:cdk:", "@aws-cdk/", "@aws-cdk-containers/")
CDK_KEYS = frozenset({"acknowledged-issue-numbers", "cli-telemetry"})
CDK_LOOKUP_PROVIDERS = (
    "ami",
    "availability-zones",
    "cc-api-provider",
    "endpoint-service-availability-zones",
    "hosted-zone",
    "key-provider",
    "load-balancer",
    "load-balancer-listener",
    "plugin",
    "security-group",
    "ssm",
    "vpc-provider",
)


def is_cdk_key(key: str) -> bool:
    """A key CDK itself puts in context (matched exactly, case-sensitively)."""
    return (
        key in CDK_KEYS
        or key.startswith(CDK_KEY_PREFIXES)
        or any(key.startswith(f"{provider}:") for provider in CDK_LOOKUP_PROVIDERS)
    )


def _reject_unknown(context: Mapping[str, Any]) -> None:
    for key in sorted(context):
        if key in DEFAULTS or is_cdk_key(key):
            continue
        by_case = {flag.lower().replace("_", ""): flag for flag in DEFAULTS}
        folded = key.lower().replace("_", "").replace("-", "")
        close = [by_case[folded]] if folded in by_case else []
        close = close or difflib.get_close_matches(key.lower(), DEFAULTS, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known flags: {', '.join(DEFAULTS)}"
        raise ConfigError(f"unknown flag {key}={context[key]}; {hint}")


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
    return ZeroCostSettings(
        separate_redis=separate_redis,
        alb=alb,
        instances=instances,
        instance_type=_choice("instance_type", context["instance_type"], BOX_INSTANCE_TYPES),
    )


# Burstable types the box runs on: the Free Plan (accounts from 2025-07-15) launches t3/t4g
# micro and small only; t2.micro is free on legacy accounts alone.
BOX_INSTANCE_TYPES = ("t3.micro", "t3.small", "t4g.micro", "t4g.small", "t2.micro")
CACHE_ENGINES = ("valkey", "redis")


@dataclass(frozen=True)
class RedisRelease:
    """A Redis a copy restores into: its name and the DUMP (RDB) format version it writes. A
    server restores payloads of its own format or older, never newer."""

    name: str
    dump_format: int


# The box's Redis is AL2023's redis6; the caches' versions are redis_cluster.ENGINES' (a test
# keeps them equal).
BOX_REDIS = RedisRelease("the box's Redis 6.2", 9)
CACHE_RELEASES = {
    "redis": RedisRelease("ElastiCache Redis OSS 7.1", 10),
    "valkey": RedisRelease("ElastiCache Valkey 8.2", 11),
}


def _choice(flag: str, raw: Any, choices: tuple[str, ...]) -> str:
    value = str(raw).strip().lower()
    if value not in choices:
        raise ConfigError(f"{flag}={raw!r} is not allowed; use one of {', '.join(choices)}")
    return value


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


def validate_schedule(*, target_weight: int, step: int, interval_seconds: int) -> int:
    """The one home of the deploy-time schedule rule: the walk lands on `target_weight` in whole
    steps and fits CloudFormation's hour. Returns its worst case in seconds; ConfigError if not."""
    if not 0 <= target_weight <= 100:
        raise ConfigError(f"traffic_weight={target_weight} is out of range; allowed: 0..100")
    if not 1 <= step <= 100 or 100 % step:
        raise ConfigError(f"shift_step={step} does not divide 100; use 5, 10, 20, 25 or 50")
    if target_weight % step:
        raise ConfigError(
            f"traffic_weight={target_weight} is not a multiple of shift_step={step}; "
            "the walk moves in whole steps"
        )
    if interval_seconds < 0:
        raise ConfigError(f"shift_interval={interval_seconds} is negative")
    worst = ShiftSettings(
        enabled=True, target_weight=target_weight, step=step, interval_seconds=interval_seconds
    ).worst_case_seconds
    budget = CUSTOM_RESOURCE_LIMIT_SECONDS - SHIFT_MARGIN_SECONDS
    if worst > budget:
        raise ConfigError(
            f"shift_step={step} with shift_interval={interval_seconds} needs up to {worst}s, "
            f"over CloudFormation's one-hour custom-resource limit ({budget}s with margin); "
            "use a bigger shift_step, a shorter shift_interval, or walk in stages with an "
            "intermediate traffic_weight (e.g. 50, then 100)"
        )
    return worst


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
        restore_drill=parse_text(
            "restore_drill",
            context["restore_drill"],
            _SNAPSHOT_NAME,
            "an ElastiCache snapshot name (a letter, then letters, digits and single hyphens)",
        ),
    )


ZERO_COST_STACK = "ZeroCostStack"
PROD_STACK = "ProdStack"
STACK_NAMES = (ZERO_COST_STACK, PROD_STACK)
ENVIRONMENTS_DIR = Path(__file__).resolve().parents[1] / "environments"
_ENVIRONMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# One-off confirmations: they belong on the command line of the deploy they confirm.
_COMMAND_LINE_ONLY = ("allow_teardown", "environment")


def environment_file(name: str, directory: Path = ENVIRONMENTS_DIR) -> Path:
    if not _ENVIRONMENT_NAME.match(name):
        raise ConfigError(f"environment={name!r} is not a name such as production or staging")
    return directory / f"{name}.json"


def with_environment(
    context: Mapping[str, Any], directory: Path = ENVIRONMENTS_DIR
) -> dict[str, Any]:
    """The committed environment file's flags under `context` (`-c` wins): what the app loads.

    The environment is `-c environment=NAME` (default production): environments/NAME.json.
    """
    name = str(context.get("environment", DEFAULTS["environment"])).strip()
    path = environment_file(name, directory)
    shown = f"{path.parent.name}/{path.name}"
    try:
        committed = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"environment={name}: {shown} does not exist; copy environments/production.json"
        ) from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{shown} is not readable JSON: {error}") from None
    if not isinstance(committed, dict):
        raise ConfigError(f"{shown} must hold one JSON object of flags")
    for key in committed:
        if key in _COMMAND_LINE_ONLY:
            raise ConfigError(
                f"{shown} sets {key}; pass it with -c for one deploy, never commit it"
            )
    try:
        _reject_unknown({key: value for key, value in committed.items() if not is_cdk_key(key)})
    except ConfigError as error:
        raise ConfigError(f"{shown}: {error}") from None
    merged = {**committed, **context, "environment": name}
    _refuse_a_shared_public_name(name, merged, directory)
    return merged


def _refuse_a_shared_public_name(name: str, context: Mapping[str, Any], directory: Path) -> None:
    """Each environment's weighted records are its public name's: two environments serving one
    name would overwrite each other's records (same name, type and set identifiers)."""
    domain = str(context.get("domain_name", DEFAULTS["domain_name"])).strip()
    for other in sorted(directory.glob("*.json")):
        if other.stem == name:
            continue
        try:
            committed = json.loads(other.read_text())
        except (OSError, ValueError):
            continue
        theirs = (
            committed.get("domain_name", DEFAULTS["domain_name"])
            if isinstance(committed, dict)
            else None
        )
        if str(theirs).strip() == domain:
            raise ConfigError(
                f"environment={name}: domain_name={domain} is also {other.parent.name}/"
                f"{other.name}'s; give each environment its own public name"
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


def _allow_teardown(raw: Any) -> frozenset[str]:
    return _stack_ids("allow_teardown", raw)


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
    _reject_unknown(raw_context)
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
        allow_teardown=_allow_teardown(context["allow_teardown"]),
        cache_auth_token=_stack_ids("cache_auth_token", context["cache_auth_token"]),
        cache_engine=_choice("cache_engine", context["cache_engine"], CACHE_ENGINES),
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
    return settings
