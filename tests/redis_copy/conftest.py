"""Real redis-servers for the copy tests: a plain source and a TLS + requirepass target.

Both servers live for the whole session (one pair per xdist worker) on free loopback ports;
each test gets clients whose databases are flushed before and after it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtime" / "redis_copy"
if str(RUNTIME) not in sys.path:
    sys.path.insert(0, str(RUNTIME))

from copy_servers import (  # noqa: E402
    TARGET_PASSWORD,
    Certificates,
    MemoryStore,
    RedisServer,
    start_redis,
)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ec: list[str | Path] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run: list[str | Path] = ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_cert]
    run += ["-days", "2", "-subj", "/CN=copy-test-ca"]
    subprocess.run(run, check=True, capture_output=True)
    run = ["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"]
    subprocess.run(run, check=True, capture_output=True)
    sign: list[str | Path] = ["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert]
    sign += [
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        cert,
        "-days",
        "2",
        "-extfile",
        extensions,
    ]
    subprocess.run(sign, check=True, capture_output=True)
    return Certificates(ca=ca_cert, cert=cert, key=key)


@pytest.fixture(scope="session")
def source_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(
        tmp_path_factory.mktemp("source"), extra=("--enable-debug-command", "local")
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def target_server(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[RedisServer]:
    server = start_redis(
        tmp_path_factory.mktemp("target"), password=TARGET_PASSWORD, certificates=certificates
    )
    yield server
    server.stop()


@pytest.fixture
def source(source_server: RedisServer) -> Iterator[redis.Redis]:
    client = source_server.client()
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def target(target_server: RedisServer) -> Iterator[redis.Redis]:
    client = target_server.client()
    client.flushall()
    yield client
    client.config_set("maxmemory", "0")
    client.config_set("maxmemory-policy", "noeviction")
    client.flushall()
    client.close()


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()
