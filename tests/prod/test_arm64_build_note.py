"""The arm64 image on an x86 machine: one line says what Docker needs, before it fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from synth_support import context_for

import app as entry
from infra.config import Settings, load_settings


def _settings(phase: int) -> Settings:
    return load_settings(context_for({"phase": phase}))


def test_an_x86_machine_without_arm64_emulation_is_told_what_it_needs(tmp_path: Path) -> None:
    note = entry.arm64_build_note(_settings(3), "x86_64", tmp_path / "qemu-aarch64")
    assert note is not None
    assert "\n" not in note
    assert note.startswith("note: ProdStack builds its image for linux/arm64")
    for need in ("docker buildx", "QEMU", "tonistiigi/binfmt --install arm64"):
        assert need in note


@pytest.mark.parametrize(
    ("phase", "machine", "emulation"),
    [(3, "aarch64", False), (3, "arm64", False), (3, "x86_64", True), (2, "x86_64", False)],
)
def test_no_note_where_the_build_works_or_there_is_no_image(
    tmp_path: Path, phase: int, machine: str, emulation: bool
) -> None:
    binfmt = tmp_path / "qemu-aarch64"
    if emulation:
        binfmt.write_text("enabled\n")
    assert entry.arm64_build_note(_settings(phase), machine, binfmt) is None


def test_synth_prints_the_note_once_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Printed by the app itself, so `cdk deploy` shows it before it starts Docker (the build
    and the synth are left out here: the line is printed before either)."""
    (tmp_path / "production.json").write_text("{}")
    monkeypatch.setattr(entry.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(entry, "BINFMT_ARM64", tmp_path / "absent")
    monkeypatch.setattr(entry, "build", lambda app, settings: print("built", file=sys.stderr))
    monkeypatch.setattr(entry.App, "synth", lambda self: None)
    capfd.readouterr()

    code = entry.main(
        tmp_path, entry.App(context=context_for({"phase": "3"}), outdir=str(tmp_path / "out"))
    )

    lines = capfd.readouterr().err.splitlines()
    assert code == 0, lines
    notes = [index for index, line in enumerate(lines) if line.startswith("note:")]
    assert len(notes) == 1
    assert notes[0] < lines.index("built")
