"""One snapshot of ProdStack per phase (and with the migration increments); asset hashes are
normalised so edits under runtime/ do not churn them."""

from __future__ import annotations

import pytest
from prod_support import PHASE3_MIGRATION
from synth_support import normalise_assets, synthesize
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

FLAGS = {
    "phase1": {"phase": "1"},
    "phase2": {"phase": "2"},
    "phase3": {"phase": "3"},
    "phase3-migration": PHASE3_MIGRATION,
}


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("name", list(FLAGS))
def test_prod_stack_snapshot(name: str, snapshot_json: SnapshotAssertion) -> None:
    synthesis = synthesize(**FLAGS[name])
    assert synthesis.error is None, synthesis.error
    assert normalise_assets(synthesis.template("ProdStack")) == snapshot_json
