"""Fixtures for the service tests: the real topology (redis-server, gunicorn, nginx from the
shipped deploy files) and standalone and TLS redis-servers on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from local_service import local_service
from service_helpers import TLS_REDIS_TOKEN

from devtools.redis_servers import RedisServer, TlsFiles, make_tls_files, start_redis
from devtools.topology import LocalTopology


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTopology]:
    """The box's topology, started once per test process from the deploy files."""
    topology = local_service(tmp_path_factory.mktemp("stack"), api_workers=2)
    topology.start()
    yield topology
    topology.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A plain redis-server for in-process tests of the application and the Redis layer."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_redis(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[RedisServer]:
    """redis-server with TLS on its only port and requirepass set, like ElastiCache."""
    server = start_redis(
        tmp_path_factory.mktemp("tls-redis"), password=TLS_REDIS_TOKEN, tls=tls_files
    )
    yield server
    server.stop()
