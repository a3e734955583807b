"""`pip install .` packages the operator CLIs as commands; the CDK app command hints at setup."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "migrate-redis": "migrate_redis:main",
    "shift-traffic": "shift_traffic:main",
    "monitor-migration": "monitor_migration:main",
    "prostudio-cost": "cost:main",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (built,) = out.glob("prostudio_infra-*.whl")
    return built


def test_the_wheel_declares_the_console_scripts(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        parsed = configparser.ConfigParser()
        parsed.read_string(archive.read(entry_points).decode())
    assert dict(parsed["console_scripts"]) == COMMANDS
    top_level = {name for name in names if "/" not in name}
    assert {"migrate_redis.py", "copy_engine.py", "shift_engine.py", "monitor_migration.py"} <= (
        top_level
    )
    assert not any(name.endswith(("_handler.py", ".txt")) for name in top_level)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_cli_runs_from_the_wheel_alone(wheel: Path, tmp_path: Path, command: str) -> None:
    """Outside the checkout, with only the wheel's modules importable: no sys.path help."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    module, function = COMMANDS[command].split(":")
    code = f"import sys, {module}; sys.argv[0] = {command!r}; sys.exit({module}.{function}())"
    done = subprocess.run(
        [sys.executable, "-P", "-c", code, "--help"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_the_cdk_app_command_hints_at_make_synth_before_setup(tmp_path: Path) -> None:
    checkout = tmp_path / "fresh"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "cdk_app.sh", checkout / "scripts")
    done = subprocess.run(
        ["sh", str(checkout / "scripts" / "cdk_app.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: the project is not set up here yet; run `make synth` first"
    ]
