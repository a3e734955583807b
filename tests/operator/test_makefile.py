"""The Makefile's long steps say what they are doing before they do it."""

from __future__ import annotations

import subprocess

from synth_support import ROOT

INSTALLS = {
    ".venv/.app-installed": "installing the CDK app's Python dependencies",
    ".venv/.cli-installed": "installing the operator CLIs",
    ".venv/.dev-installed": "installing the test and lint tools",
    ".venv-scan/.installed": "installing checkov into its own venv",
    "node_modules/.installed": "installing the pinned CDK CLI and Node.js",
}


def test_every_install_announces_itself_before_it_runs() -> None:
    for target, announcement in INSTALLS.items():
        plan = subprocess.run(
            ["make", "--dry-run", "--always-make", "--no-print-directory", target],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        announced = [i for i, line in enumerate(plan) if announcement in line]
        installs = [i for i, line in enumerate(plan) if "pip install" in line or "npm ci" in line]
        assert announced and installs, (target, plan)
        assert announced[-1] < installs[-1], f"{target}: the last install is announced first"


def test_make_help_names_the_committed_environment_file_not_cdk_json() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "environments/production.json" in shown
    assert "cdk.json" not in shown
