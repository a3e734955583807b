#!/usr/bin/env python3
"""The CDK app: both stacks, always; flags decide what each contains."""

from __future__ import annotations

import sys

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import ConfigError, Settings, load_settings
from infra.stacks.prod_stack import ProdStack
from infra.stacks.zero_cost_stack import ZeroCostStack


def build(app: App, settings: Settings) -> tuple[ZeroCostStack, ProdStack]:
    env = Environment(region=settings.region)
    zero_cost = ZeroCostStack(
        app,
        "ZeroCostStack",
        settings=settings,
        env=env,
        description="ProStudio zero-cost topology: one burstable box, phase-2 increments",
    )
    prod = ProdStack(
        app,
        "ProdStack",
        settings=settings,
        env=env,
        description="ProStudio production: ALB, ECS Fargate, ElastiCache, migration",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return zero_cost, prod


def main() -> int:
    app = App()
    try:
        settings = load_settings(app.node.get_all_context())
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    build(app, settings)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
