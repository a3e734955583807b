"""Redis clients for the copy, built the same way by the CLI and the Lambda handler."""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

CONNECT_TIMEOUT_SECONDS = 10
# A DUMP or RESTORE of a very big key can take a while on a busy server.
COMMAND_TIMEOUT_SECONDS = 120


def make_client(
    host: str,
    port: int,
    *,
    tls: bool,
    password: str | None = None,
    username: str | None = None,
    db: int = 0,
    ca_file: str | None = None,
) -> redis.Redis:
    """A client that verifies TLS certificates and fails fast on refused credentials.

    Nothing connects until the first command. redis-py treats an authentication failure as a
    connection error and retries it; two quick retries keep a wrong password a quick error.
    """
    options: dict[str, Any] = {}
    if tls:
        options.update(ssl=True, ssl_cert_reqs="required")
        if ca_file:
            options["ssl_ca_certs"] = ca_file
    return redis.Redis(
        host=host,
        port=port,
        db=db,
        username=username or None,
        password=password or None,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        # RESP2: no push messages can land between the replies of a hand-written pipeline.
        protocol=2,
        **options,
    )
