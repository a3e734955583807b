"""Which resources hold data or a published address, and what CloudFormation replaces them for.

The one home of these rules: the teardown guard records each stack's stateful resources with
them at synth time (infra/constructs/deploy_guards.py), and the rollout walk judges every
documented step with them (tests/rollout). They work on a template's resources as
CloudFormation receives them (`{"LogicalId": {"Type", "Properties", ...}}`).

An entry is `LogicalId=digest`. The digest covers the type and every property whose change
replaces the resource: the create-only properties of the CloudFormation schemas (a test keeps
the table a superset of them) plus those the resource docs say replace although the schemas
call them updatable. A reference inside such a property stands for what it refers to: a `Ref`
or an identity attribute changes only when the referenced resource is replaced or renamed (so
its logical ID and own digest stand in), while a version attribute (a launch template's
LatestVersionNumber) or a custom resource's attribute changes with any update of the
referenced resource (so its logical ID and whole properties stand in). A digest that changes
therefore means "replaced"; an entry that disappears means "deleted".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Properties whose change replaces the resource, per stateful type.
REPLACING_PROPERTIES: dict[str, tuple[str, ...]] = {
    "AWS::DynamoDB::Table": ("ImportSourceSpecification", "KeySchema", "TableName"),
    "AWS::EC2::EIP": ("Address", "Domain", "IpamPoolId", "NetworkBorderGroup", "TransferAddress"),
    "AWS::EC2::Instance": (
        "AvailabilityZone",
        # Replaces unless only DeleteOnTermination changes (AWS::EC2::Instance docs).
        "BlockDeviceMappings",
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
        # Its Version is usually a LatestVersionNumber attribute: any launch template update.
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
    "AWS::EC2::VPC": (
        "CidrBlock",
        # default -> dedicated replaces (dedicated -> default does not; judged as replacing).
        "InstanceTenancy",
        "Ipv4IpamPoolId",
        "Ipv4NetmaskLength",
        "VpcEncryptionControl",
    ),
    "AWS::ElastiCache::CacheCluster": (
        "CacheSubnetGroupName",
        "ClusterName",
        "Engine",
        "NetworkType",
        "Port",
        "PreferredAvailabilityZone",
        "PreferredAvailabilityZones",
        "SnapshotArns",
        "SnapshotName",
    ),
    "AWS::ElastiCache::ReplicationGroup": (
        "AtRestEncryptionEnabled",
        "CacheSubnetGroupName",
        "DataTieringEnabled",
        # In place only from Redis OSS to Valkey, never back: reviewed as a rebuild.
        "Engine",
        "GlobalReplicationGroupId",
        "KmsKeyId",
        "NetworkType",
        "Port",
        "PreferredCacheClusterAZs",
        "ReplicasPerNodeGroup",
        "ReplicationGroupId",
        "SnapshotArns",
        "SnapshotName",
    ),
    # The docs say name, type and set identifier replace a record; the schema lists the zone.
    "AWS::Route53::RecordSet": ("HostedZoneId", "HostedZoneName", "Name", "SetIdentifier", "Type"),
}
STATEFUL_TYPES = frozenset(REPLACING_PROPERTIES)
# The same for resources that guarded properties refer to: what replaces them (and so changes
# their Ref and identity attributes). A test keeps every type such a reference reaches listed.
REFERENCED_REPLACING_PROPERTIES: dict[str, tuple[str, ...]] = {
    "AWS::EC2::LaunchTemplate": ("LaunchTemplateName",),
    "AWS::EC2::SecurityGroup": ("GroupDescription", "GroupName", "VpcId"),
    "AWS::ElastiCache::SubnetGroup": ("CacheSubnetGroupName",),
    "AWS::IAM::InstanceProfile": ("InstanceProfileName", "Path"),
    "AWS::IAM::Role": ("Path", "RoleName"),
    "AWS::KMS::Key": ("KeySpec", "KeyUsage", "MultiRegion"),
}
# Attributes that change whenever their resource is updated, not only when it is replaced.
VERSION_ATTRIBUTES: dict[str, frozenset[str]] = {
    "AWS::EC2::LaunchTemplate": frozenset({"LatestVersionNumber", "DefaultVersionNumber"}),
}
# A replication group that moves between its AUTH token and a user group (either way) is
# replaced: ModifyReplicationGroup needs AuthTokenUpdateStrategy DELETE beside the user
# group, which the resource cannot send, and CloudFormation plans a replacement
# (cloudformation-coverage-roadmap #2356). Only a group with user groups carries the mode,
# so a token group's digest is what it was before users existed.
_USER_GROUP_MODE = ("AWS::ElastiCache::ReplicationGroup", "usergroupids")
# Template metadata that leaves a stateful resource out of the guard: it holds nothing that is
# not kept elsewhere (the value says where).
DISPOSABLE = "ProStudio::Disposable"
# Within a block device, the one property that changes without replacing the instance.
_IN_PLACE_BLOCK_DEVICE_KEYS = frozenset({"DeleteOnTermination"})
DIGEST_CHARS = 12

Resources = Mapping[str, Mapping[str, Any]]


def is_guarded(resource: Mapping[str, Any]) -> bool:
    return resource.get("Type") in STATEFUL_TYPES and not resource.get("Metadata", {}).get(
        DISPOSABLE
    )


def entries(resources: Resources) -> list[str]:
    """`LogicalId=digest` of every guarded resource, sorted."""
    return sorted(
        f"{logical_id}={_digest(_identity(logical_id, resources, ()))}"
        for logical_id, resource in resources.items()
        if is_guarded(resource)
    )


def changes(before: list[str], after: list[str]) -> dict[str, str]:
    """Each entry of `before` that `after` deletes or replaces: {logical ID: "deleted" or
    "replaced"}."""
    kept = dict(entry.split("=", 1) for entry in after)
    found = {}
    for entry in before:
        logical_id, digest = entry.split("=", 1)
        if logical_id not in kept:
            found[logical_id] = "deleted"
        elif kept[logical_id] != digest:
            found[logical_id] = "replaced"
    return found


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def _identity(logical_id: str, resources: Resources, seen: tuple[str, ...]) -> Any:
    """What decides whether the resource is replaced: its type and replacing properties."""
    resource = resources[logical_id]
    resource_type = resource["Type"]
    names = REPLACING_PROPERTIES.get(resource_type) or REFERENCED_REPLACING_PROPERTIES.get(
        resource_type, ()
    )
    properties = {key.lower(): value for key, value in resource.get("Properties", {}).items()}
    chosen = {name: properties.get(name.lower()) for name in names}
    if "BlockDeviceMappings" in chosen:
        chosen["BlockDeviceMappings"] = _without_in_place_keys(chosen["BlockDeviceMappings"])
    if resource_type == _USER_GROUP_MODE[0] and properties.get(_USER_GROUP_MODE[1]):
        chosen["Authentication"] = "user groups"
    return [logical_id, resource_type, _expand(chosen, resources, (*seen, logical_id))]


def referenced_types(resources: Resources) -> set[str]:
    """Types of the resources that guarded resources' replacing properties refer to, directly
    or through another reference (the tables above must know each of them)."""
    found: set[str] = set()
    pending = [
        (logical_id, REPLACING_PROPERTIES[resource["Type"]])
        for logical_id, resource in resources.items()
        if is_guarded(resource)
    ]
    visited: set[str] = set()
    while pending:
        logical_id, names = pending.pop()
        if logical_id in visited:
            continue
        visited.add(logical_id)
        properties = {k.lower(): v for k, v in resources[logical_id].get("Properties", {}).items()}
        for target, attribute in _references([properties.get(name.lower()) for name in names]):
            if target not in resources:
                continue
            target_type = resources[target]["Type"]
            found.add(target_type)
            whole = attribute in VERSION_ATTRIBUTES.get(target_type, ())
            pending.append(
                (
                    target,
                    tuple(resources[target].get("Properties", {}))
                    if whole
                    else REPLACING_PROPERTIES.get(target_type)
                    or REFERENCED_REPLACING_PROPERTIES.get(target_type, ()),
                )
            )
    return found


def _references(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, list):
        return [found for item in value for found in _references(item)]
    if not isinstance(value, dict):
        return []
    if set(value) == {"Ref"}:
        return [(str(value["Ref"]), "")]
    if set(value) == {"Fn::GetAtt"}:
        return [_get_att(value["Fn::GetAtt"])]
    return [found for inner in value.values() for found in _references(inner)]


def _whole(logical_id: str, resources: Resources, seen: tuple[str, ...]) -> Any:
    resource = resources[logical_id]
    return [
        logical_id,
        resource["Type"],
        _expand(resource.get("Properties", {}), resources, (*seen, logical_id)),
    ]


def _expand(value: Any, resources: Resources, seen: tuple[str, ...]) -> Any:
    """`value` with every reference to a resource of the template replaced by what decides it."""
    if isinstance(value, list):
        return [_expand(item, resources, seen) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in resources:
        target = value["Ref"]
        return {"Ref": target} if target in seen else {"Ref": _identity(target, resources, seen)}
    if set(value) == {"Fn::GetAtt"}:
        target, attribute = _get_att(value["Fn::GetAtt"])
        if target in resources and target not in seen:
            target_type = resources[target]["Type"]
            changes_on_update = attribute in VERSION_ATTRIBUTES.get(target_type, ()) or (
                target_type.startswith("Custom::")
                or target_type == "AWS::CloudFormation::CustomResource"
            )
            decided_by = (
                _whole(target, resources, seen)
                if changes_on_update
                else _identity(target, resources, seen)
            )
            return {"Fn::GetAtt": [decided_by, attribute]}
    return {key: _expand(inner, resources, seen) for key, inner in value.items()}


def _get_att(argument: Any) -> tuple[str, str]:
    if isinstance(argument, list):
        return str(argument[0]), str(argument[1])
    target, _, attribute = str(argument).partition(".")
    return target, attribute


def _without_in_place_keys(devices: Any) -> Any:
    if not isinstance(devices, list):
        return devices
    return [
        {
            key: (
                {k: v for k, v in inner.items() if k not in _IN_PLACE_BLOCK_DEVICE_KEYS}
                if key == "Ebs" and isinstance(inner, dict)
                else inner
            )
            for key, inner in device.items()
        }
        if isinstance(device, dict)
        else device
        for device in devices
    ]
