"""A monthly AWS Budgets budget for one stack, and optionally Cost Anomaly Detection.

The budget's limit is `make cost`'s on-demand figure for the stack at the deployed phase,
committed in infra/cost_baseline.json (`scripts/cost.py --write-baseline` rewrites it; a test
keeps the two equal). It alerts at 80 % and 100 % of actual spend and at 100 % of forecast.
Both AWS Budgets (without actions) and Cost Anomaly Detection are free.
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


class StackBudget(Construct):
    """Spend of the resources tagged with this stack's name, against its committed cost."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        budget_name: str,
        stack_name: str,
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
                # CloudFormation tags every resource it creates with the stack's name; activate
                # aws:cloudformation:stack-name as a cost allocation tag in Billing once.
                cost_filters={"TagKeyValue": [f"aws:cloudformation:stack-name${stack_name}"]},
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
