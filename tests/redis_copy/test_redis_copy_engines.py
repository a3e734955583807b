"""The production path's engines as real servers: the boxes' Redis 6.2 as the source and
ElastiCache's Valkey as the target; the reverse direction refused before anything is written.

Copy, verification, the follow (with the target's client tracking) and the preflight run
through the CLI or the engine exactly as against redis-server in the other copy tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from copy_support import TARGET_PASSWORD
from copy_testdata import (
    keyspace_differences,
    populate_all_types,
    populate_strings,
    snapshot_keyspace,
)
from test_redis_copy_cli import CLI, cli_env
from test_redis_copy_follow import Run, SwitchedBox, Writer

from devtools.redis_servers import RedisServer, redis62_binary, start_redis, valkey_binary


@dataclass
class Engines:
    redis62: RedisServer
    valkey: RedisServer


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    workdir = tmp_path_factory.mktemp("engines")
    redis62 = start_redis(workdir / "redis62", binary=redis62_binary())
    valkey = start_redis(workdir / "valkey", password=TARGET_PASSWORD, binary=valkey_binary())
    try:
        assert redis62.client().info("server")["redis_version"] == "6.2.14"
        assert valkey.client().info("server")["valkey_version"] == "9.1.2"
        yield Engines(redis62, valkey)
    finally:
        redis62.stop()
        valkey.stop()


@pytest.fixture
def flushed(engines: Engines) -> Engines:
    for server in (engines.redis62, engines.valkey):
        server.client().flushall()
    return engines


def migrate(source: RedisServer, target: RedisServer, tmp_path: Path, *extra: str) -> Any:
    env = cli_env()
    env["SOURCE_REDIS_PASSWORD"] = source.password or ""
    env["TARGET_REDIS_PASSWORD"] = target.password or ""
    return subprocess.run(
        [sys.executable, str(CLI), "--source", source.url, "--target", target.url,
         "--checkpoint", str(tmp_path / "copy.checkpoint.json"), *extra],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def test_a_redis_62_keyspace_of_every_type_copies_to_valkey_and_verifies(
    flushed: Engines, tmp_path: Path
) -> None:
    source, target = flushed.redis62.client(), flushed.valkey.client()
    populate_all_types(source)

    result = migrate(flushed.redis62, flushed.valkey, tmp_path)

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["ok"] is True and summary["mismatched"] == 0
    assert summary["verified"] == source.dbsize() == target.dbsize()
    assert keyspace_differences(snapshot_keyspace(source), snapshot_keyspace(target)) == []


def test_valkey_into_redis_62_is_refused_at_preflight_in_one_line(
    flushed: Engines, tmp_path: Path
) -> None:
    populate_strings(flushed.valkey.client(), 100)

    results = [
        migrate(flushed.valkey, flushed.redis62, tmp_path, "--preflight", "--policy", "replace"),
        migrate(flushed.valkey, flushed.redis62, tmp_path, "--follow"),
    ]

    for result in results:
        assert result.returncode == 1, result.stdout
        assert result.stderr.splitlines() == [
            "error: target runs Redis 6.2.14, which cannot RESTORE the source's Valkey 9.1.2 "
            f"DUMP payloads (RDB version {payload_version(flushed.valkey)}, the target reads up "
            "to 9); use a target engine at least as new as the source"
        ]
    assert flushed.redis62.client().dbsize() == 0


def payload_version(server: RedisServer) -> int:
    client = server.client()
    key = client.randomkey()
    assert key is not None
    payload = client.dump(key)
    assert isinstance(payload, bytes)
    return int.from_bytes(payload[-10:-8], "little")


def test_the_preflight_accepts_redis_62_into_valkey_and_refuses_a_full_old_valkey(
    flushed: Engines, tmp_path: Path
) -> None:
    # Given production (Valkey) holding more data than an old Valkey has room for
    populate_strings(flushed.valkey.client(), 20_000)
    old_server = start_redis(tmp_path / "old-valkey", binary=valkey_binary())
    old = old_server.client()
    old.config_set("maxmemory", str(old.info("memory")["used_memory"] + 200_000))
    try:
        checks = ("--preflight", "--policy", "replace")
        forward = migrate(flushed.redis62, flushed.valkey, tmp_path, *checks)
        back = migrate(flushed.valkey, old_server, tmp_path, *checks)
    finally:
        old_server.stop()

    assert forward.returncode == 0, forward.stderr
    assert json.loads(forward.stdout) == {
        "preflight": "ok",
        "source": "Redis 6.2.14",
        "target": "Valkey 9.1.2",
    }
    assert back.returncode == 1
    assert len(back.stderr.splitlines()) == 1
    assert "does not fit in the" in back.stderr and "use a larger node type" in back.stderr


def test_the_follow_from_redis_62_into_valkey_keeps_a_switched_boxs_writes(
    flushed: Engines,
) -> None:
    # Given a follow of a live Redis 6.2 source into Valkey, and a box switched to Valkey
    source, target = flushed.redis62.client(), flushed.valkey.client()
    populate_all_types(source, big=False)
    populate_strings(source, 3000)
    writer = Writer(flushed.redis62.client())
    writer.start()
    run = Run(source, flushed.valkey.client(), (flushed.redis62.label, flushed.valkey.label))
    run.wait_for("following")
    box = SwitchedBox(flushed.valkey.client())
    box.start()
    time.sleep(1.5)

    # When the source's writer stops and the follow is stopped
    writer.halt.set()
    writer.join()
    time.sleep(0.5)
    report = run.stop()
    box.halt.set()
    box.join()

    # Then every key equals the source's, except keys the box wrote (a later source change
    # of such a key is applied over the box's write, so either value may stand)
    expected, copied = snapshot_keyspace(source), snapshot_keyspace(target)
    for key in box.written:
        expected.pop(key.encode(), None)
        copied.pop(key.encode(), None)
    assert keyspace_differences(expected, copied) == []
    assert report["ok"] is True, str(report)
    assert 0 < report["superseded"] <= report["written_on_target"]
