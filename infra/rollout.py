"""The documented rollout, written once: every step from a new account to production and back.

docs/runbook.md shows this sequence (its "rollout" section is generated from it:
`scripts/rollout_doc.py --write`), and tests/rollout walks it offline: at each step both stacks
are synthesized with the committed flags the step leaves, deployed in the step's order, and
judged (parameters, the public name at every moment, stateful resources, the guard).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.config import PROD_STACK, STACK_NAMES, ZERO_COST_STACK

ENVIRONMENT_FILE = "environments/production.json"
# The operator's own zone: the example values in the walk; the docs say to put yours.
ZONE = {
    "zone_name": "prostudio.io",
    "domain_name": "api.prostudio.io",
    "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
}
BEGIN_MARKER = "<!-- rollout:begin -->"
END_MARKER = "<!-- rollout:end -->"


@dataclass(frozen=True)
class Bootstrap:
    """`cdk bootstrap`: the assets bucket, the roles and /cdk-bootstrap/<qualifier>/version."""

    @property
    def command(self) -> str:
        return "npx cdk bootstrap"


@dataclass(frozen=True)
class Deploy:
    """One `cdk deploy` of these stacks (CDK deploys them in dependency order)."""

    stacks: tuple[str, ...]
    allow_teardown: tuple[str, ...] = ()

    @property
    def command(self) -> str:
        named = "--all" if set(self.stacks) == set(STACK_NAMES) else " ".join(self.stacks)
        confirm = (
            f" -c allow_teardown={','.join(self.allow_teardown)}" if self.allow_teardown else ""
        )
        return f"npx cdk deploy {named}{confirm}"


@dataclass(frozen=True)
class Destroy:
    """`cdk destroy` of these stacks (CDK destroys dependents first)."""

    stacks: tuple[str, ...]

    @property
    def command(self) -> str:
        named = "--all" if set(self.stacks) == set(STACK_NAMES) else " ".join(self.stacks)
        return f"npx cdk destroy {named} --force"


Command = Bootstrap | Deploy | Destroy


@dataclass(frozen=True)
class Step:
    title: str
    # Flags the step commits to the environment file; None removes one (back to its default).
    commit: Mapping[str, Any]
    commands: tuple[Command, ...]
    what_happens: str
    # Per stack, the logical-ID prefixes of the stateful resources the step deletes or
    # replaces on purpose (each needs the step's allow_teardown).
    tears_down: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Whether the public name is served once the step is done.
    serves_name: bool = True


BOTH = (ZERO_COST_STACK, PROD_STACK)
ZERO_COST = (ZERO_COST_STACK,)
PROD = (PROD_STACK,)

STEPS: tuple[Step, ...] = (
    Step(
        "Bootstrap the account",
        {},
        (Bootstrap(),),
        "Once per account and region: the CDK's assets bucket, roles and version parameter.",
        serves_name=False,
    ),
    Step(
        "First deploy: the box",
        {},
        (Deploy(ZERO_COST),),
        "The committed defaults, no flag: one box serving HTTP on its Elastic IP. With the "
        "repository's example zone no public name is published yet.",
        serves_name=False,
    ),
    Step(
        "Serve your name",
        ZONE,
        (Deploy(ZERO_COST),),
        'Your zone and name (the values here are examples): the weighted record "old" '
        "points the name at the box's Elastic IP.",
    ),
    Step(
        "Redis on ElastiCache: on",
        {"separate_redis": True},
        (Deploy(ZERO_COST),),
        "A one-node cache with TLS and AUTH; the box switches to it in place.",
    ),
    Step(
        "Redis on ElastiCache: off",
        {"separate_redis": None},
        (Deploy(ZERO_COST, allow_teardown=ZERO_COST),),
        "The box goes back to its own Redis (starting cold); the cache group is deleted with "
        "a final snapshot. Without the confirmation the guard refuses the deploy.",
        tears_down={ZERO_COST_STACK: ("CacheReplicationGroup",)},
    ),
    Step(
        "HTTPS ALB: on",
        {"alb": True},
        (Deploy(ZERO_COST),),
        'The ALB is created, then the "old" record moves to it, and only then, in the '
        "deploy's cleanup, is the box's port 80 closed to all but the ALB.",
    ),
    Step(
        "HTTPS ALB: off",
        {"alb": None},
        (Deploy(ZERO_COST),),
        'The box\'s port 80 opens to the internet, then the "old" record moves back to the '
        "Elastic IP, and only then, in the cleanup, is the ALB deleted.",
    ),
    Step(
        "Phase 2: every increment on",
        {"phase": 2},
        (Deploy(ZERO_COST),),
        "The cache, the ALB and a second box in the second AZ (box 1 is never replaced).",
    ),
    Step(
        "Second box: off",
        {"instances": 1},
        (Deploy(ZERO_COST, allow_teardown=ZERO_COST),),
        "Box 2 is terminated; box 1 keeps serving behind the ALB.",
        tears_down={ZERO_COST_STACK: ("WebBox2",)},
    ),
    Step(
        "Second box: on",
        {"instances": None},
        (Deploy(ZERO_COST),),
        "Box 2 comes back in the second AZ.",
    ),
    Step(
        "Production at weight 0",
        {"phase": 3},
        (Deploy(BOTH),),
        "ZeroCostStack first (nothing changes there), then ProdStack: ALB, Fargate, the "
        'three-node cache and the "new" record at weight 0.',
    ),
    Step(
        "Move the boxes onto production's cache",
        {"migrate_data": True},
        (Deploy(PROD),),
        "The boxes follow the old Redis into production, switch one by one, drain and "
        "verify (docs/redis-copy.md).",
    ),
    Step(
        "Shift half the traffic",
        {"shift_traffic": True, "traffic_weight": 50},
        (Deploy(PROD),),
        "Health-gated steps of 10 points towards 50 (docs/traffic-shift.md).",
    ),
    Step(
        "Shift all the traffic",
        {"traffic_weight": 100},
        (Deploy(PROD),),
        "The rest of the way, gated the same way.",
    ),
    Step(
        "Roll back to 0",
        {"traffic_weight": 0},
        (Deploy(PROD),),
        'All traffic back on "old" in one Route53 change, no soak, no gates.',
    ),
    Step(
        "Hand the boxes back",
        {"migrate_data": False},
        (Deploy(PROD),),
        "Production's data follows back into the old Redis, the boxes switch back, drain and "
        "verify; no write made on production is lost.",
    ),
    Step(
        "Phase 2: production removed",
        {"phase": 2, "shift_traffic": False, "traffic_weight": None, "migrate_data": None},
        (Deploy(BOTH, allow_teardown=PROD),),
        'Production is removed (its cache with a final snapshot); the "old" record in '
        "ZeroCostStack is untouched. Without the confirmation the guard refuses the deploy.",
        tears_down={PROD_STACK: ("CacheReplicationGroup", "DnsNewRecord")},
    ),
    Step(
        "Destroy",
        {},
        (Deploy(BOTH, allow_teardown=BOTH), Destroy(BOTH)),
        "The confirmed deploy lifts termination protection (nothing else changes), then both "
        "stacks go, ProdStack first. The Elastic IP, the caches' final snapshots and the "
        "retained keys and buckets stay until you delete them.",
        serves_name=False,
    ),
)


def committed_after(index: int) -> dict[str, Any]:
    """The environment file's flags once steps 0..index are committed."""
    flags: dict[str, Any] = {}
    for step in STEPS[: index + 1]:
        for key, value in step.commit.items():
            if value is None:
                flags.pop(key, None)
            else:
                flags[key] = value
    return flags


def _shown(commit: Mapping[str, Any]) -> str:
    parts = [
        f"remove `{key}`" if value is None else f"`{json.dumps(key)}: {json.dumps(value)}`"
        for key, value in commit.items()
    ]
    return ", ".join(parts)


def markdown() -> str:
    """The runbook's rollout section (between the markers), one numbered step per Step."""
    lines = [
        BEGIN_MARKER,
        "<!-- Generated from infra/rollout.py by scripts/rollout_doc.py --write; "
        "tests/rollout walks the same steps. Edit the data, not this text. -->",
        "",
        f"Each step: change `{ENVIRONMENT_FILE}` as shown, commit it, run the command(s).",
        "",
    ]
    for number, step in enumerate(STEPS, start=1):
        lines.append(f"{number}. **{step.title}.** {step.what_happens}")
        if step.commit:
            lines.append(f"   - In `{ENVIRONMENT_FILE}`: {_shown(step.commit)}.")
        for order, command in enumerate(step.commands):
            lines.append(f"   - {'Then run' if order else 'Run'} `{command.command}`")
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n"
