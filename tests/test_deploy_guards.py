"""The deploy-time guards, judged where CloudFormation enforces them.

The teardown guard is a custom resource: each test hands its real handler the event
CloudFormation sends when a stack deployed from one template is updated to another (the old
template's guard properties as OldResourceProperties) and reads the answer the handler PUTs
to the response URL, here a real HTTP server on loopback. The example-values guard is a Rule,
applied by a small evaluator to the parameters CloudFormation would pass.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import teardown_guard_handler as handler
from moto import mock_aws
from synth_support import CDK_JSON_CONTEXT, REAL_ZONE, synthesize

import app as entry
from infra import config
from infra.constructs import deploy_guards

BOOTSTRAP_VERSION = "30"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/{stack}/0f6c2f40-0000-0000"


class _Responses(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture(scope="module")
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback stand-in for CloudFormation's pre-signed S3 response URL."""
    received: list[dict[str, Any]] = []
    server = HTTPServer(("127.0.0.1", 0), type("Responses", (_Responses,), {"received": received}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response", received
    server.shutdown()


def template(stack: str, **flags: Any) -> dict[str, Any]:
    synthesis = synthesize(**{**REAL_ZONE, **flags})
    assert synthesis.error is None, synthesis.error
    return synthesis.template(stack)


def guard_of(template_: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = [
        (logical_id, resource)
        for logical_id, resource in template_["Resources"].items()
        if resource["Type"] == deploy_guards.RESOURCE_TYPE
    ]
    return logical_id, resource["Properties"]


def event(
    request: str, url: str, new: dict[str, Any], old: dict[str, Any] | None = None
) -> dict[str, Any]:
    stack = str(new["Stack"])
    found: dict[str, Any] = {
        "RequestType": request,
        "ResponseURL": url,
        "StackId": STACK_ID.format(stack=stack),
        "RequestId": "request-1",
        "LogicalResourceId": "TeardownGuard",
        "ResourceType": deploy_guards.RESOURCE_TYPE,
        "ResourceProperties": {"ServiceToken": "arn", **new},
    }
    if request != "Create":
        found["PhysicalResourceId"] = handler.PHYSICAL_ID
    if old is not None:
        found["OldResourceProperties"] = {"ServiceToken": "arn", **old}
    return found


def answer(
    response_url: tuple[str, list[dict[str, Any]]],
    request: str,
    new: dict[str, Any],
    old: dict[str, Any] | None = None,
    status: str = "UPDATE_IN_PROGRESS",
) -> dict[str, Any]:
    url, received = response_url
    before = len(received)
    handler.handle(event(request, url, new, old), stack_status=lambda: status)
    assert len(received) == before + 1
    return received[-1]


def deploy_over(
    response_url: tuple[str, list[dict[str, Any]]],
    stack: str,
    before: dict[str, str],
    after: dict[str, str],
) -> dict[str, Any]:
    """What the guard answers when `stack`, deployed with `before`, is deployed with `after`."""
    _, old = guard_of(template(stack, **before))
    _, new = guard_of(template(stack, **after))
    return answer(response_url, "Update", new, old)


class TestTeardownGuard:
    def test_phase_3_to_2_is_refused_in_one_line(self, response_url: Any) -> None:
        refused = deploy_over(response_url, "ProdStack", {"phase": "3"}, {"phase": "2"})
        assert refused["Status"] == "FAILED"
        reason = refused["Reason"]
        assert "\n" not in reason
        assert reason.startswith("This deploy would delete or replace stateful resources of Prod")
        assert "CacheReplicationGroup" in reason and "(deleted)" in reason
        assert reason.endswith("deploy once with -c allow_teardown=ProdStack")

    def test_the_confirmation_lets_it_through_and_the_next_deploy_is_guarded_again(
        self, response_url: Any
    ) -> None:
        _, phase_3 = guard_of(template("ProdStack", phase="3"))
        _, confirmed = guard_of(template("ProdStack", phase="2", allow_teardown="ProdStack"))
        _, phase_2 = guard_of(template("ProdStack", phase="2"))
        assert answer(response_url, "Update", confirmed, phase_3)["Status"] == "SUCCESS"
        # The next, unconfirmed deploy compares with what the confirmed one left
        assert answer(response_url, "Update", phase_2, confirmed)["Status"] == "SUCCESS"
        assert answer(response_url, "Update", phase_3, phase_2)["Status"] == "SUCCESS"
        assert answer(response_url, "Update", phase_2, phase_3)["Status"] == "FAILED"

    def test_confirming_the_other_stack_confirms_nothing_here(self, response_url: Any) -> None:
        refused = deploy_over(
            response_url,
            "ProdStack",
            {"phase": "3"},
            {"phase": "2", "allow_teardown": "ZeroCostStack"},
        )
        assert refused["Status"] == "FAILED"

    @pytest.mark.parametrize(
        ("stack", "before", "after"),
        [
            ("ProdStack", {"phase": "2"}, {"phase": "3"}),
            ("ProdStack", {"phase": "3"}, {"phase": "3"}),
            ("ProdStack", {"phase": "3"}, {"phase": "3", "migrate_data": "true"}),
            (
                "ProdStack",
                {"phase": "3"},
                {"phase": "3", "ecs_min_tasks": "5", "redis_node_type": "cache.r7g.xlarge"},
            ),
            ("ZeroCostStack", {"phase": "1"}, {"phase": "1", "alb": "true"}),
            ("ZeroCostStack", {"phase": "1", "alb": "true"}, {"phase": "1"}),
            ("ZeroCostStack", {"phase": "1"}, {"phase": "2"}),
            ("ZeroCostStack", {"phase": "1"}, {"phase": "1", "instance_type": "t3.small"}),
        ],
        ids=[
            "production-added",
            "unchanged",
            "migration-added",
            "changed-in-place",
            "alb-on",
            "alb-off",
            "phase-2-added",
            "box-resized",
        ],
    )
    def test_additions_and_in_place_changes_pass(
        self, response_url: Any, stack: str, before: dict[str, str], after: dict[str, str]
    ) -> None:
        assert deploy_over(response_url, stack, before, after)["Status"] == "SUCCESS"

    @pytest.mark.parametrize(
        ("stack", "before", "after", "changed"),
        [
            ("ProdStack", {"phase": "3"}, {"phase": "2"}, "CacheReplicationGroup"),
            (
                "ProdStack",
                {"phase": "3"},
                {"phase": "3", "domain_name": "www.prostudio.io"},
                "DnsNewRecord",
            ),
            (
                "ZeroCostStack",
                {"phase": "2"},
                {"phase": "2", "separate_redis": "false", "instances": "1"},
                "CacheReplicationGroup",
            ),
            ("ZeroCostStack", {"phase": "2"}, {"phase": "2", "instances": "1"}, "WebBox2"),
            (
                "ZeroCostStack",
                {"phase": "1"},
                {"phase": "1", "domain_name": "www.prostudio.io"},
                "DnsOldRecord",
            ),
            # Another AMI (arm64): ImageId replaces the box.
            (
                "ZeroCostStack",
                {"phase": "1"},
                {"phase": "1", "instance_type": "t4g.micro"},
                "WebBox",
            ),
        ],
        ids=[
            "production-removed",
            "new-record-replaced",
            "cache-deleted",
            "box-deleted",
            "old-record-replaced",
            "box-replaced",
        ],
    )
    def test_deleting_or_replacing_a_stateful_resource_is_refused(
        self,
        response_url: Any,
        stack: str,
        before: dict[str, str],
        after: dict[str, str],
        changed: str,
    ) -> None:
        refused = deploy_over(response_url, stack, before, after)
        assert refused["Status"] == "FAILED"
        assert changed in refused["Reason"]
        assert f"-c allow_teardown={stack}" in refused["Reason"]

    def test_a_first_deploy_and_a_deletion_have_nothing_to_compare(self, response_url: Any) -> None:
        _, phase_3 = guard_of(template("ProdStack", phase="3"))
        assert answer(response_url, "Create", phase_3)["Status"] == "SUCCESS"
        assert answer(response_url, "Delete", phase_3)["Status"] == "SUCCESS"

    def test_a_rollback_puts_back_what_the_previous_deploy_had(self, response_url: Any) -> None:
        # Given a deploy that added production and then failed further on
        _, phase_2 = guard_of(template("ProdStack", phase="2"))
        _, phase_3 = guard_of(template("ProdStack", phase="3"))
        # When CloudFormation rolls the guard back (old and new swapped)
        rolled_back = answer(
            response_url, "Update", phase_2, phase_3, status="UPDATE_ROLLBACK_IN_PROGRESS"
        )
        # Then the guard lets the rollback remove what the failed deploy created
        assert rolled_back["Status"] == "SUCCESS"

    def test_a_restore_drill_comes_and_goes_but_production_stays_guarded(
        self, response_url: Any
    ) -> None:
        drill = {"phase": "3", "restore_drill": "drill-2026-12-01"}
        assert deploy_over(response_url, "ProdStack", {"phase": "3"}, drill)["Status"] == "SUCCESS"
        assert deploy_over(response_url, "ProdStack", drill, {"phase": "3"})["Status"] == "SUCCESS"
        assert deploy_over(response_url, "ProdStack", drill, {"phase": "2"})["Status"] == "FAILED"

    @pytest.mark.parametrize("stack", ["ZeroCostStack", "ProdStack"])
    def test_every_other_resource_waits_for_the_guard(self, stack: str) -> None:
        synthesized = template(stack, phase="3", migrate_data="true", shift_traffic="true")
        guard, _ = guard_of(synthesized)
        own = {
            logical_id
            for logical_id in synthesized["Resources"]
            if logical_id.startswith("TeardownGuard")
        }
        waiting = {
            logical_id
            for logical_id, resource in synthesized["Resources"].items()
            if guard in resource.get("DependsOn", [])
        }
        expected = set(synthesized["Resources"]) - own - {"CDKMetadata"}
        assert waiting == expected
        stateful_ids = {entry.split("=")[0] for entry in guard_of(synthesized)[1]["Stateful"]}
        assert stateful_ids and stateful_ids <= waiting

    def test_the_guard_reads_no_parameter_and_no_rule_judges_it(self) -> None:
        for stack in ("ZeroCostStack", "ProdStack"):
            synthesized = template(stack, phase="3")
            assert set(synthesized.get("Parameters", {})) == {"BootstrapVersion"} or all(
                not parameter.get("Default", "").startswith("/prostudio/guard/")
                for parameter in synthesized["Parameters"].values()
            )
            assert "Rules" not in synthesized or not any(
                "allow_teardown" in json.dumps(rule) for rule in synthesized["Rules"].values()
            )

    def test_the_handler_reads_its_stack_status_from_cloudformation(
        self, response_url: Any
    ) -> None:
        url, received = response_url
        _, phase_2 = guard_of(template("ProdStack", phase="2"))
        _, phase_3 = guard_of(template("ProdStack", phase="3"))
        with mock_aws():
            stack_id = boto3.client("cloudformation", region_name="us-east-1").create_stack(
                StackName="ProdStack",
                TemplateBody=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}),
            )["StackId"]
            update = event("Update", url, phase_2, phase_3) | {"StackId": stack_id}
            handler.on_event(update, None)
        assert received[-1]["Status"] == "FAILED"
        assert received[-1]["StackId"] == stack_id


class TestExampleValuesGuard:
    def test_example_values_refuse_production_and_the_zero_cost_alb(self) -> None:
        synthesis = synthesize(phase="3")
        assert synthesis.error is None
        for stack in ("ZeroCostStack", "ProdStack"):
            refused = failing_rules(synthesis.template(stack))
            assert len(refused) == 1
            assert "Example DNS values" in refused[0]
            assert "hosted_zone_id=Z0000000000EXAMPLE" in refused[0]

    def test_real_values_deploy(self) -> None:
        assert failing_rules(template("ProdStack", phase="3")) == []
        assert failing_rules(template("ZeroCostStack", phase="3")) == []


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
    if function == "Fn::Contains":
        allowed, value = values
        return value in allowed
    if function == "Fn::Not":
        return not values[0]
    raise AssertionError(f"the evaluator does not know {function}")


def failing_rules(template_: dict[str, Any]) -> list[str]:
    parameters: dict[str, Any] = {"BootstrapVersion": BOOTSTRAP_VERSION}
    return [
        assertion["AssertDescription"]
        for rule in template_.get("Rules", {}).values()
        for assertion in rule["Assertions"]
        if not evaluate(assertion["Assert"], parameters)
    ]


@pytest.mark.parametrize(
    ("phase", "allow", "zero_cost", "prod"),
    [
        ("1", "", True, False),
        ("2", "", True, False),
        ("3", "", True, True),
        ("3", "ProdStack", True, False),
        ("3", "ZeroCostStack,ProdStack", False, False),
    ],
)
def test_termination_protection_while_a_stack_holds_data_or_the_address(
    phase: str, allow: str, zero_cost: bool, prod: bool
) -> None:
    synthesis = synthesize(**{**REAL_ZONE, "phase": phase, "allow_teardown": allow})
    manifest = json.loads((synthesis.outdir / "manifest.json").read_text())
    protected = {
        stack: manifest["artifacts"][stack]["properties"].get("terminationProtection", False)
        for stack in ("ZeroCostStack", "ProdStack")
    }
    assert protected == {"ZeroCostStack": zero_cost, "ProdStack": prod}


def test_the_elastic_ip_and_the_caches_outlive_a_stack_deletion() -> None:
    for stack, types in (
        (
            "ZeroCostStack",
            {"AWS::EC2::EIP": "Retain", "AWS::ElastiCache::ReplicationGroup": "Snapshot"},
        ),
        ("ProdStack", {"AWS::ElastiCache::ReplicationGroup": "Snapshot"}),
    ):
        resources = template(stack, phase="3")["Resources"].values()
        for resource_type, policy in types.items():
            found = [r for r in resources if r["Type"] == resource_type]
            assert found and all(r["DeletionPolicy"] == policy for r in found), resource_type
            assert all(r["UpdateReplacePolicy"] == policy for r in found), resource_type


def test_the_committed_phase_3_keeps_production_without_any_flag(tmp_path: Path) -> None:
    # Given the committed environment at phase 3 and a deploy with no -c at all
    (tmp_path / "production.json").write_text(json.dumps({**REAL_ZONE, "phase": 3}))
    settings = config.load_settings(config.with_environment(CDK_JSON_CONTEXT, tmp_path))
    app = entry.App(outdir=str(tmp_path / "out"), context=CDK_JSON_CONTEXT)
    _, prod = entry.build(app, settings)
    synthesized = app.synth().get_stack_by_name("ProdStack").template
    # Then production is in the template and the guard, unconfirmed, holds it
    _, properties = guard_of(synthesized)
    assert properties["Confirmed"] == "false"
    assert properties["Stateful"] == guard_of(template("ProdStack", phase="3"))[1]["Stateful"]
    assert prod.teardown_guard.confirmed is False
