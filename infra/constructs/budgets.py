"""A monthly AWS Budgets budget for one environment, and optionally Cost Anomaly Detection.

The budget's limit is `make cost`'s on-demand figure for both stacks at the deployed phase,
committed in infra/cost_baseline.json (`scripts/cost.py --write-baseline` rewrites it; a test
keeps the two equal). It alerts at 80 % and 100 % of actual spend and at 100 % of forecast.
Both AWS Budgets (without actions) and Cost Anomaly Detection are free.

It counts the spend of the environment's region, a dimension every budget can filter on from
the first hour. A per-stack filter would need a cost-allocation tag (`aws:cloudformation:
stack-name`), which reads $0 until it is activated; activation cannot be done reliably from
the stack: a tag key can be activated only once it has shown up in billing data (up to a day
after first use), only from an Organization's management account, and it applies from then
on, up to a day later.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_ce as ce
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

BASELINE = Path(__file__).resolve().parents[1] / "cost_baseline.json"
ALERT_PERCENTS = (80, 100)
# Cost Anomaly Detection alerts on anomalies whose total impact reaches this many dollars.
ANOMALY_IMPACT_USD = 10


def committed_cost(phase: int, stack: str) -> float:
    """`make cost`'s monthly on-demand figure for ``stack`` at ``phase``."""
    figures: dict[str, dict[str, float]] = json.loads(BASELINE.read_text())["phases"]
    return figures[str(phase)][stack]


def environment_cost(phase: int) -> float:
    """`make cost`'s monthly on-demand figure for both stacks at ``phase``."""
    figures: dict[str, dict[str, float]] = json.loads(BASELINE.read_text())["phases"]
    return sum(figures[str(phase)].values())


class EnvironmentBudget(Construct):
    """Spend in the environment's region against both stacks' committed cost."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        budget_name: str,
        region: str,
        limit_usd: float,
        email: str,
        topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, id_)
        subscribers = []
        if email:
            subscribers.append(
                budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=email)
            )
        if topic is not None:
            subscribers.append(
                budgets.CfnBudget.SubscriberProperty(
                    subscription_type="SNS", address=topic.topic_arn
                )
            )
            _let_budgets_publish(topic)
        alerts = [("ACTUAL", percent) for percent in ALERT_PERCENTS] + [("FORECASTED", 100)]
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=budget_name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(
                    amount=max(math.ceil(limit_usd), 1), unit="USD"
                ),
                cost_filters={"Region": [region]},
            ),
            # Without an e-mail or a topic the budget still shows spend against the figure.
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind,
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=subscribers,
                )
                for kind, percent in alerts
            ]
            if subscribers
            else None,
        )


def _let_budgets_publish(topic: sns.ITopic) -> None:
    principal = iam.ServicePrincipal("budgets.amazonaws.com")
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            actions=["sns:Publish"], principals=[principal], resources=[topic.topic_arn]
        )
    )
    key = getattr(topic, "master_key", None)
    if key is not None:
        key.grant(principal, "kms:Decrypt", "kms:GenerateDataKey*")


class CostAnomalyDetection(Construct):
    """An account-wide, per-service anomaly monitor with a daily e-mail summary."""

    def __init__(
        self, scope: Construct, id_: str, *, email: str, monitor_name: str, subscription_name: str
    ) -> None:
        super().__init__(scope, id_)
        monitor = ce.CfnAnomalyMonitor(
            self,
            "Monitor",
            monitor_name=monitor_name,
            monitor_type="DIMENSIONAL",
            monitor_dimension="SERVICE",
        )
        ce.CfnAnomalySubscription(
            self,
            "Subscription",
            subscription_name=subscription_name,
            frequency="DAILY",
            monitor_arn_list=[monitor.attr_monitor_arn],
            subscribers=[ce.CfnAnomalySubscription.SubscriberProperty(type="EMAIL", address=email)],
            threshold_expression=json.dumps(
                {
                    "Dimensions": {
                        "Key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE",
                        "MatchOptions": ["GREATER_THAN_OR_EQUAL"],
                        "Values": [str(ANOMALY_IMPACT_USD)],
                    }
                }
            ),
        )
