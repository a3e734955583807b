"""Durable checkpoint stores: a local JSON file for the CLI, a DynamoDB item for the Lambda.

Each store also keeps two copies of the same run from advancing at once: the file store holds
an exclusive `flock` on a sibling lock file, the DynamoDB store a lease written with conditional
updates, and every save is conditional on still holding that lease.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
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


class DynamoDbCheckpointStore:
    """One item per run in a table keyed by `pk` (string); saves require holding the lease."""

    def __init__(
        self,
        client: Any,
        table: str,
        run_key: str,
        *,
        owner: str,
        lease_seconds: int = 900,
        clock: Any = time.time,
    ) -> None:
        self._client = client
        self._table = table
        self._key = {"pk": {"S": run_key}}
        self.owner = owner
        self._lease_seconds = lease_seconds
        self._clock = clock

    def create(self, state: Mapping[str, Any], *, started_at: float) -> bool:
        """Write the first state of a run; False if the run already exists (a retried call)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **self._key,
                    "state": {"S": json.dumps(state)},
                    "started_at": {"N": repr(started_at)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def acquire(self) -> None:
        """Take the run's lease unless another live invocation holds it."""
        now = int(self._clock())
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET lease_owner = :me, lease_expires = :expires",
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(lease_owner) "
                    "OR lease_owner = :me OR lease_expires < :now)"
                ),
                ExpressionAttributeValues={
                    ":me": {"S": self.owner},
                    ":now": {"N": str(now)},
                    ":expires": {"N": str(now + self._lease_seconds)},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise CheckpointBusy(
                "another invocation holds this copy's lease (or the run does not exist)"
            ) from None

    def release(self) -> None:
        """Give the lease back; a lease already taken over is left alone."""
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="REMOVE lease_owner, lease_expires",
                ConditionExpression="lease_owner = :me",
                ExpressionAttributeValues={":me": {"S": self.owner}},
            )

    def started_at(self) -> float:
        """When the run was created (Unix seconds): the start of its one-hour budget."""
        item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        return float(item.get("Item", {}).get("started_at", {}).get("N", time.time()))

    def load(self) -> dict[str, Any] | None:
        item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        stored = item.get("Item", {}).get("state", {}).get("S")
        return json.loads(stored) if stored else None

    def save(self, state: Mapping[str, Any]) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET #state = :state",
                ConditionExpression="lease_owner = :me",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":state": {"S": json.dumps(state)},
                    ":me": {"S": self.owner},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise CheckpointBusy(
                "this invocation lost the copy's lease; another one is advancing it"
            ) from None
