"""JSON logs through structlog: the application's own lines and gunicorn's share one format.

The application's lines are buffered for one event-loop turn and written together, so a busy
worker makes one write for many requests. Nothing is left in the buffer when the process ends:
the worker flushes it on shutdown, on exit (``atexit``) and before dying of SIGABRT (what
gunicorn sends a worker that missed its heartbeat).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from typing import Any, TextIO

import structlog
import structlog.tracebacks
from gunicorn.glogging import Logger as GunicornLogger

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _shared_processors() -> list[Any]:
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


MAX_BUFFERED_LINES = 512

# Exceptions as structured tracebacks without the frames' local variables: structlog's
# dict_tracebacks records them by default, and a frame's locals may hold a password, a
# request's Authorization or Cookie header, or a settings object.
STRUCTURED_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


class LineBuffer:
    """A structlog logger that collects rendered lines and writes them once per event-loop
    turn (at once when no loop runs, or when ``MAX_BUFFERED_LINES`` are waiting).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._scheduled = False
        atexit.register(self.flush)

    def msg(self, message: str) -> None:
        """Buffer one line; schedule the write for the end of this loop turn."""
        self._lines.append(message)
        if self._scheduled:
            if len(self._lines) >= MAX_BUFFERED_LINES:
                self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg

    def flush(self) -> None:
        """Write every buffered line now."""
        self._scheduled = False
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self._stream.write(text)
        self._stream.flush()


def build_logger(level: str, buffer: LineBuffer) -> Any:
    """A logger writing one JSON object per line through ``buffer``; exceptions become
    structured tracebacks.
    """
    return structlog.wrap_logger(
        buffer,
        processors=[
            *_shared_processors(),
            STRUCTURED_TRACEBACKS,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        cache_logger_on_first_use=True,
    )


class GunicornJsonLogger(GunicornLogger):
    """Gunicorn's logger with its access log switched off: the application already writes
    one JSON line per request, so gunicorn need not build a second one.
    """

    @property
    def access_log_enabled(self) -> bool:
        """Tells gunicorn's protocol handlers to skip collecting access-log fields."""
        return False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Write nothing."""


def gunicorn_logconfig(level: str = "info") -> dict[str, Any]:
    """A logging.config dict that renders gunicorn's own log records as JSON on stderr."""
    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        "foreign_pre_chain": [*_shared_processors(), structlog.stdlib.add_logger_name],
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            STRUCTURED_TRACEBACKS,
            structlog.processors.JSONRenderer(),
        ],
    }
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {"console": handler, "error_console": handler},
        "root": {"level": level.upper(), "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {
                "level": level.upper(),
                "handlers": ["error_console"],
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            "gunicorn.access": {
                "level": level.upper(),
                "handlers": ["console"],
                "propagate": False,
                "qualname": "gunicorn.access",
            },
        },
    }
