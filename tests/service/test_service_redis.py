"""The Redis layer against real redis-servers: TLS + auth token (ElastiCache's shape), Sentinel
with a failover, outages that degrade to the origin, and error logging with stack traces.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio
from local_service import LOADED_MACHINE_REDIS_TIMEOUT_MS
from prostudio.app import Application, build_application
from prostudio.redis_cache import BYPASS, HIT, MISS, RedisCache, build_redis_client
from prostudio.settings import RedisSettings, load_settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from service_helpers import TLS_REDIS_TOKEN, wait_until

from devtools.processes import ManagedProcess, find_binary, free_port
from devtools.redis_servers import RedisServer, start_redis

# One event loop for the module: an asyncio Redis pool belongs to the loop it connected on.
LOOP = asyncio.new_event_loop()
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the module's event loop."""
    return LOOP.run_until_complete(coroutine)


def call(
    app: Application, path: str, query: str = ""
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Call the ASGI application in-process."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": [],
    }
    run(app(scope, receive, send))
    app.log_buffer.flush()
    headers = http.client.HTTPMessage()
    for name, value in sent[0]["headers"]:
        headers[name.decode()] = value.decode()
    return sent[0]["status"], headers, sent[1]["body"]


def plain_environment(server: RedisServer) -> dict[str, str]:
    return {"REDIS_PORT": str(server.port), "REDIS_TIMEOUT_MS": LOADED_MACHINE_REDIS_TIMEOUT_MS}


def tls_environment(server: RedisServer, **overrides: str) -> dict[str, str]:
    return {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(server.port),
        "REDIS_TLS": "true",
        "REDIS_AUTH_TOKEN": TLS_REDIS_TOKEN,
        "REDIS_TLS_CA_FILE": str(server.ca_cert),
        "REDIS_TIMEOUT_MS": LOADED_MACHINE_REDIS_TIMEOUT_MS,
        **overrides,
    }


def test_tls_and_auth_token_cache_through_the_application(tls_redis: RedisServer) -> None:
    app = build_application(load_settings(tls_environment(tls_redis)), log_stream=io.StringIO())
    path = f"/api/v1/tracks/tls-{uuid.uuid4().hex[:8]}/waveform"

    ready = call(app, "/health/ready")
    first = call(app, path)
    second = call(app, path)

    assert ready[0] == 200
    assert (first[1]["X-Cache"], second[1]["X-Cache"]) == ("MISS", "HIT")
    direct = redis.Redis(
        port=tls_redis.port,
        password=TLS_REDIS_TOKEN,
        ssl=True,
        ssl_ca_certs=str(tls_redis.ca_cert),
    )
    assert 0 < direct.ttl(f"waveform:v1:{path.split('/')[4]}:64") <= 300
    direct.close()


def test_tls_with_a_wrong_token_degrades_and_reports_not_ready(tls_redis: RedisServer) -> None:
    log = io.StringIO()
    env = tls_environment(tls_redis, REDIS_AUTH_TOKEN="wrong-token-wrong-token-0000")
    app = build_application(load_settings(env), log_stream=log)

    ready = call(app, "/health/ready")
    api = call(app, "/api/v1/tracks/wrong-token/waveform")

    assert ready[0] == 503
    assert json.loads(ready[2]) == {"status": "unavailable", "redis": "down"}
    assert api[0] == 200
    assert api[1]["X-Cache"] == "BYPASS"
    warnings = [json.loads(line) for line in log.getvalue().splitlines()]
    assert any(w["event"] == "redis_unavailable" for w in warnings)
    reasons = [w["reason"] for w in warnings if w["event"] == "not_ready"]
    assert any("Authentication" in reason for reason in reasons)


def test_tls_certificate_is_verified(tls_redis: RedisServer) -> None:
    env = tls_environment(tls_redis)
    del env["REDIS_TLS_CA_FILE"]
    log = io.StringIO()
    app = build_application(load_settings(env), log_stream=log)

    status, _, _ = call(app, "/health/ready")

    assert status == 503
    (not_ready,) = [
        json.loads(line) for line in log.getvalue().splitlines() if '"not_ready"' in line
    ]
    assert "certificate verify failed" in not_ready["reason"]


def test_plain_connection_to_a_tls_port_is_not_ready(tls_redis: RedisServer) -> None:
    env = {"REDIS_PORT": str(tls_redis.port), "REDIS_PASSWORD": TLS_REDIS_TOKEN}
    app = build_application(load_settings(env), log_stream=io.StringIO())

    assert call(app, "/health/ready")[0] == 503
    assert call(app, "/api/v1/tracks/plain/waveform")[0] == 200


class StepClock:
    """A clock the test moves by hand, to cross the outage cooldown without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_outage_cooldown_skips_redis_then_tries_again(redis_server: RedisServer) -> None:
    errors: list[str] = []
    clock = StepClock()
    # No retries of its own (redis-py's default backs off for seconds): the cooldown is judged.
    dead = redis.asyncio.Redis(
        port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    cache = RedisCache(
        dead,
        ttl_seconds=60,
        outage_cooldown_seconds=5,
        on_error=lambda operation, error: errors.append(operation),
        clock=clock,
    )

    first = run(cache.get_or_compute("k", lambda: b"origin"))
    clock.now += 1
    second = run(cache.get_or_compute("k", lambda: b"origin"))
    clock.now += 5
    third = run(cache.get_or_compute("k", lambda: b"origin"))

    assert [first, second, third] == [(b"origin", BYPASS)] * 3
    assert errors == ["get", "get"]
    live = RedisCache(redis.asyncio.Redis(port=redis_server.port), ttl_seconds=60)
    key = f"live-{uuid.uuid4().hex}"
    assert run(live.get_or_compute(key, lambda: b"v"))[1] == MISS
    assert run(live.get_or_compute(key, lambda: b"other")) == (b"v", HIT)


def test_unhandled_error_is_a_json_500_with_the_stack_trace_in_the_log(
    redis_server: RedisServer,
) -> None:
    log = io.StringIO()
    app = build_application(load_settings(plain_environment(redis_server)), log_stream=log)

    def broken_origin(track_id: str, points: int) -> bytes:
        raise ZeroDivisionError("origin failed")

    app.render = broken_origin

    status, headers, body = call(app, f"/api/v1/tracks/e-{uuid.uuid4().hex[:8]}/waveform")

    assert status == 500
    assert json.loads(body) == {"error": "internal error", "request_id": headers["X-Request-ID"]}
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    error = next(record for record in records if record["event"] == "unhandled_error")
    assert error["level"] == "error"
    assert error["request_id"] == headers["X-Request-ID"]
    exception = error["exception"][0]
    assert exception["exc_type"] == "ZeroDivisionError"
    assert any(frame["name"] == "broken_origin" for frame in exception["frames"])
    assert records[-1]["event"] == "request" and records[-1]["status"] == 500


def sentinel_config(directory: Path, port: int, master_port: int, password: str) -> Path:
    config = directory / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
        f"sentinel auth-pass mymaster {password}\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 10000\n"
    )
    return config


@pytest.mark.slow
def test_sentinel_client_follows_the_master_after_it_fails(tmp_path: Path) -> None:
    password = "sentinel-test-password-123"
    # A diskless sync starts at once, not after the default 5 s wait for more replicas.
    master = start_redis(
        tmp_path / "master", password=password, extra_args=("--repl-diskless-sync-delay", "0")
    )
    replica = start_redis(
        tmp_path / "replica",
        password=password,
        extra_args=("--replicaof", "127.0.0.1", str(master.port), "--masterauth", password),
    )
    # Synced before the sentinel starts: its first INFO of the master lists the replica, where a
    # replica that connects later waits for the next INFO, ten seconds on.
    wait_until(
        lambda: replica.client().info("replication")["master_link_status"] == "up",
        what="the replica to sync",
    )
    sentinel_port = free_port()
    sentinel = ManagedProcess(
        "sentinel",
        [
            find_binary("redis-server"),
            str(sentinel_config(tmp_path, sentinel_port, master.port, password)),
            "--sentinel",
        ],
        log=tmp_path / "sentinel.log",
    )
    try:
        sentinel_client = redis.Redis(port=sentinel_port, decode_responses=True)
        settings = RedisSettings(
            sentinel_hosts=(("127.0.0.1", sentinel_port),), password=password, retries=3
        )
        cache = RedisCache(build_redis_client(settings), ttl_seconds=60, outage_cooldown_seconds=0)

        def replica_known() -> bool:
            try:
                replicas = sentinel_client.sentinel_slaves("mymaster")
            except redis.RedisError:
                return False
            return any(r["master-link-status"] == "ok" for r in replicas)

        wait_until(replica_known, what="sentinel to see the synced replica")
        assert run(cache.get_or_compute("before", lambda: b"1")) == (b"1", MISS)

        master.stop()

        def replica_promoted() -> bool:
            address = sentinel_client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"
            )
            return int(address[1]) == replica.port

        wait_until(replica_promoted, what="sentinel to promote the replica")
        wait_until(
            lambda: run(cache.get_or_compute("after", lambda: b"2"))[1] != BYPASS,
            what="writes to reach the new master",
        )

        new_master = redis.Redis(port=replica.port, password=password)
        assert new_master.get("after") == b"2"
        assert new_master.get("before") == b"1"
        assert run(cache.get_or_compute("after", lambda: b"x")) == (b"2", HIT)
    finally:
        sentinel.stop()
        replica.stop()
        master.stop()


def test_the_pool_serves_more_concurrent_requests_than_redis_py_defaults_to(
    redis_server: RedisServer,
) -> None:
    # redis-py's asyncio pool defaults to 100 connections and fails the 101st command at once.
    # 200 concurrent misses read in one batch, then write 200 keys at the same time.
    settings = load_settings(plain_environment(redis_server))
    cache = RedisCache(build_redis_client(settings.redis), ttl_seconds=60)
    keys = [f"busy-{uuid.uuid4().hex}" for _ in range(200)]

    async def in_flight() -> list[tuple[bytes, str]]:
        return await asyncio.gather(*(cache.get_or_compute(key, key.encode) for key in keys))

    misses = run(in_flight())
    hits = run(in_flight())
    run(cache.close())

    assert misses == [(key.encode(), MISS) for key in keys]
    assert hits == [(key.encode(), HIT) for key in keys]


def test_reads_and_readiness_checks_of_one_loop_turn_share_one_command(
    redis_server: RedisServer,
) -> None:
    settings = load_settings(plain_environment(redis_server))
    cache = RedisCache(build_redis_client(settings.redis), ttl_seconds=60)
    keys = [f"turn-{uuid.uuid4().hex}" for _ in range(50)]
    for key in keys:
        run(cache.get_or_compute(key, key.encode))
    stats = redis.Redis(port=redis_server.port)

    def calls(command: str) -> int:
        return int(stats.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))

    async def one_turn() -> tuple[list[tuple[bytes, str]], list[str | None]]:
        reads = asyncio.gather(*(cache.get_or_compute(key, lambda: b"origin") for key in keys))
        checks = asyncio.gather(*(cache.check() for _ in range(30)))
        return await reads, await checks

    # The first turn opens a second connection, whose first command brings redis-py's own
    # health-check PING; count the second.
    run(one_turn())
    before = {command: calls(command) for command in ("mget", "get", "ping")}
    reads, checks = run(one_turn())
    run(cache.close())

    assert reads == [(key.encode(), HIT) for key in keys]
    assert checks == [None] * 30
    assert calls("mget") - before["mget"] == 1
    assert calls("get") == before["get"]
    assert calls("ping") - before["ping"] == 1
    stats.close()
