"""run-local's topology (and the rehearsal's old tier, and the tests' stacks) from a workdir at
a long path: a Unix socket path must be under 108 bytes, so the sockets live elsewhere."""

from __future__ import annotations

from pathlib import Path

from prostudio.topology import LocalTopology


def test_the_topology_serves_from_a_workdir_whose_path_is_too_long_for_a_socket(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / ("a-checkout-at-a-long-path-" * 5) / "run-local"
    assert len(str(workdir / "gunicorn.sock")) > 108

    with LocalTopology(workdir) as topology:
        status, _, body = topology.get("/health/ready")
        sockets = [topology.socket_path, topology.redis_socket]
        assert all(socket.is_socket() and len(str(socket)) < 108 for socket in sockets)

    assert (status, body) == (200, b'{"status":"ready","redis":"ok"}')
    assert not topology.socket_dir.exists()
