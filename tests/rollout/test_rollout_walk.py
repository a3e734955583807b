"""The documented rollout (infra/rollout.py), walked offline step by step.

At each step both stacks are synthesized with the flags the step commits (each distinct flag
set once per process) and "deployed" in the order CDK deploys them. Each deploy is judged:
every parameter the template reads exists already (bootstrap or an earlier deploy); in every
state CloudFormation passes through, forwards and rolling back, each record of the public name
points at an entry that exists and admits the internet; no stateful resource is deleted or
replaced but those the step names, and the teardown guard refuses the same deploy without its
confirmation (its real handler judges the event CloudFormation would send).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import teardown_guard_handler as handler
from synth_support import ROOT, Synthesis, synthesize
from walk_support import (
    entry_problem,
    public_records,
    ssm_reads,
    ssm_writes,
    update_states,
)

from infra import rollout, stateful
from infra.config import STACK_NAMES
from infra.constructs import deploy_guards

BOOTSTRAP_PARAMETERS = {"/cdk-bootstrap/hnb659fds/version"}
PUBLIC_PARAMETERS = "/aws/service/"
PUBLIC_NAME = rollout.ZONE["domain_name"] + "."
RUNBOOK = ROOT / "docs" / "runbook.md"
# One worker walks the phases: the flag sets these tests share are synthesized once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("rollout")]


def _flag(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def synthesized(index: int, allow_teardown: tuple[str, ...]) -> Synthesis:
    flags = {key: _flag(value) for key, value in rollout.committed_after(index).items()}
    if allow_teardown:
        flags["allow_teardown"] = ",".join(allow_teardown)
    synthesis = synthesize(**flags)
    assert synthesis.error is None, synthesis.error
    return synthesis


def deploy_order(synthesis: Synthesis, stacks: tuple[str, ...]) -> list[str]:
    """The stacks in the order the cloud assembly's declared dependencies put them."""
    manifest = json.loads((synthesis.outdir / "manifest.json").read_text())
    depends = {
        stack: set(manifest["artifacts"][stack].get("dependencies", [])) & set(STACK_NAMES)
        for stack in STACK_NAMES
    }
    ordered: list[str] = []
    while len(ordered) < len(STACK_NAMES):
        ready = [s for s in STACK_NAMES if s not in ordered and depends[s] <= set(ordered)]
        assert ready, f"the stacks depend on each other in a cycle: {depends}"
        ordered += ready
    return [stack for stack in ordered if stack in stacks]


def termination_protected(synthesis: Synthesis, stack: str) -> bool:
    manifest = json.loads((synthesis.outdir / "manifest.json").read_text())
    return bool(manifest["artifacts"][stack]["properties"].get("terminationProtection", False))


def guard_properties(template: dict[str, Any]) -> dict[str, Any] | None:
    found = [
        resource["Properties"]
        for resource in template.get("Resources", {}).values()
        if resource["Type"] == deploy_guards.RESOURCE_TYPE
    ]
    return found[0] if found else None


def guard_verdict(old: dict[str, Any], new: dict[str, Any], *, confirmed: bool) -> str | None:
    """What the guard's handler answers to CloudFormation's Update event: None (success) or
    the refusal's line."""
    old_properties, new_properties = guard_properties(old), guard_properties(new)
    if old_properties is None or new_properties is None:
        return "no teardown guard custom resource in the template"
    event = {
        "RequestType": "Update",
        "ResourceProperties": {**new_properties, "Confirmed": "true" if confirmed else "false"},
        "OldResourceProperties": old_properties,
    }
    try:
        handler.judge(event, lambda: "UPDATE_IN_PROGRESS")
    except handler.Refused as refused:
        return str(refused)
    return None


@dataclass
class StepReport:
    problems: list[str] = field(default_factory=list)
    # Lines the guard answered to the deploy without its confirmation (the refusal shown).
    refusals: list[str] = field(default_factory=list)
    deployed: list[str] = field(default_factory=list)


@dataclass
class World:
    bootstrapped: bool = False
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    protected: dict[str, bool] = field(default_factory=dict)

    def parameters(self) -> set[str]:
        written = set().union(*(ssm_writes(t) for t in self.stacks.values()))
        return written | (BOOTSTRAP_PARAMETERS if self.bootstrapped else set())

    def resources(self) -> dict[str, dict[str, Any]]:
        return {stack: template["Resources"] for stack, template in self.stacks.items()}


def _public_name_problems(
    world: World, stack: str, before: dict[str, Any], after: dict[str, Any], label: str
) -> list[str]:
    problems = []
    for state, resources in update_states(before.get("Resources", {}), after["Resources"]):
        everywhere = {**world.resources(), stack: resources}
        for record in public_records(everywhere, PUBLIC_NAME):
            problem = entry_problem(everywhere[record.stack], record.logical_id)
            if problem:
                problems.append(
                    f"{label} {stack}, {state}: record {record.set_identifier!r} "
                    f"({record.stack}/{record.logical_id}): {problem}"
                )
    return problems


def _deploy(world: World, report: StepReport, step: rollout.Step, index: int, command: Any) -> None:
    synthesis = synthesized(index, command.allow_teardown)
    for stack in deploy_order(synthesis, command.stacks):
        report.deployed.append(stack)
        new = synthesis.template(stack)
        old = world.stacks.get(stack, {"Resources": {}})
        if not world.bootstrapped:
            report.problems.append(f"{stack} deployed before the account is bootstrapped")
        missing = {
            name
            for name in ssm_reads(new) - world.parameters()
            if not name.startswith(PUBLIC_PARAMETERS)
        }
        if missing:
            report.problems.append(f"{stack} reads parameters nothing wrote yet: {sorted(missing)}")
        report.problems += _public_name_problems(world, stack, old, new, "deploying")
        if stack in world.stacks:
            report.problems += _public_name_problems(world, stack, new, old, "rolling back")
            _judge_stateful_changes(report, step, stack, old, new, command.allow_teardown)
        world.stacks[stack] = new
        world.protected[stack] = termination_protected(synthesis, stack)


def _judge_stateful_changes(
    report: StepReport,
    step: rollout.Step,
    stack: str,
    old: dict[str, Any],
    new: dict[str, Any],
    allow_teardown: tuple[str, ...],
) -> None:
    found = stateful.changes(stateful.entries(old["Resources"]), stateful.entries(new["Resources"]))
    expected = step.tears_down.get(stack, ())
    unexpected = sorted(k for k in found if not k.startswith(expected or ("\0",)))
    if unexpected:
        report.problems.append(
            f"{stack}: deletes or replaces what the step does not say: "
            + ", ".join(f"{k} ({found[k]})" for k in unexpected)
        )
    for prefix in expected:
        if not any(k.startswith(prefix) for k in found):
            report.problems.append(f"{stack}: the step says {prefix} goes, but it stays")
    confirmed = stack in allow_teardown
    verdict = guard_verdict(old, new, confirmed=confirmed)
    if verdict:
        report.problems.append(f"{stack}: the guard refuses the documented deploy: {verdict}")
    if found:
        unconfirmed = guard_verdict(old, new, confirmed=False)
        if unconfirmed is None:
            report.problems.append(f"{stack}: the guard lets {sorted(found)} go unconfirmed")
        else:
            report.refusals.append(unconfirmed)


def _destroy(world: World, report: StepReport, command: rollout.Destroy) -> None:
    for stack in reversed(STACK_NAMES):
        if stack not in command.stacks or stack not in world.stacks:
            continue
        if world.protected.get(stack):
            report.problems.append(f"{stack} is termination-protected: the destroy is refused")
        readers = [
            other
            for other, template in world.stacks.items()
            if other != stack and ssm_reads(template) & ssm_writes(world.stacks[stack])
        ]
        if readers:
            report.problems.append(f"{stack} destroyed while {readers} still read its parameters")
        del world.stacks[stack]


@functools.cache
def walk() -> tuple[StepReport, ...]:
    world = World()
    reports = []
    for index, step in enumerate(rollout.STEPS):
        report = StepReport()
        for command in step.commands:
            if isinstance(command, rollout.Bootstrap):
                world.bootstrapped = True
            elif isinstance(command, rollout.Deploy):
                _deploy(world, report, step, index, command)
            else:
                _destroy(world, report, command)
        records = public_records(world.resources(), PUBLIC_NAME)
        if step.serves_name and not records:
            report.problems.append("the public name has no record once the step is done")
        reports.append(report)
    return tuple(reports)


@pytest.mark.parametrize(
    "index", range(len(rollout.STEPS)), ids=[step.title for step in rollout.STEPS]
)
def test_each_documented_step_keeps_its_promises(index: int) -> None:
    assert walk()[index].problems == []


def test_every_deliberate_teardown_is_refused_without_its_confirmation() -> None:
    for step, report in zip(rollout.STEPS, walk(), strict=True):
        for stack in step.tears_down:
            refused = [line for line in report.refusals if f"resources of {stack}:" in line]
            assert len(refused) == 1, step.title
            assert refused[0].endswith(f"-c allow_teardown={stack}")


def test_destroy_is_refused_until_a_confirmed_deploy_lifts_termination_protection() -> None:
    destroy = next(i for i, step in enumerate(rollout.STEPS) if step.title == "Destroy")
    before = synthesized(destroy - 1, ())
    confirmed = synthesized(destroy, rollout.BOTH)
    assert termination_protected(before, "ZeroCostStack")
    assert not termination_protected(confirmed, "ZeroCostStack")
    assert not termination_protected(confirmed, "ProdStack")


def test_prod_stack_deploys_after_the_zero_cost_stack() -> None:
    synthesis = synthesized(len(rollout.STEPS) - 1, ())
    manifest = json.loads((synthesis.outdir / "manifest.json").read_text())
    assert "ZeroCostStack" in manifest["artifacts"]["ProdStack"]["dependencies"]
    assert "ProdStack" not in manifest["artifacts"]["ZeroCostStack"].get("dependencies", [])
    assert deploy_order(synthesis, rollout.BOTH) == ["ZeroCostStack", "ProdStack"]


def test_the_walk_sees_a_window_when_the_box_closes_before_the_record_moves() -> None:
    """The ALB increment as it was: the box's public rule inline in its security group (an
    update of the group, free to run before the record moves) instead of a rule of its own."""
    index = next(i for i, step in enumerate(rollout.STEPS) if step.title == "HTTPS ALB: on")
    before = copy.deepcopy(synthesized(index - 1, ()).template("ZeroCostStack"))
    after = synthesized(index, ()).template("ZeroCostStack")
    resources = before["Resources"]
    (public,) = [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress"
        and resource["Properties"].get("CidrIp") == "0.0.0.0/0"
    ]
    rule = resources.pop(public)["Properties"]
    (group,) = [k for k in rule["GroupId"]["Fn::GetAtt"][:1]]
    resources[group]["Properties"]["SecurityGroupIngress"] = [
        {key: rule[key] for key in ("CidrIp", "IpProtocol", "FromPort", "ToPort")}
    ]
    for resource in resources.values():
        depends = resource.get("DependsOn", [])
        if public in depends:
            depends.remove(public)

    problems = _public_name_problems(World(), "ZeroCostStack", before, after, "deploying")

    assert any("does not admit the internet on port 80" in p for p in problems), problems


def test_the_runbook_shows_the_walked_sequence() -> None:
    text = RUNBOOK.read_text()
    begin, end = text.find(rollout.BEGIN_MARKER), text.find(rollout.END_MARKER)
    assert begin >= 0 and end > begin, f"{RUNBOOK} has no rollout section"
    shown = text[begin : end + len(rollout.END_MARKER)] + "\n"
    assert shown == rollout.markdown(), "run scripts/rollout_doc.py --write"
