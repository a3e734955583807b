"""Key by key, between the old Redis and the new primary, done by the harness itself."""

from __future__ import annotations

from dataclasses import dataclass

import redis

BATCH = 500
# A key copied with its absolute expiry may be read a moment apart on each side; a key the
# new tier wrote again has a later expiry, which is not stale.
TTL_TOLERANCE_MS = 2000


@dataclass(frozen=True)
class Comparison:
    compared: int
    missing: int
    value_differs: int
    ttl_shorter: int
    examples: tuple[str, ...]

    @property
    def differing(self) -> int:
        return self.missing + self.value_differs + self.ttl_shorter


def compare(old: redis.Redis, new: redis.Redis, max_examples: int = 5) -> Comparison:
    """Every key on the old Redis must be on the new one with the same value and an expiry
    no earlier: keys lost or stale. Keys that expire on the old side meanwhile are skipped."""
    compared = missing = differs = shorter = 0
    examples: list[str] = []
    for keys in _batches(old):
        old_pipe, new_pipe = old.pipeline(transaction=False), new.pipeline(transaction=False)
        for key in keys:
            old_pipe.dump(key)
            old_pipe.pttl(key)
            new_pipe.dump(key)
            new_pipe.pttl(key)
        old_replies, new_replies = old_pipe.execute(), new_pipe.execute()
        reencoded = _same_values(old, new, [
            key for index, key in enumerate(keys)
            if None not in (old_replies[2 * index], new_replies[2 * index])
            and old_replies[2 * index] != new_replies[2 * index]
        ])  # fmt: skip
        for index, key in enumerate(keys):
            old_value, old_ttl = old_replies[2 * index : 2 * index + 2]
            new_value, new_ttl = new_replies[2 * index : 2 * index + 2]
            if old_value is None:
                continue
            compared += 1
            problem = ""
            if new_value is None:
                missing += 1
                problem = "missing"
            elif new_value != old_value and key not in reencoded:
                differs += 1
                problem = "value differs"
            elif old_ttl >= 0 and (new_ttl < 0 or new_ttl < old_ttl - TTL_TOLERANCE_MS):
                shorter += 1
                problem = f"ttl {new_ttl} ms < {old_ttl} ms"
            elif old_ttl == -1 and new_ttl != -1:
                shorter += 1
                problem = "expires on the new side only"
            if problem and len(examples) < max_examples:
                examples.append(f"{key.decode(errors='replace')}: {problem}")
    return Comparison(compared, missing, differs, shorter, tuple(examples))


def _same_values(old: redis.Redis, new: redis.Redis, keys: list[bytes]) -> set[bytes]:
    """Of keys whose DUMP bytes differ, those with the same type and logical value: a
    hashtable-encoded set iterates in another order after RESTORE, and an engine re-encodes."""
    if not keys:
        return set()
    values = []
    for client in (old, new):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = pipe.execute()
        pipe = client.pipeline(transaction=False)
        for key, kind in zip(keys, kinds, strict=True):
            READS.get(kind, READS[b"none"])(pipe, key)
        values.append(list(zip(kinds, pipe.execute(raise_on_error=False), strict=True)))
    return {key for key, mine, theirs in zip(keys, *values, strict=True) if mine == theirs}


READS = {
    b"string": lambda pipe, key: pipe.get(key),
    b"hash": lambda pipe, key: pipe.hgetall(key),
    b"list": lambda pipe, key: pipe.lrange(key, 0, -1),
    b"set": lambda pipe, key: pipe.smembers(key),
    b"zset": lambda pipe, key: pipe.zrange(key, 0, -1, withscores=True),
    b"stream": lambda pipe, key: pipe.xrange(key),
    b"none": lambda pipe, key: pipe.exists(key),
}


def _batches(client: redis.Redis) -> list[list[bytes]]:
    batches: list[list[bytes]] = []
    batch: list[bytes] = []
    for key in client.scan_iter(count=BATCH):
        batch.append(key)
        if len(batch) == BATCH:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)
    return batches
