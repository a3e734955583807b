"""Container health check: ``python -m prostudio.healthcheck`` exits 0 when /health answers 200.

It asks the gunicorn this container runs, at the TCP address in GUNICORN_BIND.
"""

from __future__ import annotations

import http.client
import os
import sys

DEFAULT_BIND = "0.0.0.0:8000"


def health_address(bind: str) -> tuple[str, int]:
    """The host and port to probe for a gunicorn bind such as ``0.0.0.0:8000``."""
    host, _, port = bind.removeprefix("http://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"GUNICORN_BIND={bind!r} is not a TCP host:port")
    if host in ("0.0.0.0", "", "[::]"):  # noqa: S104 (a wildcard bind is probed on loopback)
        host = "127.0.0.1"
    return host, int(port)


def main() -> int:
    """Probe /health once with a short timeout."""
    try:
        host, port = health_address(os.environ.get("GUNICORN_BIND", DEFAULT_BIND))
        connection = http.client.HTTPConnection(host, port, timeout=2)
        connection.request("GET", "/health")
        status = connection.getresponse().status
        connection.close()
    except (OSError, ValueError) as error:
        sys.stderr.write(f"unhealthy: {error}\n")
        return 1
    if status != 200:
        sys.stderr.write(f"unhealthy: /health answered {status}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
