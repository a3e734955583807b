"""The WSGI application: health, readiness, metrics and the cached waveform API."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO
from urllib.parse import parse_qs

from prostudio import origin
from prostudio.logs import build_logger
from prostudio.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from prostudio.metrics import Metrics
from prostudio.redis_cache import CacheClient, RedisCache, build_redis_client
from prostudio.settings import Settings

StartResponse = Callable[..., Any]
Headers = list[tuple[str, str]]

JSON = "application/json"
STATUS_LINES = {
    200: "200 OK",
    400: "400 Bad Request",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
READ_METHODS = frozenset({"GET", "HEAD"})
WAVEFORM_PATH = re.compile(r"^/api/v1/tracks/([A-Za-z0-9_-]{1,64})/waveform$")
WAVEFORM_ROUTE = "/api/v1/tracks/{track_id}/waveform"
REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
HEALTH_BODY = b'{"status":"ok"}'
READY_BODY = b'{"status":"ready","redis":"ok"}'


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
    """A plain WSGI callable. Its collaborators are injected so tests can swap any of them."""

    def __init__(
        self,
        *,
        cache: RedisCache,
        metrics: Metrics,
        logger: Any,
        render: Callable[[str, int], bytes] = origin.render_waveform_json,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.logger = logger
        self.render = render
        self.exact_routes: dict[str, Callable[[dict[str, Any]], Response]] = {
            "/health": self.health,
            "/health/ready": self.ready,
            "/metrics": self.prometheus,
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = environ.get("HTTP_X_REQUEST_ID", "")
        if not REQUEST_ID.match(request_id):
            request_id = os.urandom(16).hex()
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        route = path
        try:
            route, response = self.dispatch(method, path, environ)
        except Exception:
            self.logger.exception(
                "unhandled_error", request_id=request_id, method=method, path=path
            )
            response = _json(500, {"error": "internal error", "request_id": request_id})
        status = response.status
        headers: Headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("X-Request-ID", request_id),
        ]
        if response.cache is not None:
            headers.append(("X-Cache", response.cache.upper()))
        if response.extra_headers:
            headers.extend(response.extra_headers)
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
        start_response(STATUS_LINES[status], headers)
        return [b"" if method == "HEAD" else response.body]

    def dispatch(self, method: str, path: str, environ: dict[str, Any]) -> tuple[str, Response]:
        """Find the route for a path; return its label (bounded cardinality) and response."""
        handler = self.exact_routes.get(path)
        if handler is not None:
            if method not in READ_METHODS:
                return path, _not_allowed(method, path)
            return path, handler(environ)
        match = WAVEFORM_PATH.match(path)
        if match is None:
            return "unmatched", _json(404, {"error": f"no route for {path}"})
        if method not in READ_METHODS:
            return WAVEFORM_ROUTE, _not_allowed(method, path)
        return WAVEFORM_ROUTE, self.waveform(match.group(1), environ)

    def health(self, environ: dict[str, Any]) -> Response:
        """Liveness: the process answers; no dependency is consulted."""
        return Response(200, HEALTH_BODY)

    def ready(self, environ: dict[str, Any]) -> Response:
        """Readiness: Redis answers a PING within the configured timeout."""
        reason = self.cache.check()
        if reason is None:
            return Response(200, READY_BODY)
        return _json(503, {"status": "unavailable", "redis": "down", "reason": reason})

    def prometheus(self, environ: dict[str, Any]) -> Response:
        """Every worker's metrics in the Prometheus text format."""
        return Response(200, self.metrics.render(), content_type=METRICS_CONTENT_TYPE)

    def waveform(self, track_id: str, environ: dict[str, Any]) -> Response:
        """A track's waveform overview, from Redis when cached, else rendered and cached."""
        points = origin.DEFAULT_POINTS
        query = environ.get("QUERY_STRING")
        if query:
            values = parse_qs(query).get("points")
            if values:
                raw = values[-1]
                if not raw.isdigit() or not (origin.MIN_POINTS <= int(raw) <= origin.MAX_POINTS):
                    return _json(
                        400,
                        {
                            "error": f"points={raw!r} must be an integer from "
                            f"{origin.MIN_POINTS} to {origin.MAX_POINTS}"
                        },
                    )
                points = int(raw)
        body, outcome = self.cache.get_or_compute(
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
    logger = build_logger(settings.log_level, log_stream)
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
    return Application(cache=cache, metrics=metrics, logger=logger)
