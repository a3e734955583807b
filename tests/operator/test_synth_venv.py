"""What `make synth` installs is enough: `cdk synth` synthesizes, every asset bundled, in a venv
built from requirements.txt and the editable CLI install alone (no dev requirements), and with
no Docker engine (production's image asset is only staged).

The venv is built once and kept under .cache/, keyed by the files that decide its contents,
so CI pays for it only when a requirement changes. Coverage with one synth: bundling depends
on the bundler's code and on the packages it copies out of the synthesizing venv, never on a
flag's value, so one synth that builds every construct that bundles covers every combination;
`test_the_widest_synth_runs_every_bundler` keeps that premise true in the dev venv.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import ILocalBundling
from synth_support import FEATURE_FLAGS, ROOT, context_for, synthesize_with

from infra.constructs import box_assets, polled_provider

# The venv `make synth` builds: requirements.txt, then the operator CLIs from pyproject.toml.
VENV_INPUTS = ("requirements.txt", "pyproject.toml")
VENV_CACHE = ROOT / ".cache" / "synth-venv"
# The installer `make` uses, from the dev venv: its cache makes this venv seconds to build.
UV = str(ROOT / ".venv" / "bin" / "uv")
CDK = ROOT / "node_modules" / ".bin" / "cdk"
# Every construct that bundles, at once: production with the cutover and the shift, the
# restore drill, and the account-wide anomaly monitor.
WIDEST = {
    "phase": "3",
    "migrate_data": "true",
    "shift_traffic": "true",
    "traffic_weight": "50",
    "restore_drill": "drill-2026-12-01",
    "cost_anomaly_detection": "true",
    "alarm_email": "ops@prostudio.io",
}
# One worker builds the venv (kept under .cache/) and runs the module's tests in it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("synth-venv")]


def _venv_key() -> str:
    digest = hashlib.sha256(f"{sys.version_info[:2]}".encode())
    for name in VENV_INPUTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build_venv(target: Path) -> None:
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(staging)], check=True)
    python = str(staging / "bin" / "python")
    for arguments in (("-r", "requirements.txt"), ("--editable", ".")):
        done = subprocess.run(
            [UV, "pip", "install", "--quiet", "--python", python, *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"uv pip install {' '.join(arguments)}: {done.stderr[-2000:]}"
    staging.rename(target)


@pytest.fixture(scope="module")
def synth_venv() -> Path:
    """requirements.txt + `uv pip install --editable .`, as `make synth` installs them."""
    target = VENV_CACHE / _venv_key()
    with _locked(VENV_CACHE.with_suffix(".lock")):
        if not (target / "bin" / "python").exists():
            VENV_CACHE.mkdir(parents=True, exist_ok=True)
            for stale in VENV_CACHE.iterdir():
                shutil.rmtree(stale, ignore_errors=True)
            _build_venv(target)
    return target


@dataclass(frozen=True)
class CliSynth:
    done: subprocess.CompletedProcess[str]
    outdir: Path
    docker_calls: Path


@pytest.fixture(scope="module")
def cli_synth(synth_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> CliSynth:
    """`cdk synth` of the widest combination, the app run by the synth venv's Python, with a
    `docker` first on PATH (and as CDK_DOCKER) that records its calls and fails."""
    work = tmp_path_factory.mktemp("cli-synth")
    docker_calls, fake_bin = work / "docker-calls", work / "bin"
    fake_bin.mkdir()
    docker = fake_bin / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {docker_calls}\nexit 1\n')
    docker.chmod(0o755)
    env = {
        "PATH": os.pathsep.join([str(fake_bin), str(CDK.parent), "/usr/bin:/bin"]),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "CDK_DOCKER": str(docker),
    }
    # cdk.json supplies the feature flags; the rest of the tests' context goes on the command
    # line, as an operator's flags would.
    flags = [
        argument
        for key, value in context_for(WIDEST).items()
        if key not in FEATURE_FLAGS
        for argument in ("-c", f"{key}={value}")
    ]
    outdir = work / "cdk.out"
    done = subprocess.run(
        [
            *(str(CDK), "synth", "--no-notices", "--quiet", "-o", str(outdir)),
            *("--app", f"{synth_venv / 'bin' / 'python'} app.py", *flags),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return CliSynth(done, outdir, docker_calls)


def test_the_synth_venv_has_no_dev_requirement(synth_venv: Path) -> None:
    """The venv really is `make synth`'s: pytest (dev only) is not in it, the CLIs are."""
    probe = "import importlib.util as u; print(u.find_spec('pytest') is None)"
    done = subprocess.run(
        [str(synth_venv / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "True"
    assert (synth_venv / "bin" / "shift-traffic").exists()


def test_every_asset_bundles_in_the_synth_venv(cli_synth: CliSynth) -> None:
    assert cli_synth.done.returncode == 0, cli_synth.done.stderr[-3000:]
    templates = sorted(path.name for path in cli_synth.outdir.glob("*.template.json"))
    assert templates == ["ProdStack.template.json", "ZeroCostStack.template.json"]
    bundled = list(cli_synth.outdir.glob("asset.*/structlog/__init__.py"))
    assert bundled, "the traffic-shift Lambda's asset carries no structlog"


def test_cdk_synth_of_production_never_calls_docker(cli_synth: CliSynth) -> None:
    assert cli_synth.done.returncode == 0, cli_synth.done.stderr[-3000:]
    assert not cli_synth.docker_calls.exists(), cli_synth.docker_calls.read_text()
    manifest = json.loads((cli_synth.outdir / "ProdStack.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert (cli_synth.outdir / image["source"]["directory"] / "Dockerfile").is_file()


def _bundlers() -> set[type]:
    return {
        value
        for module in (polled_provider, box_assets)
        for value in vars(module).values()
        if isinstance(value, type) and ILocalBundling in getattr(value, "__jsii_ifaces__", [])
    }


def _handler_code_calls() -> int:
    """Call sites of polled_provider.handler_code in infra/ (each a bundled Lambda asset)."""
    count = 0
    for path in (ROOT / "infra").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "handler_code":
                count += 1
    return count


def _recording(original: Any, ran: list[tuple[str, tuple[str, ...]]]) -> Any:
    def try_bundle(self: Any, output_dir: str, *, image: Any, **options: Any) -> bool:
        ran.append((type(self).__name__, tuple(getattr(self, "packages", ()))))
        return bool(original(self, output_dir, image=image, **options))

    return try_bundle


def test_the_widest_synth_runs_every_bundler(monkeypatch: pytest.MonkeyPatch) -> None:
    """The premise of one synth: the widest combination runs every local bundler the app
    has, and every handler_code call site, so no other combination bundles anything else."""
    bundlers = _bundlers()
    assert {polled_provider._LocalBundle, box_assets._ToolsLayout} <= bundlers
    ran: list[tuple[str, tuple[str, ...]]] = []
    for bundler in bundlers:
        original = getattr(bundler, "try_bundle")  # noqa: B009 - any class implementing it
        monkeypatch.setattr(bundler, "try_bundle", _recording(original, ran))
    synthesis = synthesize_with(WIDEST)
    assert synthesis.error is None, synthesis.error
    assert {name for name, _ in ran} == {bundler.__name__ for bundler in bundlers}
    lambda_bundles = [packages for name, packages in ran if name == "_LocalBundle"]
    assert len(lambda_bundles) == _handler_code_calls()
    assert ("structlog",) in lambda_bundles
