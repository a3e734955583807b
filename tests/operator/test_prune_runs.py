"""make rehearse keeps the reports of the last few runs: scripts/prune_runs.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

from synth_support import ROOT

SCRIPT = ROOT / "scripts" / "prune_runs.sh"


def test_only_the_newest_runs_are_kept(tmp_path: Path) -> None:
    runs = [f"20261207T0{hour}0000Z" for hour in range(7)]
    for name in reversed(runs):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.txt").write_text(name)
    (tmp_path / "notes.txt").write_text("not a run")

    subprocess.run(["bash", str(SCRIPT), str(tmp_path), "4"], check=True)

    assert sorted(p.name for p in tmp_path.iterdir()) == [*runs[3:], "notes.txt"]


def test_a_missing_folder_is_nothing_to_prune(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "none"), "4"], check=False)
    assert done.returncode == 0


def test_shellcheck_finds_nothing() -> None:
    shellcheck = ROOT / ".venv" / "bin" / "shellcheck"
    subprocess.run([str(shellcheck), str(SCRIPT)], check=True)
