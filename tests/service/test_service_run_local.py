"""``make run-local``: the script serves the topology until SIGTERM, then leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import pytest
from prostudio.app import READY_BODY
from service_helpers import REPO_ROOT, port_is_closed, wait_until

from devtools.processes import free_port, http_get


def group_is_gone(process_group: int) -> bool:
    try:
        os.killpg(process_group, 0)
    except ProcessLookupError:
        return True
    return False


def test_run_local_serves_until_sigterm_and_stops_every_process(tmp_path: Path) -> None:
    port = free_port()
    script = subprocess.Popen(
        [sys.executable, "scripts/run_local.py", "--port", str(port), "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert script.stdout is not None
        ready = json.loads(script.stdout.readline())
        assert ready["event"] == "ready"
        groups = ready["process_groups"]
        assert set(groups) == {"redis", "gunicorn", "nginx"}

        # run-local keeps the box's 250 ms Redis budget: one slow PING on busy cores answers
        # 503, so the test waits for a ready answer rather than reading one probe.
        def answers_ready() -> bool:
            status, _, body = http_get(port, "/health/ready")
            return (status, body) == (200, READY_BODY)

        wait_until(answers_ready, what="/health/ready to answer ready")
        assert http_get(port, "/api/v1/tracks/run-local/waveform")[0] == 200

        script.send_signal(signal.SIGTERM)
        assert script.wait(timeout=30) == 0
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()

    assert "stopped" in script.stdout.read()
    for name, process_group in groups.items():
        wait_until(partial(group_is_gone, process_group), what=name)
    assert port_is_closed(port)
    assert (tmp_path / "logs").is_dir(), "a --workdir given by the caller is kept"


def test_run_local_removes_the_temporary_directory_it_made() -> None:
    # A short TMPDIR: the gunicorn socket in the work directory must stay under 108 bytes.
    temporary = Path(tempfile.mkdtemp(prefix="rl-"))
    try:
        run_local_in(temporary)
        assert list(temporary.iterdir()) == []
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def run_local_in(temporary: Path) -> None:
    port = free_port()
    script = subprocess.Popen(
        [sys.executable, "scripts/run_local.py", "--port", str(port)],
        cwd=REPO_ROOT,
        env={**os.environ, "TMPDIR": str(temporary)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert script.stdout is not None
        workdir = Path(json.loads(script.stdout.readline())["logs"]).parent
        assert workdir.parent == temporary and workdir.is_dir()
        script.send_signal(signal.SIGTERM)
        assert script.wait(timeout=30) == 0
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()


def test_run_local_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "scripts/run_local.py",
                "--port",
                str(port),
                "--workdir",
                str(tmp_path),
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )

    assert result.returncode == 1
    assert result.stderr.strip() == f"error: 127.0.0.1:{port} is in use; pass --port"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--port", "99999", "error: --port 99999 is not a TCP port; use 1-65535"),
        ("--port", "0", "error: --port 0 is not a TCP port; use 1-65535"),
        ("--workers", "0", "error: --workers 0 is out of range; use 1-64"),
    ],
)
def test_run_local_refuses_a_bad_value_in_one_line(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "scripts/run_local.py", option, value, "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )

    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""
    assert not (tmp_path / "logs").exists()
