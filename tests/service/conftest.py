"""Fixtures for the service tests: the real topology (redis-server, gunicorn, nginx from the
shipped deploy files) and standalone and TLS redis-servers on loopback.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVICE_ROOT = Path(__file__).resolve().parents[2] / "runtime" / "service"
if str(SERVICE_ROOT) not in sys.path:
    sys.path.insert(0, str(SERVICE_ROOT))

from prostudio.topology import LocalTopology, ManagedProcess, find_binary, free_port  # noqa: E402
from service_helpers import (  # noqa: E402
    RedisServer,
    TlsFiles,
    TlsRedis,
    redis_answers,
    start_redis,
    wait_until,
)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTopology]:
    """The box's topology, started once per test process from the deploy files."""
    topology = LocalTopology(tmp_path_factory.mktemp("stack"), api_workers=2)
    topology.start()
    yield topology
    topology.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A plain redis-server for in-process tests of the application and the Redis layer."""
    server = start_redis(tmp_path_factory.mktemp("redis"), "redis")
    yield server
    server.process.stop()


def _openssl(*arguments: str) -> None:
    subprocess.run(["openssl", *arguments], check=True, capture_output=True)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Generate the CA and server certificate with openssl."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=ProStudio test CA", "-keyout", str(ca_key), "-out", str(ca_cert),
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(extensions), "-out", str(cert),
    )  # fmt: skip
    return TlsFiles(ca_cert, cert, key)


@pytest.fixture(scope="session")
def tls_redis(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles) -> Iterator[TlsRedis]:
    """redis-server with TLS on its only port and requirepass set."""
    workdir = tmp_path_factory.mktemp("tls-redis")
    port = free_port()
    token = "elasticache-style-token-0123456789"
    command = [
        find_binary("redis-server"),
        "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(tls_files.server_cert),
        "--tls-key-file", str(tls_files.server_key),
        "--tls-ca-cert-file", str(tls_files.ca_cert),
        "--tls-auth-clients", "no",
        "--requirepass", token, "--save", "", "--dir", str(workdir),
    ]  # fmt: skip
    process = ManagedProcess("tls-redis", command, log=workdir / "redis.log")
    wait_until(
        lambda: redis_answers(port, token, ssl=True, ssl_ca_certs=str(tls_files.ca_cert)),
        what="TLS redis-server",
    )
    yield TlsRedis(port, token, tls_files, process)
    process.stop()
