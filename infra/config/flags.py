"""Every flag this app understands, with its default, and the flags it no longer reads.

The one home of the defaults (cdk.json holds only CDK's own keys). The committed environment
file overrides them, `-c` overrides both (infra.config.environments.with_environment).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from infra.config.cdk_keys import is_cdk_key
from infra.config.parsing import ConfigError

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
    "ecs_min_tasks": 2,
    "ecs_max_tasks": 20,
    "redis_node_type": "cache.r7g.large",
    "redis_node_count": 3,
    "alb_deletion_protection": False,
    "alarm_email": "",
    "migrate_data": False,
    "copy_generation": 1,
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
# Flags this app no longer reads, and what took their place: refused, never silently ignored.
RETIRED_FLAGS = {
    "copy_policy": "the deploy-time cutover fixes its own (an empty production Redis going "
    "forward, replace on the way back); the manual copy takes migrate-redis --policy",
    "ecs_task_count": "ecs_min_tasks and ecs_max_tasks bound the autoscaling, which raises a new "
    "service to ecs_min_tasks",
}
# One-off confirmations: they belong on the command line of the deploy they confirm.
COMMAND_LINE_ONLY = ("allow_teardown", "environment")


def reject_unknown(context: Mapping[str, Any]) -> None:
    """ConfigError for the first key that is neither a flag nor CDK's own: a retired flag
    names what replaced it, a mistyped one the flag it resembles."""
    for key in sorted(context):
        if key in DEFAULTS or is_cdk_key(key):
            continue
        if key in RETIRED_FLAGS:
            raise ConfigError(f"{key} is gone: {RETIRED_FLAGS[key]}; remove it")
        by_case = {flag.lower().replace("_", ""): flag for flag in DEFAULTS}
        folded = key.lower().replace("_", "").replace("-", "")
        close = [by_case[folded]] if folded in by_case else []
        close = close or difflib.get_close_matches(key.lower(), DEFAULTS, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known flags: {', '.join(DEFAULTS)}"
        raise ConfigError(f"unknown flag {key}={context[key]}; {hint}")
