"""cdk-nag AwsSolutions and cfn-lint over every stack and flag combination."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint
from synth_support import FLAG_COMBINATIONS, synthesize, synthesize_with

from infra.stacks import acknowledgements

COMBINATIONS = pytest.mark.parametrize(
    "flags", list(FLAG_COMBINATIONS.values()), ids=list(FLAG_COMBINATIONS)
)


@COMBINATIONS
def test_no_unacknowledged_nag_findings(flags: dict[str, str]) -> None:
    synthesis = synthesize(**flags)
    assert synthesis.error is None, synthesis.error
    assert synthesis.violations() == []
    assert set(synthesis.templates) == {"ZeroCostStack", "ProdStack"}


@COMBINATIONS
def test_cfn_lint_finds_no_errors(flags: dict[str, str]) -> None:
    synthesis = synthesize(**flags)
    for name, template in synthesis.templates.items():
        matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
        errors = [str(match) for match in matches if match.rule.id.startswith("E")]
        assert errors == [], f"{name}: {errors}"


def test_nag_really_runs_and_fails_on_a_non_compliant_resource() -> None:
    def add_unencrypted_public_bucket(zero_cost: Stack, prod: Stack) -> None:
        s3.Bucket(zero_cost, "DeliberatelyNonCompliant")

    synthesis = synthesize_with({"phase": "1"}, mutate=add_unencrypted_public_bucket)
    assert synthesis.error is not None
    assert synthesis.error.startswith("ValidationFailed")
    flagged = {
        violation["ruleName"]: [
            resource["constructPath"] for resource in violation["violatingConstructs"]
        ]
        for violation in synthesis.violations()
    }
    assert flagged["AwsSolutions-S10"] == ["ZeroCostStack/DeliberatelyNonCompliant/Resource"]
    assert "AwsSolutions-S1" in flagged


ALL_ACKNOWLEDGEMENTS = [
    entry
    for table in (acknowledgements.ZERO_COST, getattr(acknowledgements, "PROD", ()))
    for entry in table
]


def test_every_acknowledgement_has_a_specific_reason() -> None:
    for entry in ALL_ACKNOWLEDGEMENTS:
        assert len(entry.reason) >= 40, entry
        assert "encrypt" not in entry.rule.lower(), entry


def test_every_acknowledgement_is_used_by_some_combination() -> None:
    used = set().union(*(synthesize(**flags).acknowledged for flags in FLAG_COMBINATIONS.values()))
    assert set(ALL_ACKNOWLEDGEMENTS) - used == set()
