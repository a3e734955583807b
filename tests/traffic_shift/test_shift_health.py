"""HTTP probe gate against a real local HTTP server that answers 200, then 500."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from shift_engine import Progress, ShiftFailed, run
from shift_health import probe_verdict
from shift_support import Env


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    server: _HealthServer

    def do_GET(self) -> None:
        self.server.requests += 1
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: Any) -> None:
        return


class _HealthServer(http.server.ThreadingHTTPServer):
    status = 200
    requests = 0


@pytest.fixture
def health_server() -> Iterator[_HealthServer]:
    server = _HealthServer(("127.0.0.1", 0), _HealthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def url_of(server: _HealthServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/health"


def test_probe_is_healthy_on_200_and_unhealthy_on_500(health_server: _HealthServer) -> None:
    assert probe_verdict(url_of(health_server)).healthy
    health_server.status = 500
    verdict = probe_verdict(url_of(health_server))
    assert not verdict.healthy
    assert "answered 500" in verdict.reason


def test_probe_of_a_closed_port_is_unhealthy() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    verdict = probe_verdict(f"http://127.0.0.1:{port}/health", timeout=1)
    assert not verdict.healthy
    assert "failed" in verdict.reason


def test_shift_rolls_back_when_the_probe_turns_500(env: Env, health_server: _HealthServer) -> None:
    # Given the new endpoint answers 200 until the shift reaches new=20
    request = env.request(target=50, health_url=url_of(health_server))

    def report(progress: Progress) -> None:
        if progress.kind == "step" and progress.new_weight == 20:
            health_server.status = 500

    # When the shift runs, Then it rolls back to the last healthy step
    with pytest.raises(ShiftFailed, match="answered 500; rolled back to old 90 new 10"):
        run(request, env.context(), run_id="probe", owner="test", report=report)
    assert env.weights() == (90, 10)
    assert env.recorder.pairs == [(90, 10), (80, 20), (90, 10)]
    assert health_server.requests >= 3


def test_shift_with_a_healthy_probe_completes(env: Env, health_server: _HealthServer) -> None:
    request = env.request(target=20, health_url=url_of(health_server))
    run(request, env.context(), run_id="probe-ok", owner="test", report=lambda _: None)
    assert env.weights() == (80, 20)
    assert health_server.requests > 2
