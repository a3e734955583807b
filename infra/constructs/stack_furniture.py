"""What each of an environment's stacks carries besides its topology: the public zone it
publishes into, the guard against the repository's example DNS values, the environment's
budget and cost-anomaly alerts, the parameter recording the deployed phase, and the teardown
guard, built last.

Build it as `StackFurniture(stack, FURNITURE_ID, ...)` first (the topology needs its zone) and
call `finish` once the topology stands: every resource built before the teardown guard waits
for it.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import Settings
from infra.constructs.budgets import CostAnomalyDetection, EnvironmentBudget, environment_cost
from infra.constructs.deploy_guards import ExampleValuesGuard, TeardownGuard
from infra.constructs.weighted_dns import public_zone

# CDK leaves a construct named "Default" out of its children's logical IDs: the guards, the
# budget and the phase parameter keep the IDs they had when each stack built them itself.
FURNITURE_ID = "Default"


class StackFurniture(Construct):
    def __init__(self, scope: Construct, id_: str, *, settings: Settings) -> None:
        super().__init__(scope, id_)
        self._settings = settings
        self.zone: route53.IHostedZone | None = (
            public_zone(self, settings.dns) if settings.dns.has_zone else None
        )

    def record_phase(self, parameter_name: str) -> None:
        """An SSM parameter holding the deployed phase: a stack whose topology is off still
        holds a resource."""
        ssm.StringParameter(
            self, "Phase", parameter_name=parameter_name, string_value=str(self._settings.phase)
        )

    def finish(self, *, guard_examples: bool, environment_budget: bool = False) -> TeardownGuard:
        """The guards, and the environment's budget and alerts when this stack carries them
        (the stack that exists in every phase). Call it after the topology is built."""
        settings, stack = self._settings, Stack.of(self)
        names = settings.names
        if guard_examples and settings.dns.example_values:
            ExampleValuesGuard(self, "ExampleValuesGuard", values=settings.dns.example_values)
        if environment_budget and settings.budgets:
            EnvironmentBudget(
                self,
                "Budget",
                budget_name=names.budget(stack.node.id),
                region=stack.region,
                limit_usd=environment_cost(settings.phase),
                email=settings.prod.alarm_email,
            )
        if environment_budget and settings.cost_anomaly_detection:
            CostAnomalyDetection(
                self,
                "CostAnomalies",
                email=settings.prod.alarm_email,
                monitor_name=names.anomaly_monitor,
                subscription_name=names.anomaly_subscription,
            )
        return TeardownGuard(
            self, "TeardownGuard", confirmed=stack.node.id in settings.allow_teardown
        )
