"""One snapshot of ZeroCostStack per flag combination that changes it; asset hashes are
normalised. Production's increments (the data migration, the traffic shift, a restore drill)
change only ProdStack: their ZeroCostStack is phase 3's, asserted equal instead of kept as
identical snapshots."""

from __future__ import annotations

import pytest
from synth_support import FLAG_COMBINATIONS, normalise_assets, synthesize
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

PRODUCTION_INCREMENTS = ("phase3-migration", "phase3-restore-drill")
SNAPSHOTTED = [name for name in FLAG_COMBINATIONS if name not in PRODUCTION_INCREMENTS]


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def zero_cost(name: str) -> dict[str, object]:
    return normalise_assets(synthesize(**FLAG_COMBINATIONS[name]).template("ZeroCostStack"))


@pytest.mark.parametrize("name", SNAPSHOTTED)
def test_zero_cost_stack_snapshot(name: str, snapshot_json: SnapshotAssertion) -> None:
    assert zero_cost(name) == snapshot_json


@pytest.mark.parametrize("name", PRODUCTION_INCREMENTS)
def test_production_increments_leave_zero_cost_stack_as_phase_3(name: str) -> None:
    assert zero_cost(name) == zero_cost("phase3")
