"""How ProdStack composes the Redis cutover and the traffic shift behind their flags."""

from __future__ import annotations

import json
from typing import Any

from prod_support import PHASE3_MIGRATION, only
from synth_support import REAL_ZONE, context_for, resources_of_type, synthesize

from infra.config import load_settings
from infra.parameters import PRODUCTION_NAMES

Template = dict[str, Any]


def _parameter(template: Template, name: str) -> dict[str, str]:
    (logical_id,) = [
        logical_id
        for logical_id, parameter in template["Parameters"].items()
        if parameter.get("Default") == name
    ]
    return {"Ref": logical_id}


def _logical_id(template: Template, resource_type: str, prefix: str) -> str:
    (logical_id,) = [
        logical_id
        for logical_id in resources_of_type(template, resource_type)
        if logical_id.startswith(prefix)
    ]
    return logical_id


def test_without_the_flags_nothing_migrates(prod: Template) -> None:
    custom = {r["Type"] for r in prod["Resources"].values() if r["Type"].startswith("Custom::")}
    assert custom == {"Custom::TeardownGuard"}


def _steps(template: Template) -> dict[str, Any]:
    _, cutover = only(template, "Custom::RedisCutover")
    return cutover


def _actions(template: Template, key: str) -> list[str]:
    return [step["Parameters"]["Action"] for step in _steps(template)[key]]


def _script(template: Template) -> str:
    (document,) = resources_of_type(template, "AWS::SSM::Document").values()
    return json.dumps(document["Properties"]["Content"]["mainSteps"])


def test_cutover_follows_then_switches_each_box_then_drains(migration: Template) -> None:
    cutover = _steps(migration)
    names = [step["Name"] for step in cutover["Apply"]]
    assert names[:2] == ["start following old -> new (Box)", "wait for the follow (Box)"]
    assert names[2:-1] == ["switch to the new Redis (Box)", "switch to the new Redis (Box2)"]
    assert names[-1] == "drain, verify, stop the follow (Box)"
    assert _actions(migration, "Apply") == [
        "follow-start forward",
        "follow-wait",
        "switch-to-new",
        "switch-to-new",
        "follow-stop",
    ]
    assert "redis-cutover.sh {{ Action }}" in _script(migration)
    assert "Commands" not in json.dumps(cutover)
    assert cutover["Generation"] == "1"


def test_cutover_reverts_by_following_back_before_switching_back(migration: Template) -> None:
    assert _actions(migration, "Revert") == [
        "follow-start reverse",
        "follow-wait",
        "switch-to-old",
        "switch-to-old",
        "follow-stop",
    ]


def test_two_boxes_switch_in_order_and_back_in_reverse_order() -> None:
    template = synthesize(**{**PHASE3_MIGRATION, "instances": "2"}).template("ProdStack")
    cutover = _steps(template)
    switched = [step["Name"] for step in cutover["Apply"] if "switch" in step["Name"]]
    back = [step["Name"] for step in cutover["Revert"] if "switch" in step["Name"]]
    assert switched == ["switch to the new Redis (Box)", "switch to the new Redis (Box2)"]
    assert back == ["switch back to its own Redis (Box2)", "switch back to its own Redis (Box)"]


def test_cutover_reads_both_redis_from_what_the_stacks_publish(migration: Template) -> None:
    commands = _script(migration)
    group = _logical_id(migration, "AWS::ElastiCache::ReplicationGroup", "Cache")
    for name in (PRODUCTION_NAMES.old_redis_host, PRODUCTION_NAMES.old_redis_port):
        assert json.dumps(_parameter(migration, name)) in commands
    assert json.dumps({"Fn::GetAtt": [group, "PrimaryEndPoint.Address"]}) in commands
    follow = _logical_id(migration, "AWS::SecretsManager::Secret", "CacheUsersFollowPassword")
    service = _logical_id(migration, "AWS::SecretsManager::Secret", "CacheUsersServicePassword")
    assert f"NEW_SECRET_ARN='\", {json.dumps({'Ref': follow})}" in commands
    assert f"NEW_SERVICE_SECRET_ARN='\", {json.dumps({'Ref': service})}" in commands
    assert "NEW_USER=follow" in commands and "NEW_SERVICE_USER=service" in commands
    assert "NEW_PORT=6380" in commands and "NEW_TLS=true" in commands


def test_the_boxes_reach_the_production_redis_and_read_their_users_passwords(
    migration: Template,
) -> None:
    box_group = _parameter(migration, PRODUCTION_NAMES.box_security_group)
    rules = [
        rule["Properties"]
        for rule in resources_of_type(migration, "AWS::EC2::SecurityGroupIngress").values()
    ]
    assert [
        r for r in rules if r.get("SourceSecurityGroupId") == box_group and r["FromPort"] == 6380
    ]
    box_role = PRODUCTION_NAMES.box_role_name("ZeroCostStack", "us-east-1")
    box_policies = [
        policy["Properties"]
        for policy in resources_of_type(migration, "AWS::IAM::Policy").values()
        if policy["Properties"]["Roles"] == [box_role]
    ]
    assert box_policies
    for user in ("Follow", "Service"):
        password = _logical_id(
            migration, "AWS::SecretsManager::Secret", f"CacheUsers{user}Password"
        )
        assert json.dumps({"Ref": password}) in json.dumps(box_policies)
    default = _logical_id(migration, "AWS::SecretsManager::Secret", "CacheUsersDefaultPassword")
    assert json.dumps({"Ref": default}) not in json.dumps(box_policies)


def test_no_copy_lambda_or_checkpoint_table_is_left(migration: Template) -> None:
    assert not resources_of_type(migration, "Custom::RedisCopy")
    assert not resources_of_type(migration, "AWS::DynamoDB::Table")


def test_cutover_waits_for_the_endpoints_and_the_cache_rules(migration: Template) -> None:
    cutover_id = _logical_id(migration, "Custom::RedisCutover", "RedisCutover")
    depends_on = set(migration["Resources"][cutover_id]["DependsOn"])
    endpoints = set(resources_of_type(migration, "AWS::EC2::VPCEndpoint"))
    assert endpoints <= depends_on
    cache_rules = {
        logical_id
        for logical_id in resources_of_type(migration, "AWS::EC2::SecurityGroupIngress")
        if logical_id.startswith("CacheSecurityGroup")
    }
    assert cache_rules <= depends_on


def test_shift_walks_the_weighted_pair_gated_by_the_alarms(migration: Template) -> None:
    _, shift = only(migration, "Custom::TrafficShift")
    assert shift["RecordName"] == "api.prostudio.example.com"
    assert shift["ZoneId"] == "Z0000000000EXAMPLE"
    assert (shift["OldSetId"], shift["NewSetId"]) == ("old", "new")
    pace = load_settings(context_for(PHASE3_MIGRATION)).prod.shift
    assert (shift["TargetWeight"], shift["Step"], shift["IntervalSeconds"]) == (
        str(pace.target_weight),
        str(pace.step),
        str(pace.interval_seconds),
    )
    assert shift["Alarms"] == [
        {"Ref": _logical_id(migration, "AWS::CloudWatch::Alarm", f"Monitoring{name}")}
        for name in ("P99Latency", "ServerErrorRate", "UnhealthyTargets")
    ]


def test_shift_runs_after_records_service_and_cutover(migration: Template) -> None:
    shift_id = _logical_id(migration, "Custom::TrafficShift", "TrafficShift")
    depends_on = set(migration["Resources"][shift_id]["DependsOn"])
    assert {
        _logical_id(migration, "AWS::Route53::RecordSet", "DnsNewRecord"),
        _logical_id(migration, "AWS::ECS::Service", "Service"),
        _logical_id(migration, "Custom::RedisCutover", "RedisCutover"),
    } <= depends_on


def test_turning_the_shift_off_deletes_it_so_all_traffic_returns_to_old(
    migration: Template,
) -> None:
    shift_id = _logical_id(migration, "Custom::TrafficShift", "TrafficShift")
    assert migration["Resources"][shift_id]["DeletionPolicy"] == "Delete"


def test_records_keep_their_initial_weights_when_a_shift_is_configured() -> None:
    synthesis = synthesize(**PHASE3_MIGRATION, **REAL_ZONE)
    weights = {
        r["Properties"]["SetIdentifier"]: r["Properties"]["Weight"]
        for stack in ("ZeroCostStack", "ProdStack")
        for r in resources_of_type(synthesis.template(stack), "AWS::Route53::RecordSet").values()
    }
    assert weights == {"old": 100, "new": 0}


def test_a_second_generation_runs_the_cutover_again() -> None:
    flags = {**PHASE3_MIGRATION, "copy_generation": "2"}
    template = synthesize(**flags).template("ProdStack")
    assert _steps(template)["Generation"] == "2"
