"""Walking the phases and increments up and down never replaces or deletes a stateful
resource that the transition should keep (judged by CloudFormation's create-only rules)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from prod_support import PHASE3_MIGRATION
from stack_changes import create_only_paths, stateful_changes
from synth_support import REAL_ZONE, context_for, synthesize

from infra.config import Settings, load_settings

DRILL_SNAPSHOT = "drill-2026-12-01"
# One worker walks the phases: the flag sets these tests share are synthesized once.
pytestmark = pytest.mark.xdist_group("rollout")
_CONTEXTS: dict[str, dict[str, str]] = {
    "phase1": {"phase": "1"},
    "phase1-separate-redis": {"phase": "1", "separate_redis": "true"},
    "phase1-alb": {"phase": "1", "alb": "true"},
    "phase1-separate-redis-alb": {"phase": "1", "separate_redis": "true", "alb": "true"},
    "phase2": {"phase": "2"},
    "phase3": {"phase": "3"},
    "phase3-migration": PHASE3_MIGRATION,
    "phase3-restore-drill": {"phase": "3", "restore_drill": DRILL_SNAPSHOT},
}
# In the operator's own zone, so the public name's records exist.
CONTEXTS = {name: {**REAL_ZONE, **flags} for name, flags in _CONTEXTS.items()}
INCREMENTS_UP = ["phase1", "phase1-separate-redis", "phase1-separate-redis-alb", "phase2", "phase3"]
WALKS = [
    ["phase1", "phase2", "phase3", "phase2", "phase1"],
    INCREMENTS_UP,
    list(reversed(INCREMENTS_UP)),
    ["phase1", "phase1-alb", "phase1"],
    ["phase1", "phase3", "phase1"],
    ["phase3", "phase3-migration", "phase3", "phase3-migration", "phase2"],
    ["phase3", "phase3-restore-drill", "phase3"],
]
TRANSITIONS = sorted({(walk[i], walk[i + 1]) for walk in WALKS for i in range(len(walk) - 1)})
STACKS = ("ZeroCostStack", "ProdStack")
# The public name must survive every increment and production being rolled back.
PROTECTED = ("ZeroCostStack/Dns/OldRecord",)


def settings_of(name: str) -> Settings:
    return load_settings(context_for(CONTEXTS[name]))


def removable_paths(before: Settings, after: Settings) -> tuple[str, ...]:
    """Construct paths whose resources the flag change turns off, so they may go."""
    paths: list[str] = []
    if before.zero_cost.separate_redis and not after.zero_cost.separate_redis:
        paths.append("ZeroCostStack/Cache")
    if before.zero_cost.alb and not after.zero_cost.alb:
        paths += ["ZeroCostStack/LoadBalancer", "ZeroCostStack/Certificate"]
    if before.zero_cost.instances > after.zero_cost.instances:
        paths.append("ZeroCostStack/Web/Box2")
    if before.prod.migrate_data and not after.prod.migrate_data:
        paths += ["ProdStack/RedisCutover", "ProdStack/BoxRole"]
    if before.prod.restore_drill and not after.prod.restore_drill:
        paths.append("ProdStack/RestoreDrill")
    if before.prod.shift.enabled and not after.prod.shift.enabled:
        paths.append("ProdStack/TrafficShift")
    if before.prod_enabled and not after.prod_enabled:
        paths.append("ProdStack/")
    return tuple(paths)


def template(name: str, stack: str) -> dict[str, Any]:
    synthesis = synthesize(**CONTEXTS[name])
    assert synthesis.error is None, synthesis.error
    return synthesis.template(stack)


@pytest.mark.parametrize(
    ("before", "after"), TRANSITIONS, ids=[f"{a}->{b}" for a, b in TRANSITIONS]
)
def test_transition_keeps_every_stateful_resource(before: str, after: str) -> None:
    allowed = removable_paths(settings_of(before), settings_of(after))
    findings = [
        str(finding)
        for stack in STACKS
        for finding in stateful_changes(
            stack, template(before, stack), template(after, stack), allowed, PROTECTED
        )
    ]
    assert findings == []


def test_create_only_properties_come_from_the_shipped_schemas() -> None:
    assert {("Port",), ("KmsKeyId",), ("CacheSubnetGroupName",)} <= set(
        create_only_paths("AWS::ElastiCache::ReplicationGroup")
    )
    assert ("CidrBlock",) in create_only_paths("AWS::EC2::Subnet")
    assert create_only_paths("Custom::TrafficShift") == (("ServiceToken",),)


def _find(resources: dict[str, Any], resource_type: str, id_prefix: str) -> str:
    (logical_id,) = (
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == resource_type and logical_id.startswith(id_prefix)
    )
    return logical_id


def test_a_changed_create_only_property_is_a_replacement() -> None:
    before = template("phase3", "ProdStack")
    after = copy.deepcopy(before)
    group = _find(after["Resources"], "AWS::ElastiCache::ReplicationGroup", "Cache")
    after["Resources"][group]["Properties"]["Port"] = 6379

    findings = stateful_changes("ProdStack", before, after)

    assert [(f.logical_id, f.kind) for f in findings] == [(group, "REPLACEMENT")]
    assert "create-only Port: 6380 -> 6379" in findings[0].detail


def test_a_renamed_construct_deletes_the_old_resource_and_replaces_its_dependents() -> None:
    before = template("phase1", "ZeroCostStack")
    vpc = _find(before["Resources"], "AWS::EC2::VPC", "NetworkVpc")
    after = json.loads(json.dumps(before).replace(f'"{vpc}"', '"NetworkRenamedVpc0000"'))

    findings = stateful_changes("ZeroCostStack", before, after)

    assert (vpc, "DELETION") in {(f.logical_id, f.kind) for f in findings}
    replaced_subnets = {
        f.logical_id
        for f in findings
        if f.kind == "REPLACEMENT" and f.resource_type == "AWS::EC2::Subnet"
    }
    assert len(replaced_subnets) == 6


def test_replacing_a_referenced_resource_replaces_the_stateful_one() -> None:
    before = template("phase2", "ZeroCostStack")
    after = copy.deepcopy(before)
    subnets = _find(after["Resources"], "AWS::ElastiCache::SubnetGroup", "Cache")
    after["Resources"][subnets]["Properties"]["CacheSubnetGroupName"] = "renamed"
    group = _find(after["Resources"], "AWS::ElastiCache::ReplicationGroup", "Cache")

    findings = stateful_changes("ZeroCostStack", before, after)

    assert [(f.logical_id, f.kind) for f in findings] == [(group, "REPLACEMENT")]
    assert f"references replaced {subnets}" in findings[0].detail


def test_changed_user_data_restarts_the_box() -> None:
    before = template("phase1", "ZeroCostStack")
    after = copy.deepcopy(before)
    box = _find(after["Resources"], "AWS::EC2::Instance", "WebBox")
    after["Resources"][box]["Properties"]["UserData"] = {"Fn::Base64": "#!/bin/bash\necho changed"}

    assert [f.kind for f in stateful_changes("ZeroCostStack", before, after)] == ["RESTART"]


def test_a_deletion_the_flags_do_not_explain_is_reported() -> None:
    findings = stateful_changes(
        "ZeroCostStack", template("phase2", "ZeroCostStack"), template("phase1", "ZeroCostStack")
    )
    deleted = {f.resource_type for f in findings if f.kind == "DELETION"}
    assert {"AWS::ElastiCache::ReplicationGroup", "AWS::EC2::Instance"} <= deleted


def test_rolling_production_back_must_keep_the_old_record() -> None:
    before = template("phase3", "ZeroCostStack")
    after = copy.deepcopy(template("phase2", "ZeroCostStack"))
    old_record = _find(after["Resources"], "AWS::Route53::RecordSet", "DnsOldRecord")
    del after["Resources"][old_record]

    findings = stateful_changes("ZeroCostStack", before, after, ("ZeroCostStack/",), PROTECTED)

    assert [(f.logical_id, f.kind) for f in findings] == [(old_record, "DELETION")]


@pytest.mark.parametrize(
    ("phase", "stack"), [("2", "ZeroCostStack"), ("3", "ProdStack")], ids=["phase2", "prod"]
)
def test_switching_the_cache_engine_is_announced_as_a_replacement(phase: str, stack: str) -> None:
    def cache(engine: str) -> dict[str, Any]:
        synthesis = synthesize(phase=phase, cache_engine=engine)
        assert synthesis.error is None, synthesis.error
        return synthesis.template(stack)

    findings = stateful_changes(stack, cache("redis"), cache("valkey"))

    assert [(f.resource_type, f.kind) for f in findings] == [
        ("AWS::ElastiCache::ReplicationGroup", "REPLACEMENT")
    ]
    assert '"redis" -> "valkey"' in findings[0].detail


def test_a_restore_drill_from_a_new_snapshot_replaces_only_the_drill_group() -> None:
    def drill(snapshot: str) -> dict[str, Any]:
        synthesis = synthesize(phase="3", restore_drill=snapshot)
        assert synthesis.error is None, synthesis.error
        return synthesis.template("ProdStack")

    findings = stateful_changes("ProdStack", drill(DRILL_SNAPSHOT), drill("drill-2026-12-08"))

    assert [(f.logical_id.startswith("RestoreDrill"), f.kind) for f in findings] == [
        (True, "REPLACEMENT")
    ]
    assert f'create-only SnapshotName: "{DRILL_SNAPSHOT}" -> "drill-2026-12-08"' in (
        findings[0].detail
    )
