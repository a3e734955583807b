"""Keyspaces for the copy tests, and a key-by-key comparison that does not use the engine."""

from __future__ import annotations

from typing import Any

import redis

BINARY_KEY = b"bin:\x00\xff\xfe\r\n key"
BIG_HASH_FIELDS = 100_000
LONG_STREAM_ENTRIES = 20_000


def populate_all_types(client: redis.Redis, *, big: bool = True) -> None:
    """Every type, with and without TTLs, binary names and values, plus big keys."""
    pipe = client.pipeline(transaction=False)
    pipe.set("str:plain", "hello")
    pipe.set("str:int", 12345)
    pipe.set("str:ttl", "expiring", px=600_000)
    pipe.set(b"str:binary-value", bytes(range(256)))
    pipe.set(BINARY_KEY, b"\x00\x01binary")
    pipe.hset("hash:small", mapping={"a": "1", "b": "2"})
    pipe.pexpire("hash:small", 900_000)
    pipe.rpush("list:small", "x", "y", "z", "x")
    pipe.rpush("list:big", *[f"item-{i}" for i in range(1000)])
    pipe.sadd("set:ints", 1, 2, 3)
    pipe.sadd("set:strings", *[f"member-{i}" for i in range(300)])
    pipe.expire("set:strings", 3600)
    pipe.zadd("zset:small", {"a": 1.5, "b": -2})
    pipe.zadd("zset:big", {f"m{i}": i / 3 for i in range(500)})
    pipe.xadd("stream:small", {"f": "v"}, id="1-1")
    pipe.xadd("stream:small", {"f": "w", "g": "x"}, id="2-0")
    pipe.xgroup_create("stream:small", "readers", id="1-1")
    pipe.pexpire("stream:small", 1_200_000)
    for index in range(200):
        pipe.set(f"bulk:{index}", f"value-{index}")
    pipe.execute()
    if big:
        fields = [f"field-{i}" for i in range(BIG_HASH_FIELDS)]
        for start in range(0, BIG_HASH_FIELDS, 10_000):
            chunk = fields[start : start + 10_000]
            client.hset("hash:big", mapping={name: name[::-1] for name in chunk})
        client.expire("hash:big", 7200)
        pipe = client.pipeline(transaction=False)
        for index in range(LONG_STREAM_ENTRIES):
            pipe.xadd("stream:long", {"n": index, "payload": "p" * 20})
        pipe.execute()


def populate_strings(client: redis.Redis, count: int, *, prefix: str = "k") -> None:
    pipe = client.pipeline(transaction=False)
    for index in range(count):
        pipe.set(f"{prefix}:{index}", f"value-{index}")
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def dump_keyspace(client: Any) -> dict[bytes, tuple[str, Any, int]]:
    """Every key's type, logical value and absolute expiry (PEXPIRETIME) via plain commands."""
    result: dict[bytes, tuple[str, Any, int]] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        value: Any
        if kind == "none":
            continue  # expired since the scan saw it: absent, like any other missing key
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = (client.xrange(key), [g["name"] for g in client.xinfo_groups(key)])
        else:
            raise AssertionError(f"unexpected type {kind}")
        result[key] = (kind, value, int(client.execute_command("PEXPIRETIME", key)))
    return result


def populate_every_type(client: Any, count: int, *, prefix: str = "scale") -> None:
    """`count` keys of every type (a third of them with a TTL of an hour or more), in the
    proportions of a service cache: mostly strings and hashes, some lists, sets, sorted sets
    and streams."""
    pipe = client.pipeline(transaction=False)
    for index in range(count):
        key = f"{prefix}:{index % 10}:{index}"
        kind = index % 10
        if kind < 4:
            pipe.set(key, f"value-{index}" * (1 + index % 5))
        elif kind < 6:
            pipe.hset(key, mapping={"a": index, "b": f"field-{index}", "c": "x" * (index % 30)})
        elif kind == 6:
            pipe.rpush(key, *[f"item-{index}-{n}" for n in range(1 + index % 7)])
        elif kind == 7:
            pipe.sadd(key, *[f"member-{n}" for n in range(1 + index % 9)])
        elif kind == 8:
            pipe.zadd(key, {f"m-{n}": n * 1.5 for n in range(1 + index % 6)})
        else:
            pipe.xadd(key, {"n": index, "payload": "p" * 10})
        if index % 3 == 0:
            pipe.expire(key, 3600 + index % 600)
        if len(pipe) >= 10_000:
            pipe.execute()
    pipe.execute()


# One call per batch of keys: the server reads each key's type, value and PTTL, and the clock
# once (redis-py's per-command cost made a pipelined snapshot of 150,000 keys take ~7 s).
SNAPSHOT_SCRIPT = """
local reads = {
  string = function(key) return redis.call('GET', key) end,
  hash = function(key) return redis.call('HGETALL', key) end,
  list = function(key) return redis.call('LRANGE', key, 0, -1) end,
  set = function(key) return redis.call('SMEMBERS', key) end,
  zset = function(key) return redis.call('ZRANGE', key, 0, -1, 'WITHSCORES') end,
  stream = function(key) return redis.call('XRANGE', key, '-', '+') end,
}
local out = {redis.call('TIME')}
for index, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then
    out[index + 1] = {kind}
  else
    out[index + 1] = {kind, reads[kind](key), redis.call('PTTL', key)}
  end
end
return out
"""


def _pairs(flat: list[Any]) -> list[tuple[Any, Any]]:
    return list(zip(flat[::2], flat[1::2], strict=True))


def _logical_value(kind: str, raw: Any) -> Any:
    """A value both engines report alike: sets and hashes unordered, scores as numbers (Redis
    6.2 and Valkey print doubles differently)."""
    if kind == "hash":
        return dict(_pairs(raw))
    if kind == "set":
        return set(raw)
    if kind == "zset":
        return [(member, float(score)) for member, score in _pairs(raw)]
    if kind == "stream":
        return [(entry_id, dict(_pairs(fields))) for entry_id, fields in raw]
    if kind in ("string", "list"):
        return raw
    raise AssertionError(f"unexpected type {kind}")


def snapshot_keyspace(client: Any, batch: int = 1000) -> dict[bytes, tuple[str, Any, int]]:
    """Every key's type, logical value and absolute expiry (server TIME + PTTL, -1 for none),
    read by a script per batch of keys: fast enough for 150,000 keys, and it works on Redis
    6.2 (no PEXPIRETIME)."""
    keys = list(dict.fromkeys(client.scan_iter(count=5000)))
    read = client.register_script(SNAPSHOT_SCRIPT)
    result: dict[bytes, tuple[str, Any, int]] = {}
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        (seconds, micros), *entries = read(keys=chunk)
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        for key, entry in zip(chunk, entries, strict=True):
            kind = entry[0].decode()
            if kind == "none" or entry[2] == -2:
                continue
            pttl = entry[2]
            result[key] = (
                kind,
                _logical_value(kind, entry[1]),
                -1 if pttl == -1 else now_ms + pttl,
            )
    return result


def keyspace_differences(
    source: dict[bytes, tuple[str, Any, int]],
    target: dict[bytes, tuple[str, Any, int]],
    tolerance_ms: int = 2000,
) -> list[str]:
    """Every key that is missing, extra, or differs in type, value or expiry."""
    problems = [f"{key!r}: missing on target" for key in source.keys() - target.keys()]
    problems += [f"{key!r}: only on target" for key in target.keys() - source.keys()]
    for key in source.keys() & target.keys():
        (kind, value, expiry), (other_kind, other_value, other_expiry) = source[key], target[key]
        if (kind, value) != (other_kind, other_value):
            problems.append(f"{key!r}: {kind} value differs")
        elif (expiry < 0) != (other_expiry < 0) or abs(expiry - other_expiry) > tolerance_ms:
            problems.append(f"{key!r}: expiry {expiry} vs {other_expiry}")
    return problems
