"""Budgets per stack sized from make cost's figure, and the anomaly monitor behind its flag."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from synth_support import (
    ROOT,
    SECOND_REGION,
    construct_template,
    context_for,
    resources_of_type,
    synthesize,
)
from test_cost import PRICER, cost

from infra.config import ConfigError, load_settings
from infra.constructs.budgets import BASELINE
from infra.constructs.stack_furniture import FURNITURE_ID, StackFurniture


@pytest.mark.parametrize("phase", ["1", "3"])
def test_the_committed_baseline_is_what_make_cost_computes(phase: str) -> None:
    committed = json.loads(BASELINE.read_text())["phases"][phase]
    for stack in cost.STACKS:
        items = PRICER.items(stack, synthesize(phase=phase).template(stack))
        figure = round(sum(i.monthly_usd for i in items), 2)
        assert committed[stack] == pytest.approx(figure, abs=0.01), (
            "run `scripts/cost.py --write-baseline` after changing a priced resource"
        )


def furniture(**flags: str) -> dict[str, Any]:
    """ZeroCostStack's furniture (the stack that carries the environment's budget), built on a
    bare stack with these flags."""
    settings = load_settings(context_for(flags))

    def build(stack: Stack) -> None:
        StackFurniture(stack, FURNITURE_ID, settings=settings).finish(
            guard_examples=False, environment_budget=True
        )

    return construct_template(build, region=settings.region)


@pytest.mark.parametrize(
    "flags",
    [
        {"phase": "3"},
        {"phase": "3", "migrate_data": "true", "shift_traffic": "true", "region": SECOND_REGION},
    ],
    ids=["us-east-1", SECOND_REGION],
)
def test_one_budget_per_environment_counts_its_region_from_the_first_day(
    flags: dict[str, str],
) -> None:
    """Budgets see a cost-allocation tag only once it is activated (and up to a day later):
    the budget filters on its region, a dimension that needs no activation."""
    synthesis = synthesize(**flags)
    committed = json.loads(BASELINE.read_text())["phases"]["3"]
    assert not resources_of_type(synthesis.template("ProdStack"), "AWS::Budgets::Budget")
    (budget,) = resources_of_type(
        synthesis.template("ZeroCostStack"), "AWS::Budgets::Budget"
    ).values()
    data = budget["Properties"]["Budget"]
    total = sum(committed[stack] for stack in cost.STACKS)
    assert data["BudgetLimit"] == {"Amount": -(-total // 1), "Unit": "USD"}
    assert data["CostFilters"] == {"Region": [flags.get("region", "us-east-1")]}
    assert "FilterExpression" not in data


def test_the_budget_alerts_the_alarm_email_at_80_and_100_percent_and_on_its_forecast() -> None:
    (budget,) = resources_of_type(
        furniture(phase="3", alarm_email="ops@example.com"), "AWS::Budgets::Budget"
    ).values()
    alerts = {
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"])
        for n in budget["Properties"]["NotificationsWithSubscribers"]
    }
    assert {("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)} <= alerts
    subscribers = {
        (s["SubscriptionType"], s["Address"])
        for n in budget["Properties"]["NotificationsWithSubscribers"]
        for s in n["Subscribers"]
    }
    assert subscribers == {("EMAIL", "ops@example.com")}


def test_anomaly_detection_is_off_by_default_and_on_by_flag() -> None:
    default = synthesize(phase="1").template("ZeroCostStack")
    assert not resources_of_type(default, "AWS::CE::AnomalyMonitor")
    flagged = furniture(cost_anomaly_detection="true", alarm_email="ops@example.com")
    (monitor,) = resources_of_type(flagged, "AWS::CE::AnomalyMonitor").values()
    assert monitor["Properties"]["MonitorDimension"] == "SERVICE"
    (subscription,) = resources_of_type(flagged, "AWS::CE::AnomalySubscription").values()
    assert subscription["Properties"]["Subscribers"] == [
        {"Type": "EMAIL", "Address": "ops@example.com"}
    ]


def test_anomaly_detection_without_an_email_is_refused() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    with pytest.raises(ConfigError, match="cost_anomaly_detection=true needs alarm_email"):
        load_settings({**context, "cost_anomaly_detection": "true"})
