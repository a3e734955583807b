"""Box updates in the synthesized ZeroCostStack: box by box through SSM Run Command, carrying
the release's assets, scoped IAM, and no unchecked cfn-hup path left."""

from __future__ import annotations

import json
from typing import Any

from synth_support import resources_of_type, synthesize


def two_boxes() -> dict[str, Any]:
    return synthesize(phase=2, instances=2).template("ZeroCostStack")


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (resource,) = resources_of_type(template, resource_type).values()
    return resource


def box_ids(template: dict[str, Any]) -> list[str]:
    """Box first, then Box2."""
    return sorted(
        resources_of_type(template, "AWS::EC2::Instance"), key=lambda i: i.startswith("WebBox2")
    )


def test_each_box_is_updated_in_turn_by_the_new_releases_update_script() -> None:
    update = only(two_boxes(), "Custom::BoxUpdate")["Properties"]

    steps = update["Apply"]
    assert [step["Name"] for step in steps] == ["update Box", "update Box2"]
    assert [step["InstanceId"] for step in steps] == [
        {"Ref": logical_id} for logical_id in box_ids(two_boxes())
    ]
    assert update["Revert"] == []
    commands = json.dumps(steps[0]["Commands"])
    assert "$stage/app/deploy/update.sh" in commands
    assert commands.count("aws s3 cp") == 2
    assert "PROSTUDIO_REDIS_MODE=external" in commands


def test_the_update_carries_the_asset_of_this_release() -> None:
    update = only(two_boxes(), "Custom::BoxUpdate")["Properties"]
    box = resources_of_type(two_boxes(), "AWS::EC2::Instance")[box_ids(two_boxes())[0]]
    sources = box["Metadata"]["AWS::CloudFormation::Init"]["app"]["sources"]

    commands = json.dumps(update["Apply"][0]["Commands"])
    for source in sources.values():
        key = json.dumps(source).split("/")[-1].split('"')[0]
        assert key.endswith(".zip") and key in commands


def test_no_box_runs_cfn_hup_any_more() -> None:
    for box in resources_of_type(two_boxes(), "AWS::EC2::Instance").values():
        init = box["Metadata"]["AWS::CloudFormation::Init"]
        assert "updates" not in init
        assert "cfn-hup" not in json.dumps(init)


def test_run_command_is_allowed_only_on_the_boxes_and_the_shell_document() -> None:
    (role_id,) = [
        logical_id
        for logical_id, role in resources_of_type(two_boxes(), "AWS::IAM::Role").items()
        if "Run Command" in role["Properties"].get("Description", "")
    ]
    statements = [
        statement
        for policy in resources_of_type(two_boxes(), "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (send,) = [s for s in statements if s["Action"] == "ssm:SendCommand"]
    resources = json.dumps(send["Resource"])
    assert "document/AWS-RunShellScript" in resources
    for logical_id in box_ids(two_boxes()):
        assert json.dumps({"Ref": logical_id}) in resources
    assert len(send["Resource"]) == 3
    assert all("ssm:SendCommand" not in json.dumps(s) for s in statements if s["Resource"] == "*")


def test_the_update_fits_in_the_custom_resource_hour() -> None:
    update = only(two_boxes(), "Custom::BoxUpdate")
    assert update["Properties"]["ServiceTimeout"] == "3600" or update.get("ServiceTimeout")
    total = sum(int(step["TimeoutSeconds"]) for step in update["Properties"]["Apply"])
    assert total < 3300
