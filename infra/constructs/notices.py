"""What a Lambda needs to publish runtime/common/notices.py's notices: the topic and bus in its
environment, and the right to publish to both (with the topic's KMS key, if it has one)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns

from runtime.common.notice_environment import BUS_VARIABLE, DEFAULT_BUS, TOPIC_VARIABLE


def notice_environment(topic: sns.ITopic) -> dict[str, str]:
    return {TOPIC_VARIABLE: topic.topic_arn, BUS_VARIABLE: DEFAULT_BUS}


def grant_notices(role: iam.IRole, topic: sns.ITopic) -> None:
    """Publish to `topic` (through its KMS key, named actions only) and put events on the
    default bus."""
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])
    )
    if topic.master_key is not None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[topic.master_key.key_arn],
            )
        )
    bus_arn = Stack.of(topic).format_arn(
        service="events", resource="event-bus", resource_name=DEFAULT_BUS
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus_arn])
    )
