"""Guards CloudFormation enforces before any resource changes: CloudFormation Rules.

`TeardownGuard` keeps, in an SSM StringList the stack itself writes, one entry per stateful
resource (logical ID and a digest of its create-only properties). Every deploy reads the
entries the previous deploy recorded through an SSM-typed parameter, and its Rule asserts that
each of them is still in this template unchanged: a deploy that would delete or replace one
(production removed, a cache, the VPC or a subnet, a box, an EIP, the checkpoint table, a
weighted record) is refused while the change set is created. `-c allow_teardown=<stack>`
leaves the Rule out of that one deploy; the record is still rewritten, so the next deploy is
guarded again.

`ExampleValuesGuard` is a Rule that always fails: the stack is built with the repository's
example DNS values, so a deploy is refused before it touches anything.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jsii
from aws_cdk import (
    CfnParameter,
    CfnResource,
    CfnRule,
    CfnRuleAssertion,
    Fn,
    IStableListProducer,
    IStableStringProducer,
    Lazy,
    Stack,
)
from aws_cdk import aws_ssm as ssm
from constructs import Construct

# Create-only properties per stateful type (a change replaces the resource). A test keeps this
# a superset of the CloudFormation schemas cfn-lint ships; a record set's name, type and set
# identifier are documented as replacing it although its schema lists only the zone.
STATEFUL_TYPES: dict[str, tuple[str, ...]] = {
    "AWS::DynamoDB::Table": ("TableName", "ImportSourceSpecification"),
    "AWS::EC2::EIP": ("Address", "IpamPoolId", "NetworkBorderGroup", "TransferAddress"),
    "AWS::EC2::Instance": (
        "AvailabilityZone",
        "CpuOptions",
        "ElasticGpuSpecifications",
        "ElasticInferenceAccelerators",
        "EnclaveOptions",
        "HibernationOptions",
        "HostResourceGroupArn",
        "ImageId",
        "Ipv6AddressCount",
        "Ipv6Addresses",
        "KeyName",
        "LaunchTemplate",
        "LicenseSpecifications",
        "NetworkInterfaces",
        "PlacementGroupName",
        "PrivateIpAddress",
        "SecurityGroups",
        "SubnetId",
    ),
    "AWS::EC2::Subnet": (
        "AvailabilityZone",
        "AvailabilityZoneId",
        "CidrBlock",
        "Ipv4IpamPoolId",
        "Ipv4NetmaskLength",
        "Ipv6IpamPoolId",
        "Ipv6Native",
        "Ipv6NetmaskLength",
        "OutpostArn",
        "VpcId",
    ),
    "AWS::EC2::VPC": ("CidrBlock", "Ipv4IpamPoolId", "Ipv4NetmaskLength", "VpcEncryptionControl"),
    "AWS::ElastiCache::CacheCluster": (
        "CacheSubnetGroupName",
        "ClusterName",
        "Engine",
        "NetworkType",
        "Port",
        "SnapshotArns",
        "SnapshotName",
    ),
    "AWS::ElastiCache::ReplicationGroup": (
        "AtRestEncryptionEnabled",
        "CacheSubnetGroupName",
        "DataTieringEnabled",
        "GlobalReplicationGroupId",
        "KmsKeyId",
        "NetworkType",
        "Port",
        "PreferredCacheClusterAZs",
        "ReplicationGroupId",
        "SnapshotArns",
        "SnapshotName",
    ),
    "AWS::Route53::RecordSet": (
        "HostedZoneId",
        "HostedZoneName",
        "Name",
        "SetIdentifier",
        "Type",
    ),
}
# What a record holds when the stack has no stateful resource (a StringList cannot be empty).
NOTHING_STATEFUL = "none"
DIGEST_CHARS = 12
DISPOSABLE = "ProStudio::Disposable"


def record_name(prefix: str, stack_name: str) -> str:
    return f"{prefix}/guard/{stack_name}/stateful-resources"


def entry(logical_id: str, resource_type: str, properties: dict[str, Any]) -> str:
    """`LogicalId=digest` of the type and the create-only properties as the construct holds
    them (CDK's camelCase names, matched to CloudFormation's regardless of case)."""
    by_name = {key.lower(): value for key, value in properties.items()}
    create_only = {key: by_name.get(key.lower()) for key in STATEFUL_TYPES[resource_type]}
    text = json.dumps([resource_type, create_only], sort_keys=True, default=str)
    return f"{logical_id}={hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]}"


def mark_disposable(resource: CfnResource, why: str) -> None:
    """Leave a stateful resource out of the teardown guard: it holds nothing that is not
    kept elsewhere (`why` says where, in the template's metadata)."""
    resource.add_metadata(DISPOSABLE, why)


def stateful_entries(stack: Stack) -> list[str]:
    """The stack's guarded stateful resources as record entries, sorted."""
    entries = []
    for node in stack.node.find_all():
        if not isinstance(node, CfnResource) or node.cfn_resource_type not in STATEFUL_TYPES:
            continue
        if node.get_metadata(DISPOSABLE):
            continue
        properties = stack.resolve(node._cfn_properties)
        logical_id = stack.resolve(stack.get_logical_id(node))
        entries.append(entry(logical_id, node.cfn_resource_type, properties))
    return sorted(entries)


@jsii.implements(IStableListProducer)
class _Allowed:
    def __init__(self, stack: Stack) -> None:
        self._stack = stack

    def produce(self) -> list[str]:
        return [*stateful_entries(self._stack), NOTHING_STATEFUL]


@jsii.implements(IStableStringProducer)
class _Record:
    def __init__(self, stack: Stack) -> None:
        self._stack = stack

    def produce(self) -> str:
        return ",".join(stateful_entries(self._stack)) or NOTHING_STATEFUL


class TeardownGuard(Construct):
    """Refuses a deploy that deletes or replaces a stateful resource the last deploy recorded,
    unless `confirmed` (the operator's `-c allow_teardown=<stack>` for this one deploy)."""

    def __init__(
        self, scope: Construct, id_: str, *, confirmed: bool, parameter_prefix: str
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        name = record_name(parameter_prefix, stack.stack_name)
        ssm.CfnParameter(
            self,
            "Record",
            name=name,
            type="StringList",
            value=Lazy.string(_Record(stack)),
            description="Stateful resources of the last deploy; read by the teardown guard",
        )
        self.rule: CfnRule | None = None
        if confirmed:
            return
        deployed = CfnParameter(
            self,
            "Deployed",
            type="AWS::SSM::Parameter::Value<List<String>>",
            default=name,
            description="The stateful resources the last deploy recorded (teardown guard)",
        )
        self.rule = CfnRule(
            self,
            "Rule",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_each_member_in(
                        deployed.value_as_list, Lazy.list(_Allowed(stack))
                    ),
                    assert_description=(
                        f"This deploy would delete or replace a stateful resource of "
                        f"{stack.stack_name} recorded in {name}. Review it with make diff; "
                        f"to go ahead, deploy once with -c allow_teardown={stack.stack_name}"
                    ),
                )
            ],
        )


class ExampleValuesGuard(Construct):
    """A Rule that fails every deploy: `values` are the repository's examples."""

    def __init__(self, scope: Construct, id_: str, *, values: dict[str, str]) -> None:
        super().__init__(scope, id_)
        shown = ", ".join(f"{key}={value}" for key, value in values.items())
        self.rule = CfnRule(
            self,
            "Rule",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_not(
                        Fn.condition_contains(sorted(values.values()), next(iter(values.values())))
                    ),
                    assert_description=(
                        f"Example DNS values ({shown}) cannot be deployed; set your zone and "
                        "domain in the committed environment file (environments/)"
                    ),
                )
            ],
        )
