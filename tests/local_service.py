"""The service's local topology as the tests start it: with a Redis budget sized for a test
machine whose cores are busy."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devtools.topology import LocalTopology

# The service gives Redis 250 ms by default (REDIS_TIMEOUT_MS): on a box that serves only it,
# plenty; on a test machine whose cores are busy, a PING or a TLS handshake can take longer, and
# a readiness probe read once then answers 503. Tests judge what the service does with a
# working Redis, so they give it a budget sized for such a machine; an outage is a stopped
# Redis, which is refused at once whatever the budget.
LOADED_MACHINE_REDIS_TIMEOUT_MS = "5000"


def local_service(
    workdir: Path, *, extra_env: Mapping[str, str] | None = None, **options: Any
) -> LocalTopology:
    """`LocalTopology` with `extra_env` at the loaded machine's Redis budget, which wins over a
    budget in `extra_env` (a box's env file says 250 ms)."""
    environment = {**(extra_env or {}), "REDIS_TIMEOUT_MS": LOADED_MACHINE_REDIS_TIMEOUT_MS}
    return LocalTopology(workdir, extra_env=environment, **options)
