"""Helpers for the copy tests: redis-server processes and an in-memory checkpoint store."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

TARGET_PASSWORD = "target-secret-Pa55word"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


@dataclass
class RedisServer:
    """A redis-server child process on 127.0.0.1."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    password: str | None = None
    certificates: Certificates | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def tls(self) -> bool:
        return self.certificates is not None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def label(self) -> str:
        return f"127.0.0.1:{self.port}/0"

    def client(self, **overrides: object) -> redis.Redis:
        options: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "retry": Retry(NoBackoff(), 0),
        }
        if self.password:
            options["password"] = self.password
        if self.certificates:
            options.update(ssl=True, ssl_ca_certs=str(self.certificates.ca))
        options.update(overrides)
        return redis.Redis(**options)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_redis(
    directory: Path,
    *,
    password: str | None = None,
    certificates: Certificates | None = None,
    extra: tuple[str, ...] = (),
) -> RedisServer:
    """Start redis-server and wait until it answers PING."""
    directory.mkdir(parents=True, exist_ok=True)
    for _attempt in range(5):
        port = free_port()
        args = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--logfile",
            str(directory / "redis.log"),
        ]
        if certificates:
            args += [
                "--port",
                "0",
                "--tls-port",
                str(port),
                "--tls-cert-file",
                str(certificates.cert),
                "--tls-key-file",
                str(certificates.key),
                "--tls-ca-cert-file",
                str(certificates.ca),
                "--tls-auth-clients",
                "no",
            ]
        else:
            args += ["--port", str(port)]
        if password:
            args += ["--requirepass", password]
        args += list(extra)
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = RedisServer(port, directory, process, password, certificates, list(extra))
        if _wait_until_ready(server):
            return server
        server.stop()
    raise RuntimeError(f"redis-server did not start; see {directory / 'redis.log'}")


def _wait_until_ready(server: RedisServer) -> bool:
    client = server.client(socket_connect_timeout=1)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return True
            time.sleep(0.02)
        return False
    finally:
        client.close()


class MemoryStore:
    """An in-memory CheckpointStore that can simulate a crash on the Nth save."""

    def __init__(self, crash_on_save: int | None = None) -> None:
        self.saved: dict[str, Any] | None = None
        self.saves = 0
        self._crash_on_save = crash_on_save

    def load(self) -> dict[str, Any] | None:
        return None if self.saved is None else dict(self.saved)

    def save(self, state: object) -> None:
        self.saves += 1
        if self._crash_on_save is not None and self.saves >= self._crash_on_save:
            raise SimulatedCrash(f"crash at save {self.saves}")
        self.saved = json.loads(json.dumps(state))


class SimulatedCrash(BaseException):
    """Stands in for a kill: nothing after it runs, nothing is saved."""
