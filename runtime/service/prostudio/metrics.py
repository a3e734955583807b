"""Prometheus metrics. Under gunicorn every worker writes to PROMETHEUS_MULTIPROC_DIR, and the
gunicorn master serves them merged on a port of their own (METRICS_BIND, loopback by default):
not the service's port, so neither nginx nor a load balancer can reach them under any spelling.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The service's counters and histograms, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "prostudio_http_requests",
            "HTTP requests answered, by route and status code.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "prostudio_http_request_duration_seconds",
            "Time to answer a request inside the application, by route.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "prostudio_cache_hits", "API reads answered from Redis.", registry=self.registry
        )
        self.cache_misses = Counter(
            "prostudio_cache_misses",
            "API reads answered by the origin (not cached, or Redis unavailable).",
            registry=self.registry,
        )
        self.cache_errors = Counter(
            "prostudio_cache_errors",
            "Redis operations that failed, by operation.",
            ("operation",),
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition of every worker's metrics (or this process's alone)."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=directory)
            return generate_latest(merged)
        return generate_latest(self.registry)


def serve_merged(host: str, port: int, directory: str) -> None:
    """Serve every worker's metrics on host:port from a daemon thread of this process."""
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=directory)
    start_http_server(port, addr=host, registry=merged)
