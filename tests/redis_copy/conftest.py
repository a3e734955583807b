"""Real redis-servers for the copy tests: a plain source and a TLS + requirepass target.

Both servers live for the whole session (one pair per xdist worker) on free loopback ports;
each test gets clients whose databases are flushed before and after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from copy_support import TARGET_PASSWORD, MemoryStore

from devtools.redis_servers import RedisServer, TlsFiles, make_tls_files, start_redis

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def source_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(
        tmp_path_factory.mktemp("source"), extra_args=("--enable-debug-command", "local")
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def target_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("target"), password=TARGET_PASSWORD, tls=tls_files)
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
