"""The one home of the deploy-time traffic shift's schedule rule: the walk lands on its target
in whole steps and fits CloudFormation's hour for a custom resource."""

from __future__ import annotations

from infra.config.parsing import ConfigError
from runtime.common.shift_rules import POLL_SECONDS, SYNC_TIMEOUT_SECONDS

# One hour is CloudFormation's ceiling for a custom resource; the shift keeps a margin.
CUSTOM_RESOURCE_LIMIT_SECONDS = 3600
SHIFT_MARGIN_SECONDS = 300
# "Everything back to old" from any weight: one Route53 change (the walk toward old takes the
# whole distance in one step and never soaks), its INSYNC, and a poll late on each side.
ROLLBACK_SECONDS = SYNC_TIMEOUT_SECONDS + 2 * POLL_SECONDS


def worst_case_seconds(*, target_weight: int, step: int, interval_seconds: int) -> int:
    """The longest deploy-time walk to this target. Toward new (from 0 at worst) every step
    waits for Route53 to apply it, soaks, and is noticed up to a poll late in both phases.
    Toward old (from 100 at worst) the walk is one change with no soak: ROLLBACK_SECONDS."""
    steps = -(-target_weight // step)
    rising = steps * (interval_seconds + SYNC_TIMEOUT_SECONDS + 2 * POLL_SECONDS)
    return max(rising, ROLLBACK_SECONDS)


def validate_schedule(*, target_weight: int, step: int, interval_seconds: int) -> int:
    """Returns the schedule's worst case in seconds; ConfigError if it breaks the rule."""
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
    worst = worst_case_seconds(
        target_weight=target_weight, step=step, interval_seconds=interval_seconds
    )
    budget = CUSTOM_RESOURCE_LIMIT_SECONDS - SHIFT_MARGIN_SECONDS
    if worst > budget:
        raise ConfigError(
            f"shift_step={step} with shift_interval={interval_seconds} needs up to {worst}s, "
            f"over CloudFormation's one-hour custom-resource limit ({budget}s with margin); "
            "use a bigger shift_step, a shorter shift_interval, or walk in stages with an "
            "intermediate traffic_weight (e.g. 50, then 100)"
        )
    return worst
