"""Session fixtures of the ProdStack tests: the phase-3 templates."""

from __future__ import annotations

from typing import Any

import pytest
from prod_support import PHASE3, PHASE3_MIGRATION, PHASE3_VARIANT, prod_template


@pytest.fixture(scope="session")
def prod() -> dict[str, Any]:
    return prod_template(PHASE3)


@pytest.fixture(scope="session")
def variant() -> dict[str, Any]:
    return prod_template(PHASE3_VARIANT)


@pytest.fixture(scope="session")
def migration() -> dict[str, Any]:
    return prod_template(PHASE3_MIGRATION)
