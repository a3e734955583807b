#!/usr/bin/env python3
"""`make bench-copy`: copy 1M keys of mixed types between two local redis-servers.

The servers mirror production: a plain source (the box's Redis) and a TLS + requirepass
target (ElastiCache with in-transit encryption and an AUTH token). Both run on free
loopback ports in a temporary directory and are stopped at the end.

The copy runs as the operator CLI in a child process, so its peak RSS is that process's
alone (from wait4). In the same run the migration guide's loop, exactly as the guide writes
it, copies a strings-only sample (it cannot copy other types) for comparison.

In the same run, on the same keyspace, Redis's own replication (`REPLICAOF` full sync to a
fresh replica, diskless) sets the physical limit, and the copy is timed twice as an operator
runs it (wall clock of the command): `--verify none` (the copy alone) and the default command
(copy + full two-way verification), with the CPU seconds per 100,000 keys each command's
process used (less sensitive to other load on the machine than the wall clock). For each of
these three phases the CPU seconds of the source, the target (the replica) and the client are
printed, with the wall clock they allow at least on this machine's cores. A reconciliation
pass over 150,000 keys is timed too.

Targets: >= 100,000 keys/s, >= 50x the guide's loop, peak RSS <= 256 MiB, 0 keys lost; the
copy alone >= 0.8x replication's keys/s, the default command >= 0.5x, a reconciliation of
150,000 keys <= 10 s. Exits 1 when a target is missed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from bench_copy_limits import (
    RECONCILE_DB,
    Phase,
    cpu_seconds,
    limit_figures,
    print_limits,
    reconcile_seconds,
    replication_seconds,
    server_pid,
)

from devtools.processes import TopologyError, find_binary
from devtools.redis_servers import TlsFiles, make_tls_files, start_redis

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / "scripts" / "migrate_redis.py"
KEYS = 1_000_000
GUIDE_SAMPLE = 20_000
POPULATE_CHUNK = 50_000
PASSWORD = "bench-target-token-0123456789"  # noqa: S105 - a throwaway local server
TARGET_KEYS_PER_SECOND = 100_000
TARGET_RATIO = 50
TARGET_RSS_MIB = 256
FOLLOW_DB = 2
FOLLOW_BURST = 200_000
FOLLOW_TRIALS = 3
TARGET_CHANGES_PER_SECOND = 20_000
STEADY_WRITES_PER_SECOND = 5_000
STEADY_SECONDS = 10
TARGET_LAG_P99_MS = 100
TARGET_COPY_RATIO = 0.8
TARGET_DEFAULT_RATIO = 0.5
TARGET_RECONCILE_SECONDS = 10.0

# Server-side fill: 60% strings (a third with TTLs), 10% hashes, 10% lists, 5% sets,
# 5% zsets, and the rest small streams or integer strings with millisecond TTLs.
POPULATE = """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = first, last - 1 do
  local key = 'bench:' .. i
  local kind = i % 10
  if kind <= 5 then
    redis.call('SET', key, string.rep('v', 20 + i % 60))
    if i % 3 == 0 then redis.call('EXPIRE', key, 3600 + i % 3600) end
  elseif kind == 6 then
    redis.call('HSET', key, 'name', 'user' .. i, 'email', 'u' .. i .. '@example.com',
      'visits', i % 1000, 'plan', 'pro')
  elseif kind == 7 then
    redis.call('RPUSH', key, 'a', 'b', 'c', i, 'e')
  elseif kind == 8 then
    if i % 20 == 8 then redis.call('SADD', key, 'x', 'y', 'z', i)
    else redis.call('ZADD', key, 1, 'a', 2, 'b', 3, 'c' .. i) end
  elseif i % 100 == 9 then
    redis.call('XADD', key, '*', 'event', 'click', 'n', i)
    redis.call('XADD', key, '*', 'event', 'view', 'n', i)
  else
    redis.call('SET', key, i)
    redis.call('PEXPIRE', key, 7200000)
  end
end
return last - first
"""


@contextmanager
def redis_server(
    directory: Path, *, password: str | None = None, tls: TlsFiles | None = None
) -> Iterator[tuple[int, redis.Redis]]:
    """A redis-server on a free loopback port and a client of it, stopped on exit."""
    server = start_redis(directory, password=password, tls=tls)
    client = server.client()
    try:
        yield server.port, client
    finally:
        client.close()
        server.stop()


def populate(source: redis.Redis, keys: int = KEYS) -> None:
    script = source.register_script(POPULATE)
    for first in range(0, keys, POPULATE_CHUNK):
        script(args=[first, min(first + POPULATE_CHUNK, keys)])


def run_cli(
    source_port: int, target_port: int, ca: Path, workdir: Path, *extra: str
) -> tuple[dict[str, Any], int, Phase]:
    """The CLI in a child process; returns its summary, its peak RSS in KiB, and its wall
    clock seconds with the CPU seconds (user + system) it and both servers used meanwhile."""
    servers = [
        server_pid(redis.Redis(host="127.0.0.1", port=source_port)),
        server_pid(
            redis.Redis(host="127.0.0.1", port=target_port, password=PASSWORD, ssl=True,
                        ssl_ca_certs=str(ca))
        ),
    ]  # fmt: skip
    servers_before = [cpu_seconds(pid) for pid in servers]
    env = {**os.environ, "TARGET_REDIS_PASSWORD": PASSWORD}
    command = [
        sys.executable,
        str(CLI),
        "--source",
        f"redis://127.0.0.1:{source_port}/0",
        "--target",
        f"rediss://127.0.0.1:{target_port}/0",
        "--target-ca",
        str(ca),
        "--checkpoint",
        str(workdir / f"checkpoint{len(extra)}.json"),
        *extra,
    ]
    with (workdir / "cli.out").open("w") as out, (workdir / "cli.err").open("w") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        source_cpu, target_cpu = (
            cpu_seconds(pid) - before for pid, before in zip(servers, servers_before, strict=True)
        )
        child.returncode = os.waitstatus_to_exitcode(status)
    lines = (workdir / "cli.out").read_text().strip().splitlines()
    if child.returncode != 0 or not lines:
        print((workdir / "cli.err").read_text(), file=sys.stderr)
        raise SystemExit(f"the copy failed with exit status {child.returncode}")
    phase = Phase(wall, source_cpu, target_cpu, usage.ru_utime + usage.ru_stime)
    return json.loads(lines[-1]), usage.ru_maxrss, phase


def guide_loop(source: Any, target: Any) -> float:
    """The migration guide's loop, verbatim apart from the clients; returns keys/s."""
    # redis-py warns that setex is deprecated; the guide uses it, so the loop keeps it.
    warnings.simplefilter("ignore", DeprecationWarning)
    started = time.perf_counter()
    migrated = 0
    for key in source.scan_iter("*"):
        ttl = source.ttl(key)
        value = source.get(key)
        if ttl > 0:
            target.setex(key, ttl, value)
        else:
            target.set(key, value)
        migrated += 1
    return migrated / (time.perf_counter() - started)


def start_follow(source_port: int, target_port: int, ca: Path, workdir: Path) -> Any:
    """The CLI following database FOLLOW_DB, once it reports "following"."""
    env = {**os.environ, "TARGET_REDIS_PASSWORD": PASSWORD}
    command = [
        sys.executable,
        str(CLI),
        "--source",
        f"redis://127.0.0.1:{source_port}/{FOLLOW_DB}",
        "--target",
        f"rediss://127.0.0.1:{target_port}/{FOLLOW_DB}",
        "--target-ca",
        str(ca),
        "--checkpoint",
        str(workdir / "follow.json"),
        "--follow",
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    for line in child.stdout:
        if json.loads(line).get("state") == "following":
            return child
    raise SystemExit("the follow ended before it started following")


def burst_rate(source: redis.Redis, target: redis.Redis, trial: int) -> float:
    """Changes applied per second: FOLLOW_BURST distinct keys written as fast as possible."""
    before = int(target.dbsize())
    started = time.perf_counter()
    pipe = source.pipeline(transaction=False)
    for index in range(FOLLOW_BURST):
        pipe.set(f"burst:{trial}:{index}", index)
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()
    while int(target.dbsize()) < before + FOLLOW_BURST:
        if time.perf_counter() - started > 120:
            raise SystemExit("the follow did not apply the burst within 120 s")
        time.sleep(0.005)
    return FOLLOW_BURST / (time.perf_counter() - started)


def steady_lags(source: redis.Redis, target: redis.Redis) -> list[float]:
    """ms from each source write to its key's arrival on the target, at a steady rate."""
    # The follow writes with RESTORE, a generic-class event.
    target.config_set("notify-keyspace-events", "KA")
    subscriber = target.pubsub()
    subscriber.psubscribe(f"__keyspace@{FOLLOW_DB}__:lag:*")
    written: dict[bytes, float] = {}
    arrived: dict[bytes, float] = {}
    prefix = len(f"__keyspace@{FOLLOW_DB}__:")

    def listen() -> None:
        while len(arrived) < STEADY_WRITES_PER_SECOND * STEADY_SECONDS:
            message = subscriber.get_message(timeout=1.0)
            if message is None:
                if time.perf_counter() > stop_at:
                    return
                continue
            if message["type"] == "pmessage":
                arrived.setdefault(message["channel"][prefix:], time.perf_counter())

    per_tick = STEADY_WRITES_PER_SECOND // 100
    stop_at = time.perf_counter() + STEADY_SECONDS + 10
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    started = time.perf_counter()
    for tick in range(100 * STEADY_SECONDS):
        pause = started + tick / 100 - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        pipe = source.pipeline(transaction=False)
        keys = [f"lag:{tick}:{n}".encode() for n in range(per_tick)]
        for key in keys:
            pipe.set(key, "v", ex=300)
        sent = time.perf_counter()
        pipe.execute()
        written.update(dict.fromkeys(keys, sent))
    listener.join()
    subscriber.close()
    return [(arrived.get(key, stop_at) - at) * 1000 for key, at in written.items()]


def bench_follow(
    source_port: int, target_port: int, ca: Path, workdir: Path, target_options: dict[str, Any]
) -> dict[str, Any]:
    source = redis.Redis(host="127.0.0.1", port=source_port, db=FOLLOW_DB)
    target = redis.Redis(
        host="127.0.0.1", port=target_port, db=FOLLOW_DB, password=PASSWORD, **target_options
    )
    child = start_follow(source_port, target_port, ca, workdir)
    rates = [burst_rate(source, target, trial) for trial in range(FOLLOW_TRIALS)]
    lags = sorted(steady_lags(source, target))
    child.send_signal(signal.SIGTERM)
    assert child.stdout is not None
    lines = child.stdout.read().strip().splitlines()
    _, status, usage = os.wait4(child.pid, 0)
    summary = json.loads(lines[-1])
    return {
        "rates": sorted(rates),
        "lag_p50": lags[len(lags) // 2],
        "lag_p99": lags[int(len(lags) * 0.99)],
        "lag_max": lags[-1],
        "rss_mib": usage.ru_maxrss / 1024,
        "ok": os.waitstatus_to_exitcode(status) == 0 and summary["ok"],
        "applied": summary["applied"],
    }


def main() -> int:
    try:
        find_binary("redis-server")
    except TopologyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-copy-") as temporary:
        workdir = Path(temporary)
        certificates = make_tls_files(workdir / "tls")
        target_options: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(certificates.ca_cert)}
        with (
            redis_server(workdir / "source") as (source_port, source),
            redis_server(workdir / "target", password=PASSWORD, tls=certificates) as (
                target_port,
                target,
            ),
        ):
            print(f"populating {KEYS:,} keys of mixed types ...", flush=True)
            populate(source)
            source_keys = int(source.dbsize())
            print(f"REPLICAOF full sync of {source_keys:,} keys ...", flush=True)
            replication = replication_seconds(source_port, source_keys, workdir / "replica")
            print(f"copy alone (--verify none) of {source_keys:,} keys ...", flush=True)
            _, _, copy_alone = run_cli(
                source_port, target_port, certificates.ca_cert, workdir, "--verify", "none"
            )
            target.flushall()
            print(
                f"copying {source_keys:,} keys: plain source -> TLS + AUTH target ...", flush=True
            )
            summary, rss_kib, default = run_cli(
                source_port, target_port, certificates.ca_cert, workdir
            )
            target_keys = int(target.dbsize())
            lost = max(source_keys - target_keys, 0) + int(summary["mismatched"])
            print("reconciliation of 150,000 keys (database 3) ...", flush=True)
            reconciled = reconcile_seconds(
                redis.Redis(host="127.0.0.1", port=source_port, db=RECONCILE_DB),
                redis.Redis(
                    host="127.0.0.1", port=target_port, db=RECONCILE_DB, password=PASSWORD,
                    **target_options,
                ),
                populate,
            )  # fmt: skip

            print(f"guide loop on {GUIDE_SAMPLE:,} strings (database 1) ...", flush=True)
            sample_source = redis.Redis(host="127.0.0.1", port=source_port, db=1)
            pipe = sample_source.pipeline(transaction=False)
            for index in range(GUIDE_SAMPLE):
                pipe.set(f"guide:{index}", "v" * 40, ex=3600 if index % 3 == 0 else None)
            pipe.execute()
            sample_target = redis.Redis(
                host="127.0.0.1", port=target_port, db=1, password=PASSWORD, **target_options
            )
            guide_rate = guide_loop(sample_source, sample_target)

            print(
                f"follow: {FOLLOW_TRIALS} bursts of {FOLLOW_BURST:,} changes, then "
                f"{STEADY_WRITES_PER_SECOND:,} writes/s for {STEADY_SECONDS} s "
                f"(database {FOLLOW_DB}) ...",
                flush=True,
            )
            followed = bench_follow(
                source_port, target_port, certificates.ca_cert, workdir, target_options
            )

    copy_rate = summary["scanned"] / summary["copy_seconds"]
    ratio = copy_rate / guide_rate
    rss_mib = rss_kib / 1024
    results = {
        **limit_figures(source_keys, replication, copy_alone, default),
        "reconcile_150k_seconds": round(reconciled, 3),
        "follow_changes_per_second": [round(rate) for rate in followed["rates"]],
        "follow_lag_ms": {
            name: round(followed[f"lag_{name}"], 1) for name in ("p50", "p99", "max")
        },
        "follow_peak_rss_mib": round(followed["rss_mib"], 1),
        "keys": source_keys,
        "copy_keys_per_second": round(copy_rate),
        "copy_seconds": summary["copy_seconds"],
        "verify_seconds": round(summary["seconds"] - summary["copy_seconds"], 3),
        "guide_keys_per_second": round(guide_rate),
        "ratio": round(ratio, 1),
        "peak_rss_mib": round(rss_mib, 1),
        "verification": "passed" if summary["ok"] else "FAILED",
        "verified_keys": summary["verified"],
        "mismatched": summary["mismatched"],
        "expired": summary["expired"],
        "keys_lost": lost,
    }
    checks = [
        (
            f"copy alone >= {TARGET_COPY_RATIO}x replication's keys/s",
            results["copy_alone_ratio"] >= TARGET_COPY_RATIO,
        ),
        (
            f"default command (copy + full verification) >= {TARGET_DEFAULT_RATIO}x replication",
            results["default_command_ratio"] >= TARGET_DEFAULT_RATIO,
        ),
        (
            f"reconciliation of 150,000 keys <= {TARGET_RECONCILE_SECONDS:.0f} s",
            reconciled <= TARGET_RECONCILE_SECONDS,
        ),
        (f"copy >= {TARGET_KEYS_PER_SECOND:,} keys/s", copy_rate >= TARGET_KEYS_PER_SECOND),
        (f"copy >= {TARGET_RATIO}x the guide loop", ratio >= TARGET_RATIO),
        (f"peak RSS <= {TARGET_RSS_MIB} MiB", rss_mib <= TARGET_RSS_MIB),
        ("0 keys lost and verification passed", lost == 0 and summary["ok"]),
        (
            f"follow >= {TARGET_CHANGES_PER_SECOND:,} changes/s (median)",
            followed["rates"][len(followed["rates"]) // 2] >= TARGET_CHANGES_PER_SECOND,
        ),
        (f"follow lag p99 <= {TARGET_LAG_P99_MS} ms", followed["lag_p99"] <= TARGET_LAG_P99_MS),
        (f"follow peak RSS <= {TARGET_RSS_MIB} MiB", followed["rss_mib"] <= TARGET_RSS_MIB),
        ("follow ended verified (exit 0)", followed["ok"]),
    ]
    print_limits(results, source_keys)
    print(f"engine copy      {copy_rate:>12,.0f} keys/s  ({source_keys:,} keys, mixed types)")
    print(f"guide loop       {guide_rate:>12,.0f} keys/s  ({GUIDE_SAMPLE:,} strings)")
    print(f"ratio            {ratio:>12.1f} x")
    print(f"peak RSS         {rss_mib:>12.1f} MiB (copying process)")
    print(f"verification     {results['verification']:>12}  ({summary['verified']:,} keys, full)")
    print(f"keys lost        {lost:>12,}")
    rates = " / ".join(f"{rate:,.0f}" for rate in followed["rates"])
    print(f"follow apply     {rates} changes/s (min / median / max of {FOLLOW_TRIALS})")
    print(
        f"follow lag       p50 {followed['lag_p50']:.1f} ms, p99 {followed['lag_p99']:.1f} ms, "
        f"max {followed['lag_max']:.1f} ms at {STEADY_WRITES_PER_SECOND:,} writes/s"
    )
    print(f"follow peak RSS  {followed['rss_mib']:>12.1f} MiB (following process)")
    for name, passed in checks:
        print(f"  [{'ok' if passed else 'MISSED'}] {name}")
    print(json.dumps(results, separators=(",", ":")))
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
