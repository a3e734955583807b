"""The box's Redis listens only where its clients are and refuses the commands nobody needs,
while serving every command the service, the follow and the monitor send; every secret the
box scripts read fails the step when the read fails.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from local_service import local_service
from test_service_provision import (  # noqa: F401 - the box fixture
    PRIVATE_ADDRESS,
    box,
    box_env,
    provision,
)

from devtools.topology import LocalTopology

FAILING_AWS = '#!/bin/sh\necho "aws $*" >> "$CALLS_LOG"\necho "AccessDenied" >&2\nexit 255\n'
REFUSED = (
    ("MODULE", "LIST"), ("ACL", "WHOAMI"), ("DEBUG", "SLEEP", "0"), ("SAVE",), ("BGSAVE",),
    ("BGREWRITEAOF",), ("MONITOR",), ("SYNC",), ("PSYNC", "?", "-1"), ("FAILOVER", "ABORT"),
    ("MIGRATE", "127.0.0.1", "1", "k", "0", "10"), ("SLAVEOF", "NO", "ONE"),
    ("REPLICAOF", "NO", "ONE"), ("SHUTDOWN", "NOSAVE"),
)  # fmt: skip


@pytest.fixture(scope="module")
def box_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTopology]:
    """redis-server alone, from the box's redis.conf (as the topology renders it)."""
    topology = local_service(tmp_path_factory.mktemp("box-redis"))
    (topology.workdir / "logs").mkdir(parents=True, exist_ok=True)
    topology.start_redis()
    yield topology
    topology.stop()


def client_of(topology: LocalTopology, client_name: str | None = None) -> redis.Redis:
    return redis.Redis(
        port=topology.redis_port,
        password=topology.redis_password,
        socket_timeout=5,
        client_name=client_name,
    )


def test_the_box_redis_listens_on_loopback_and_its_private_address(box: Path) -> None:  # noqa: F811
    run = provision(box)

    assert run.result.returncode == 0, run.result.stderr
    conf = run.file("/etc/prostudio/redis.conf").read_text().splitlines()
    assert f"bind 127.0.0.1 {PRIVATE_ADDRESS}" in conf
    assert not any(line.startswith("bind") and "0.0.0.0" in line for line in conf)


def test_provisioning_stops_when_the_private_address_is_unknown(box: Path) -> None:  # noqa: F811
    run = provision(box, METADATA_DOWN="1")

    assert run.result.returncode == 1
    assert "private address" in run.result.stderr
    assert not run.file("/etc/prostudio/redis.conf").exists()


@pytest.mark.parametrize("command", REFUSED, ids=lambda command: command[0])
def test_the_box_redis_refuses_commands_nobody_needs(
    box_redis: LocalTopology, command: tuple[str, ...]
) -> None:
    with pytest.raises(redis.ResponseError, match="unknown command"):
        client_of(box_redis).execute_command(*command)
    assert client_of(box_redis).ping()


def test_the_box_redis_serves_what_the_service_the_follow_and_the_monitor_send(
    box_redis: LocalTopology,
) -> None:
    client = client_of(box_redis, client_name="prostudio")
    client.set("k", "v", ex=100)
    client.set("plain", "1")
    assert client.mget(["k", "plain"]) == [b"v", b"1"]
    assert client.scan(0, count=10)[1]
    assert client.time()
    assert 0 < client.pttl("k") <= 100_000
    payload = client.dump("k")
    assert payload is not None
    client.restore("copied", 0, payload, replace=True)
    client.execute_command("RESTORE", "copied", "0", payload, "REPLACE", "ABSTTL")
    assert client.exists("copied") == 1 and client.type("copied") == b"string"
    assert client.randomkey() is not None
    assert client.dbsize() >= 3
    assert "redis_version" in client.info("server") and client.info("memory")
    assert client.config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert client.config_set("notify-keyspace-events", "KA")
    assert client.delete("copied") == 1
    assert client.execute_command("SELECT", 0)
    subscriber = client_of(box_redis)
    pubsub = subscriber.pubsub()
    pubsub.psubscribe("__keyspace@0__:*")
    pubsub.subscribe("__redis__:invalidate")
    tracked = client_of(box_redis)
    redirect = int(tracked.client_id())
    tracked.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", redirect, "BCAST", "NOLOOP")
    assert client.client_kill_filter(_type="pubsub") >= 1
    pubsub.close()


def _cutover(root: Path, action: str) -> subprocess.CompletedProcess[str]:
    env = box_env(
        root,
        OLD_HOST="10.0.1.23", OLD_PORT="6379", OLD_TLS="false",
        OLD_SECRET_ARN="arn:aws:secretsmanager:eu-west-1:123456789012:secret:old",
        NEW_HOST="127.0.0.1", NEW_PORT="6380", NEW_TLS="true",
        NEW_SECRET_ARN="arn:aws:secretsmanager:eu-west-1:123456789012:secret:new",
        READY_SECONDS="1",
    )  # fmt: skip
    return subprocess.run(
        ["bash", str(root / "opt/prostudio/app/deploy/redis-cutover.sh"), *action.split()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    "action", ["follow-start forward", "follow-start reverse", "switch-to-new"]
)
def test_a_failed_secret_read_fails_the_cutover_step(box: Path, action: str) -> None:  # noqa: F811
    (box / "stubs/aws").write_text(FAILING_AWS)
    if action.endswith("reverse"):
        drop_in = box / "etc/systemd/system/prostudio.service.d/redis-switch.conf"
        drop_in.parent.mkdir(parents=True)
        drop_in.write_text("[Service]\n")

    result = _cutover(box, action)

    assert result.returncode != 0, result.stdout
    assert "could not read arn:aws:secretsmanager" in result.stderr
    calls = (box / "calls.log").read_text() if (box / "calls.log").exists() else ""
    assert "systemd-run" not in calls and "restart" not in calls
    assert not (box / "var/lib/prostudio/cutover/follow.env").exists()


def test_a_failed_secret_read_fails_provisioning(box: Path) -> None:  # noqa: F811
    (box / "stubs/aws").write_text(FAILING_AWS)

    run = provision(box)

    assert run.result.returncode == 1
    assert "could not read secret" in run.result.stderr
    assert not run.file("/etc/prostudio/env").exists()
