"""An ASGI app for the crash test: the service's application whose origin logs a line and
then blocks the event loop, so gunicorn's heartbeat timeout aborts the worker while that line
is still in the log buffer.
"""

from __future__ import annotations

import os
import time

from prostudio.app import build_application
from prostudio.settings import load_settings

app = build_application(load_settings(os.environ))


def blocking_render(track_id: str, points: int) -> bytes:
    """Log, then hold the event loop far longer than gunicorn's timeout."""
    app.logger.info("render_blocked", track_id=track_id)
    time.sleep(60)
    return b"{}"


app.render = blocking_render
