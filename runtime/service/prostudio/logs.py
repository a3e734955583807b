"""JSON logs through structlog: the application's own lines and gunicorn's share one format."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
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


def build_logger(level: str = "info", stream: TextIO | None = None) -> Any:
    """A logger writing one JSON object per line; exceptions become structured tracebacks."""
    return structlog.wrap_logger(
        structlog.WriteLogger(stream if stream is not None else sys.stdout),
        processors=[
            *_shared_processors(),
            structlog.processors.dict_tracebacks,
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
            structlog.processors.dict_tracebacks,
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
