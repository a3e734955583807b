"""The tests' own key-by-key judge: a snapshot reads what redis-py reads, and the comparison
names every kind of difference a copy could leave."""

from __future__ import annotations

import redis
from copy_testdata import BINARY_KEY, keyspace_differences, populate_all_types, snapshot_keyspace


def test_a_snapshot_holds_each_keys_type_value_and_expiry(source: redis.Redis) -> None:
    populate_all_types(source, big=False)
    seconds, micros = source.time()
    now_ms = seconds * 1000 + micros // 1000

    snapshot = snapshot_keyspace(source)

    assert len(snapshot) == source.dbsize()
    assert snapshot[BINARY_KEY] == ("string", b"\x00\x01binary", -1)
    kind, value, expiry = snapshot[b"hash:small"]
    assert (kind, value) == ("hash", {b"a": b"1", b"b": b"2"})
    assert 0 < expiry - now_ms <= 900_000
    assert snapshot[b"list:small"][:2] == ("list", [b"x", b"y", b"z", b"x"])
    assert snapshot[b"set:ints"][:2] == ("set", {b"1", b"2", b"3"})
    assert snapshot[b"zset:small"][:2] == ("zset", [(b"b", -2.0), (b"a", 1.5)])
    assert snapshot[b"stream:small"][:2] == (
        "stream",
        [(b"1-1", {b"f": b"v"}), (b"2-0", {b"f": b"w", b"g": b"x"})],
    )


def test_the_comparison_names_every_kind_of_difference(
    source: redis.Redis, target: redis.Redis
) -> None:
    populate_all_types(source, big=False)
    populate_all_types(target, big=False)
    assert keyspace_differences(snapshot_keyspace(source), snapshot_keyspace(target)) == []

    target.delete("bulk:1")
    target.set("only-here", "x")
    target.set("str:plain", "changed")
    target.hset("hash:small", "b", "3")
    target.lpush("list:small", "first")
    target.srem("set:ints", 2)
    target.zadd("zset:small", {"a": 1.25})
    target.xadd("stream:small", {"f": "later"}, id="3-0")
    target.persist("set:strings")
    target.pexpire("str:ttl", 60_000)

    differences = keyspace_differences(snapshot_keyspace(source), snapshot_keyspace(target))

    changed = (
        "bulk:1", "only-here", "str:plain", "hash:small", "list:small", "set:ints", "zset:small",
        "stream:small", "set:strings", "str:ttl",
    )  # fmt: skip
    assert sorted(difference.split(": ")[0] for difference in differences) == sorted(
        repr(key.encode()) for key in changed
    ), differences
