"""A steady, bounded request mix, sent from outside through the public name.

Most requests read popular waveforms (cache hits once warm); a few ask for tracks nobody
asked for before (misses, and so writes of new keys with the service's real TTL). Every
request is recorded: when, which tier answered (by the address the name resolved to), status,
latency and the X-Cache header.
"""

from __future__ import annotations

import http.client
import queue
import random
import threading
import time
from dataclasses import dataclass

from rehearsal.dns import DOMAIN_NAME, CachedName, Resolver
from rehearsal.stands import ALB_ADDRESS

POINTS = (16, 64, 256)
COLD_SHARE = 0.04
CLIENTS = 60
SENDERS = 8
REQUEST_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Sample:
    started: float
    tier: str
    status: int
    latency: float
    cache: str
    path: str


class LoadGenerator:
    """`rate` requests per second from `CLIENTS` simulated clients, each with its own cached
    DNS answer, sent by `SENDERS` threads until `stop()` or `max_seconds`."""

    def __init__(
        self,
        resolver: Resolver,
        port: int,
        *,
        rate: float,
        max_seconds: float,
        seed: int,
        origin: float,
        hot_tracks: int,
    ) -> None:
        self.hot_tracks = hot_tracks
        self.port = port
        self.rate = rate
        self.max_seconds = max_seconds
        self.origin = origin
        self.rng = random.Random(seed)  # noqa: S311 - load, not secrets
        self.clients = [CachedName(resolver) for _ in range(CLIENTS)]
        self.client_locks = [threading.Lock() for _ in range(CLIENTS)]
        self.samples: list[Sample] = []
        self.failed = 0
        self.samples_lock = threading.Lock()
        self.slots: queue.Queue[tuple[int, str] | None] = queue.Queue(maxsize=1000)
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []
        self.cold_counter = 0

    def path(self) -> str:
        if self.rng.random() < COLD_SHARE:
            self.cold_counter += 1
            track = f"cold-{self.rng.getrandbits(32):08x}-{self.cold_counter}"
        else:
            # A skewed popularity: low track numbers are asked for more often.
            track = f"hot-{int(self.hot_tracks * self.rng.random() ** 2):04d}"
        return f"/api/v1/tracks/{track}/waveform?points={self.rng.choice(POINTS)}"

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._ticker, daemon=True)]
        self.threads += [threading.Thread(target=self._sender, daemon=True) for _ in range(SENDERS)]
        for thread in self.threads:
            thread.start()

    def _ticker(self) -> None:
        interval = 1.0 / self.rate
        started = time.monotonic()
        sent = 0
        while not self.stopped.is_set() and time.monotonic() - started < self.max_seconds:
            due = started + sent * interval
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                self.slots.put((self.rng.randrange(CLIENTS), self.path()), timeout=1.0)
            except queue.Full:
                continue
            sent += 1
        for _ in range(SENDERS):
            self.slots.put(None)

    def _sender(self) -> None:
        while True:
            slot = self.slots.get()
            if slot is None:
                return
            client, path = slot
            with self.client_locks[client]:
                try:
                    address = self.clients[client].address()
                except Exception:  # noqa: BLE001 - a failed lookup is a failed request
                    address = ""
            self._send(address, path)

    def _send(self, address: str, path: str) -> None:
        started = time.monotonic()
        tier = "new" if address == ALB_ADDRESS else "old"
        status, cache = 0, ""
        if address:
            connection = http.client.HTTPConnection(
                address, self.port, timeout=REQUEST_TIMEOUT_SECONDS
            )
            try:
                connection.request("GET", path, headers={"Host": DOMAIN_NAME})
                response = connection.getresponse()
                response.read()
                status, cache = response.status, response.getheader("X-Cache") or ""
            except (OSError, http.client.HTTPException):
                status = 0
            finally:
                connection.close()
        sample = Sample(
            started - self.origin, tier, status, time.monotonic() - started, cache, path
        )
        with self.samples_lock:
            self.samples.append(sample)
            self.failed += status != 200

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=REQUEST_TIMEOUT_SECONDS + 5)

    def counts(self) -> tuple[int, int]:
        """Requests answered so far, and those not answered 200 (the progress display's)."""
        with self.samples_lock:
            return len(self.samples), self.failed

    def snapshot(self) -> list[Sample]:
        with self.samples_lock:
            return list(self.samples)

    def latest(self, count: int) -> list[Sample]:
        with self.samples_lock:
            return self.samples[-count:]
