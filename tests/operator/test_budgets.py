"""Budgets per stack sized from make cost's figure, and the anomaly monitor behind its flag."""

from __future__ import annotations

import json

import pytest
from synth_support import ROOT, resources_of_type, synthesize
from test_cost import PRICER, cost

from infra.config import ConfigError, load_settings
from infra.constructs.budgets import BASELINE


@pytest.mark.parametrize("phase", ["1", "3"])
def test_the_committed_baseline_is_what_make_cost_computes(phase: str) -> None:
    committed = json.loads(BASELINE.read_text())["phases"][phase]
    for stack in cost.STACKS:
        items = PRICER.items(stack, synthesize(phase=phase).template(stack))
        figure = round(sum(i.monthly_usd for i in items), 2)
        assert committed[stack] == pytest.approx(figure, abs=0.01), (
            "run `scripts/cost.py --write-baseline` after changing a priced resource"
        )


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_one_budget_per_environment_counts_its_region_from_the_first_day(region: str) -> None:
    """Budgets see a cost-allocation tag only once it is activated (and up to a day later):
    the budget filters on its region, a dimension that needs no activation."""
    synthesis = synthesize(phase="3", alarm_email="ops@example.com", region=region)
    committed = json.loads(BASELINE.read_text())["phases"]["3"]
    assert not resources_of_type(synthesis.template("ProdStack"), "AWS::Budgets::Budget")
    (budget,) = resources_of_type(
        synthesis.template("ZeroCostStack"), "AWS::Budgets::Budget"
    ).values()
    data = budget["Properties"]["Budget"]
    total = sum(committed[stack] for stack in cost.STACKS)
    assert data["BudgetLimit"] == {"Amount": -(-total // 1), "Unit": "USD"}
    assert data["CostFilters"] == {"Region": [region]}
    assert "FilterExpression" not in data
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
    flagged = synthesize(
        phase="1", cost_anomaly_detection="true", alarm_email="ops@example.com"
    ).template("ZeroCostStack")
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
