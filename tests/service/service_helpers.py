"""Helpers shared by the service tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SERVICE_ROOT = Path(__file__).resolve().parents[2] / "runtime" / "service"
REPO_ROOT = SERVICE_ROOT.parents[1]
if str(SERVICE_ROOT) not in sys.path:
    sys.path.insert(0, str(SERVICE_ROOT))

from prostudio.topology import ManagedProcess, find_binary, free_port  # noqa: E402


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll a condition every 50 ms; fail the test if it does not hold within the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")


def redis_answers(port: int, password: str | None = None, **tls: object) -> bool:
    """True once a redis-server on 127.0.0.1:port answers PING."""
    client = redis.Redis(
        port=port,
        password=password,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
        **tls,  # type: ignore[arg-type]
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def wait_for_redis(process: ManagedProcess, port: int, password: str | None = None) -> None:
    """Wait until the redis-server answers; fail at once, with its log, if it exits."""

    def answers() -> bool:
        if not process.running():
            pytest.fail(f"{process.name} exited: {process.log.read_text()[-1000:]}")
        return redis_answers(port, password)

    wait_until(answers, what=f"{process.name} on port {port}")


@dataclass
class RedisServer:
    """A redis-server started by a test fixture."""

    port: int
    password: str | None
    process: ManagedProcess


def start_redis(
    workdir: Path, name: str, *arguments: str, password: str | None = None
) -> RedisServer:
    """A throwaway redis-server on 127.0.0.1, no persistence, its log under workdir."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    command = [
        find_binary("redis-server"),
        "--bind", "127.0.0.1", "--port", str(port),
        "--save", "", "--appendonly", "no", "--dir", str(workdir),
    ]  # fmt: skip
    if password:
        command += ["--requirepass", password, "--masterauth", password]
    process = ManagedProcess(name, [*command, *arguments], log=workdir / f"{name}.log")
    wait_for_redis(process, port, password)
    return RedisServer(port, password, process)


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


@dataclass
class TlsRedis:
    """A redis-server that only speaks TLS and requires an auth token, like ElastiCache."""

    port: int
    auth_token: str
    tls: TlsFiles
    process: ManagedProcess


def log_lines(path: Path) -> list[str]:
    """Non-empty lines of a log file."""
    return [line for line in path.read_text().splitlines() if line.strip()]


def parse_json_lines(path: Path) -> list[dict[str, object]]:
    """Every line of a log file parsed as JSON (fails the test on the first that is not)."""
    records = []
    for number, line in enumerate(log_lines(path), start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"{path.name} line {number} is not JSON: {line[:200]}")
    return records


def port_is_closed(port: int) -> bool:
    """True when nothing accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return False
    except OSError:
        return True
