"""Fixtures of the traffic shift tests (helpers live in shift_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from shift_support import Env, shift_env


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from shift_env(monkeypatch)
