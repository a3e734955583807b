"""What the production stand-ins share: their loopback addresses, the wait for one to be
ready, and starting or stopping several at once. The stand-ins themselves: ``redis_group``
(a Sentinel-managed Redis group with TLS and AUTH behind ElastiCache's primary endpoint),
``new_tier`` (service tasks started with the image's command and settings behind an nginx in
the ALB's role) and ``moto_stand`` (moto's Route53 and CloudWatch over HTTP).

The old tier is ``devtools.topology.LocalTopology`` itself, as ``make run-local`` runs it.
"""

from __future__ import annotations

import contextlib
import http.client
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from devtools.processes import TopologyError

# The ALB's address: the "new" record is an alias to a name that resolves here.
ALB_ADDRESS = "127.0.0.3"
OLD_ADDRESS = "127.0.0.1"
STARTUP_SECONDS = 30.0


def wait_until(ready: Callable[[], bool], what: str, timeout: float = STARTUP_SECONDS) -> None:
    """Poll `ready` every 50 ms; TopologyError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.05)
    raise TopologyError(f"{what} not ready after {timeout:.0f} s")


def together(*steps: Callable[[], object]) -> None:
    """Run every step at once, each in its own thread; once all have ended, raise the error
    of the first one (in the order given) that failed."""
    with ThreadPoolExecutor(max_workers=max(1, len(steps))) as pool:
        running = [pool.submit(step) for step in steps]
    for step in running:
        step.result()


def http_status(host: str, port: int, path: str) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=2.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()
