"""cdk-nag and cfn-lint over ProdStack's production variants (the flag matrix of both stacks
is in tests/test_compliance.py), and proof that nag checks ProdStack's resources too."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_sqs as sqs
from prod_support import PHASE3_VARIANT
from synth_support import (
    assert_each_acknowledgement_silences_its_finding,
    assert_findings_are_the_registry_entries,
    cfn_lint_errors,
    synthesize,
    synthesize_with,
)


def test_variant_findings_without_acknowledgements_are_exactly_the_registry_entries() -> None:
    assert_findings_are_the_registry_entries(PHASE3_VARIANT)


def test_variant_ships_clean() -> None:
    assert_each_acknowledgement_silences_its_finding(PHASE3_VARIANT)


def test_variant_passes_cfn_lint() -> None:
    """Production with the migration increments is linted with the flag matrix
    (tests/test_compliance.py); this variant is not in it."""
    assert cfn_lint_errors(synthesize(**PHASE3_VARIANT).template("ProdStack")) == []


def test_nag_checks_prod_stack_too() -> None:
    def add_unencrypted_queue(zero_cost: Stack, prod: Stack) -> None:
        sqs.Queue(prod, "DeliberatelyNonCompliant", encryption=sqs.QueueEncryption.UNENCRYPTED)

    synthesis = synthesize_with({"phase": "1"}, mutate=add_unencrypted_queue)
    assert synthesis.error is not None
    flagged = {
        rule
        for rule, path in synthesis.findings()
        if path == "ProdStack/DeliberatelyNonCompliant/Resource"
    }
    assert {"AwsSolutions-SQS2", "AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= flagged
