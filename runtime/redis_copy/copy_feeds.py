"""The two change feeds a follow reads, each a dedicated connection in subscribed mode.

- `Subscription`: the source's keyspace notifications (`PSUBSCRIBE __keyspace@<db>__:*`),
  the keys the source's clients change.
- `TargetWrites`: the target's tracking invalidations (`SUBSCRIBE __redis__:invalidate`),
  the keys the target's own clients write, once the follow's writing connection redirects
  its `CLIENT TRACKING ... BCAST NOLOOP` here.

Both answer the PING sent every PING_SECONDS; a feed that leaves a PING unanswered for
SILENCE_SECONDS, or closes, raises, and the follow resyncs. Silence is judged only after
reading what has arrived, so a caller busy elsewhere for a while (a reconciliation, a long
batch) never takes its own pause for a lost feed.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from copy_wire import Link, link_for, pack
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

PING_SECONDS = 1.0
SILENCE_SECONDS = 3.0


class Subscription:
    """PSUBSCRIBE to one database's keyspace channel on a dedicated connection."""

    def __init__(self, client: redis.Redis, db: int) -> None:
        self._client = client
        self._prefix = b"__keyspace@%d__:" % db
        self._connection: Any = None
        self._link: Link | None = None
        self._pinged = 0.0
        self._heard = 0.0

    def open(self) -> None:
        self.close()
        self._connection = self._client.connection_pool.make_connection()
        self._link = link_for(self._connection)
        self._subscribe(self._link)
        self._pinged = self._heard = time.monotonic()

    def _subscribe(self, link: Link) -> None:
        link.send(pack(b"PSUBSCRIBE", self._prefix + b"*"))
        link.read(1)

    def _keys(self, reply: Any) -> list[bytes]:
        if isinstance(reply, list) and reply[0] == b"pmessage":
            return [reply[2][len(self._prefix) :]]
        return []

    def close(self) -> None:
        if self._connection is not None:
            self._connection.disconnect()
        self._connection = self._link = None

    def changed_keys(self, timeout: float) -> list[bytes]:
        """Keys named by the messages that arrive within `timeout`; raises when lost."""
        if self._link is None:
            raise RedisConnectionError("the subscription is closed")
        keys = []
        for reply in self._link.arrived(timeout):
            self._heard = time.monotonic()
            keys += self._keys(reply)
        now = time.monotonic()
        unanswered = self._pinged > self._heard
        if unanswered and now - self._pinged > SILENCE_SECONDS:
            raise RedisTimeoutError(f"the subscription did not answer PING in {SILENCE_SECONDS} s")
        if not unanswered and now - self._pinged > PING_SECONDS:
            self._link.send(pack(b"PING"))
            self._pinged = now
        return keys


class TargetWrites(Subscription):
    """The target's invalidation channel: keys that connections other than the follow's
    writing connection modified (or that expired there)."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client, 0)
        self.client_id = 0

    def _subscribe(self, link: Link) -> None:
        link.send(pack(b"CLIENT", b"ID") + pack(b"SUBSCRIBE", b"__redis__:invalidate"))
        self.client_id = link.read(2)[0]

    def _keys(self, reply: Any) -> list[bytes]:
        """A RESP2 subscriber gets `message <channel> <keys>`, a RESP3 one `invalidate <keys>`;
        the keys are nil after a FLUSHALL."""
        if isinstance(reply, list) and reply[0] in {b"message", b"invalidate"}:
            keys = reply[-1]
            return keys if isinstance(keys, list) else []
        return []

    def tracking(self) -> bytes:
        """The command that redirects a writing connection's invalidations here."""
        return pack(
            b"CLIENT", b"TRACKING", b"ON", b"REDIRECT", b"%d" % self.client_id, b"BCAST", b"NOLOOP"
        )
