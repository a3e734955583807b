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


def test_a_bad_count_is_refused_in_one_line_and_removes_nothing(tmp_path: Path) -> None:
    (tmp_path / "20261207T000000Z").mkdir()
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path), "-1"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr) == (2, "error: keep -1 runs? use a whole number >= 0\n")
    assert (tmp_path / "20261207T000000Z").is_dir()


def test_keeping_none_removes_every_run(tmp_path: Path) -> None:
    (tmp_path / "20261207T000000Z").mkdir()
    subprocess.run(["bash", str(SCRIPT), str(tmp_path), "0"], check=True)
    assert list(tmp_path.iterdir()) == []


def test_shellcheck_finds_nothing() -> None:
    shellcheck = ROOT / ".venv" / "bin" / "shellcheck"
    subprocess.run([str(shellcheck), str(SCRIPT)], check=True)
