"""The ASGI application: health, readiness, metrics and the cached waveform API."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TextIO
from urllib.parse import parse_qs

from prostudio import origin
from prostudio.logs import LineBuffer, build_logger
from prostudio.metrics import Metrics
from prostudio.redis_cache import CacheClient, RedisCache, build_redis_client
from prostudio.settings import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[str, str]]

JSON = "application/json"
READ_METHODS = frozenset({"GET", "HEAD"})
WAVEFORM_PATH = re.compile(r"^/api/v1/tracks/([A-Za-z0-9_-]{1,64})/waveform$")
WAVEFORM_ROUTE = "/api/v1/tracks/{track_id}/waveform"
REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
# ASCII digits only (str.isdigit() also takes '²', which int() refuses), and few of them.
POINTS_VALUE = re.compile(r"[0-9]{1,4}")
UNMATCHED_ROUTE = "unmatched"
HEALTH_BODY = b'{"status":"ok"}'
READY_BODY = b'{"status":"ready","redis":"ok"}'
NOT_READY_BODY = b'{"status":"unavailable","redis":"down"}'
POINTS_ERROR = (
    f"points must be an integer from {origin.MIN_POINTS} to {origin.MAX_POINTS} in ASCII digits"
)


class Response:
    """What a route returns; the application adds the common headers and records it."""

    __slots__ = ("body", "cache", "content_type", "extra_headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = JSON,
        cache: str | None = None,
        extra_headers: Headers | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.cache = cache
        self.extra_headers = extra_headers


def _json(status: int, payload: dict[str, object]) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode())


def _not_allowed(method: str, path: str) -> Response:
    response = _json(405, {"error": f"{method} is not allowed on {path}"})
    response.extra_headers = [("Allow", "GET, HEAD")]
    return response


class Application:
    """A plain ASGI callable (HTTP and lifespan). Its collaborators are injected so tests can
    swap any of them.
    """

    def __init__(
        self,
        *,
        cache: RedisCache,
        metrics: Metrics,
        logger: Any,
        log_buffer: LineBuffer,
        render: Callable[[str, int], bytes] = origin.render_waveform_json,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.logger = logger
        self.log_buffer = log_buffer
        self.render = render
        self.exact_routes: dict[str, Callable[[Scope], Awaitable[Response]]] = {
            "/health": self.health,
            "/health/ready": self.ready,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        """Start-up needs nothing (pools connect lazily); shutdown closes them, flushes logs."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.cache.close()
                self.log_buffer.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope: Scope, send: Send) -> None:
        """Answer one request: route it, add the common headers, log and count it."""
        started = time.perf_counter()
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
                break
        if not REQUEST_ID.match(request_id):
            request_id = os.urandom(16).hex()
        method = scope["method"]
        path = scope["path"] or "/"
        # A request that raises is counted under its route's template, or "unmatched": a
        # metric label never carries a client's path.
        route = self.route_of(path)
        try:
            route, response = await self.dispatch(method, path, scope)
        except Exception:
            self.logger.exception(
                "unhandled_error", request_id=request_id, method=method, path=path
            )
            response = _json(500, {"error": "internal error", "request_id": request_id})
        status = response.status
        headers = [
            (b"content-type", response.content_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"x-content-type-options", b"nosniff"),
        ]
        if response.cache is not None:
            headers.append((b"x-cache", response.cache.upper().encode()))
        if response.extra_headers:
            headers.extend((k.encode(), v.encode()) for k, v in response.extra_headers)
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(route).observe(elapsed)
        self.logger.info(
            "request",
            request_id=request_id,
            method=method,
            path=path,
            status=status,
            latency_ms=round(elapsed * 1000, 3),
            cache=response.cache,
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if method == "HEAD" else response.body}
        )

    def route_of(self, path: str) -> str:
        """The metrics label of a path: its route's template, or "unmatched"."""
        if path in self.exact_routes:
            return path
        return WAVEFORM_ROUTE if WAVEFORM_PATH.match(path) else UNMATCHED_ROUTE

    async def dispatch(self, method: str, path: str, scope: Scope) -> tuple[str, Response]:
        """Find the route for a path; return its label (bounded cardinality) and response."""
        handler = self.exact_routes.get(path)
        if handler is not None:
            if method not in READ_METHODS:
                return path, _not_allowed(method, path)
            return path, await handler(scope)
        match = WAVEFORM_PATH.match(path)
        if match is None:
            return UNMATCHED_ROUTE, _json(404, {"error": "no such route"})
        if method not in READ_METHODS:
            return WAVEFORM_ROUTE, _not_allowed(method, path)
        return WAVEFORM_ROUTE, await self.waveform(match.group(1), scope)

    async def health(self, scope: Scope) -> Response:
        """Liveness: the process answers; no dependency is consulted."""
        return Response(200, HEALTH_BODY)

    async def ready(self, scope: Scope) -> Response:
        """Readiness: Redis answers a PING within the configured timeout. The caller learns
        the status only; the reason (hosts, TLS errors) goes to the log."""
        reason = await self.cache.check()
        if reason is None:
            return Response(200, READY_BODY)
        self.logger.warning("not_ready", reason=reason)
        return Response(503, NOT_READY_BODY)

    async def waveform(self, track_id: str, scope: Scope) -> Response:
        """A track's waveform overview, from Redis when cached, else rendered and cached."""
        points = origin.DEFAULT_POINTS
        query = scope["query_string"]
        if query:
            values = parse_qs(query.decode("latin-1"), keep_blank_values=True).get("points")
            if values:
                raw = values[-1]
                if not POINTS_VALUE.fullmatch(raw) or not (
                    origin.MIN_POINTS <= int(raw) <= origin.MAX_POINTS
                ):
                    return _json(400, {"error": POINTS_ERROR})
                points = int(raw)
        body, outcome = await self.cache.get_or_compute(
            f"waveform:v1:{track_id}:{points}", lambda: self.render(track_id, points)
        )
        if outcome == "hit":
            self.metrics.cache_hits.inc()
        else:
            self.metrics.cache_misses.inc()
        return Response(200, body, cache=outcome)


def build_application(
    settings: Settings,
    *,
    client: CacheClient | None = None,
    probe_client: CacheClient | None = None,
    log_stream: TextIO | None = None,
) -> Application:
    """Wire the application from settings; pass clients to use other Redis servers."""
    log_buffer = LineBuffer(log_stream if log_stream is not None else sys.stdout)
    logger = build_logger(settings.log_level, log_buffer)
    metrics = Metrics()

    def record_redis_error(operation: str, error: Exception) -> None:
        metrics.cache_errors.labels(operation).inc()
        logger.warning("redis_unavailable", operation=operation, error=str(error))

    if client is None:
        client = build_redis_client(settings.redis)
        if probe_client is None:
            probe_client = build_redis_client(settings.redis, retries=0)
    cache = RedisCache(
        client,
        probe_client=probe_client,
        ttl_seconds=settings.cache_ttl_seconds,
        outage_cooldown_seconds=settings.outage_cooldown_seconds,
        on_error=record_redis_error,
    )
    return Application(cache=cache, metrics=metrics, logger=logger, log_buffer=log_buffer)
