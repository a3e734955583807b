"""`-c environment=<name>`: an independent pair of stacks in the same account and region.

Every physical name (a name AWS keeps unique per account and region, or per zone) is walked
in both environments' templates at their widest, and no name may appear in both. Production
keeps the names it was first deployed with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from synth_support import synthesize

from infra.config import PROD_STACK, STACK_NAMES, ZERO_COST_STACK
from infra.parameters import PRODUCTION_NAMES, Names

WIDEST = {
    "phase": "3",
    "migrate_data": "true",
    "shift_traffic": "true",
    "restore_drill": "drill-2026-12-01",
    "alarm_email": "ops@prostudio.io",
}
STAGING = {
    "environment": "staging",
    "domain_name": "api.staging.prostudio.example.com",
}
# Per resource type, the properties that name it in the account (dotted paths; a tuple of
# paths is one composite name). Every type the templates hold must be listed here or below.
PHYSICAL_NAMES: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "AWS::SSM::Parameter": ("Name",),
    "AWS::SSM::Association": ("AssociationName",),
    "AWS::SSM::Document": ("Name",),
    "AWS::EC2::LaunchTemplate": ("LaunchTemplateName",),
    "AWS::Budgets::Budget": ("Budget.BudgetName",),
    "AWS::CE::AnomalyMonitor": ("MonitorName",),
    "AWS::CE::AnomalySubscription": ("SubscriptionName",),
    "AWS::CloudWatch::Alarm": ("AlarmName",),
    "AWS::CloudWatch::Dashboard": ("DashboardName",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::Logs::MetricFilter": (
        ("MetricTransformations.0.MetricNamespace", "MetricTransformations.0.MetricName"),
    ),
    "AWS::Route53::RecordSet": (("HostedZoneId", "Name", "Type", "SetIdentifier"),),
    "AWS::ElastiCache::ReplicationGroup": ("ReplicationGroupId",),
    "AWS::ElastiCache::SubnetGroup": ("CacheSubnetGroupName",),
    "AWS::ElastiCache::ParameterGroup": (),
    "AWS::ElastiCache::User": ("UserId",),
    "AWS::ElastiCache::UserGroup": ("UserGroupId",),
    "AWS::ECS::Cluster": ("ClusterName",),
    "AWS::ECS::Service": ("ServiceName",),
    "AWS::ECS::TaskDefinition": ("Family",),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("Name",),
    "AWS::ElasticLoadBalancingV2::TargetGroup": ("Name",),
    "AWS::EC2::SecurityGroup": ("GroupName",),
    "AWS::IAM::Role": ("RoleName",),
    "AWS::IAM::InstanceProfile": ("InstanceProfileName",),
    "AWS::Lambda::Function": ("FunctionName",),
    "AWS::SNS::Topic": ("TopicName",),
    "AWS::SQS::Queue": ("QueueName",),
    "AWS::StepFunctions::StateMachine": ("StateMachineName",),
    "AWS::SecretsManager::Secret": ("Name",),
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::DynamoDB::Table": ("TableName",),
    "AWS::KMS::Key": (),
    "AWS::KMS::Alias": ("AliasName",),
}
# Types with no name of their own in the account: named by AWS on creation, or scoped to a
# parent that is itself named above (an inline policy to its role, a rule to its listener).
UNNAMED = {
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CertificateManager::Certificate",
    "AWS::EC2::EIP",
    "AWS::EC2::EIPAssociation",
    "AWS::EC2::FlowLog",
    "AWS::EC2::Instance",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::Route",
    "AWS::EC2::RouteTable",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::Subnet",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::VPC",
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::ElasticLoadBalancingV2::Listener",
    "AWS::ElasticLoadBalancingV2::ListenerRule",
    "AWS::IAM::Policy",
    "AWS::Lambda::Permission",
    "AWS::Route53::HealthCheck",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
}


def _render(value: Any, stack: str) -> str:
    """A property as the name it becomes; anything CloudFormation generates per stack is
    rendered under the stack's name, so it can only match within that stack."""
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, dict) and value.get("Ref") == "AWS::StackName":
        return stack
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part, stack) for part in parts)
    return f"<{stack}:{json.dumps(value, sort_keys=True)}>"


def _at(properties: dict[str, Any], path: str) -> Any:
    value: Any = properties
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)] if int(part) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        if value is None:
            return None
    return value


def physical_names(templates: dict[str, dict[str, Any]], names: Names) -> Iterator[str]:
    for stack_id, template in templates.items():
        stack = names.stack(stack_id)
        yield f"stack {stack}"
        for parameter in template.get("Parameters", {}).values():
            read = parameter.get("Default", "")
            # AWS's public parameters and the account's one CDK bootstrap are shared by design.
            if parameter["Type"].startswith("AWS::SSM::Parameter::Value") and not read.startswith(
                ("/aws/", "/cdk-bootstrap/")
            ):
                yield f"SSM parameter read {read}"
        for logical_id, resource in template["Resources"].items():
            kind = resource["Type"]
            if kind in UNNAMED or kind.startswith("Custom::"):
                continue
            assert kind in PHYSICAL_NAMES, f"{stack}/{logical_id}: classify {kind}"
            properties = resource.get("Properties", {})
            for path in PHYSICAL_NAMES[kind]:
                paths = (path,) if isinstance(path, str) else path
                values = [_at(properties, part) for part in paths]
                if all(value is None for value in values):
                    continue
                rendered = "|".join(_render(value, stack) for value in values)
                yield f"{kind} {rendered}"


@pytest.fixture(scope="module")
def widest() -> dict[str, list[str]]:
    production = synthesize(**WIDEST, cost_anomaly_detection="true")
    staging = synthesize(**WIDEST, **STAGING)
    assert production.error is None, production.error
    assert staging.error is None, staging.error
    return {
        "production": list(physical_names(production.templates, PRODUCTION_NAMES)),
        "staging": list(physical_names(staging.templates, Names("staging"))),
    }


def test_two_environments_share_no_physical_name(widest: dict[str, list[str]]) -> None:
    shared = sorted(set(widest["production"]) & set(widest["staging"]))
    assert shared == []


def test_the_walk_sees_every_kind_of_name(widest: dict[str, list[str]]) -> None:
    """The walk is not vacuous: each kind of name the stacks set is found in both."""
    for environment, found in widest.items():
        kinds = {name.split(" ", 1)[0] for name in found}
        assert {
            "stack",
            "AWS::SSM::Parameter",
            "AWS::EC2::LaunchTemplate",
            "AWS::Budgets::Budget",
            "AWS::SSM::Association",
            "AWS::Route53::RecordSet",
            "AWS::Logs::MetricFilter",
            "AWS::ECS::TaskDefinition",
            "AWS::IAM::Role",
            "AWS::ElastiCache::User",
            "AWS::ElastiCache::UserGroup",
        } <= kinds, environment
        assert any(name.startswith("SSM parameter read") for name in found), environment


def test_production_keeps_its_names(widest: dict[str, list[str]]) -> None:
    found = set(widest["production"])
    assert {
        "stack ZeroCostStack",
        "stack ProdStack",
        "AWS::SSM::Parameter /prostudio/network/vpc-id",
        "AWS::SSM::Parameter /prostudio/prod/phase",
        "SSM parameter read /prostudio/zero-cost/box-instance-ids",
        "AWS::EC2::LaunchTemplate BoxLaunchTemplate",
        "AWS::Budgets::Budget prostudio-ZeroCostStack",
        "AWS::SSM::Association ZeroCostStack-health-probe",
        "AWS::CE::AnomalyMonitor prostudio-services",
        "AWS::Logs::MetricFilter ProStudio|ServiceErrors",
        "AWS::ECS::TaskDefinition ProdStackServiceTask825E3F7A",
        "AWS::IAM::Role ZeroCostStack-box-us-east-1",
        "AWS::ElastiCache::UserGroup prostudio-prod-cache",
        "AWS::ElastiCache::User prostudio-prod-cache-follow",
        "AWS::ElastiCache::UserGroup prostudio-zero-cost-cache",
        "AWS::ElastiCache::User prostudio-zero-cost-cache-service",
    } <= found


def test_staging_names_derive_from_the_environment(widest: dict[str, list[str]]) -> None:
    found = set(widest["staging"])
    assert {
        "stack ZeroCostStack-staging",
        "stack ProdStack-staging",
        "AWS::SSM::Parameter /prostudio-staging/network/vpc-id",
        "SSM parameter read /prostudio-staging/zero-cost/box-instance-ids",
        "AWS::EC2::LaunchTemplate BoxLaunchTemplate-staging",
        "AWS::Budgets::Budget prostudio-ZeroCostStack-staging",
        "AWS::Logs::MetricFilter ProStudio-staging|ServiceErrors",
        "AWS::IAM::Role ZeroCostStack-staging-box-us-east-1",
        "AWS::ElastiCache::UserGroup prostudio-staging-prod-cache",
        "AWS::ElastiCache::User prostudio-staging-prod-cache-follow",
        "AWS::ElastiCache::User prostudio-staging-zero-cost-cache-default",
    } <= found
    assert not any("/prostudio/" in name for name in found)


def test_the_stacks_deploy_under_the_environments_names() -> None:
    synthesis = synthesize(**STAGING)
    manifest = json.loads((synthesis.outdir / "manifest.json").read_text())
    deployed = {
        artifact_id: artifact["properties"].get("stackName", artifact_id)
        for artifact_id, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert deployed == {
        ZERO_COST_STACK: "ZeroCostStack-staging",
        PROD_STACK: "ProdStack-staging",
    }
    assert set(deployed) == set(STACK_NAMES)
