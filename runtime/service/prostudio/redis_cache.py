"""Redis clients for the three deployment shapes, and a cache-aside layer that survives outages.

Standalone (the box's own Redis with a password), TLS + auth token (ElastiCache) and Sentinel
(self-managed HA) all yield a plain ``redis.asyncio.Redis``; everything above this module only
sees that. Each client owns one connection pool, sized for every request the worker can have in
flight (see ``REDIS_MAX_CONNECTIONS``): an exhausted pool fails the command instead of queueing.

Reads are batched per event-loop turn: the cache reads every request of one turn asked for
with one MGET, and the readiness checks of one turn share one PING sent after they all
arrived. On one core this replaces dozens of round trips (a write, a read and redis-py's
bookkeeping each) by one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ReadOnlyError, RedisError

from prostudio.settings import RedisSettings

HIT = "hit"
MISS = "miss"
BYPASS = "bypass"


class CacheClient(Protocol):
    """The part of ``redis.asyncio.Redis`` the cache uses; tests may pass any server's client."""

    def mget(self, keys: Sequence[str]) -> Awaitable[Any]: ...

    def set(self, name: str, value: bytes, ex: int | None = None) -> Awaitable[Any]: ...

    def ping(self) -> Awaitable[Any]: ...

    def aclose(self) -> Awaitable[None]: ...


def connection_options(settings: RedisSettings, *, retries: int) -> dict[str, Any]:
    """Keyword arguments shared by every Redis connection the service opens."""
    options: dict[str, Any] = {
        "password": settings.password,
        "username": settings.username,
        "socket_timeout": settings.timeout_seconds,
        "socket_connect_timeout": settings.timeout_seconds,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries),
        # After a failover the old primary answers writes with READONLY; reconnecting
        # re-resolves the endpoint (ElastiCache) or asks Sentinel for the new master.
        "retry_on_error": [ReadOnlyError],
        "client_name": "prostudio",
        "max_connections": settings.max_connections,
    }
    if settings.tls:
        options["ssl"] = True
        options["ssl_cert_reqs"] = "required"
        if settings.tls_ca_file:
            options["ssl_ca_certs"] = settings.tls_ca_file
    return options


def build_redis_client(settings: RedisSettings, *, retries: int | None = None) -> redis.Redis:
    """A client for the configured topology; it connects lazily, on its first command."""
    attempts = settings.retries if retries is None else retries
    options = connection_options(settings, retries=attempts)
    if settings.uses_sentinel:
        sentinel_options: dict[str, Any] = {
            "socket_timeout": settings.timeout_seconds,
            "socket_connect_timeout": settings.timeout_seconds,
        }
        if settings.sentinel_password:
            sentinel_options["password"] = settings.sentinel_password
        if settings.tls:
            sentinel_options.update(
                {k: v for k, v in options.items() if k.startswith("ssl")},
            )
        sentinel = Sentinel(list(settings.sentinel_hosts), sentinel_kwargs=sentinel_options)
        return sentinel.master_for(settings.sentinel_master, **options)
    if settings.socket_path:
        # The box's own Redis over its unix socket: no TCP work on either side.
        del options["socket_keepalive"]
        return redis.Redis(unix_socket_path=settings.socket_path, **options)
    return redis.Redis(host=settings.host, port=settings.port, **options)


Item = TypeVar("Item")
Result = TypeVar("Result")


class TurnBatch(Generic[Item, Result]):
    """Calls made during one event-loop turn, sent as one batch when the turn ends; each caller
    gets its own result, or the batch's error.
    """

    def __init__(self, send: Callable[[list[Item]], Awaitable[Sequence[Result]]]) -> None:
        self._send = send
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((item, future))
        if len(self._waiting) == 1:
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._send([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:  # noqa: BLE001 (handed to every caller, who decides)
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


class RedisCache:
    """Cache-aside over Redis. A Redis failure never fails the caller: the value comes from
    the origin, and Redis is left alone for a short cooldown so an outage costs no timeouts.
    """

    def __init__(
        self,
        client: CacheClient,
        *,
        probe_client: CacheClient | None = None,
        ttl_seconds: int,
        outage_cooldown_seconds: float = 1.0,
        on_error: Callable[[str, Exception], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.probe_client = probe_client if probe_client is not None else client
        self.ttl_seconds = ttl_seconds
        self.outage_cooldown_seconds = outage_cooldown_seconds
        self._on_error = on_error
        self._clock = clock
        self._skip_until = 0.0
        self._get: TurnBatch[str, Any] = TurnBatch(self._mget)
        self._ping: TurnBatch[None, None] = TurnBatch(self._ping_once)

    async def _mget(self, keys: list[str]) -> Sequence[Any]:
        return list(await self.client.mget(keys))

    async def _ping_once(self, callers: list[None]) -> list[None]:
        await self.probe_client.ping()
        return [None] * len(callers)

    def _failed(self, operation: str, error: Exception) -> None:
        self._skip_until = self._clock() + self.outage_cooldown_seconds
        if self._on_error is not None:
            self._on_error(operation, error)

    async def get_or_compute(self, key: str, compute: Callable[[], bytes]) -> tuple[bytes, str]:
        """Return (value, outcome) where outcome is ``hit``, ``miss`` or ``bypass``."""
        if self._skip_until and self._clock() < self._skip_until:
            return compute(), BYPASS
        try:
            cached = await self._get(key)
        except RedisError as error:
            self._failed("get", error)
            return compute(), BYPASS
        if cached is not None:
            return bytes(cached), HIT
        value = compute()
        try:
            await self.client.set(key, value, ex=self.ttl_seconds)
        except RedisError as error:
            self._failed("set", error)
        return value, MISS

    async def check(self) -> str | None:
        """Ping Redis (one PING for every check of this loop turn); return None when
        reachable, else the reason it is not.
        """
        try:
            await self._ping(None)
        except RedisError as error:
            return f"{type(error).__name__}: {error}"
        self._skip_until = 0.0
        return None

    async def close(self) -> None:
        """Close both clients' connections (the worker is shutting down)."""
        await self.client.aclose()
        if self.probe_client is not self.client:
            await self.probe_client.aclose()
