"""Which Redis can restore which DUMP payloads: the rule behind refusing a cutover whose way
back could never restore production's data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisRelease:
    """A Redis a copy restores into: its name and the DUMP (RDB) format version it writes. A
    server restores payloads of its own format or older, never newer."""

    name: str
    dump_format: int


# The box's Redis is AL2023's redis6; the caches' versions are redis_cluster.ENGINES' (a test
# keeps them equal).
BOX_REDIS = RedisRelease("the box's Redis 6.2", 9)
CACHE_RELEASES = {
    "redis": RedisRelease("ElastiCache Redis OSS 7.1", 10),
    "valkey": RedisRelease("ElastiCache Valkey 8.2", 11),
}
CACHE_ENGINES = ("valkey", "redis")
