"""checkov, an independent IaC scanner, over both stacks' templates in each phase.

Every check it fails on the bare templates is an entry of the acknowledgement registry
(fixed findings are gone; the rest carry their reason as the resource's checkov Metadata),
and on the shipped templates it fails nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from synth_support import FLAG_COMBINATIONS, ROOT, Synthesis, synthesize

from infra.acknowledgements import CHECKOV

SCANNER = ROOT / ".venv-scan" / "bin" / "checkov"
SCANNED = ("phase1", "phase2", "phase3", "phase3-migration")
Finding = tuple[str, str, str]  # (template file, check id, logical id)
# One worker, one checkov run for both tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("checkov")]


Scan = tuple[set[Finding], dict[Finding, str]]


def _scan(builds_by_kind: dict[str, dict[str, Synthesis]]) -> dict[str, Scan]:
    """checkov's failed checks, and its skipped checks with their comments, per kind of build
    (one checkov run over all of them, each distinct template scanned once: checkov's start-up
    and its work per template are its time, and phase 3's ZeroCostStack is also its
    increments')."""
    assert SCANNER.is_file(), f"{SCANNER} is missing: `make test` installs requirements-scan.txt"
    copies: dict[str, list[tuple[str, str]]] = {}
    for kind, builds in builds_by_kind.items():
        for name, build in builds.items():
            for stack, template in build.templates.items():
                named = (kind, f"{name}.{stack}.template.json")
                copies.setdefault(json.dumps(template), []).append(named)
    with tempfile.TemporaryDirectory(prefix="cdk-test-scan-") as folder:
        for index, text in enumerate(copies):
            (Path(folder) / f"{index}.template.json").write_text(text)
        result = subprocess.run(
            [
                *(str(SCANNER), "-d", folder, "--framework", "cloudformation"),
                *("--compact", "--skip-download", "-o", "json"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports: Any = json.loads(result.stdout) if result.stdout.strip() else []
    reports = reports if isinstance(reports, list) else [reports]
    named_by_index = list(copies.values())
    scans: dict[str, Scan] = {kind: (set(), {}) for kind in builds_by_kind}
    for report in reports:
        for check in report.get("results", {}).get("failed_checks", []):
            for kind, file_name in named_by_index[_index(check)]:
                failed, _ = scans[kind]
                failed.add(_finding(file_name, check))
        for check in report.get("results", {}).get("skipped_checks", []):
            comment = check.get("check_result", {}).get("suppress_comment", "")
            for kind, file_name in named_by_index[_index(check)]:
                _, skipped = scans[kind]
                skipped[_finding(file_name, check)] = comment
    return scans


def _index(check: dict[str, Any]) -> int:
    return int(Path(check["file_path"]).name.removesuffix(".template.json"))


def _finding(file_name: str, check: dict[str, Any]) -> Finding:
    return (file_name, check["check_id"], check["resource"].split(".", 1)[1])


def _registry(builds: dict[str, Synthesis]) -> dict[Finding, str]:
    return {
        (
            f"{name}.{applied.path.split('/')[0]}.template.json",
            applied.rule.split("::")[1],
            applied.logical_id,
        ): applied.entry.reason
        for name, build in builds.items()
        for applied in build.acknowledged
        if applied.scanner == CHECKOV
    }


def _builds() -> dict[str, Synthesis]:
    return {name: synthesize(**FLAG_COMBINATIONS[name]) for name in SCANNED}


def _without_checkov_skips(build: Synthesis) -> Synthesis:
    """The build as checkov sees it without the registry: a checkov acknowledgement is only
    its resource's `checkov` Metadata (acknowledgements._apply), so this is the template
    built with none applied, without a second synth."""
    templates = copy.deepcopy(build.templates)
    for template in templates.values():
        for resource in template.get("Resources", {}).values():
            metadata = resource.get("Metadata", {})
            metadata.pop(CHECKOV, None)
            if not metadata:
                resource.pop("Metadata", None)
    return dataclasses.replace(build, templates=templates)


@functools.cache
def _scans() -> dict[str, Scan]:
    shipped = _builds()
    bare = {name: _without_checkov_skips(build) for name, build in shipped.items()}
    return _scan({"bare": bare, "shipped": shipped})


def test_checkov_fails_exactly_the_registry_entries_without_them() -> None:
    expected, (failed, _) = _registry(_builds()), _scans()["bare"]
    unacknowledged, stale = sorted(failed - set(expected)), sorted(set(expected) - failed)
    assert unacknowledged == [], f"checkov findings with no registry entry: {unacknowledged}"
    assert stale == [], f"registry entries checkov does not report: {stale}"


def test_shipped_templates_pass_checkov_with_each_skip_reasoned() -> None:
    failed, skipped = _scans()["shipped"]
    assert sorted(failed) == []
    assert skipped == _registry(_builds())
