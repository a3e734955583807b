"""The workflow linter the gate runs checks the workflows for real: it passes the repository's
and refuses a broken one, naming the mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from synth_support import ROOT

ACTIONLINT = Path(sys.executable).parent / "actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_repository_workflows_pass() -> None:
    result = lint(*WORKFLOWS)
    assert WORKFLOWS
    assert result.returncode == 0, result.stdout


def test_a_mistyped_context_and_an_unknown_runner_label_are_refused(tmp_path: Path) -> None:
    # Given a copy of the pull-request workflow with two mistakes
    source = (ROOT / ".github" / "workflows" / "pull-request-diff.yml").read_text()
    broken = source.replace("github.event", "github.evnt", 1).replace(
        "runs-on: ubuntu-24.04", "runs-on: ubuntu-2404", 1
    )
    assert broken != source
    workflow = tmp_path / ".github" / "workflows" / "broken.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(broken)

    # When it is linted
    result = lint(workflow)

    # Then both are reported
    assert result.returncode == 1
    assert "evnt" in result.stdout
    assert "ubuntu-2404" in result.stdout
