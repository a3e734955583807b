"""cdk-nag AwsSolutions and cfn-lint over both stacks, every flag combination, two regions.

cdk-nag 3 reports violations only, and a plugin that found nothing is left out of the
report, so "no findings" cannot tell a clean app from an unchecked one. Each combination is
therefore also built with no acknowledgements, and its findings must be exactly the
registry's entries that apply to it.
"""

from __future__ import annotations

import functools

import pytest
from aws_cdk import Duration, Environment, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_s3 as s3
from synth_support import (
    FLAG_COMBINATIONS,
    SECOND_REGION,
    Synthesis,
    assert_each_acknowledgement_silences_its_finding,
    assert_findings_are_the_registry_entries,
    cfn_lint_errors,
    synthesize,
    synthesize_bare,
    synthesize_stack,
    synthesize_with,
)

from infra import acknowledgements
from infra.constructs.traffic_shift import TrafficShift

# Each combination, and the widest ones again in a second region (region-bound names).
MATRIX: dict[str, dict[str, str]] = {
    **FLAG_COMBINATIONS,
    f"phase2-{SECOND_REGION}": {"phase": "2", "region": SECOND_REGION},
    f"phase3-migration-{SECOND_REGION}": {
        **FLAG_COMBINATIONS["phase3-migration"],
        "region": SECOND_REGION,
    },
    # Groups created before ElastiCache users keep their AUTH token (docs/security.md).
    "phase3-migration-auth-token": {
        **FLAG_COMBINATIONS["phase3-migration"],
        "cache_auth_token": "ZeroCostStack,ProdStack",
    },
}
EACH = pytest.mark.parametrize("flags", list(MATRIX.values()), ids=list(MATRIX))
# Every combination, bare and shipped: the whole-app synths of the matrix.
pytestmark = pytest.mark.slow


@EACH
def test_findings_without_acknowledgements_are_exactly_the_registry_entries(
    flags: dict[str, str],
) -> None:
    assert_findings_are_the_registry_entries(flags)


@EACH
def test_shipped_app_is_clean_and_each_entry_silences_its_finding(flags: dict[str, str]) -> None:
    assert_each_acknowledgement_silences_its_finding(flags)
    assert set(synthesize(**flags).templates) == {"ZeroCostStack", "ProdStack"}


# phase1-alb's and phase1-separate-redis's resources are phase 2's with the same properties,
# and phase 3's are its migration's less the cutover: linting those again finds nothing new.
LINTED_ELSEWHERE = {"phase1-alb", "phase1-separate-redis", "phase3"}
LINTED = [name for name in FLAG_COMBINATIONS if name not in LINTED_ELSEWHERE]


@pytest.mark.parametrize("flags", [FLAG_COMBINATIONS[name] for name in LINTED], ids=LINTED)
def test_cfn_lint_finds_no_errors(flags: dict[str, str]) -> None:
    synthesis = synthesize(**flags)
    for name, template in synthesis.templates.items():
        errors = cfn_lint_errors(template)
        assert errors == [], f"{name}: {errors}"


def test_nag_really_runs_and_fails_on_a_non_compliant_resource() -> None:
    def add_unencrypted_public_bucket(zero_cost: Stack, prod: Stack) -> None:
        s3.Bucket(zero_cost, "DeliberatelyNonCompliant")

    synthesis = synthesize_with({"phase": "1"}, mutate=add_unencrypted_public_bucket)
    assert synthesis.error is not None
    assert synthesis.error.startswith("ValidationFailed")
    flagged = {rule for rule, path in synthesis.findings() if "DeliberatelyNonCompliant" in path}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= flagged


def _shift_with_every_gate(stack: Stack) -> None:
    """A traffic shift gated by a health check and a composite alarm: the construct's
    conditional entries, which the app's own shift (alarms, no health check) leaves out."""
    metric = cloudwatch.Metric(
        namespace="AWS/ApplicationELB", metric_name="TargetResponseTime", period=Duration.minutes(1)
    )
    child = cloudwatch.Alarm(stack, "Slow", metric=metric, threshold=1, evaluation_periods=1)
    TrafficShift(
        stack,
        "TrafficShift",
        hosted_zone_id="Z0123456789ABCDEFGHIJ",
        record_name="api.example.com",
        old_set_id="old",
        new_set_id="new",
        target_weight=100,
        step=20,
        interval_seconds=300,
        alarms=[
            cloudwatch.CompositeAlarm(
                stack,
                "Health",
                alarm_rule=cloudwatch.AlarmRule.from_alarm(child, cloudwatch.AlarmState.ALARM),
            )
        ],
        health_url="https://api.example.com/health",
        use_health_check=True,
    )


@functools.cache
def _gated_shift(*, acknowledge: bool) -> Synthesis:
    return synthesize_stack(
        _shift_with_every_gate,
        name="GatedShift",
        env=Environment(region="us-east-1"),
        acknowledge=acknowledge,
    )


def test_a_fully_gated_shift_reports_exactly_its_registry_entries() -> None:
    bare = _gated_shift(acknowledge=False)
    assert bare.findings() == bare.expected_findings()
    shipped = _gated_shift(acknowledge=True)
    assert shipped.error is None, shipped.error
    assert shipped.findings() == set()


def test_every_registry_entry_silences_a_finding_in_some_build() -> None:
    builds = [synthesize_bare(**flags) for flags in MATRIX.values()]
    builds.append(_gated_shift(acknowledge=False))
    used = {applied.entry for build in builds for applied in build.acknowledged}
    assert [entry for entry in acknowledgements.all_entries() if entry not in used] == []


def test_every_acknowledgement_has_a_specific_reason() -> None:
    reasons = [entry.reason for entry in acknowledgements.all_entries()]
    assert all(len(reason) >= 60 and reason.endswith(".") for reason in reasons)
    # One reason may cover several findings of the same cause, never unrelated ones.
    for reason in set(reasons):
        rules = {
            entry.rule.split("[")[0]
            for entry in acknowledgements.all_entries()
            if entry.reason == reason
        }
        assert len(rules) == 1, (reason, rules)


def test_no_construct_acknowledges_outside_the_registry() -> None:
    from synth_support import ROOT  # noqa: PLC0415

    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "infra").rglob("*.py")
        if "Validations.of(" in path.read_text() and path.name != "acknowledgements.py"
    ]
    assert offenders == []
