"""cdk.json sets every feature flag `cdk init` recommends, except where adopting one would
replace a deployed resource; each exception is pinned here with the proof of its reason."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import aws_cdk
from aws_cdk.assertions import Template
from stack_changes import stateful_changes
from synth_support import CDK_JSON_CONTEXT, scratch_app

import app as entry
from infra.config import load_settings

UNIQUE_IMDS_TEMPLATE = "@aws-cdk/aws-ec2:uniqueImdsv2TemplateName"
# Flag -> the value cdk.json keeps instead of the recommended one, and why.
NOT_ADOPTED = {
    "@aws-cdk/core:target-partitions": (
        ["aws"],
        "the region flag accepts commercial-partition regions only",
    ),
}


def recommended_flags() -> dict[str, Any]:
    """The recommended-feature-flags.json of the installed aws-cdk-lib."""
    (bundle,) = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        return json.loads(member.read())


def test_every_recommended_flag_is_set_as_recommended_or_pinned_with_a_reason() -> None:
    recommended = recommended_flags()
    assert len(recommended) > 80
    configured = {key: value for key, value in CDK_JSON_CONTEXT.items() if key.startswith("@")}
    missing = sorted(set(recommended) - set(configured))
    assert missing == []
    differing = {key for key in recommended if configured[key] != recommended[key]}
    assert differing == set(NOT_ADOPTED)
    for key, (value, _reason) in NOT_ADOPTED.items():
        assert configured[key] == value


def test_cdk_json_sets_no_flag_this_cdk_does_not_know() -> None:
    recommended = recommended_flags()
    unknown = [key for key in CDK_JSON_CONTEXT if key.startswith("@") and key not in recommended]
    assert unknown == []


def test_the_unique_imds_template_name_flag_no_longer_reaches_the_boxes() -> None:
    """The boxes' launch templates are named by WebHosts (production keeps the names CDK gave
    them; LaunchTemplate is create-only on an instance), so the flag, which renames only the
    templates `require_imdsv2` creates, changes no stateful resource."""

    def with_flag(value: bool) -> dict[str, Any]:
        # Feature flags must arrive as booleans (as cdk.json gives them), not -c strings.
        app = scratch_app(context={**CDK_JSON_CONTEXT, "phase": 2, UNIQUE_IMDS_TEMPLATE: value})
        zero_cost, _ = entry.build(app, load_settings(app.node.get_all_context()))
        return dict(Template.from_stack(zero_cost).to_json())

    old, new = with_flag(False), with_flag(True)
    assert stateful_changes("ZeroCostStack", old, new) == []
    names = {
        resource["Properties"]["LaunchTemplateName"]
        for resource in new["Resources"].values()
        if resource["Type"] == "AWS::EC2::LaunchTemplate"
    }
    assert names == {"BoxLaunchTemplate", "Box2LaunchTemplate"}
