"""The ASGI entry point, ``prostudio.asgi:app``.

gunicorn imports it in each worker after the fork (the app is not preloaded), and the Redis
pools connect lazily on that worker's event loop, so no connection is ever shared between
processes.
"""

from __future__ import annotations

import os

from prostudio.app import build_application
from prostudio.settings import load_settings

app = build_application(load_settings(os.environ))
