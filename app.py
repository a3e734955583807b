#!/usr/bin/env python3
"""The CDK app: both stacks, always; the committed environment file (overridden by `-c`)
decides what each contains."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import (
    ENVIRONMENTS_DIR,
    PROD_STACK,
    ZERO_COST_STACK,
    ConfigError,
    Settings,
    load_settings,
    with_environment,
)
from infra.stacks.prod_stack import ProdStack
from infra.stacks.zero_cost_stack import ZeroCostStack

# The kernel registers an emulator for foreign binaries here (binfmt_misc); Docker's arm64 build
# on an x86 host runs the image's RUN steps through it.
BINFMT_ARM64 = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
ARM64_BUILD_NOTE = (
    "note: ProdStack builds its image for linux/arm64; on this {machine} machine `cdk deploy` "
    "needs docker buildx and QEMU registered for arm64 (`docker run --privileged --rm "
    "tonistiigi/binfmt --install arm64`), or Docker fails at the image's first RUN step"
)


def arm64_build_note(settings: Settings, machine: str, binfmt: Path = BINFMT_ARM64) -> str | None:
    """One line for a deploy that will build the arm64 image on a host that cannot run it."""
    if not settings.prod_enabled or machine.lower() in {"aarch64", "arm64"} or binfmt.exists():
        return None
    return ARM64_BUILD_NOTE.format(machine=machine or "non-arm64")


def build(app: App, settings: Settings) -> tuple[ZeroCostStack, ProdStack]:
    env = Environment(region=settings.region)
    names = settings.names
    zero_cost = ZeroCostStack(
        app,
        ZERO_COST_STACK,
        stack_name=names.stack(ZERO_COST_STACK),
        settings=settings,
        env=env,
        description="ProStudio zero-cost topology: one burstable box, phase-2 increments",
        # It always holds the boxes and the Elastic IP: `cdk destroy` is refused until a deploy
        # confirmed with -c allow_teardown=ZeroCostStack lifts the protection.
        termination_protection=ZERO_COST_STACK not in settings.allow_teardown,
    )
    prod = ProdStack(
        app,
        PROD_STACK,
        stack_name=names.stack(PROD_STACK),
        settings=settings,
        env=env,
        description="ProStudio production: ALB, ECS Fargate, ElastiCache, migration",
        # At phase 3 `cdk destroy` would remove production: refused until a deploy confirmed
        # with -c allow_teardown=ProdStack lifts the protection.
        termination_protection=settings.prod_enabled and PROD_STACK not in settings.allow_teardown,
    )
    # ProdStack reads what ZeroCostStack writes (SSM parameters) and its record shares the
    # public name with ZeroCostStack's: deploy after it, destroy before it.
    prod.add_stack_dependency(zero_cost)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return zero_cost, prod


def main(environments: Path = ENVIRONMENTS_DIR, app: App | None = None) -> int:
    """Synthesize both stacks; 2 with one line on stderr for bad settings. `app` defaults to
    the one the CDK CLI describes in the environment (context, output folder)."""
    app = app or App()
    try:
        settings = load_settings(with_environment(app.node.get_all_context(), environments))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    examples = settings.dns.example_values
    if examples:
        shown = ", ".join(f"{flag}={value}" for flag, value in examples.items())
        refused = settings.zero_cost.alb or settings.prod_enabled
        outcome = "a deploy is refused" if refused else "no public name is published"
        print(
            f"warning: example DNS values in use ({shown}); {outcome} until "
            f"environments/{settings.environment}.json holds yours",
            file=sys.stderr,
        )
    note = arm64_build_note(settings, platform.machine())
    if note:
        print(note, file=sys.stderr)
    build(app, settings)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
