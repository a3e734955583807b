"""Hand-written pipelines on a connection borrowed from a redis-py pool.

redis-py spends several microseconds per reply in `read_response`; a copy reads three
replies per key. `Wire` writes pre-encoded RESP and, when hiredis is installed, parses the
replies straight off the socket in bulk. Without hiredis (the Lambda bundle) it falls back to
redis-py's own parser, one reply at a time. Error replies are returned, not raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

READ_CHUNK = 1 << 18


class Wire:
    """Send pre-encoded commands and read a known number of replies."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._socket = getattr(connection, "_sock", None)
        self._reader = _hiredis_reader() if self._socket is not None else None
        self._buffer = bytearray(READ_CHUNK if self._reader is not None else 0)

    def send(self, data: bytes) -> None:
        self._connection.send_packed_command([data], check_health=False)

    def read(self, count: int) -> list[Any]:
        """The next `count` replies, in order; error replies as ResponseError instances."""
        if self._reader is None:
            return [self._read_one() for _ in range(count)]
        reader = self._reader
        replies: list[Any] = []
        append = replies.append
        while len(replies) < count:
            reply = reader.gets()
            if reply is False:
                reader.feed(self._buffer, 0, self._receive())
            else:
                append(reply)
        return replies

    def _receive(self) -> int:
        try:
            received = int(self._socket.recv_into(self._buffer))  # type: ignore[union-attr]
        except TimeoutError as error:
            raise RedisTimeoutError(f"timeout reading from redis: {error}") from None
        except OSError as error:
            raise RedisConnectionError(f"error reading from redis: {error}") from None
        if not received:
            raise RedisConnectionError("redis closed the connection")
        return received

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
    return hiredis.Reader(replyError=ResponseError)


@contextmanager
def wire(client: redis.Redis) -> Iterator[Wire]:
    """Borrow a pooled connection for hand-written pipelines.

    The connection is closed afterwards instead of going back to the pool, so nothing read
    around redis-py's parser can leak into a later command.
    """
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        yield Wire(connection)
    finally:
        connection.disconnect()
        pool.release(connection)


def pack(*args: bytes) -> bytes:
    """One command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(parts)
