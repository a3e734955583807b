"""Synthesize the real app in-process for tests, once per flag combination and process."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Validations
from cdk_nag import AwsSolutionsChecks

import app as entry
from infra.config import load_settings
from infra.constructs import polled_provider

ROOT = Path(__file__).resolve().parents[1]
CDK_JSON_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
NAG_PLUGIN = "AwsSolutions"
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Synthesis:
    outdir: Path
    templates: dict[str, dict[str, Any]]
    report: dict[str, Any]
    error: str | None
    acknowledged: frozenset[Any]

    def template(self, stack: str) -> dict[str, Any]:
        return self.templates[stack]

    def violations(self, plugin: str = NAG_PLUGIN) -> list[dict[str, Any]]:
        return [
            violation
            for report in self.report.get("pluginReports", [])
            if report["pluginName"] == plugin
            for violation in report["violations"]
        ]


def context_for(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """cdk.json's context with `-c`-style string overrides, as the CLI would pass them."""
    return {**CDK_JSON_CONTEXT, **{key: str(value) for key, value in overrides.items()}}


def synthesize_with(
    overrides: Mapping[str, Any], mutate: Callable[[Stack, Stack], None] | None = None
) -> Synthesis:
    outdir = Path(tempfile.mkdtemp(prefix="cdk-test-"))
    app = App(outdir=str(outdir), context=context_for(overrides))
    zero_cost, prod = entry.build(app, load_settings(app.node.get_all_context()))
    if mutate:
        mutate(zero_cost, prod)
    acknowledged = frozenset(
        [*getattr(zero_cost, "acknowledged", ()), *getattr(prod, "acknowledged", ())]
    )
    return _synth(app, outdir, acknowledged)


def synthesize_stack(build: Callable[[Stack], object], *, name: str, env: Environment) -> Synthesis:
    """A one-stack app checked by cdk-nag, for testing a construct on its own."""
    outdir = Path(tempfile.mkdtemp(prefix="cdk-test-"))
    app = App(outdir=str(outdir))
    build(Stack(app, name, env=env))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return _synth(app, outdir, frozenset())


@contextlib.contextmanager
def without_acknowledgements(construct_class: type) -> Iterator[None]:
    """Build a polled-provider construct with none of its cdk-nag acknowledgements, to prove
    each one silences a finding that really occurs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(construct_class, "_acknowledge", lambda self: None)
        patch.setattr(polled_provider, "_acknowledge_framework", lambda polled: None)
        yield


def _synth(app: App, outdir: Path, acknowledged: frozenset[Any]) -> Synthesis:
    """Synthesize; keep the templates and the validation report even when validation fails."""
    error = None
    try:
        app.synth()
    except RuntimeError as failure:
        error = str(failure)
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in outdir.glob("*.template.json")
    }
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesis(
        outdir=outdir, templates=templates, report=report, error=error, acknowledged=acknowledged
    )


@functools.cache
def _cached(overrides: tuple[tuple[str, str], ...]) -> Synthesis:
    return synthesize_with(dict(overrides))


def synthesize(**overrides: Any) -> Synthesis:
    """The app with these flags, synthesized once per process and shared by every test."""
    return _cached(tuple(sorted((key, str(value)) for key, value in overrides.items())))


def normalise_assets(template: dict[str, Any]) -> dict[str, Any]:
    """Asset hashes change with every edit under runtime/; snapshots should not."""
    return json.loads(_ASSET_HASH.sub("<asset-hash>", json.dumps(template)))


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
}
