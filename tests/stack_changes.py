"""Judge a template change the way CloudFormation would, for the phase-transition tests.

A resource is replaced when its type changes or any of its create-only properties (read from
the CloudFormation resource schemas that cfn-lint ships) changes, including a create-only
property that references a resource which is itself replaced, or, for a stateful type, one of
the properties infra/stateful.py adds to the schema's (an engine switch). What counts as
stateful is infra/stateful.py's rule, the teardown guard's. A resource is deleted when its
logical ID disappears (a renamed construct is a deletion plus a creation).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from cfnlint.schema.manager import ResourceNotFoundError

from infra import stateful

REGION = "us-east-1"
# DeletionPolicy values that keep data; any resource carrying one is treated as stateful.
KEEPING_POLICIES = {"Retain", "RetainExceptOnCreate", "Snapshot"}
# Removed from the template, these are orphaned rather than deleted: the data stays.
ORPHANING_POLICIES = {"Retain", "RetainExceptOnCreate"}
_MISSING = object()


@dataclass(frozen=True)
class Finding:
    stack: str
    logical_id: str
    resource_type: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.stack}/{self.logical_id} ({self.resource_type}) {self.kind}: {self.detail}"


def is_stateful(resource: Mapping[str, Any]) -> bool:
    """A type the teardown guard keeps (infra/stateful.py), or a resource whose DeletionPolicy
    keeps its data."""
    return resource["Type"] in stateful.STATEFUL_TYPES or (
        resource.get("DeletionPolicy") in KEEPING_POLICIES
    )


@functools.cache
def create_only_paths(resource_type: str) -> tuple[tuple[str, ...], ...]:
    """`/properties/A/B` pointers of the type's schema as ("A", "B"); custom types have none."""
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, resource_type).schema
    except ResourceNotFoundError:
        return ()
    return tuple(
        tuple(pointer.split("/")[2:])
        for pointer in schema.get("createOnlyProperties", [])
        if pointer.startswith("/properties/")
    )


def owned_by(stack: str, logical_id: str, construct_paths: Collection[str]) -> bool:
    """Whether the resource sits below one of these construct paths ("Stack/Construct/...").

    CDK builds a logical ID from the construct path's parts (alphanumerics only) plus a hash,
    so a path prefix is a logical-ID prefix; templates synthesized in-process carry no
    aws:cdk:path metadata to read instead.
    """
    for path in construct_paths:
        owner, _, below = path.partition("/")
        if owner == stack and logical_id.startswith(re.sub(r"[^A-Za-z0-9]", "", below)):
            return True
    return False


def _value_at(properties: Any, path: tuple[str, ...]) -> Any:
    value = properties
    for part in path:
        if part == "*":
            return value
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _references(value: Any) -> Iterator[str]:
    """Logical IDs named by Ref / Fn::GetAtt anywhere inside a property value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                yield str(target)
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def _show(value: Any) -> str:
    return "(absent)" if value is _MISSING else json.dumps(value, sort_keys=True)[:120]


def replaced(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, str]:
    """Every logical ID in both templates that CloudFormation would replace, with the reason."""
    old, new = before.get("Resources", {}), after.get("Resources", {})
    common = sorted(set(old) & set(new))
    reasons: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for logical_id in common:
            if logical_id in reasons:
                continue
            reason = _replacement_reason(old[logical_id], new[logical_id], reasons)
            if reason:
                reasons[logical_id] = reason
                changed = True
    return reasons


def _replacement_reason(
    old: Mapping[str, Any], new: Mapping[str, Any], replaced_ids: Collection[str]
) -> str:
    if old["Type"] != new["Type"]:
        return f"type {old['Type']} -> {new['Type']}"
    create_only = create_only_paths(old["Type"])
    for name in stateful.REPLACING_PROPERTIES.get(old["Type"], ()):
        if (name,) in create_only:
            continue
        before = _value_at(old.get("Properties", {}), (name,))
        after = _value_at(new.get("Properties", {}), (name,))
        if before != after:
            return f"replacing {name}: {_show(before)} -> {_show(after)}"
    for path in create_only:
        before = _value_at(old.get("Properties", {}), path)
        after = _value_at(new.get("Properties", {}), path)
        name = "/".join(path)
        if before != after:
            return f"create-only {name}: {_show(before)} -> {_show(after)}"
        moved = sorted(set(_references(after)) & set(replaced_ids))
        if moved:
            return f"create-only {name} references replaced {', '.join(moved)}"
    return ""


def stateful_changes(
    stack: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    removable_paths: Collection[str] = (),
    protected_paths: Collection[str] = (),
) -> list[Finding]:
    """Replacements and deletions of stateful resources. A deletion is accepted when the
    resource's construct path starts with one of `removable_paths` (a flag turned its construct
    off) and with none of `protected_paths` (what must outlive that flag)."""
    old, new = before.get("Resources", {}), after.get("Resources", {})
    findings = [
        Finding(stack, logical_id, old[logical_id]["Type"], "REPLACEMENT", reason)
        for logical_id, reason in replaced(before, after).items()
        if is_stateful(old[logical_id])
    ]
    for logical_id in sorted(set(old) - set(new)):
        resource = old[logical_id]
        if not is_stateful(resource) or resource.get("DeletionPolicy") in ORPHANING_POLICIES:
            continue
        if owned_by(stack, logical_id, removable_paths) and not owned_by(
            stack, logical_id, protected_paths
        ):
            continue
        findings.append(
            Finding(stack, logical_id, resource["Type"], "DELETION", "removed from the template")
        )
    for logical_id in sorted(set(old) & set(new)):
        if old[logical_id]["Type"] != "AWS::EC2::Instance":
            continue
        user_data = [
            template[logical_id].get("Properties", {}).get("UserData") for template in (old, new)
        ]
        if user_data[0] != user_data[1]:
            findings.append(
                Finding(
                    stack,
                    logical_id,
                    "AWS::EC2::Instance",
                    "RESTART",
                    "UserData changed: an in-place update stops and starts the box",
                )
            )
    return findings
