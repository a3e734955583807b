"""A cache of a realistic size on the old Redis, and writes straight to it while the follow
runs: the follow is rehearsed over 100,000+ keys of every type with its subscription killed
under load, not only over what the load generator's requests cached."""

from __future__ import annotations

import random
import threading
import time

import redis

PREFIX = "warm"


def prefill(client: redis.Redis, count: int) -> None:
    """`count` keys of every type, each with a TTL of 30 to 60 minutes."""
    pipe = client.pipeline(transaction=False)
    for index in range(count):
        key = f"{PREFIX}:{index % 8}:{index}"
        kind = index % 8
        if kind < 4:
            pipe.set(key, f"cached-{index}" * (1 + index % 4))
        elif kind == 4:
            pipe.hset(key, mapping={"title": f"track {index}", "plays": index})
        elif kind == 5:
            pipe.rpush(key, *[f"peak-{n}" for n in range(1 + index % 6)])
        elif kind == 6:
            pipe.sadd(key, *[f"tag-{n}" for n in range(1 + index % 5)])
        else:
            pipe.zadd(key, {f"listener-{n}": n for n in range(1 + index % 4)})
        pipe.expire(key, 1800 + index % 1800)
        if len(pipe) >= 10_000:
            pipe.execute()
    pipe.execute()


class KeyWriter(threading.Thread):
    """About `rate` writes a second to the prefilled keys and to new ones."""

    def __init__(self, client: redis.Redis, count: int, rate: int, seed: int = 3) -> None:
        super().__init__(daemon=True)
        self._client = client
        self._count = count
        self._per_tick = max(rate // 50, 1)
        self._rng = random.Random(seed)  # noqa: S311 - load, not secrets
        self.halt = threading.Event()
        self.writes = 0

    def run(self) -> None:
        tick = time.monotonic()
        while not self.halt.is_set():
            pipe = self._client.pipeline(transaction=False)
            for _ in range(self._per_tick):
                self.writes += 1
                index = self._rng.randrange(self._count)
                key = f"{PREFIX}:{index % 8}:{index}"
                if index % 8 < 4:
                    pipe.set(key, f"rewritten-{self.writes}", ex=1800)
                else:
                    pipe.expire(key, 1800 + self.writes % 600)
            pipe.execute()
            tick += 0.02
            time.sleep(max(0.0, tick - time.monotonic()))
