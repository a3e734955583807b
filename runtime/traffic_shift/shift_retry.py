"""Retries for Route53 and CloudWatch calls: capped exponential backoff with full jitter.

botocore's own retry modes also cover `Throttling` and `PriorRequestNotComplete`, but they sleep
with the real clock. The clients used here are built with botocore's retries off (see
`client_config`) so that this module is the only retry layer, with an injectable sleep.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError

from runtime.common import aws

T = TypeVar("T")

# Route53 answers `Throttling` past 5 requests per second per account and
# `PriorRequestNotComplete` while it still processes an earlier change; CloudWatch says
# `ThrottlingException`/`Throttling`.
RETRYABLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "PriorRequestNotComplete", "RequestLimitExceeded"}
)
MAX_ATTEMPTS = 8
BASE_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 8.0


def client_config() -> Config:
    """Client settings with botocore's retries off and short timeouts (no call blocks a Lambda)."""
    return aws.client_config(botocore_attempts=1)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0)."""
    return rng.uniform(0, min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2**attempt))


def call_with_retry(
    call: Callable[..., T],
    *,
    sleep: Callable[[float], Any],
    rng: random.Random,
    max_attempts: int = MAX_ATTEMPTS,
    **kwargs: Any,
) -> T:
    """Call `call(**kwargs)`, retrying throttling errors; the last error is raised unchanged."""
    for attempt in range(max_attempts):
        try:
            return call(**kwargs)
        except ClientError as error:
            if error_code(error) not in RETRYABLE_CODES or attempt == max_attempts - 1:
                raise
            sleep(backoff_delay(attempt, rng))
    raise AssertionError("unreachable: the loop returns or raises")
