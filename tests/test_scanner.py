"""checkov, an independent IaC scanner, over both stacks' templates in each phase.

Every check it fails on the bare templates is an entry of the acknowledgement registry
(fixed findings are gone; the rest carry their reason as the resource's checkov Metadata),
and on the shipped templates it fails nothing.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from synth_support import FLAG_COMBINATIONS, ROOT, Synthesis, synthesize, synthesize_bare

from infra.stacks.acknowledgements import CHECKOV

SCANNER = ROOT / ".venv-scan" / "bin" / "checkov"
SCANNED = ("phase1", "phase2", "phase3", "phase3-migration")
Finding = tuple[str, str, str]  # (template file, check id, logical id)
pytestmark = pytest.mark.slow


def _scan(builds: dict[str, Synthesis]) -> tuple[set[Finding], dict[Finding, str]]:
    """checkov's failed checks, and its skipped checks with their comments."""
    assert SCANNER.is_file(), f"{SCANNER} is missing: `make test` installs requirements-scan.txt"
    with tempfile.TemporaryDirectory(prefix="cdk-test-scan-") as folder:
        for name, build in builds.items():
            for stack, template in build.templates.items():
                (Path(folder) / f"{name}.{stack}.template.json").write_text(json.dumps(template))
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
    failed: set[Finding] = set()
    skipped: dict[Finding, str] = {}
    for report in reports:
        for check in report.get("results", {}).get("failed_checks", []):
            failed.add(_finding(check))
        for check in report.get("results", {}).get("skipped_checks", []):
            skipped[_finding(check)] = check.get("check_result", {}).get("suppress_comment", "")
    return failed, skipped


def _finding(check: dict[str, Any]) -> Finding:
    return (Path(check["file_path"]).name, check["check_id"], check["resource"].split(".", 1)[1])


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


@functools.cache
def _bare() -> tuple[dict[Finding, str], set[Finding]]:
    builds = {name: synthesize_bare(**FLAG_COMBINATIONS[name]) for name in SCANNED}
    return _registry(builds), _scan(builds)[0]


def test_checkov_fails_exactly_the_registry_entries_without_them() -> None:
    expected, failed = _bare()
    unacknowledged, stale = sorted(failed - set(expected)), sorted(set(expected) - failed)
    assert unacknowledged == [], f"checkov findings with no registry entry: {unacknowledged}"
    assert stale == [], f"registry entries checkov does not report: {stale}"


def test_shipped_templates_pass_checkov_with_each_skip_reasoned() -> None:
    builds = {name: synthesize(**FLAG_COMBINATIONS[name]) for name in SCANNED}
    failed, skipped = _scan(builds)
    assert sorted(failed) == []
    assert skipped == _registry(builds)
