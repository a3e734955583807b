"""Restarts under load: gunicorn reloads (SIGHUP), max_requests recycling and a worker aborted
for a missed heartbeat (SIGABRT) lose no request and no log line, through the real nginx; an
abort that lands between a response's headers and its body still lets the body out.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import split_response_app
from local_service import local_service
from service_helpers import (
    parse_json_lines,
    port_is_closed,
    start_test_app_gunicorn,
    wait_until,
)

from devtools.processes import free_port
from devtools.topology import LocalTopology

CLIENTS = 12
LOAD_SECONDS = 8.0
# Longer than nginx's proxy_read_timeout (30 s): a request no worker ever answers comes back
# as nginx's 504, and one slowed by a worker booting on a busy machine still counts as answered.
CLIENT_TIMEOUT_SECONDS = 40
PATHS = ("/health/ready", "/api/v1/tracks/restart-load/waveform?points=16", "/health")


@pytest.fixture
def recycling_stack(tmp_path: Path) -> Iterator[LocalTopology]:
    """The box's topology with a worker recycled every few hundred requests."""
    topology = local_service(
        tmp_path,
        api_workers=1,
        extra_env={"GUNICORN_CMD_ARGS": "--max-requests 300 --max-requests-jitter 50"},
    )
    topology.start()
    yield topology
    topology.stop()


def keep_requesting(port: int, stop: threading.Event, answers: list[tuple[str, int | str]]) -> None:
    """GET the paths in turn on one keep-alive connection until told to stop; record each
    request id with its status, or with the error when the request failed outright.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_SECONDS)
    count = 0
    while not stop.is_set():
        request_id = f"load-{uuid.uuid4().hex}"
        try:
            connection.request(
                "GET", PATHS[count % len(PATHS)], headers={"X-Request-ID": request_id}
            )
            response = connection.getresponse()
            response.read()
            answers.append((request_id, response.status))
        except (OSError, http.client.HTTPException) as error:
            answers.append((request_id, f"{type(error).__name__}: {error}"))
            connection.close()
            connection = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=CLIENT_TIMEOUT_SECONDS
            )
        count += 1
    connection.close()


@contextlib.contextmanager
def under_load(port: int) -> Iterator[list[tuple[str, int | str]]]:
    """CLIENTS keep-alive clients requesting through nginx for as long as the block runs;
    yields their (request id, status or error) answers."""
    stop = threading.Event()
    answers: list[tuple[str, int | str]] = []
    clients = [
        threading.Thread(target=keep_requesting, args=(port, stop, answers)) for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    try:
        yield answers
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)


def assert_all_answered(answers: list[tuple[str, int | str]], *, at_least: int) -> None:
    failed = [(request_id, status) for request_id, status in answers if status != 200]
    assert len(answers) > at_least, "too little load to cross the restarts"
    assert failed == [], f"{len(failed)} of {len(answers)} requests failed: {failed[:5]}"


def worker_pids(stack: LocalTopology) -> set[int]:
    """The gunicorn arbiter's children."""
    arbiter = stack.processes["gunicorn"].pid
    children = Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()
    return {int(pid) for pid in children}


def test_reloads_recycling_and_an_aborted_worker_drop_no_request(
    recycling_stack: LocalTopology,
) -> None:
    stack = recycling_stack
    arbiter = stack.processes["gunicorn"].pid
    first_workers = worker_pids(stack)
    with under_load(stack.nginx_port) as answers:
        time.sleep(LOAD_SECONDS / 4)
        os.kill(arbiter, signal.SIGHUP)
        time.sleep(LOAD_SECONDS / 4)
        # What gunicorn does to a worker that missed its heartbeat.
        os.kill(next(iter(worker_pids(stack))), signal.SIGABRT)
        time.sleep(LOAD_SECONDS / 4)
        os.kill(arbiter, signal.SIGHUP)
        time.sleep(LOAD_SECONDS / 4)

    assert_all_answered(answers, at_least=1000)
    log = stack.log_path("gunicorn")
    boots = [r for r in parse_json_lines(log) if str(r.get("event", "")).startswith("Booting")]
    # Two reloads, one abort and several recycled workers each booted a new worker.
    assert len(boots) >= 1 + 2 + 1 + 2
    assert not worker_pids(stack) & first_workers
    wait_until(lambda: answers[-1][0] in log.read_text(), what="the last request's log line")
    logged = {r.get("request_id") for r in parse_json_lines(log) if r.get("event") == "request"}
    missing = [request_id for request_id, _ in answers if request_id not in logged]
    assert missing == [], f"{len(missing)} answered requests have no log line"


def test_a_full_restart_as_systemctl_restart_does_drops_no_request(tmp_path: Path) -> None:
    # Given the box's topology under load, its socket held as the prostudio.socket unit does
    with local_service(tmp_path, api_workers=1) as stack:
        first_arbiter = stack.processes["gunicorn"].pid

        # When gunicorn is stopped and started again, twice (the Redis switch does this)
        with under_load(stack.nginx_port) as answers:
            time.sleep(LOAD_SECONDS / 4)
            stack.restart_gunicorn()
            time.sleep(LOAD_SECONDS / 4)
            stack.restart_gunicorn()
            time.sleep(LOAD_SECONDS / 4)

        # Then every request was answered, by a new master
        assert_all_answered(answers, at_least=500)
        assert stack.processes["gunicorn"].pid != first_arbiter
        log = stack.log_path("gunicorn")
        starts = [
            r
            for r in parse_json_lines(log)
            if str(r.get("event", "")).startswith("Starting gunicorn")
        ]
        assert len(starts) == 3


def test_an_abort_between_a_responses_headers_and_its_body_lets_the_body_out(
    tmp_path: Path,
) -> None:
    # Given a worker that has sent a response's headers and not yet its body
    port = free_port()
    hold_ended = tmp_path / "hold-ended"
    server = start_test_app_gunicorn(
        tmp_path,
        "split_response_app:app",
        port,
        GUNICORN_CMD_ARGS="--workers 1",
        HOLD_ENDED_FILE=str(hold_ended),
    )
    try:
        wait_until(lambda: not port_is_closed(port), what="gunicorn to listen")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/")
        response = connection.getresponse()
        (worker,) = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()

        # When gunicorn aborts it (what it does to a worker that missed its heartbeat)
        os.kill(int(worker), signal.SIGABRT)
        signalled = time.monotonic()
        body = response.read()
    finally:
        server.terminate()
        server.wait(timeout=30)

    # Then the signal landed inside the window, and the whole body still came
    assert signalled < float(hold_ended.read_text()), "the abort came after the body was sent"
    assert body == split_response_app.BODY
