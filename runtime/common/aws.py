"""boto3 client settings for the Lambdas and scripts: bounded waits, one retry layer.

A call never blocks past `CONNECT_TIMEOUT_SECONDS` + `READ_TIMEOUT_SECONDS` per attempt, so
a missing VPC endpoint fails the invocation in seconds instead of hanging until the Lambda
times out. Retries happen in exactly one place: botocore's standard mode (the default), or,
with `botocore_attempts=1`, the caller's own backoff (the traffic shift's `shift_retry`).
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
STANDARD_ATTEMPTS = 4


def client_config(*, botocore_attempts: int = STANDARD_ATTEMPTS) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": botocore_attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


def client(service: str, *, botocore_attempts: int = STANDARD_ATTEMPTS, **kwargs: Any) -> Any:
    """A boto3 client with these settings; built on call, never at import."""
    import boto3  # noqa: PLC0415 - so importing this module creates nothing

    return boto3.client(
        service, config=client_config(botocore_attempts=botocore_attempts), **kwargs
    )
