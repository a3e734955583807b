"""JSON log lines for the Lambdas, through structlog as the service logs.

One JSON object per line on stdout (CloudWatch keeps each as one event): "event", "level",
"timestamp" (UTC ISO 8601), "logger" and the call's own fields.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import structlog


def lambda_logger(name: str, *, stream: TextIO | None = None) -> Any:
    return structlog.wrap_logger(
        structlog.WriteLogger(stream if stream is not None else sys.stdout),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        context_class=dict,
    ).bind(logger=name)
