"""The replacement rules the teardown guard and the rollout walk share (infra/stateful.py),
checked against CloudFormation's schemas and against changes CloudFormation replaces for
although the schemas' create-only lists do not say so."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from synth_support import FLAG_COMBINATIONS, REAL_ZONE, resources_of_type, synthesize

from infra import stateful


def template(stack: str, **flags: str) -> dict[str, Any]:
    synthesis = synthesize(**{**REAL_ZONE, **flags})
    assert synthesis.error is None, synthesis.error
    return synthesis.template(stack)


def judged(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    return stateful.changes(
        stateful.entries(before["Resources"]), stateful.entries(after["Resources"])
    )


def the(template_: dict[str, Any], resource_type: str, prefix: str = "") -> str:
    (logical_id,) = [
        logical_id
        for logical_id in resources_of_type(template_, resource_type)
        if logical_id.startswith(prefix)
    ]
    return logical_id


@pytest.mark.parametrize(
    "resource_type",
    sorted(stateful.REPLACING_PROPERTIES) + sorted(stateful.REFERENCED_REPLACING_PROPERTIES),
)
def test_the_tables_cover_the_cloudformation_schemas(resource_type: str) -> None:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    create_only = {
        pointer.split("/")[2]
        for pointer in schema.get("createOnlyProperties", [])
        if pointer.startswith("/properties/")
    }
    table = stateful.REPLACING_PROPERTIES.get(
        resource_type
    ) or stateful.REFERENCED_REPLACING_PROPERTIES.get(resource_type, ())
    assert create_only <= set(table)


@pytest.mark.parametrize("combination", sorted(FLAG_COMBINATIONS))
def test_every_type_a_guarded_property_refers_to_is_known(combination: str) -> None:
    synthesis = synthesize(**FLAG_COMBINATIONS[combination])
    assert synthesis.error is None, synthesis.error
    known = set(stateful.REPLACING_PROPERTIES) | set(stateful.REFERENCED_REPLACING_PROPERTIES)
    for stack, template_ in synthesis.templates.items():
        unknown = stateful.referenced_types(template_["Resources"]) - known
        assert unknown == set(), stack


def test_a_new_launch_template_version_replaces_the_box() -> None:
    """The box names its launch template's LatestVersionNumber (a GetAtt): any change to the
    template's data makes a new version, and a changed LaunchTemplate replaces an instance."""
    before = template("ZeroCostStack", phase="1")
    after = copy.deepcopy(before)
    launch_template = the(after, "AWS::EC2::LaunchTemplate")
    data = after["Resources"][launch_template]["Properties"]["LaunchTemplateData"]
    data["MetadataOptions"]["HttpPutResponseHopLimit"] = 2
    assert judged(before, after) == {"WebBoxB619B63F": "replaced"}


def test_a_changed_block_device_replaces_the_box_but_delete_on_termination_does_not() -> None:
    before = template("ZeroCostStack", phase="1")
    box = "WebBoxB619B63F"
    resized = copy.deepcopy(before)
    resized["Resources"][box]["Properties"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] = 16
    assert judged(before, resized) == {box: "replaced"}
    kept = copy.deepcopy(before)
    kept["Resources"][box]["Properties"]["BlockDeviceMappings"][0]["Ebs"]["DeleteOnTermination"] = (
        False
    )
    assert judged(before, kept) == {}


def test_replacing_a_referenced_resource_replaces_the_stateful_one() -> None:
    before = template("ZeroCostStack", phase="2")
    after = copy.deepcopy(before)
    subnets = the(after, "AWS::ElastiCache::SubnetGroup", "Cache")
    after["Resources"][subnets]["Properties"]["CacheSubnetGroupName"] = "renamed"
    assert judged(before, after) == {the(after, "AWS::ElastiCache::ReplicationGroup"): "replaced"}


def test_an_in_place_change_of_a_referenced_resource_replaces_nothing() -> None:
    before = template("ZeroCostStack", phase="2")
    after = copy.deepcopy(before)
    subnets = the(after, "AWS::ElastiCache::SubnetGroup", "Cache")
    after["Resources"][subnets]["Properties"]["Description"] = "another description"
    assert judged(before, after) == {}


def test_a_renamed_vpc_deletes_it_and_replaces_every_subnet() -> None:
    before = template("ZeroCostStack", phase="1")
    vpc = the(before, "AWS::EC2::VPC")
    after = copy.deepcopy(before)
    after["Resources"]["NetworkRenamedVpc0000"] = after["Resources"].pop(vpc)
    found = judged(before, after)
    assert found.pop(vpc) == "deleted"
    # Subnets name the VPC by Ref: a new logical ID is a new VPC, so each subnet is replaced,
    # and with its subnet the box
    subnets = set(resources_of_type(before, "AWS::EC2::Subnet"))
    assert len(subnets) == 6
    assert found == dict.fromkeys({*subnets, "WebBoxB619B63F"}, "replaced")


def test_a_disposable_group_is_left_out() -> None:
    drill = template("ProdStack", phase="3", restore_drill="drill-2026-12-01")
    assert not any(
        entry.startswith("RestoreDrill") for entry in stateful.entries(drill["Resources"])
    )


def test_changes_name_deletions_and_replacements() -> None:
    assert stateful.changes(["A=1", "B=2", "C=3"], ["A=1", "B=9", "D=4"]) == {
        "B": "replaced",
        "C": "deleted",
    }


def test_moving_a_group_from_its_auth_token_to_users_is_a_replacement_either_way() -> None:
    """CloudFormation cannot switch a group's authentication in place (docs/security.md):
    the guard must hold a group created with a token when the next deploy gives it users."""
    with_token = template("ZeroCostStack", phase="2", cache_auth_token="ZeroCostStack")
    with_users = template("ZeroCostStack", phase="2")
    group = the(with_users, "AWS::ElastiCache::ReplicationGroup")
    assert "AuthToken" in with_token["Resources"][group]["Properties"]
    assert "UserGroupIds" in with_users["Resources"][group]["Properties"]
    assert judged(with_token, with_users) == {group: "replaced"}
    assert judged(with_users, with_token) == {group: "replaced"}


def test_a_token_groups_digest_is_the_one_recorded_before_users_existed() -> None:
    """Deployed guards recorded token groups without any authentication key: keeping the
    token must not look like a replacement to them."""
    with_token = template("ZeroCostStack", phase="2", cache_auth_token="ZeroCostStack")
    group = the(with_token, "AWS::ElastiCache::ReplicationGroup")
    resource = with_token["Resources"][group]
    chosen = {
        name: {k.lower(): v for k, v in resource["Properties"].items()}.get(name.lower())
        for name in stateful.REPLACING_PROPERTIES["AWS::ElastiCache::ReplicationGroup"]
    }
    identity = [
        group,
        resource["Type"],
        stateful._expand(chosen, with_token["Resources"], (group,)),
    ]
    assert f"{group}={stateful._digest(identity)}" in stateful.entries(with_token["Resources"])


def test_another_user_group_on_a_users_group_changes_in_place() -> None:
    before = template("ZeroCostStack", phase="2")
    after = copy.deepcopy(before)
    group = the(after, "AWS::ElastiCache::ReplicationGroup")
    after["Resources"][group]["Properties"]["UserGroupIds"] = ["another-group"]
    assert judged(before, after) == {}
