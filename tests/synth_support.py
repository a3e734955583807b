"""Synthesize the real app in-process for tests, once per flag combination and source tree.

Tests build on their own fixed context (TEST_CONTEXT), never on the settings in cdk.json:
an operator's real zone or flags there must not change what the tests see. Only cdk.json's
CDK feature flags are shared, since they decide what the app synthesizes in production too.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint

import app as entry
from infra import acknowledgements
from infra.acknowledgements import Acknowledged
from infra.config import DEFAULTS, load_settings

ROOT = Path(__file__).resolve().parents[1]
CDK_JSON_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
FEATURE_FLAGS = {key: value for key, value in CDK_JSON_CONTEXT.items() if key.startswith("@")}
# The app's settings as the tests know them: every flag at its default and the documented
# example zone, whatever cdk.json or an environment's config file holds. Tests override single
# flags with `-c`-style strings on top of these.
EXAMPLE_ZONE = {
    "domain_name": "api.prostudio.example.com",
    "zone_name": "prostudio.example.com",
    "hosted_zone_id": "Z0000000000EXAMPLE",
    "certificate_arn": "",
}
TEST_CONTEXT: dict[str, Any] = {**FEATURE_FLAGS, **DEFAULTS, **EXAMPLE_ZONE}
# A zone of the operator's own (not the example): the public name's records exist and no
# example-values guard refuses the deploy.
REAL_ZONE = {
    "zone_name": "prostudio.io",
    "domain_name": "api.prostudio.io",
    "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
}
NAG_PLUGIN = "AwsSolutions"
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")
# The boxes' per-release read policy is named by its assets (box_role.release_policy).
_RELEASE_POLICY = re.compile(r"Release[0-9a-f]{10}[0-9A-F]{8}")
# Every cloud assembly of this process lives below one folder, removed when the process ends.
_OUTDIRS = Path(tempfile.mkdtemp(prefix="cdk-test-"))
atexit.register(shutil.rmtree, _OUTDIRS, ignore_errors=True)


def _outdir() -> Path:
    return Path(tempfile.mkdtemp(dir=_OUTDIRS))


def scratch_app(**props: Any) -> App:
    """An App that synthesizes below this process's folder. Tests give every App its outdir
    rather than setting CDK_OUTDIR: with that variable in the jsii kernel's environment,
    each App registers a synth on the kernel's exit, and the eleventh makes Node print a
    listener warning into whichever test is capturing stderr."""
    return App(outdir=str(_outdir()), **props)


def finding_id(plugin: str, rule: str) -> str:
    """A reported rule as an acknowledgement names it: cdk-nag's ids as they are, other
    plugins' behind their namespace (e.g. CloudFormation-Validate::E3023)."""
    return rule if plugin == NAG_PLUGIN else f"{plugin.replace(' ', '-')}::{rule}"


@dataclass(frozen=True)
class Synthesis:
    outdir: Path
    templates: dict[str, dict[str, Any]]
    report: dict[str, Any]
    error: str | None
    # The registry entries the build applied (or, built bare, would have applied).
    acknowledged: frozenset[Acknowledged]

    def template(self, stack: str) -> dict[str, Any]:
        return self.templates[stack]

    def violations(self, plugin: str = NAG_PLUGIN) -> list[dict[str, Any]]:
        return [
            violation
            for report in self.report.get("pluginReports", [])
            if report["pluginName"] == plugin
            for violation in report["violations"]
        ]

    def findings(self) -> set[tuple[str, str]]:
        """(finding id, construct path) of every violation left unacknowledged."""
        return {
            (finding_id(report["pluginName"], violation["ruleName"]), resource["constructPath"])
            for report in self.report.get("pluginReports", [])
            for violation in report["violations"]
            for resource in violation["violatingConstructs"]
        }

    def suppressed(self) -> set[tuple[str, str, str]]:
        """(finding id, construct path, where it was acknowledged) of each silenced finding."""
        return {
            (
                finding_id(report["pluginName"], violation["ruleName"]),
                resource["constructPath"],
                violation["acknowledgedAt"],
            )
            for report in self.report.get("pluginReports", [])
            for violation in report.get("suppressedViolations") or []
            for resource in violation["violatingConstructs"]
        }

    def expected_findings(self) -> set[tuple[str, str]]:
        """What the registry says is reported for this build: its entries that applied."""
        return {
            (applied.rule, applied.path)
            for applied in self.acknowledged
            if applied.scanner != acknowledgements.CHECKOV
        }


def context_for(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The tests' context with `-c`-style string overrides, as the CLI would pass them."""
    return {**TEST_CONTEXT, **{key: str(value) for key, value in overrides.items()}}


@contextlib.contextmanager
def _recording(recorded: list[Acknowledged], *, apply: bool) -> Iterator[None]:
    """Record each registry entry a build applies; with `apply` off, acknowledge nothing."""
    real_apply = acknowledgements._apply

    def record(target: Any, applied: Acknowledged) -> None:
        recorded.append(applied)
        if apply:
            real_apply(target, applied)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(acknowledgements, "_apply", record)
        yield


def synthesize_with(
    overrides: Mapping[str, Any],
    mutate: Callable[[Stack, Stack], None] | None = None,
    *,
    acknowledge: bool = True,
    outdir: Path | None = None,
) -> Synthesis:
    outdir = outdir or _outdir()
    recorded: list[Acknowledged] = []
    with _recording(recorded, apply=acknowledge):
        app = App(outdir=str(outdir), context=context_for(overrides))
        zero_cost, prod = entry.build(app, load_settings(app.node.get_all_context()))
        if mutate:
            mutate(zero_cost, prod)
    return _synth(app, outdir, frozenset(recorded))


def synthesize_stack(
    build: Callable[[Stack], object], *, name: str, env: Environment, acknowledge: bool = True
) -> Synthesis:
    """A one-stack app checked by cdk-nag, for testing a construct on its own."""
    outdir = _outdir()
    recorded: list[Acknowledged] = []
    with _recording(recorded, apply=acknowledge):
        app = App(outdir=str(outdir))
        build(Stack(app, name, env=env))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return _synth(app, outdir, frozenset(recorded))


def construct_template(
    build: Callable[[Stack], object], *, name: str = "Construct", region: str = "us-east-1"
) -> dict[str, Any]:
    """The template of one construct (or a few) built on a bare stack with the app's feature
    flags: a construct's own properties, without synthesizing the whole app. Validation is
    left to the whole app's compliance tests, where the registry's acknowledgements apply."""
    context = {**FEATURE_FLAGS, "@aws-cdk/core:validateAgainstDefaultRules": False}
    app = App(outdir=str(_outdir()), context=context)
    stack = Stack(app, name, env=Environment(region=region))
    build(stack)
    return dict(Template.from_stack(stack).to_json())


@contextlib.contextmanager
def without_acknowledgements() -> Iterator[None]:
    """Build with none of the registry's acknowledgements applied, to prove each one
    silences a finding that really occurs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(acknowledgements, "_apply", lambda target, applied: None)
        yield


def _synth(app: App, outdir: Path, acknowledged: frozenset[Acknowledged]) -> Synthesis:
    """Synthesize; keep the templates and the validation report even when validation fails."""
    error = None
    try:
        app.synth()
    except RuntimeError as failure:
        error = str(failure)
    return _read_assembly(outdir, error, acknowledged)


def _read_assembly(
    outdir: Path, error: str | None, acknowledged: frozenset[Acknowledged]
) -> Synthesis:
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in outdir.glob("*.template.json")
    }
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesis(
        outdir=outdir, templates=templates, report=report, error=error, acknowledged=acknowledged
    )


# Whole-app synths are shared across processes (xdist workers) and runs through a file
# cache: one cloud assembly per flag set, below a folder named by a digest of everything
# that decides what the app synthesizes. An edit to any of it starts a new folder.
SYNTH_CACHE = ROOT / ".cache" / "synth"
SYNTH_INPUTS = ("app.py", "cdk.json", "requirements.txt", "infra", "runtime", "environments")
_STALE_AFTER_SECONDS = 3600


def _file_digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


@functools.cache
def sources_digest() -> str:
    """A digest of the app's sources, its pinned libraries and this module (TEST_CONTEXT)."""
    digest = hashlib.sha256(f"{sys.version_info[:3]}".encode())
    files = [Path(__file__)]
    for name in SYNTH_INPUTS:
        path = ROOT / name
        files += sorted(path.rglob("*")) if path.is_dir() else [path]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + _file_digest(path))
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _prune_other_digests(current: Path) -> None:
    """Drop the assemblies of sources no longer checked out (left alone for an hour, in
    case another run in this checkout still reads them)."""
    horizon = time.time() - _STALE_AFTER_SECONDS
    for other in current.parent.iterdir():
        if other.is_dir() and other != current and other.stat().st_mtime < horizon:
            shutil.rmtree(other, ignore_errors=True)


def _stored(overrides: tuple[tuple[str, str], ...], acknowledge: bool) -> Synthesis:
    """The synthesis of these flags from the file cache, synthesized first if missing."""
    entries = list(acknowledgements.all_entries())
    name = hashlib.sha256(repr((overrides, acknowledge)).encode()).hexdigest()[:16]
    folder = SYNTH_CACHE / sources_digest()
    target = folder / name
    with _locked(folder / f"{name}.lock"):
        if not (target / "synthesis.json").exists():
            _prune_other_digests(folder)
            staging = folder / f"{name}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            built = synthesize_with(dict(overrides), acknowledge=acknowledge, outdir=staging)
            record = {
                "flags": dict(overrides),
                "error": built.error,
                "acknowledged": [
                    [entries.index(applied.entry), applied.rule, applied.path, applied.logical_id]
                    for applied in built.acknowledged
                ],
            }
            (staging / "synthesis.json").write_text(json.dumps(record))
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    record = json.loads((target / "synthesis.json").read_text())
    acknowledged = frozenset(
        Acknowledged(entries[index], rule, path, logical_id)
        for index, rule, path, logical_id in record["acknowledged"]
    )
    return _read_assembly(target, record["error"], acknowledged)


@functools.cache
def _cached(overrides: tuple[tuple[str, str], ...], acknowledge: bool) -> Synthesis:
    return _stored(overrides, acknowledge)


def _key(overrides: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The flags that differ from the tests' context: the same build shares one synthesis
    however its flags are spelled (`phase=1` and no flag, `traffic_weight=100` and none)."""
    return tuple(
        sorted(
            (key, str(value))
            for key, value in overrides.items()
            if str(TEST_CONTEXT.get(key)).lower() != str(value).lower()
        )
    )


def synthesize(**overrides: Any) -> Synthesis:
    """The app with these flags, synthesized once per process and shared by every test."""
    return _cached(_key(overrides), True)


def synthesize_bare(**overrides: Any) -> Synthesis:
    """The app with these flags and no acknowledgements: every finding is reported."""
    return _cached(_key(overrides), False)


def normalise_assets(template: dict[str, Any]) -> dict[str, Any]:
    """Asset hashes change with every edit under runtime/; snapshots should not."""
    text = _RELEASE_POLICY.sub("Release<asset-hashes>", json.dumps(template))
    return json.loads(_ASSET_HASH.sub("<asset-hash>", text))


@functools.cache
def _lint_errors(text: str, region: str) -> tuple[str, ...]:
    matches = lint(text, config=ManualArgs(regions=[region]))
    return tuple(str(match) for match in matches if match.rule.id.startswith("E"))


def cfn_lint_errors(template: dict[str, Any], region: str = "us-east-1") -> list[str]:
    """cfn-lint's errors for a template, linted once per process however many builds
    share it (phase 3's ZeroCostStack is also its increments')."""
    return list(_lint_errors(json.dumps(template, sort_keys=True), region))


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource["Type"] == resource_type
    }


# Every flag combination the compliance and snapshot tests cover: each phase, each phase-2
# increment on its own, and production with its migration increments.
FLAG_COMBINATIONS: dict[str, dict[str, str]] = {
    "phase1": {"phase": "1"},
    "phase1-separate-redis": {"phase": "1", "separate_redis": "true"},
    "phase1-alb": {"phase": "1", "alb": "true"},
    "phase1-alb-imported-certificate": {
        "phase": "1",
        "alb": "true",
        "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/"
        "12345678-1234-1234-1234-123456789012",
    },
    "phase2": {"phase": "2"},
    "phase3": {"phase": "3"},
    "phase3-migration": {"phase": "3", "migrate_data": "true", "shift_traffic": "true"},
    "phase3-restore-drill": {"phase": "3", "restore_drill": "drill-2026-12-01"},
}

SECOND_REGION = "eu-west-1"


def assert_findings_are_the_registry_entries(flags: Mapping[str, str]) -> None:
    """Built with no acknowledgements, the app reports exactly the registry's entries for
    these flags: nothing more (unacknowledged), nothing less (stale), and nag really ran."""
    bare = synthesize_bare(**flags)
    reported, expected = bare.findings(), bare.expected_findings()
    nag_findings = sorted(rule for rule, _ in reported if rule.startswith(f"{NAG_PLUGIN}-"))
    assert nag_findings, (
        f"cdk-nag reported nothing without acknowledgements: not evaluated ({bare.error})"
    )
    assert bare.error is not None and bare.error.startswith("ValidationFailed"), bare.error
    unacknowledged, stale = sorted(reported - expected), sorted(expected - reported)
    assert unacknowledged == [], f"findings the registry does not acknowledge: {unacknowledged}"
    assert stale == [], f"registry entries that silence no finding: {stale}"


def assert_each_acknowledgement_silences_its_finding(flags: Mapping[str, str]) -> None:
    """As shipped, the app synthesizes clean. cdk-nag drops the findings it was told to
    accept (the bare build shows they exist); the other plugins' are reported as suppressed,
    each at its own construct by the entry naming it."""
    shipped = synthesize(**flags)
    assert shipped.error is None, shipped.error
    assert shipped.findings() == set()
    assert shipped.suppressed() == {
        (rule, path, path)
        for rule, path in shipped.expected_findings()
        if not rule.startswith(f"{NAG_PLUGIN}-")
    }
