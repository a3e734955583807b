"""Batches of keys read from a server: SCAN, then TIME + PTTL + DUMP for every key."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from copy_state import CopyError
from copy_wire import Link, bulk_strings, fetch_request, first_error, pack

# Batches whose TIME/PTTL/DUMP requests are queued on the source at once.
FETCHES_IN_FLIGHT = 3


@dataclass
class Batch:
    """Keys with their payloads and TTLs, all read at the server's `source_ms` instant."""

    next_cursor: int
    keys: list[bytes]
    bulks: list[bytes] = field(default_factory=list)
    payloads: list[bytes | None] = field(default_factory=list)
    pttls: list[int] = field(default_factory=list)
    source_ms: int = 0
    read_at: float = 0.0
    sent: list[int] = field(default_factory=list)
    expired: int = 0


class SourceStream:
    """SCAN batches read ahead on a link of their own, and TIME/PTTL/DUMP for up to `depth`
    batches in flight on the source link.

    The source always has the next batches to prepare while the caller restores one, even
    when the caller's process is not running for a moment on a busy machine.
    """

    def __init__(
        self, source: Link, scan: Link, cursor: int, count: int, depth: int = FETCHES_IN_FLIGHT
    ) -> None:
        self._source = source
        self._keys = KeyStream(scan, cursor, count)
        self._depth = depth
        self._inflight: deque[tuple[list[bytes], list[bytes], int]] = deque()
        self._fill()
        self.exhausted = not self._inflight

    def _fill(self) -> None:
        while len(self._inflight) < self._depth and not self._keys.exhausted:
            keys, next_cursor = self._keys.next_keys()
            bulks = bulk_strings(keys)
            self._source.send(fetch_request(keys, bulks))
            self._inflight.append((keys, bulks, next_cursor))

    def next_batch(self) -> Batch:
        assert self._inflight, "next_batch after the last batch"
        keys, bulks, next_cursor = self._inflight.popleft()
        batch = Batch(next_cursor=next_cursor, keys=keys, bulks=bulks)
        batch.source_ms, batch.payloads, batch.pttls = read_fetch(self._source, len(keys))
        batch.read_at = time.monotonic()
        self._fill()
        self.exhausted = not self._inflight
        return batch

    def drain(self) -> None:
        """Read and drop the requests still in flight (a stop before the scan's end)."""
        while self._inflight:
            keys, _, _ = self._inflight.popleft()
            self._source.read(1 + 2 * len(keys))
        self._keys.drain()


def fetch(link: Link, keys: Sequence[bytes]) -> Batch:
    """One batch of the given keys, read now."""
    batch = Batch(next_cursor=0, keys=list(keys))
    link.send(fetch_request(batch.keys))
    batch.source_ms, batch.payloads, batch.pttls = read_fetch(link, len(batch.keys))
    batch.read_at = time.monotonic()
    return batch


def time_ms(reply: Any) -> int:
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


def read_fetch(link: Link, count: int) -> tuple[int, list[bytes | None], list[int]]:
    replies = link.read(1 + 2 * count)
    error = first_error(replies)
    if error is not None:
        raise CopyError(f"redis refused TIME/PTTL/DUMP: {error}")
    return time_ms(replies[0]), replies[1 + count :], replies[1 : 1 + count]


class KeyStream:
    """SCAN batches of key names only, with the next SCAN always in flight."""

    def __init__(self, link: Link, cursor: int, count: int) -> None:
        self._link = link
        self._count = b"%d" % count
        self.exhausted = False
        self._inflight = True
        link.send(self._scan(cursor))

    def _scan(self, cursor: int) -> bytes:
        return pack(b"SCAN", b"%d" % cursor, b"COUNT", self._count)

    def next_keys(self) -> tuple[list[bytes], int]:
        """The next batch's keys and the cursor after it (0 at the end)."""
        cursor, keys = self._link.read(1)[0]
        self._inflight = False
        next_cursor = int(cursor)
        if next_cursor == 0:
            self.exhausted = True
        else:
            self._link.send(self._scan(next_cursor))
            self._inflight = True
        return list(keys), next_cursor

    def drain(self) -> None:
        if self._inflight:
            self._link.read(1)
            self._inflight = False
