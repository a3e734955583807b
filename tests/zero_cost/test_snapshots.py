"""One snapshot of ZeroCostStack per flag combination; asset hashes are normalised."""

from __future__ import annotations

import pytest
from synth_support import FLAG_COMBINATIONS, normalise_assets, synthesize
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("name", list(FLAG_COMBINATIONS))
def test_zero_cost_stack_snapshot(name: str, snapshot_json: SnapshotAssertion) -> None:
    template = synthesize(**FLAG_COMBINATIONS[name]).template("ZeroCostStack")
    assert normalise_assets(template) == snapshot_json
