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
