"""ASGI app factories for the secrets tests, loaded by gunicorn as ``failing_apps:NAME()``:
the service's own application and settings, made to fail where a secret is in reach.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from prostudio.app import Application, build_application
from prostudio.settings import Settings, load_settings


def _connect_origin(settings: Settings) -> None:
    """A start-up step that fails with the settings (and so the password) in its frame."""
    password = settings.redis.password
    raise RuntimeError(f"the origin refused the start-up check ({len(password or '')} chars)")


def boot() -> Application:
    """A worker that fails to boot after reading its settings."""
    settings = load_settings(os.environ)
    _connect_origin(settings)
    return build_application(settings)


def failing_requests() -> Application:
    """The service, except that rendering a waveform raises: every cache miss answers 500."""
    settings = load_settings(os.environ)
    application = build_application(settings)

    def broken_render(track_id: str, points: int) -> bytes:
        redis_settings = settings.redis
        raise RuntimeError(f"render failed for {track_id} at {redis_settings.host}")

    application.render = broken_render
    return application


def slow_requests() -> Application:
    """The service, except that rendering a waveform holds the worker until the file named by
    SLOW_REQUESTS_GATE exists (at most 30 s), so a test decides how long requests stay open."""
    application = build_application(load_settings(os.environ))
    gate = Path(os.environ["SLOW_REQUESTS_GATE"])

    def slow_render(track_id: str, points: int) -> bytes:
        deadline = time.monotonic() + 30
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return b"{}"

    application.render = slow_render
    return application
