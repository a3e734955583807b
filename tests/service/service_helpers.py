"""Helpers shared by the service tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.processes import free_port

SERVICE_ROOT = Path(__file__).resolve().parents[2] / "runtime" / "service"
REPO_ROOT = SERVICE_ROOT.parents[1]
# The auth token of the `tls_redis` fixture, in the shape ElastiCache accepts.
TLS_REDIS_TOKEN = "elasticache-style-token-0123456789"
# How long a readiness wait polls before it fails the test: generous, since each wait returns
# as soon as its condition holds and only a real failure uses it all.
READY_DEADLINE_SECONDS = 60.0


def wait_until(
    condition: Callable[[], bool], timeout: float = READY_DEADLINE_SECONDS, what: str = ""
) -> None:
    """Poll a condition every 50 ms; fail the test if it does not hold within the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")


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


def start_test_app_gunicorn(
    tmp_path: Path, app: str, port: int, **environment: str
) -> subprocess.Popen[bytes]:
    """gunicorn with the shipped config serving one of this folder's test apps on
    127.0.0.1:port, without Redis settings; its output goes to tmp_path/gunicorn.log."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "GUNICORN_"))},
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "METRICS_BIND": f"127.0.0.1:{free_port()}",
        "PYTHONPATH": str(Path(__file__).parent),
        **environment,
    }
    command = [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", app]
    with (tmp_path / "gunicorn.log").open("w") as output:
        return subprocess.Popen(command, cwd=SERVICE_ROOT, env=env, stdout=output, stderr=output)
