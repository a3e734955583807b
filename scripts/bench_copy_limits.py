"""What `make bench-copy` holds the copy against: Redis's own replication of the same keyspace
(the physical limit of moving it on this machine), and the follow's reconciliation pass."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import redis
from copy_engine import RedisCopier
from copy_follow import Follower
from copy_state import CopySettings

RECONCILE_KEYS = 150_000
RECONCILE_DB = 3


def replication_seconds(source_port: int, source_keys: int, directory: Path) -> float:
    """Seconds for a fresh replica's REPLICAOF full sync (diskless, loopback) to hold every
    key of the source's database 0."""
    source = redis.Redis(host="127.0.0.1", port=source_port)
    source.config_set("repl-diskless-sync", "yes")
    source.config_set("repl-diskless-sync-delay", "0")
    directory.mkdir()
    replica_port = _free_port()
    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(replica_port), "--save", "",
         "--appendonly", "no", "--repl-diskless-load", "on-empty-db", "--dir", str(directory),
         "--logfile", str(directory / "redis.log")],
    )  # fmt: skip
    replica = redis.Redis(host="127.0.0.1", port=replica_port)
    try:
        _wait(replica.ping)
        started = time.perf_counter()
        replica.replicaof("127.0.0.1", source_port)
        _wait(lambda: _synced(replica.info("replication")), timeout=300, pause=0.005)
        seconds = time.perf_counter() - started
        if int(replica.dbsize()) < source_keys:
            raise SystemExit(f"the replica holds {replica.dbsize()} keys, not {source_keys}")
        return seconds
    finally:
        replica.close()
        process.terminate()
        process.wait(timeout=30)


def _synced(info: dict[str, Any]) -> bool:
    return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")


class _NoCheckpoint:
    def load(self) -> None:
        return None

    def save(self, state: object) -> None:
        """The bench does not resume."""


def reconcile_seconds(source: redis.Redis, target: redis.Redis, populate: Any) -> float:
    """Seconds for one reconciliation pass over RECONCILE_KEYS keys already copied (what a
    follow does after a lost subscription); the clients are on database RECONCILE_DB."""
    populate(source, RECONCILE_KEYS)
    copier = RedisCopier(
        source,
        target,
        CopySettings(verify="none"),
        source_label="bench-source",
        target_label="bench-target",
    )
    copier.copy(copier.start(), _NoCheckpoint())
    follower = Follower(copier, source, target, db=RECONCILE_DB)
    follower.start()
    try:
        started = time.perf_counter()
        follower.reconcile()
        seconds = time.perf_counter() - started
    finally:
        follower.close()
    if follower.pending:
        raise SystemExit(f"the reconciliation found {len(follower.pending)} differences, not 0")
    return seconds


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(ready: Any, timeout: float = 10.0, pause: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for a redis-server")
        time.sleep(pause)


def print_limits(results: dict[str, Any], keys: int) -> None:
    """The figures against replication, as `make bench-copy` prints them first."""
    replication, copy_alone = results["replication_seconds"], results["copy_alone_seconds"]
    default = results["default_command_seconds"]
    print(
        f"replication      {keys / replication:>12,.0f} keys/s  (REPLICAOF full sync, "
        f"{replication:.2f} s)"
    )
    print(
        f"copy alone       {keys / copy_alone:>12,.0f} keys/s  ({copy_alone:.2f} s, "
        f"{results['copy_alone_ratio']:.2f}x replication, "
        f"{results['copy_alone_cpu_per_100k']:.3f} CPU s per 100k keys)"
    )
    print(
        f"default command  {keys / default:>12,.0f} keys/s  ({default:.2f} s, copy + full "
        f"verification, {results['default_command_ratio']:.2f}x replication, "
        f"{results['default_command_cpu_per_100k']:.3f} CPU s per 100k keys)"
    )
    print(
        f"reconciliation   {results['reconcile_150k_seconds']:>12.2f} s       (150,000 keys, no "
        "difference)"
    )


def limit_figures(
    keys: int, replication: float, copy_alone: tuple[float, float], default: tuple[float, float]
) -> dict[str, Any]:
    """The figures against replication's keys/s, as results fields; `copy_alone` and
    `default` are each command's (wall clock seconds, CPU seconds)."""
    rate = keys / replication
    (copy_wall, copy_cpu), (default_wall, default_cpu) = copy_alone, default
    return {
        "replication_seconds": round(replication, 3),
        "replication_keys_per_second": round(rate),
        "copy_alone_seconds": round(copy_wall, 3),
        "copy_alone_ratio": round(keys / copy_wall / rate, 2),
        "copy_alone_cpu_per_100k": round(copy_cpu / keys * 100_000, 3),
        "default_command_seconds": round(default_wall, 3),
        "default_command_ratio": round(keys / default_wall / rate, 2),
        "default_command_cpu_per_100k": round(default_cpu / keys * 100_000, 3),
    }
