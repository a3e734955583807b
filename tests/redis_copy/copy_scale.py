"""The follow at a real cache's size: the copy CLI as a process, a paced writer of every
type, and the status stream read as the operator's tools read it."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "scripts" / "migrate_redis.py"


class FollowProcess:
    """`migrate_redis.py --follow` in its own process; its status lines, timestamped."""

    def __init__(self, workdir: Path, *options: str, env: dict[str, str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.checkpoint = workdir / "follow.checkpoint.json"
        self.stderr_path = workdir / "follow.stderr"
        self.statuses: list[tuple[float, dict[str, Any]]] = []
        self.lines: list[str] = []
        command = [
            sys.executable, str(CLI), "--follow", "--checkpoint", str(self.checkpoint), *options,
        ]  # fmt: skip
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
                text=True,
                cwd=workdir,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            try:
                status = json.loads(line)
            except ValueError:
                continue
            if isinstance(status, dict):
                self.statuses.append((time.monotonic(), status))

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(
        self, condition: Callable[[dict[str, Any]], bool], what: str, timeout: float = 300
    ) -> tuple[float, dict[str, Any]]:
        """The first status line, from now on, that meets `condition`."""
        seen = len(self.statuses)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for stamped in self.statuses[seen:]:
                if condition(stamped[1]):
                    return stamped
            seen = max(seen, len(self.statuses) - 1)
            if self.process.poll() is not None and seen >= len(self.statuses):
                break
            time.sleep(0.05)
        tail = [status for _, status in self.statuses[-3:]]
        raise AssertionError(f"no status line {what} within {timeout:.0f} s: {tail} {self.stderr}")

    def signal(self, number: int = signal.SIGTERM) -> float:
        os.kill(self.process.pid, number)
        return time.monotonic()

    def wait(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def gaps(self, since: float = 0.0) -> list[float]:
        """Seconds between consecutive status lines after `since`."""
        stamps = [stamp for stamp, _ in self.statuses if stamp >= since]
        return [after - before for before, after in itertools.pairwise(stamps)]


class PacedWriter(threading.Thread):
    """About `rate` changes a second to keys of every type of a populate_every_type keyspace:
    overwrites, deletions, TTL changes, new keys, appends to lists, sets, sorted sets and
    streams."""

    def __init__(self, client: redis.Redis, count: int, rate: int = 3000, seed: int = 5) -> None:
        super().__init__(daemon=True)
        self._client = client
        self._count = count
        self._rate = rate
        self._rng = random.Random(seed)
        self.halt = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def _key(self, kind: int) -> str:
        index = self._rng.randrange(self._count // 10) * 10 + kind
        return f"scale:{kind}:{index}"

    def run(self) -> None:
        try:
            self._run()
        except redis.RedisError as error:
            self.error = error

    def _run(self) -> None:
        per_tick, tick = self._rate // 100, 0.01
        started = time.monotonic()
        n = 0
        while not self.halt.is_set():
            pipe = self._client.pipeline(transaction=False)
            for _ in range(per_tick // 10):
                n += 1
                pipe.set(self._key(n % 4), f"changed-{n}", ex=7200)
                pipe.hset(self._key(4 + n % 2), "b", n)
                pipe.rpush(self._key(6), n)
                pipe.sadd(self._key(7), f"added-{n}")
                pipe.zadd(self._key(8), {f"z-{n % 5}": n})
                pipe.xadd(self._key(9), {"n": n})
                pipe.delete(self._key(n % 4))
                pipe.expire(self._key(4 + n % 2), 5000 + n % 100)
                pipe.set(f"new:{n}", n, ex=7200)
                pipe.persist(self._key(n % 10))
            pipe.execute()
            self.writes = n * 10
            started += tick
            time.sleep(max(0.0, started - time.monotonic()))
