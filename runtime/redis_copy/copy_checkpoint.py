"""The copy's durable checkpoint: a local JSON file, written atomically.

The store also keeps two copies of the same run from advancing at once: it holds an
exclusive `flock` on a sibling lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from copy_state import CopyError


class CheckpointBusy(CopyError):
    """Another copy holds the checkpoint."""


class FileCheckpointStore:
    """A JSON file replaced atomically (write, fsync, rename, fsync the directory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the exclusive lock, or raise CheckpointBusy if another copy holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = lock_path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise CheckpointBusy(
                f"another copy is using checkpoint {self.path}; wait for it or pick another file"
            ) from None
        self._lock_file = handle

    def release(self) -> None:
        """Drop the lock (the lock file stays; it is harmless)."""
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise CopyError(
                f"checkpoint {self.path} is not valid JSON; delete it to start over"
            ) from None
        if not isinstance(data, dict):
            raise CopyError(f"checkpoint {self.path} is not a JSON object; delete it")
        return data

    def save(self, state: Mapping[str, Any]) -> None:
        directory = self.path.parent
        descriptor, temporary = tempfile.mkstemp(
            prefix=self.path.name + ".", suffix=".tmp", dir=directory
        )
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(state, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
