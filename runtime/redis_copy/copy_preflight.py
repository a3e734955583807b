"""Checks made before anything is written: reachability, identity, versions, memory, the
change feed. Each failure is a PreconditionError whose message names the fix.

DUMP payloads end with the RDB version of the engine that wrote them, and RESTORE rejects a
payload newer than its own engine's. Redis and Valkey share RDB versions up to 11 (Redis
7.2); Redis 7.4 and later write 12, which Valkey 7.2 and 8.x do not read; Valkey 9 writes
80, which no Redis and no earlier Valkey reads. The source's
version is read from one of its own payloads, so an engine missing from the table below is
still judged by what it writes. Valkey reports `server_name:valkey` and `valkey_version` in
INFO server, next to a `redis_version` that stays at 7.2.4 for client compatibility.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis
from copy_state import CopySettings, PreconditionError
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# First engine release -> the RDB version it writes (and the newest it reads).
REDIS_RDB_BY_RELEASE = {
    (2, 6): 6, (3, 2): 7, (4, 0): 8, (5, 0): 9, (7, 0): 10, (7, 2): 11, (7, 4): 12,
}  # fmt: skip
VALKEY_RDB_BY_RELEASE = {(7, 2): 11, (9, 0): 80}
# The classes a follow needs: generic, string, list, set, hash, zset, stream, expired,
# evicted (the `A` alias), on the keyspace channel (`K`).
NOTIFY_CLASSES = "g$lshzxte"
NOTIFY_SETTING = "KA"
# Where CONFIG is refused, the follow proves the feed by writing and deleting a probe key of
# its own; that shows the keyspace channel (`K`), strings (`$`) and generic events (`g`).
PROBE_PREFIX = b"prostudio:follow-probe:"
PROBE_EVENTS = frozenset({b"set", b"del"})
PROBE_SECONDS = 2.0
PROBE_TTL_MS = 60_000
PROBED_FLAGS = "K$g"


@dataclass(frozen=True)
class ServerFacts:
    """What the preconditions need to know about one server."""

    run_id: str
    engine: str
    version: tuple[int, ...]
    version_text: str
    used_memory: int
    dataset_bytes: int
    maxmemory: int
    maxmemory_policy: str
    keys: int

    @property
    def rdb_version(self) -> int:
        """The RDB version of the payloads this engine writes, and the newest it reads."""
        table = VALKEY_RDB_BY_RELEASE if self.engine == "valkey" else REDIS_RDB_BY_RELEASE
        newest = 0
        for release, rdb in sorted(table.items()):
            if self.version[:2] >= release:
                newest = rdb
        return newest or 6

    @property
    def name(self) -> str:
        return f"{'Valkey' if self.engine == 'valkey' else 'Redis'} {self.version_text}"


def parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _mib(value: float) -> str:
    return f"{value / 1048576:.1f} MiB"


def _calling(role: str, label: str, action: Any) -> Any:
    """Run `action()`, turning connection and auth failures into one-line errors."""
    try:
        return action()
    except AuthenticationError as error:
        raise PreconditionError(
            f"{role} redis at {label} rejected the credentials ({error}); check the {role} password"
        ) from None
    except (RedisConnectionError, RedisTimeoutError, OSError) as error:
        raise PreconditionError(
            f"cannot reach {role} redis at {label} ({error}); "
            "check host, port, TLS setting and network access"
        ) from None


def server_facts(client: redis.Redis, role: str, label: str) -> ServerFacts:
    """Read INFO and DBSIZE, turning connection and auth failures into one-line errors."""
    try:
        info, memory, keys = _calling(
            role,
            label,
            lambda: (client.info("server"), client.info("memory"), int(client.dbsize())),
        )
    except ResponseError as error:
        raise PreconditionError(f"{role} redis at {label} refused INFO/DBSIZE ({error})") from None
    engine = "valkey" if str(info.get("server_name", "")).lower() == "valkey" else "redis"
    version_text = str(info.get("valkey_version" if engine == "valkey" else "redis_version", "0"))
    used = int(memory.get("used_memory", 0))
    return ServerFacts(
        run_id=str(info.get("run_id", "")),
        engine=engine,
        version=parse_version(version_text),
        version_text=version_text,
        used_memory=used,
        dataset_bytes=max(int(memory.get("used_memory_dataset", used)), 0),
        maxmemory=int(memory.get("maxmemory", 0)),
        maxmemory_policy=str(memory.get("maxmemory_policy", "noeviction")),
        keys=keys,
    )


def payload_rdb_version(payload: bytes) -> int:
    """The RDB version a DUMP payload was written with (2 bytes before its 8-byte CRC)."""
    return int.from_bytes(payload[-10:-8], "little")


def target_reads(target: ServerFacts, rdb_version: int) -> bool:
    """Whether RESTORE on the target accepts payloads of this RDB version."""
    return rdb_version <= target.rdb_version


def sampled_rdb_version(client: redis.Redis) -> int | None:
    """The RDB version of a real payload from the source, or None when it holds no key."""
    for _attempt in range(3):
        key = client.randomkey()
        if key is None:
            return None
        payload = client.dump(key)
        if payload:
            return payload_rdb_version(payload)
    return None


def check_preconditions(
    source: ServerFacts,
    target: ServerFacts,
    settings: CopySettings,
    *,
    source_label: str,
    target_label: str,
    resuming: bool,
    source_payload_version: int | None = None,
) -> None:
    """Raise PreconditionError for the first check that fails; nothing has been written yet."""
    if source.run_id and source.run_id == target.run_id:
        raise PreconditionError(
            f"source {source_label} and target {target_label} are the same server "
            f"(run_id {source.run_id}); point --target at the new server"
        )
    payload_version = source_payload_version or source.rdb_version
    if not target_reads(target, payload_version):
        raise PreconditionError(
            f"target runs {target.name}, which cannot RESTORE the source's {source.name} "
            f"DUMP payloads (RDB version {payload_version}, the target reads up to "
            f"{target.rdb_version}); use a target engine at least as new as the source"
        )
    if settings.policy == "fail" and not resuming and target.keys > 0:
        raise PreconditionError(
            f"target {target_label} already holds {target.keys} key(s) and policy is 'fail'; "
            "empty the target or choose policy skip or replace"
        )
    if target.maxmemory:
        needed = int(source.dataset_bytes * settings.memory_margin)
        free = target.maxmemory - target.used_memory
        if settings.policy == "replace":
            # The target's keys are overwritten by the source's (a revert onto the old Redis
            # that holds the same keys): their memory is freed as the copy goes.
            free += target.dataset_bytes
        if needed > free:
            sizes = (
                f"the source's {_mib(source.dataset_bytes)} of data "
                f"(+{round((settings.memory_margin - 1) * 100)}% margin) does not fit in the "
                f"{_mib(free)} free under the target's maxmemory {_mib(target.maxmemory)}"
            )
            if target.maxmemory_policy == "noeviction":
                raise PreconditionError(
                    f"target maxmemory too small: {sizes}; use a larger node type"
                )
            raise PreconditionError(
                f"target maxmemory-policy {target.maxmemory_policy} would evict copied keys: "
                f"{sizes}; use a larger node type"
            )


def notifications_cover(flags: str) -> bool:
    """Whether notify-keyspace-events flags publish every change on the keyspace channel."""
    expanded = flags.replace("A", NOTIFY_CLASSES)
    return "K" in expanded and all(kind in expanded for kind in NOTIFY_CLASSES)


def ensure_notifications(client: redis.Redis, label: str) -> str:
    """Make the source publish keyspace notifications; returns the flags now in force.

    Enabled with CONFIG SET where the server allows it (added to the flags already set).
    Where CONFIG is refused (ElastiCache blocks it; its parameter group sets the flags), a
    probe key of the follow's own must reach the keyspace channel; otherwise the run is
    refused with where to set it.
    """
    refusal = (
        f"source redis at {label} does not publish keyspace notifications, which --follow "
        f"needs: set notify-keyspace-events to {NOTIFY_SETTING} (in redis.conf, or in the "
        "ElastiCache parameter group of the source) and run again"
    )
    try:
        current = _calling("source", label, lambda: client.config_get("notify-keyspace-events"))
        flags = _decode(current.get("notify-keyspace-events", ""))
    except ResponseError:
        if _calling("source", label, lambda: _probe_reaches_the_feed(client)):
            return PROBED_FLAGS
        raise PreconditionError(refusal) from None
    if notifications_cover(flags):
        return flags
    wanted = "".join(sorted(set(flags.replace("A", NOTIFY_CLASSES)) | set(NOTIFY_SETTING)))
    try:
        _calling("source", label, lambda: client.config_set("notify-keyspace-events", wanted))
        flags = _decode(client.config_get("notify-keyspace-events")["notify-keyspace-events"])
    except ResponseError:
        raise PreconditionError(refusal) from None
    if not notifications_cover(flags):
        raise PreconditionError(refusal)
    return flags


def _probe_reaches_the_feed(client: redis.Redis) -> bool:
    """Whether a SET and a DEL of a fresh probe key both arrive on its keyspace channel
    within PROBE_SECONDS. The key expires on its own if the DEL never runs."""
    key = PROBE_PREFIX + secrets.token_hex(8).encode()
    db = int(client.connection_pool.connection_kwargs.get("db") or 0)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(b"__keyspace@%d__:" % db + key)
        try:
            client.set(key, b"1", px=PROBE_TTL_MS)
        finally:
            client.delete(key)
        heard: set[bytes] = set()
        deadline = time.monotonic() + PROBE_SECONDS
        while not heard >= PROBE_EVENTS and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message and message["type"] == "message":
                heard.add(message["data"])
        return heard >= PROBE_EVENTS
    except ResponseError:
        return False
    finally:
        pubsub.close()


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
