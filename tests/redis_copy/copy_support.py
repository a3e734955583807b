"""Helpers of the copy tests: the target's password and an in-memory checkpoint store."""

from __future__ import annotations

import json
from typing import Any

TARGET_PASSWORD = "target-secret-Pa55word"


class MemoryStore:
    """An in-memory CheckpointStore that can simulate a crash on the Nth save."""

    def __init__(self, crash_on_save: int | None = None) -> None:
        self.saved: dict[str, Any] | None = None
        self.saves = 0
        self._crash_on_save = crash_on_save

    def load(self) -> dict[str, Any] | None:
        return None if self.saved is None else dict(self.saved)

    def save(self, state: object) -> None:
        self.saves += 1
        if self._crash_on_save is not None and self.saves >= self._crash_on_save:
            raise SimulatedCrash(f"crash at save {self.saves}")
        self.saved = json.loads(json.dumps(state))


class SimulatedCrash(BaseException):
    """Stands in for a kill: nothing after it runs, nothing is saved."""
