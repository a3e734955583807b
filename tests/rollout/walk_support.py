"""What the rollout walk judges, on templates: the states CloudFormation passes through while it
deploys a stack, and whether the public name resolves to an entry that admits the internet.

A stack update, as CloudFormation runs it: every added or changed resource is created or
updated in dependency order (a resource only after everything it references or DependsOn), and
only then, in the cleanup phase, are the resources the new template dropped deleted. A rollback
is the same walk back to the old template. The states checked are, for each added or changed
resource X, the earliest one in which X is new (only X and what it waits for are new) and the
latest one in which X is still old (everything that does not wait for X is new); plus the end
of the update phase (all new, dropped ones still there) and the end (the new template).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Resources = Mapping[str, Mapping[str, Any]]
INTERNET = "0.0.0.0/0"
_SSM_REFERENCE = re.compile(r"\{\{resolve:ssm:([^}:]+)")


def references(value: Any) -> set[str]:
    """Logical IDs (or parameter names) named by Ref / Fn::GetAtt inside `value`."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(str(inner[0] if isinstance(inner, list) else str(inner).split(".")[0]))
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def waits_for(resources: Resources, logical_id: str) -> set[str]:
    resource = resources[logical_id]
    depends = resource.get("DependsOn", [])
    named = {depends} if isinstance(depends, str) else set(depends)
    return (named | references(resource.get("Properties", {}))) & set(resources)


def closure(resources: Resources, start: set[str], *, upward: bool) -> set[str]:
    """`start` and everything it waits for (or, `upward`, everything that waits for it)."""
    edges: dict[str, set[str]] = {logical_id: set() for logical_id in resources}
    for logical_id in resources:
        for target in waits_for(resources, logical_id):
            if upward:
                edges[target].add(logical_id)
            else:
                edges[logical_id].add(target)
    seen, pending = set(start), list(start)
    while pending:
        for inner in edges.get(pending.pop(), ()):
            if inner not in seen:
                seen.add(inner)
                pending.append(inner)
    return seen


def update_states(before: Resources, after: Resources) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, resources) of the states a deploy from `before` to `after` passes through."""
    changed = {
        logical_id for logical_id, resource in after.items() if before.get(logical_id) != resource
    }
    dropped = set(before) - set(after)

    def state(new: set[str]) -> dict[str, Any]:
        merged = {logical_id: before[logical_id] for logical_id in before}
        for logical_id in new:
            merged[logical_id] = after[logical_id]
        return merged

    for logical_id in sorted(changed):
        yield f"{logical_id} just done", state(closure(after, {logical_id}, upward=False) & changed)
        waiting = closure(after, {logical_id}, upward=True)
        yield f"{logical_id} not yet done", state(changed - waiting)
    if changed:
        yield "update phase done", state(changed)
    if dropped or changed:
        yield "cleanup done", dict(after)


@dataclass(frozen=True)
class Record:
    stack: str
    logical_id: str
    set_identifier: str


def public_records(stacks: Mapping[str, Resources], name: str) -> list[Record]:
    return [
        Record(stack, logical_id, resource["Properties"].get("SetIdentifier", ""))
        for stack, resources in stacks.items()
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Route53::RecordSet" and resource["Properties"]["Name"] == name
    ]


def _ingress(resources: Resources, group: str) -> list[Mapping[str, Any]]:
    inline = list(resources[group].get("Properties", {}).get("SecurityGroupIngress", []))
    separate = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress"
        and references(resource["Properties"].get("GroupId")) == {group}
    ]
    return inline + separate


def admits(resources: Resources, groups: set[str], port: int, source: str) -> bool:
    """Whether one of these security groups admits `source` (INTERNET or a group's logical
    ID) on `port`."""
    for group in groups & set(resources):
        for rule in _ingress(resources, group):
            if rule.get("IpProtocol") not in ("tcp", "-1", -1):
                continue
            if rule.get("IpProtocol") == "tcp" and not (
                int(rule["FromPort"]) <= port <= int(rule["ToPort"])
            ):
                continue
            if source == INTERNET and rule.get("CidrIp") == INTERNET:
                return True
            if source != INTERNET and references(rule.get("SourceSecurityGroupId")) == {source}:
                return True
    return False


def _of_type(resources: Resources, resource_type: str) -> dict[str, Mapping[str, Any]]:
    return {k: r for k, r in resources.items() if r["Type"] == resource_type}


def _instance_groups(box: Mapping[str, Any]) -> set[str]:
    properties = box.get("Properties", {})
    groups = references(properties.get("SecurityGroupIds", []))
    for interface in properties.get("NetworkInterfaces", []):
        groups |= references(interface.get("GroupSet", []))
    return groups


def _address_entry(resources: Resources, addresses: list[Any]) -> str | None:
    (target,) = references(addresses) or {""}
    if target not in resources or resources[target]["Type"] != "AWS::EC2::EIP":
        return f"its address {addresses} is no Elastic IP of the stack"
    for association in _of_type(resources, "AWS::EC2::EIPAssociation").values():
        properties = association["Properties"]
        if target not in references(properties.get("AllocationId")):
            continue
        (box,) = references(properties.get("InstanceId")) or {""}
        if box in resources and admits(resources, _instance_groups(resources[box]), 80, INTERNET):
            return None
        return f"the box behind {target} ({box}) does not admit the internet on port 80"
    return f"{target} is associated with no box"


def _balancer_entry(resources: Resources, balancer: str) -> str | None:
    if balancer not in resources:
        return f"its load balancer {balancer} does not exist"
    properties = resources[balancer]["Properties"]
    if properties.get("Scheme", "internet-facing") != "internet-facing":
        return f"{balancer} is internal"
    groups = references(properties.get("SecurityGroups", []))
    if not admits(resources, groups, 443, INTERNET):
        return f"{balancer} does not admit the internet on 443"
    for listener in _of_type(resources, "AWS::ElasticLoadBalancingV2::Listener").values():
        listening = listener["Properties"]
        if balancer not in references(listening["LoadBalancerArn"]) or listening["Port"] != 443:
            continue
        for group_id in references(listening.get("DefaultActions", [])):
            if group_id in resources and _serves(resources, group_id, groups):
                return None
        return f"{balancer}'s HTTPS listener forwards to no target that admits it"
    return f"{balancer} has no HTTPS listener"


def _serves(resources: Resources, target_group: str, balancer_groups: set[str]) -> bool:
    group = resources[target_group]["Properties"]
    for target in group.get("Targets", []):
        (box,) = references(target["Id"]) or {""}
        if box in resources and any(
            admits(resources, _instance_groups(resources[box]), int(target["Port"]), source)
            for source in balancer_groups
        ):
            return True
    for service in _of_type(resources, "AWS::ECS::Service").values():
        for attachment in service["Properties"].get("LoadBalancers", []):
            if target_group not in references(attachment.get("TargetGroupArn")):
                continue
            network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
            tasks = references(network.get("SecurityGroups", []))
            port = int(attachment["ContainerPort"])
            if any(admits(resources, tasks, port, source) for source in balancer_groups):
                return True
    return False


def entry_problem(resources: Resources, record: str) -> str | None:
    """Why the record's entry does not admit the internet (None when it does)."""
    if record not in resources:
        return None
    properties = resources[record]["Properties"]
    alias = properties.get("AliasTarget")
    if alias:
        (balancer,) = references(alias["DNSName"]) or {""}
        return _balancer_entry(resources, balancer)
    return _address_entry(resources, properties.get("ResourceRecords", []))


def ssm_reads(template: Mapping[str, Any]) -> set[str]:
    """SSM parameter names the template reads at deploy time: SSM-typed parameters and
    {{resolve:ssm:...}} references."""
    names = {
        parameter["Default"]
        for parameter in template.get("Parameters", {}).values()
        if parameter["Type"].startswith("AWS::SSM::Parameter::Value")
    }
    return names | set(_SSM_REFERENCE.findall(str(template.get("Resources", {}))))


def ssm_writes(template: Mapping[str, Any]) -> set[str]:
    return {
        resource["Properties"]["Name"]
        for resource in template.get("Resources", {}).values()
        if resource["Type"] == "AWS::SSM::Parameter" and "Name" in resource.get("Properties", {})
    }
