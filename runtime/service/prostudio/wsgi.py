"""The WSGI entry point, ``prostudio.wsgi:app``.

The application (and its Redis connection pools) is built on first use inside each gunicorn
worker, after the fork, so no connection is ever shared between processes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import Any

from prostudio.app import Application, StartResponse, build_application
from prostudio.settings import load_settings


@functools.cache
def application() -> Application:
    """The process's application, configured from the environment."""
    return build_application(load_settings(os.environ))


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """WSGI callable handed to gunicorn."""
    return application()(environ, start_response)
