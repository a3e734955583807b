"""`npx cdk`: the one-line hint before `make synth`, and `cdk diff` without credentials."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from synth_support import ROOT

HINT = "error: the project is not set up here yet; run `make synth` first\n"
NO_ACCOUNT = (
    "Unable to resolve AWS account to use. It must be either configured when you define your"
    " CDK Stack, or through the environment"
)


def _checkout(tmp_path: Path) -> Path:
    """The files npx reads in a fresh clone: no node_modules, no .venv."""
    (tmp_path / "scripts").mkdir()
    for name in ("package.json", "package-lock.json", "scripts/cdk_cli.js"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def _fake_cli(checkout: Path, script: str) -> None:
    """A set-up checkout whose pinned CLI is a stand-in printing what it was asked."""
    bin_dir = checkout / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "cdk").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "cdk").chmod(0o755)
    python = checkout / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)


def test_npx_cdk_before_make_synth_prints_the_hint_and_installs_nothing(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    done = subprocess.run(
        ["npx", "cdk", "deploy", "ZeroCostStack"],
        cwd=checkout,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (1, "", HINT)
    assert not (checkout / "node_modules").exists()


def test_the_pinned_cli_gets_the_arguments_and_its_exit_status_is_kept(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    _fake_cli(checkout, 'echo "args: $*"; echo "path: $PATH"; exit 3')
    done = subprocess.run(
        ["node", "scripts/cdk_cli.js", "deploy", "ZeroCostStack", "-c", "phase=2"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    lines = done.stdout.splitlines()
    assert lines[0] == "args: deploy ZeroCostStack -c phase=2"
    assert lines[1].startswith(f"path: {checkout / 'node_modules' / '.bin'}{os.pathsep}")


def test_cdk_diff_without_credentials_says_it_once_and_names_make_diff(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path)
    _fake_cli(checkout, f'echo "{NO_ACCOUNT}" >&2; echo "{NO_ACCOUNT}" >&2; exit 1')
    done = subprocess.run(
        ["node", "scripts/cdk_cli.js", "diff", "ZeroCostStack"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines.count(NO_ACCOUNT) == 1
    assert lines[-1].startswith("hint: `npx cdk diff` compares with the deployed stacks")
    assert 'make diff FROM="-c phase=1" TO="-c phase=2"' in lines[-1]
