"""What `make bench-copy` holds the copy against: Redis's own replication of the same keyspace
(the physical limit of moving it on this machine), and the follow's reconciliation pass.

Each phase also reports the CPU seconds every process used (from /proc/<pid>/stat, children
included: a diskless full sync serializes the keyspace in a forked child). Their sum over the
machine's cores is a lower bound on the phase's wall clock, whatever the client does.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from copy_engine import RedisCopier
from copy_follow import Follower
from copy_state import CopySettings

from devtools.redis_servers import start_redis

RECONCILE_KEYS = 150_000
RECONCILE_DB = 3


@dataclass(frozen=True)
class Phase:
    """One timed phase: its wall clock and the CPU seconds of the source server, the target
    server (the replica for replication) and the client (none for replication)."""

    wall: float
    source_cpu: float
    target_cpu: float
    client_cpu: float = 0.0

    @property
    def cpu(self) -> float:
        return self.source_cpu + self.target_cpu + self.client_cpu

    def floor(self, cores: int) -> float:
        """The shortest wall clock the CPU it used allows on `cores` cores."""
        return self.cpu / cores


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and of its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def server_pid(client: redis.Redis) -> int:
    return int(client.info("server")["process_id"])


def replication_seconds(source_port: int, source_keys: int, directory: Path) -> Phase:
    """A fresh replica's REPLICAOF full sync (diskless, loopback) until it holds every key of
    the source's database 0."""
    source = redis.Redis(host="127.0.0.1", port=source_port)
    source_pid = server_pid(source)
    source.config_set("repl-diskless-sync", "yes")
    source.config_set("repl-diskless-sync-delay", "0")
    server = start_redis(directory, extra_args=["--repl-diskless-load", "on-empty-db"])
    replica = server.client(socket_timeout=None)
    try:
        replica_pid = server_pid(replica)
        cpu_before = cpu_seconds(source_pid), cpu_seconds(replica_pid)
        started = time.perf_counter()
        replica.replicaof("127.0.0.1", source_port)
        _wait(lambda: _synced(replica.info("replication")), timeout=300, pause=0.005)
        seconds = time.perf_counter() - started
        # The forked child that serialized the keyspace counts once the source has reaped it.
        _wait(lambda: not _forked(source.info("persistence")), timeout=60, pause=0.005)
        source_cpu = cpu_seconds(source_pid) - cpu_before[0]
        replica_cpu = cpu_seconds(replica_pid) - cpu_before[1]
        if int(replica.dbsize()) < source_keys:
            raise SystemExit(f"the replica holds {replica.dbsize()} keys, not {source_keys}")
        return Phase(seconds, source_cpu, replica_cpu)
    finally:
        replica.close()
        server.stop()


def _forked(info: dict[str, Any]) -> bool:
    return bool(info.get("rdb_bgsave_in_progress"))


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
    cores = results["cores"]
    print(f"CPU seconds      source  target  client   wall  floor on {cores} cores (sum / {cores})")
    for name, label in (
        ("replication", "replication"),
        ("copy_alone", "copy alone"),
        ("default_command", "default"),
    ):
        cpu = results[f"{name}_cpu"]
        print(
            f"  {label:<14} {cpu['source']:>6.2f}  {cpu['target']:>6.2f}  {cpu['client']:>6.2f}"
            f"  {results[f'{name}_seconds']:>5.2f}  {cpu['floor']:>5.2f} s"
        )


def _cpu(phase: Phase, cores: int) -> dict[str, float]:
    return {
        "source": round(phase.source_cpu, 2),
        "target": round(phase.target_cpu, 2),
        "client": round(phase.client_cpu, 2),
        "floor": round(phase.floor(cores), 2),
    }


def limit_figures(
    keys: int, replication: Phase, copy_alone: Phase, default: Phase
) -> dict[str, Any]:
    """The figures against replication's keys/s, as results fields, with each phase's CPU
    seconds per process and the wall clock they allow at least on this machine's cores."""
    rate = keys / replication.wall
    cores = os.cpu_count() or 1
    return {
        "cores": cores,
        "replication_seconds": round(replication.wall, 3),
        "replication_keys_per_second": round(rate),
        "replication_cpu": _cpu(replication, cores),
        "copy_alone_seconds": round(copy_alone.wall, 3),
        "copy_alone_ratio": round(keys / copy_alone.wall / rate, 2),
        "copy_alone_cpu_per_100k": round(copy_alone.client_cpu / keys * 100_000, 3),
        "copy_alone_cpu": _cpu(copy_alone, cores),
        "default_command_seconds": round(default.wall, 3),
        "default_command_ratio": round(keys / default.wall / rate, 2),
        "default_command_cpu_per_100k": round(default.client_cpu / keys * 100_000, 3),
        "default_command_cpu": _cpu(default, cores),
    }
