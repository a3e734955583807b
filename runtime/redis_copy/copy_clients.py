"""Redis clients for the copy, built the same way by the CLI and the Lambda handler.

Connection set-up (TCP connect, TLS handshake, AUTH, SELECT) runs under the connect timeout.
redis-py applies its command timeout to everything after the TCP connect, so a `rediss://` URL
pointed at a plain server waited the whole command timeout on the TLS handshake, three times
over with the retries. A timeout is not retried: a server silent for the whole connect timeout
stays silent (a TLS client at a plain server, a dropped route), and the follow reconnects on its
own.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

CONNECT_TIMEOUT_SECONDS = 10
# A DUMP or RESTORE of a very big key can take a while on a busy server.
COMMAND_TIMEOUT_SECONDS = 120


class _SetUpUnderConnectTimeout:
    """Mixin: the command timeout starts only once the connection is set up."""

    socket_timeout: float | None
    socket_connect_timeout: float | None
    _sock: Any
    _parser: Any

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        if self._sock:
            return
        command_timeout = self.socket_timeout
        self.socket_timeout = self.socket_connect_timeout
        try:
            super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        finally:
            self.socket_timeout = command_timeout
        if self._sock is not None:
            self._sock.settimeout(command_timeout)
            # The parsers restore the timeout they saw at set-up after each timed read.
            buffer: Any = getattr(self._parser, "_buffer", None)
            if hasattr(buffer, "socket_timeout"):
                buffer.socket_timeout = command_timeout
            if hasattr(self._parser, "_socket_timeout"):
                self._parser._socket_timeout = command_timeout


class Connection(_SetUpUnderConnectTimeout, redis.Connection):
    """A plain TCP connection whose set-up is bounded by the connect timeout."""


class SSLConnection(_SetUpUnderConnectTimeout, redis.SSLConnection):
    """A TLS connection whose handshake is bounded by the connect timeout."""


def make_client(
    host: str,
    port: int,
    *,
    tls: bool,
    password: str | None = None,
    username: str | None = None,
    db: int = 0,
    ca_file: str | None = None,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
) -> redis.Redis:
    """A client that verifies TLS certificates and fails fast on refused credentials.

    Nothing connects until the first command. redis-py treats an authentication failure as a
    connection error and retries it; two quick retries keep a wrong password a quick error.
    """
    options: dict[str, Any] = {"connection_class": Connection}
    if tls:
        options.update(connection_class=SSLConnection, ssl_cert_reqs="required")
        if ca_file:
            options["ssl_ca_certs"] = ca_file
    pool = redis.ConnectionPool(
        host=host,
        port=port,
        db=db,
        username=username or None,
        password=password or None,
        socket_connect_timeout=connect_timeout,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(
            ExponentialBackoff(cap=0.5, base=0.05), 2, supported_errors=(RedisConnectionError,)
        ),
        # RESP2: no push messages can land between the replies of a hand-written pipeline.
        protocol=2,
        **options,
    )
    return redis.Redis(connection_pool=pool)
