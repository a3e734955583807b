"""Box updates in the synthesized ZeroCostStack: box by box through the project's own SSM
document, carrying the release's assets, output kept in CloudWatch Logs, scoped IAM, and no
unchecked cfn-hup path left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from synth_support import resources_of_type, scratch_app, synthesize

from infra.constructs.box_role import release_policy


def two_boxes() -> dict[str, Any]:
    return synthesize(phase=2).template("ZeroCostStack")


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (resource,) = resources_of_type(template, resource_type).values()
    return resource


def box_ids(template: dict[str, Any]) -> list[str]:
    """Box first, then Box2."""
    return sorted(
        resources_of_type(template, "AWS::EC2::Instance"), key=lambda i: i.startswith("WebBox2")
    )


def _document(template: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = template["Resources"][step["Document"]["Ref"]]["Properties"][
        "Content"
    ]
    return content


def test_each_box_is_updated_in_turn_by_the_new_releases_update_script() -> None:
    update = only(two_boxes(), "Custom::BoxUpdate")["Properties"]

    steps = update["Apply"]
    assert [step["Name"] for step in steps] == ["update Box", "update Box2"]
    assert [step["InstanceId"] for step in steps] == [
        {"Ref": logical_id} for logical_id in box_ids(two_boxes())
    ]
    assert update["Revert"] == []
    assert "Commands" not in json.dumps(update)
    script = json.dumps(_document(two_boxes(), steps[0])["mainSteps"])
    assert "$stage/app/deploy/update.sh" in script
    assert script.count("aws s3 cp") == 2
    assert "PROSTUDIO_REDIS_MODE=external" in script
    assert {step["Document"]["Ref"] for step in steps} == set(
        resources_of_type(two_boxes(), "AWS::SSM::Document")
    )


def test_the_update_carries_the_asset_of_this_release() -> None:
    update = only(two_boxes(), "Custom::BoxUpdate")["Properties"]
    box = resources_of_type(two_boxes(), "AWS::EC2::Instance")[box_ids(two_boxes())[0]]
    sources = box["Metadata"]["AWS::CloudFormation::Init"]["app"]["sources"]

    keys = {update["Apply"][0]["Parameters"][name] for name in ("AppObjectKey", "ToolsObjectKey")}
    assert {json.dumps(source).split("/")[-1].split('"')[0] for source in sources.values()} == keys


def test_each_steps_output_goes_to_an_encrypted_log_group_the_boxes_may_write() -> None:
    update = only(two_boxes(), "Custom::BoxUpdate")["Properties"]
    group = update["OutputLogGroup"]["Ref"]
    properties = two_boxes()["Resources"][group]["Properties"]
    assert "KmsKeyId" in properties and properties["RetentionInDays"] == 30
    box_role = next(i for i in resources_of_type(two_boxes(), "AWS::IAM::Role") if "WebRole" in i)
    writers = [
        policy["Properties"]
        for policy in resources_of_type(two_boxes(), "AWS::IAM::Policy").values()
        if {"Ref": box_role} in policy["Properties"]["Roles"]
        and json.dumps({"Fn::GetAtt": [group, "Arn"]}) in json.dumps(policy)
    ]
    (writer,) = writers
    (statement,) = writer["PolicyDocument"]["Statement"]
    assert set(statement["Action"]) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
    }


def test_no_box_runs_cfn_hup_any_more() -> None:
    for box in resources_of_type(two_boxes(), "AWS::EC2::Instance").values():
        init = box["Metadata"]["AWS::CloudFormation::Init"]
        assert "updates" not in init
        assert "cfn-hup" not in json.dumps(init)


def test_run_command_is_allowed_only_on_the_boxes_and_the_projects_document() -> None:
    (role_id,) = [
        logical_id
        for logical_id, role in resources_of_type(two_boxes(), "AWS::IAM::Role").items()
        if "box documents" in role["Properties"].get("Description", "")
    ]
    statements = [
        statement
        for policy in resources_of_type(two_boxes(), "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    sends = [s for s in statements if s["Action"] == "ssm:SendCommand"]
    resources = json.dumps([s["Resource"] for s in sends])
    assert "AWS-RunShellScript" not in resources
    (document,) = resources_of_type(two_boxes(), "AWS::SSM::Document")
    assert json.dumps({"Ref": document}) in resources
    for logical_id in box_ids(two_boxes()):
        assert json.dumps({"Ref": logical_id}) in resources
    assert sum(len(s["Resource"]) if isinstance(s["Resource"], list) else 1 for s in sends) == 3
    assert all("ssm:SendCommand" not in json.dumps(s) for s in statements if s["Resource"] == "*")


def test_a_changed_script_is_a_new_document_so_a_rollback_still_finds_the_old_one() -> None:
    """The document's logical id follows its content; a rolled-back Update re-sends the old
    properties, which name the old document, kept (with its grant) until the deploy is done."""
    one_box = synthesize(phase=1, separate_redis="true").template("ZeroCostStack")
    local = synthesize(phase=1).template("ZeroCostStack")
    ids = [set(resources_of_type(t, "AWS::SSM::Document")) for t in (two_boxes(), one_box, local)]
    assert ids[0] == ids[1], "the same script on one box or two is the same document"
    assert ids[1] != ids[2], "REDIS_HOST differs: the script differs"
    for template in (one_box, local):
        (document,) = resources_of_type(template, "AWS::SSM::Document")
        grants = [
            logical_id
            for logical_id, policy in resources_of_type(template, "AWS::IAM::Policy").items()
            if json.dumps({"Ref": document}) in json.dumps(policy)
        ]
        assert len(grants) == 1 and grants[0].startswith(document[: len("BoxUpdateStepsUpdate")])


def test_the_update_fits_in_the_custom_resource_hour() -> None:
    update = only(two_boxes(), "Custom::BoxUpdate")
    assert update["Properties"]["ServiceTimeout"] == "3600" or update.get("ServiceTimeout")
    total = sum(int(step["TimeoutSeconds"]) for step in update["Properties"]["Apply"])
    assert total < 3300


def test_each_release_reads_its_assets_through_a_policy_of_its_own(tmp_path: Path) -> None:
    """A new release is a new policy resource, so the previous one (and the read of the
    previous assets) lives until CloudFormation's cleanup, after the deploy succeeded."""
    stack = Stack(scratch_app(), "Releases", env=Environment(region="us-east-1"))
    role = iam.Role(stack, "Box", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))

    def release(name: str, text: str) -> iam.Policy:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "version.txt").write_text(text)
        asset = s3_assets.Asset(stack, f"{name}Asset", path=str(folder))
        return release_policy(stack, role=role, assets=(asset,))

    first, second = release("One", "v1"), release("Two", "v2")

    assert first.node.id != second.node.id
    for policy in (first, second):
        (statement,) = stack.resolve(policy.document.to_json())["Statement"]
        assert statement["Action"] == "s3:GetObject"
        assert json.dumps(statement["Resource"]).count(".zip") == 1
    same = stack.node.find_child("OneAsset")
    assert isinstance(same, s3_assets.Asset)
    with pytest.raises(RuntimeError, match="There is already a Construct"):
        release_policy(stack, role=role, assets=(same,))
