"""RESP encoding and hand-written pipelines on a connection borrowed from a redis-py pool.

This is the only module that writes RESP. Everything else talks to a `Link`: send
pre-encoded commands, read a known number of replies, or collect whatever replies arrive
within a timeout (a subscription). Two links implement it:

- `FastWire` parses replies straight off the socket in bulk with hiredis (the CLI's venv);
  redis-py spends several microseconds per reply in `read_response`, and a copy reads three
  replies per key.
- `PlainWire` reads through the connection's own redis-py parser, one reply at a time (the
  Lambda bundle, which has no hiredis).

Error replies are returned as ResponseError instances, never raised.
"""

from __future__ import annotations

import select
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any, Protocol

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

READ_CHUNK = 1 << 18
ARRIVED_RECEIVES = 256
_TIME = b"*1\r\n$4\r\nTIME\r\n"
_PTTL = b"*2\r\n$4\r\nPTTL\r\n"
_DUMP = b"*2\r\n$4\r\nDUMP\r\n"
_RESTORE = b"*5\r\n$7\r\nRESTORE\r\n"
_RESTORE_REPLACE = b"*6\r\n$7\r\nRESTORE\r\n"
_NO_EXPIRY = b"$1\r\n0\r\n"
_ABSTTL = b"\r\n$6\r\nABSTTL\r\n"
_REPLACE_ABSTTL = b"\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n"
# What the hiredis reader returns while a reply is incomplete: not False, which equals an
# integer reply of 0, so that `iter(reader.gets, _INCOMPLETE)` drains the parsed replies in C.
_INCOMPLETE = object()


class Link(Protocol):
    """The narrow client the engine needs: pre-encoded commands in, replies out."""

    def send(self, data: bytes) -> None:
        """Write pre-encoded commands."""
        ...

    def read(self, count: int) -> list[Any]:
        """The next `count` replies, in order."""
        ...

    def arrived(self, timeout: float) -> list[Any]:
        """Every reply that arrives within `timeout` seconds (at least one if any does)."""
        ...


class FastWire:
    """Bulk parsing with hiredis on the connection's raw socket."""

    def __init__(self, connection: Any, reader: Any) -> None:
        self._connection = connection
        self._socket = connection._sock
        self._reader = reader
        self._buffer = bytearray(READ_CHUNK)

    def send(self, data: bytes) -> None:
        self._connection.send_packed_command([data], check_health=False)

    def read(self, count: int) -> list[Any]:
        reader = self._reader
        replies: list[Any] = []
        while True:
            replies.extend(islice(iter(reader.gets, _INCOMPLETE), count - len(replies)))
            if len(replies) == count:
                return replies
            reader.feed(self._buffer, 0, self._receive())

    def arrived(self, timeout: float) -> list[Any]:
        replies = self._parsed()
        if replies or not self._readable(timeout):
            return replies
        # Over TLS one receive returns one record, and a subscription's every message is a
        # record of its own: read all that has arrived, not one message per call.
        for _ in range(ARRIVED_RECEIVES):
            self._reader.feed(self._buffer, 0, self._receive())
            if not self._readable(0):
                break
        return self._parsed()

    def _readable(self, timeout: float) -> bool:
        pending = getattr(self._socket, "pending", None)
        if pending and pending():
            return True
        readable, _, _ = select.select([self._socket], [], [], timeout)
        return bool(readable)

    def _parsed(self) -> list[Any]:
        return list(iter(self._reader.gets, _INCOMPLETE))

    def _receive(self) -> int:
        try:
            received = int(self._socket.recv_into(self._buffer))
        except TimeoutError as error:
            raise RedisTimeoutError(f"timeout reading from redis: {error}") from None
        except OSError as error:
            raise RedisConnectionError(f"error reading from redis: {error}") from None
        if not received:
            raise RedisConnectionError("redis closed the connection")
        return received


class PlainWire:
    """redis-py's own parser, one reply at a time."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def send(self, data: bytes) -> None:
        self._connection.send_packed_command([data], check_health=False)

    def read(self, count: int) -> list[Any]:
        return [self._read_one() for _ in range(count)]

    def arrived(self, timeout: float) -> list[Any]:
        replies = []
        wait = timeout
        while self._connection.can_read(timeout=wait):
            replies.append(self._read_one())
            wait = 0
        return replies

    def _read_one(self) -> Any:
        try:
            return self._connection.read_response(disable_decoding=True)
        except ResponseError as error:
            return error


def _hiredis_reader() -> Any:
    try:
        import hiredis  # noqa: PLC0415 - optional: absent from the Lambda bundle
    except ImportError:
        return None
    return hiredis.Reader(replyError=ResponseError, notEnoughData=_INCOMPLETE)


def link_for(connection: Any) -> Link:
    """The fastest link the connection and the installed packages allow."""
    connection.connect()
    reader = _hiredis_reader() if getattr(connection, "_sock", None) is not None else None
    return FastWire(connection, reader) if reader is not None else PlainWire(connection)


@contextmanager
def wire(client: redis.Redis) -> Iterator[Link]:
    """Borrow a pooled connection for hand-written pipelines.

    The connection is closed afterwards instead of going back to the pool, so nothing read
    around redis-py's parser can leak into a later command.
    """
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        yield link_for(connection)
    finally:
        connection.disconnect()
        pool.release(connection)


def first_error(replies: Sequence[Any]) -> ResponseError | None:
    """The first error reply, found with one pass in C over the replies' types when there is
    none (the usual case)."""
    if not any(issubclass(kind, ResponseError) for kind in set(map(type, replies))):
        return None
    return next(reply for reply in replies if isinstance(reply, ResponseError))


def pack(*args: bytes) -> bytes:
    """One command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)


def bulk_strings(keys: Sequence[bytes]) -> list[bytes]:
    """Each key as a RESP bulk string, to be reused in every command that names it."""
    return [b"$%d\r\n%b\r\n" % (len(key), key) for key in keys]


def fetch_request(keys: Sequence[bytes], bulks: Sequence[bytes] | None = None) -> bytes:
    """TIME, every PTTL, then every DUMP, so all TTLs are read at the TIME instant.

    Reading each PTTL next to its DUMP would shift the TTLs after a big key by the time its
    DUMP took, and stretch them by that much on the target. `bulks` are the keys' bulk
    strings when the caller has them already.
    """
    if not keys:
        return _TIME
    named = bulk_strings(keys) if bulks is None else bulks
    return b"".join((_TIME, _PTTL, _PTTL.join(named), _DUMP, _DUMP.join(named)))


def _restore_templates(*, replace: bool) -> tuple[bytes, bytes]:
    """Whole RESTORE commands as formats: (no expiry: key bulk, payload length, payload),
    (expiry: key bulk, length of the expiry's digits, the digits, payload length, payload)."""
    head, tail = (_RESTORE_REPLACE, _REPLACE_ABSTTL) if replace else (_RESTORE, _ABSTTL)
    return (
        head + b"%b" + _NO_EXPIRY + b"$%d\r\n%b" + tail,
        head + b"%b$%d\r\n%b\r\n$%d\r\n%b" + tail,
    )


def restore_commands(
    bulks: Sequence[bytes], expiries: Sequence[int], payloads: Sequence[bytes], *, replace: bool
) -> bytes:
    """`RESTORE key expire-at payload [REPLACE] ABSTTL` for each key's bulk string (from
    bulk_strings), expire-at in Unix ms (0 for no expiry) and payload: one format per key."""
    forever, timed = _restore_templates(replace=replace)
    return b"".join(
        [
            forever % (bulk, len(payload), payload)
            if expire_at == 0
            else timed % (bulk, len(digits := b"%d" % expire_at), digits, len(payload), payload)
            for bulk, expire_at, payload in zip(bulks, expiries, payloads, strict=True)
        ]
    )


def restores(items: Sequence[tuple[bytes, int, bytes]], *, replace: bool) -> bytes:
    """`RESTORE key expire-at payload [REPLACE] ABSTTL` for each (key, expire-at, payload),
    expire-at in Unix ms, 0 for no expiry."""
    return restore_commands(
        bulk_strings([key for key, _, _ in items]),
        [expire_at for _, expire_at, _ in items],
        [payload for _, _, payload in items],
        replace=replace,
    )


def one_per_key(command: bytes, keys: Sequence[bytes]) -> bytes:
    """`COMMAND key` for each key (EXISTS, DEL, TYPE ...)."""
    head = b"*2\r\n$%d\r\n%b\r\n" % (len(command), command)
    return b"".join(head + b"$%d\r\n%b\r\n" % (len(key), key) for key in keys)
