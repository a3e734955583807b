"""Shared test setup: node on PATH and offline AWS defaults (imports: pyproject's pythonpath)."""

from __future__ import annotations

import os
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest

ROOT = Path(__file__).resolve().parents[1]
node_bin = ROOT / "node_modules" / ".bin"
if node_bin.is_dir():
    os.environ["PATH"] = f"{node_bin}{os.pathsep}{os.environ['PATH']}"
# Node gives V8 four background threads by default; on two cores shared by the workers they
# burn more CPU than they save (a worker's jsii start-up and first synth: ~10 -> ~6 CPU-s).
os.environ.setdefault("NODE_OPTIONS", "--v8-pool-size=1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# No test reads moto's stock AMIs, and each EC2 backend it creates would parse them (~0.2 s).
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
# moto starts every mock with a new boto3 session, and each session's loader parses the
# endpoint and service models again (~0.1 s a client): all sessions share one loader here.
_LOADER = botocore.loaders.create_loader()
botocore.session.Session._register_data_loader = lambda self: (
    self._components.lazy_register_component("data_loader", lambda: _LOADER)
)

# The heaviest tests, heaviest first. `make test` hands work to its workers in collection
# order (xdist's --no-loadscope-reorder), so these start at once, on all workers, and the
# hundreds of short tests fill in around them instead of leaving one long test for the end.
HEAVIEST_FIRST = (
    "tests/redis_copy/test_redis_copy_follow_at_scale.py",
    "tests/rehearsal/test_rehearsal.py::test_short_rehearsal_reports_what_it_measured",
    "tests/operator/test_synth_venv.py",
    "tests/test_scanner.py",
    "tests/rollout/",
)


def _heaviness(item: pytest.Item) -> int:
    for rank, prefix in enumerate(HEAVIEST_FIRST):
        if item.nodeid.startswith(prefix):
            return rank
    return len(HEAVIEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_heaviness)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`--dist loadgroup` keeps an xdist_group on one worker by tagging its tests' node ids
    (`...@rollout`) as each worker collects; where pytest-xdist cannot edit this pytest's node
    ids, the tags are missing and the group's tests spread over the workers without a word."""
    grouped = getattr(item.config.option, "loadgroup", False)
    if grouped and item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
        pytest.fail(
            f"{item.nodeid} was not kept with its xdist_group: "
            "this pytest and pytest-xdist do not work together (see requirements-dev.txt)",
            pytrace=False,
        )
