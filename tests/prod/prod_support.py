"""ProdStack test helpers: the flag sets its tests share, each synthesized once per process."""

from __future__ import annotations

from typing import Any

from synth_support import resources_of_type, synthesize

PHASE3 = {"phase": "3"}
# Every production flag away from its default, one box behind the zero-cost ALB, and the
# other cache engine.
PHASE3_VARIANT = {
    "phase": "3",
    "instances": "1",
    "cache_engine": "redis",
    "ecs_min_tasks": "3",
    "ecs_max_tasks": "12",
    "redis_node_type": "cache.r7g.xlarge",
    "alb_deletion_protection": "true",
    "alarm_email": "ops@example.com",
}


def prod_template(flags: dict[str, str]) -> dict[str, Any]:
    synthesis = synthesize(**flags)
    assert synthesis.error is None, synthesis.error
    return synthesis.template("ProdStack")


def only(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    """The single resource of this type: (logical id, its Properties)."""
    ((logical_id, resource),) = resources_of_type(template, resource_type).items()
    return logical_id, resource.get("Properties", {})


# The two migration increments on, with their default pace.
PHASE3_MIGRATION = {"phase": "3", "migrate_data": "true", "shift_traffic": "true"}
