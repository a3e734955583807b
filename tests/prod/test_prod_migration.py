"""How ProdStack composes the Redis copy and the traffic shift behind their flags."""

from __future__ import annotations

import json
from typing import Any

from prod_support import PHASE3_MIGRATION, only
from synth_support import context_for, resources_of_type, synthesize

from infra import parameters
from infra.config import load_settings

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
    assert not [r for r in prod["Resources"].values() if r["Type"].startswith("Custom::")]


def test_copy_reads_the_old_redis_from_ssm_and_writes_production(migration: Template) -> None:
    _, copy = only(migration, "Custom::RedisCopy")
    group = _logical_id(migration, "AWS::ElastiCache::ReplicationGroup", "Cache")
    assert copy["SourceHost"] == _parameter(migration, parameters.OLD_REDIS_HOST)
    assert copy["SourcePort"] == _parameter(migration, parameters.OLD_REDIS_PORT)
    assert copy["SourceTls"] == "true"
    assert copy["SourceSecretArn"] == _parameter(migration, parameters.OLD_REDIS_SECRET_ARN)
    assert copy["TargetHost"] == {"Fn::GetAtt": [group, "PrimaryEndPoint.Address"]}
    assert copy["TargetPort"] == "6380"
    assert copy["TargetTls"] == "true"
    assert copy["TargetSecretArn"] == {
        "Ref": _logical_id(migration, "AWS::SecretsManager::Secret", "CacheAuthToken")
    }
    assert copy["Generation"] == "1"


def test_copy_handlers_run_in_the_app_subnets_in_productions_own_group(
    migration: Template,
) -> None:
    handlers = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources_of_type(migration, "AWS::Lambda::Function").items()
        if "VpcConfig" in resource["Properties"]
    }
    assert {logical_id[: len("RedisCopy")] for logical_id in handlers} == {"RedisCopy"}
    for properties in handlers.values():
        assert properties["VpcConfig"]["SecurityGroupIds"] == [
            {
                "Fn::GetAtt": [
                    _logical_id(migration, "AWS::EC2::SecurityGroup", "NetworkMigrationFunctions"),
                    "GroupId",
                ]
            }
        ]
        assert json.dumps(_parameter(migration, parameters.APP_SUBNET_IDS)) in json.dumps(
            properties["VpcConfig"]["SubnetIds"]
        )


def test_copy_waits_for_the_endpoints_and_the_cache_rules(migration: Template) -> None:
    copy_id = _logical_id(migration, "Custom::RedisCopy", "RedisCopy")
    depends_on = set(migration["Resources"][copy_id]["DependsOn"])
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


def test_shift_runs_after_records_service_and_copy(migration: Template) -> None:
    shift_id = _logical_id(migration, "Custom::TrafficShift", "TrafficShift")
    depends_on = set(migration["Resources"][shift_id]["DependsOn"])
    assert {
        _logical_id(migration, "AWS::Route53::RecordSet", "DnsOldRecord"),
        _logical_id(migration, "AWS::Route53::RecordSet", "DnsNewRecord"),
        _logical_id(migration, "AWS::ECS::Service", "Service"),
        _logical_id(migration, "Custom::RedisCopy", "RedisCopy"),
    } <= depends_on


def test_turning_the_shift_off_deletes_it_so_all_traffic_returns_to_old(
    migration: Template,
) -> None:
    shift_id = _logical_id(migration, "Custom::TrafficShift", "TrafficShift")
    assert migration["Resources"][shift_id]["DeletionPolicy"] == "Delete"


def test_records_keep_their_initial_weights_when_a_shift_is_configured(
    migration: Template,
) -> None:
    weights = {
        r["Properties"]["SetIdentifier"]: r["Properties"]["Weight"]
        for r in resources_of_type(migration, "AWS::Route53::RecordSet").values()
    }
    assert weights == {"old": 100, "new": 0}


def test_a_second_generation_copies_with_the_chosen_policy() -> None:
    flags = {**PHASE3_MIGRATION, "copy_generation": "2", "copy_policy": "skip"}
    template = synthesize(**flags).template("ProdStack")
    (copy,) = resources_of_type(template, "Custom::RedisCopy").values()
    assert copy["Properties"]["Policy"] == "skip"
    assert copy["Properties"]["Generation"] in (2, "2")
