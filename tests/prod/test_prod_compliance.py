"""cdk-nag AwsSolutions and cfn-lint over ProdStack in every phase and production variant."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack
from aws_cdk import aws_sqs as sqs
from cfnlint.api import ManualArgs, lint
from prod_support import PHASE3_MIGRATION, PHASE3_VARIANT
from synth_support import synthesize, synthesize_with

FLAGS = {
    "phase1": {"phase": "1"},
    "phase2": {"phase": "2"},
    "phase3": {"phase": "3"},
    "phase3-variant": PHASE3_VARIANT,
    "phase3-migration": PHASE3_MIGRATION,
}
EACH = pytest.mark.parametrize("name", list(FLAGS))


def _prod_findings(flags: dict[str, str]) -> list[str]:
    synthesis = synthesize(**flags)
    return [
        f"{violation['ruleName']} {construct['constructPath']}"
        for violation in synthesis.violations()
        for construct in violation["violatingConstructs"]
        if construct["constructPath"].startswith("ProdStack/")
    ]


@EACH
def test_prod_stack_has_no_unacknowledged_nag_findings(name: str) -> None:
    synthesis = synthesize(**FLAGS[name])
    assert synthesis.error is None, synthesis.error
    assert _prod_findings(FLAGS[name]) == []


@EACH
def test_prod_stack_passes_cfn_lint(name: str) -> None:
    template = synthesize(**FLAGS[name]).template("ProdStack")
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
    assert [str(match) for match in matches if match.rule.id.startswith("E")] == []


def test_nag_checks_prod_stack_too() -> None:
    def add_unencrypted_queue(zero_cost: Stack, prod: Stack) -> None:
        sqs.Queue(prod, "DeliberatelyNonCompliant", encryption=sqs.QueueEncryption.UNENCRYPTED)

    synthesis = synthesize_with({"phase": "1"}, mutate=add_unencrypted_queue)
    assert synthesis.error is not None
    flagged = {
        violation["ruleName"]
        for violation in synthesis.violations()
        for construct in violation["violatingConstructs"]
        if construct["constructPath"] == "ProdStack/DeliberatelyNonCompliant/Resource"
    }
    assert {"AwsSolutions-SQS2", "AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= flagged
