"""Batches of keys read from a server: SCAN, then TIME + PTTL + DUMP for every key."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from copy_state import CopyError
from copy_wire import Link, bulk_strings, fetch_request, pack
from redis.exceptions import ResponseError


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
    """SCAN + TIME/PTTL/DUMP batches with the next batch's request always in flight.

    Each fetch is sent together with the SCAN for the batch after it, so the server prepares
    batch N+1 while the caller restores batch N.
    """

    def __init__(self, source: Link, cursor: int, count: int) -> None:
        self._source = source
        self._count = b"%d" % count
        self._inflight: tuple[list[bytes], list[bytes], int] | None = None
        self.exhausted = False
        source.send(self._scan(cursor))
        next_cursor, keys = source.read(1)[0]
        self._request(keys, int(next_cursor))

    def _scan(self, cursor: int) -> bytes:
        return pack(b"SCAN", b"%d" % cursor, b"COUNT", self._count)

    def _request(self, keys: list[bytes], next_cursor: int) -> None:
        bulks = bulk_strings(keys)
        request = fetch_request(keys, bulks)
        if next_cursor != 0:
            request += self._scan(next_cursor)
        self._source.send(request)
        self._inflight = (keys, bulks, next_cursor)

    def next_batch(self) -> Batch:
        assert self._inflight is not None, "next_batch after the last batch"
        keys, bulks, next_cursor = self._inflight
        self._inflight = None
        batch = Batch(next_cursor=next_cursor, keys=keys, bulks=bulks)
        batch.source_ms, batch.payloads, batch.pttls = read_fetch(self._source, len(keys))
        batch.read_at = time.monotonic()
        if next_cursor == 0:
            self.exhausted = True
        else:
            after, more_keys = self._source.read(1)[0]
            self._request(more_keys, int(after))
        return batch

    def drain(self) -> None:
        """Read and drop the request still in flight (a stop before the scan's end)."""
        if self._inflight is not None:
            keys, _, next_cursor = self._inflight
            self._source.read(1 + 2 * len(keys) + (1 if next_cursor else 0))
            self._inflight = None


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
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise CopyError(f"redis refused TIME/PTTL/DUMP: {reply}")
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
