"""The deploy-time guards, judged where CloudFormation enforces them: the template's Rules.

moto's CloudFormation neither resolves SSM-typed parameters nor evaluates Rules, so a small
evaluator below applies each Rule's assertion to the parameter values CloudFormation would
resolve: the record the previous deploy wrote (read from its template) for the teardown guard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from synth_support import CDK_JSON_CONTEXT, synthesize

import app as entry
from infra import config
from infra.constructs import deploy_guards

REAL_DNS = {
    "zone_name": "prostudio.io",
    "domain_name": "api.prostudio.io",
    "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
}
BOOTSTRAP_VERSION = "30"


def evaluate(node: Any, parameters: dict[str, Any]) -> Any:
    """The rule functions these templates use, as CloudFormation defines them."""
    if isinstance(node, list):
        return [evaluate(item, parameters) for item in node]
    if not isinstance(node, dict):
        return node
    ((function, argument),) = node.items()
    if function == "Ref":
        return parameters[argument]
    values = evaluate(argument, parameters)
    if function == "Fn::EachMemberIn":
        checked, allowed = values
        return all(value in allowed for value in checked)
    if function == "Fn::Contains":
        allowed, value = values
        return value in allowed
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::And":
        return all(values)
    if function == "Fn::Or":
        return any(values)
    raise AssertionError(f"the evaluator does not know {function}")


def record_written(template: dict[str, Any]) -> list[str]:
    """The StringList the deploy of `template` leaves in SSM for the next one."""
    (value,) = [
        resource["Properties"]["Value"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::SSM::Parameter"
        and resource["Properties"].get("Name", "").startswith("/prostudio/guard/")
    ]
    assert isinstance(value, str)
    return value.split(",")


def refusals(template: dict[str, Any], deployed: list[str] | None) -> list[str]:
    """The AssertDescription of every failing Rule when `template` is deployed over a stack
    whose guard record holds `deployed`."""
    parameters: dict[str, Any] = {"BootstrapVersion": BOOTSTRAP_VERSION}
    for name, parameter in template.get("Parameters", {}).items():
        if parameter["Type"] == "AWS::SSM::Parameter::Value<List<String>>":
            assert parameter["Default"].startswith("/prostudio/guard/")
            assert deployed is not None, "the record must exist before this deploy"
            parameters[name] = deployed
    failed = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], parameters):
            continue
        failed += [
            assertion["AssertDescription"]
            for assertion in rule["Assertions"]
            if not evaluate(assertion["Assert"], parameters)
        ]
    return failed


def template(stack: str, **flags: Any) -> dict[str, Any]:
    synthesis = synthesize(**{**REAL_DNS, **flags})
    assert synthesis.error is None, synthesis.error
    return synthesis.template(stack)


def deploy_over(stack: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return refusals(template(stack, **after), record_written(template(stack, **before)))


class TestTeardownGuard:
    def test_phase_3_to_2_is_refused_before_any_resource_changes(self) -> None:
        refused = deploy_over("ProdStack", {"phase": "3"}, {"phase": "2"})
        assert len(refused) == 1
        assert "delete or replace a stateful resource of ProdStack" in refused[0]
        assert "-c allow_teardown=ProdStack" in refused[0]

    def test_the_confirmation_lets_it_through_and_the_record_follows(self) -> None:
        confirmed = template("ProdStack", phase="2", allow_teardown="ProdStack")
        assert refusals(confirmed, record_written(template("ProdStack", phase="3"))) == []
        # The next deploy is guarded again, against the phase-2 record it leaves
        assert record_written(confirmed) == record_written(template("ProdStack", phase="2"))
        assert refusals(template("ProdStack", phase="2"), record_written(confirmed)) == []

    def test_confirming_the_other_stack_confirms_nothing_here(self) -> None:
        assert deploy_over(
            "ProdStack", {"phase": "3"}, {"phase": "2", "allow_teardown": "ZeroCostStack"}
        )

    @pytest.mark.parametrize(
        ("before", "after"),
        [
            ({"phase": "2"}, {"phase": "3"}),
            ({"phase": "3"}, {"phase": "3"}),
            ({"phase": "3"}, {"phase": "3", "migrate_data": "true", "shift_traffic": "true"}),
            (
                {"phase": "3"},
                {"phase": "3", "ecs_task_count": "5", "redis_node_type": "cache.r7g.xlarge"},
            ),
        ],
        ids=["production-added", "unchanged", "migration-added", "changed-in-place"],
    )
    def test_additions_and_in_place_changes_pass(
        self, before: dict[str, str], after: dict[str, str]
    ) -> None:
        assert deploy_over("ProdStack", before, after) == []

    @pytest.mark.parametrize(
        ("stack", "before", "after"),
        [
            ("ProdStack", {"phase": "3"}, {"phase": "2"}),
            ("ProdStack", {"phase": "3"}, {"phase": "3", "domain_name": "www.prostudio.io"}),
            (
                "ZeroCostStack",
                {"phase": "2"},
                {"phase": "2", "separate_redis": "false", "instances": "1"},
            ),
            ("ZeroCostStack", {"phase": "2"}, {"phase": "2", "instances": "1"}),
        ],
        ids=["production-removed", "records-replaced", "cache-deleted", "box-deleted"],
    )
    def test_deleting_or_replacing_a_stateful_resource_is_refused(
        self, stack: str, before: dict[str, str], after: dict[str, str]
    ) -> None:
        refused = deploy_over(stack, before, after)
        assert refused and f"-c allow_teardown={stack}" in refused[0]

    def test_a_restore_drill_comes_and_goes_but_production_stays_guarded(self) -> None:
        drill = {"phase": "3", "restore_drill": "drill-2026-12-01"}
        assert record_written(template("ProdStack", **drill)) == record_written(
            template("ProdStack", phase="3")
        )
        assert deploy_over("ProdStack", {"phase": "3"}, drill) == []
        assert deploy_over("ProdStack", drill, {"phase": "3"}) == []
        refused = deploy_over("ProdStack", drill, {"phase": "2"})
        assert refused and "-c allow_teardown=ProdStack" in refused[0]

    def test_a_stack_with_nothing_stateful_records_none_and_accepts_anything(self) -> None:
        none = [deploy_guards.NOTHING_STATEFUL]
        assert refusals(template("ProdStack", phase="3"), none) == []

    def test_the_create_only_table_covers_the_cloudformation_schemas(self) -> None:
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER  # noqa: PLC0415 - dev-only

        for resource_type, create_only in deploy_guards.STATEFUL_TYPES.items():
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type)
            listed = {
                pointer.split("/")[2] for pointer in schema.schema.get("createOnlyProperties", [])
            }
            assert listed <= set(create_only), resource_type

    def test_the_committed_phase_3_keeps_production_without_any_flag(self, tmp_path: Path) -> None:
        # Given the committed environment at phase 3 and a deploy with no -c at all
        (tmp_path / "production.json").write_text(json.dumps({**REAL_DNS, "phase": 3}))
        settings = config.load_settings(config.with_environment(CDK_JSON_CONTEXT, tmp_path))
        app = entry.App(outdir=str(tmp_path / "out"), context=CDK_JSON_CONTEXT)
        _, prod = entry.build(app, settings)
        synthesized = app.synth().get_stack_by_name("ProdStack").template
        # Then production is in the template and the guard finds nothing removed
        assert any(
            resource["Type"] == "AWS::ElastiCache::ReplicationGroup"
            for resource in synthesized["Resources"].values()
        )
        assert refusals(synthesized, record_written(template("ProdStack", phase="3"))) == []
        assert prod.teardown_guard.rule is not None


class TestExampleValuesGuard:
    @pytest.mark.parametrize("stack", ["ZeroCostStack", "ProdStack"])
    def test_example_values_fail_every_deploy(self, stack: str) -> None:
        synthesis = synthesize(phase="3")
        assert synthesis.error is None
        refused = refusals(synthesis.template(stack), [deploy_guards.NOTHING_STATEFUL])
        assert len(refused) == 1
        assert "Example DNS values" in refused[0]
        assert "hosted_zone_id=Z0000000000EXAMPLE" in refused[0]

    def test_real_values_deploy(self) -> None:
        assert refusals(template("ProdStack", phase="3"), [deploy_guards.NOTHING_STATEFUL]) == []


@pytest.mark.parametrize(("phase", "protected"), [("2", False), ("3", True)])
def test_production_is_termination_protected_at_phase_3(phase: str, protected: bool) -> None:
    synthesis = synthesize(**{**REAL_DNS, "phase": phase})
    manifest = json.loads((synthesis.outdir / "manifest.json").read_text())
    properties = manifest["artifacts"]["ProdStack"]["properties"]
    assert properties.get("terminationProtection", False) is protected
