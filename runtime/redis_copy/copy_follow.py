"""Change capture: follow a live source until stopped, then drain and verify both ways.

The subscription to the source's keyspace notifications opens before the scan starts, so
every change made during the copy is seen. An event only names a key: the key's current
state is read from the source and applied (`RESTORE ... REPLACE ABSTTL` with its value and
absolute expiry, `DEL` when it is gone), so a renewed TTL or a late expiry event can never
undo a newer write. Changes seen during the copy are applied once the scan is over, after
every RESTORE of the scan.

Pub/Sub is fire-and-forget: a dropped subscription (connection lost, source restarted,
`CLIENT KILL TYPE pubsub`, output buffer limit) may have missed events. It is detected (a
closed socket, or no answer to the PING sent every second), opened again, and followed by a
reconciliation pass that compares both sides and applies every difference (`resyncs`).

Once following, the target may get writers of its own: during the cutover each box in turn
switches to the new Redis. The follow writes through one connection with `CLIENT TRACKING
ON ... BCAST NOLOOP`, redirected to a second subscription, so the target announces every key
another client writes and never the follow's own. A key written there is newer than any
source change seen before it: that change is dropped, and only a later source change is
applied over it. Verification counts such keys as `superseded`, never as equal.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import redis
from copy_engine import RedisCopier, restore_failure
from copy_feeds import Subscription, TargetWrites
from copy_preflight import ensure_notifications
from copy_scan import SourceStream, fetch
from copy_state import CheckpointStore, CopyError, CopyState
from copy_verify import absent
from copy_wire import Link, link_for, one_per_key, restores
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

APPLY_BATCH = 2000
STATUS_SECONDS = 5.0
RECONNECT_SECONDS = 300.0
LOST = (RedisConnectionError, RedisTimeoutError, OSError)
Status = Callable[[dict[str, Any]], None]


class Follower:
    """Applies the source's changes to the target; counts what it applied and its resyncs."""

    def __init__(
        self,
        copier: RedisCopier,
        source: redis.Redis,
        target: redis.Redis,
        *,
        db: int = 0,
        status: Status | None = None,
    ) -> None:
        self._copier = copier
        self._source = source
        self._target = target
        self._status = status
        self._subscription = Subscription(source, db)
        self._target_writes = TargetWrites(target)
        self._tracking = False
        self._links: dict[str, tuple[Any, Link]] = {}
        self.pending: dict[bytes, float] = {}
        self.written_on_target: set[bytes] = set()
        self.applied = 0
        self.resyncs = 0
        self.state = "copying"
        self._reported = 0.0

    def start(self) -> None:
        """Enable notifications where needed and subscribe; call before the scan starts."""
        ensure_notifications(self._source, self._copier.source_label)
        self._subscription.open()

    def track_target_writes(self) -> None:
        """From now on, tell the target's own clients' writes from the follow's."""
        self._tracking = True
        self._open_target_writes()

    def _open_target_writes(self) -> None:
        """The invalidation channel, then the writing connection that reports to it: the
        target announces nothing until a connection tracks."""
        self._target_writes.open()
        connection, _ = self._links.pop("target", (None, None))
        if connection is not None:
            connection.disconnect()
        self._link("target", self._target)

    def report(self, state: str | None = None) -> None:
        """A status line at every state change and at least every STATUS_SECONDS."""
        now = time.monotonic()
        changed = state is not None and state != self.state
        if state is not None:
            self.state = state
        if self._status and (changed or now - self._reported >= STATUS_SECONDS):
            self._reported = now
            self._status(self.status())

    def status(self) -> dict[str, Any]:
        oldest = next(iter(self.pending.values()), None)
        return {
            "state": self.state,
            "lag_keys": len(self.pending),
            "applied": self.applied,
            "lag_ms": 0 if oldest is None else round((time.monotonic() - oldest) * 1000),
            "resyncs": self.resyncs,
            "written_on_target": len(self.written_on_target),
        }

    def collect(self, timeout: float = 0.0) -> None:
        """Read the events that have arrived; a lost subscription is re-established and
        reconciled."""
        try:
            keys = self._subscription.changed_keys(timeout)
            written = self._written_on_target() if self._tracking else []
        except LOST:
            self._resync()
            return
        now = time.monotonic()
        pending = self.pending
        for key in keys:
            pending.setdefault(key, now)
        self._claim(written)
        self.report()

    def _claim(self, written: list[bytes]) -> None:
        """The target's own writes are newer than the source changes seen before them."""
        for key in written:
            self.written_on_target.add(key)
            self.pending.pop(key, None)

    def _written_on_target(self) -> list[bytes]:
        """Keys the target's own clients have written since the last call. A key that is
        gone from the target expired there (the service never deletes), so it claims nothing."""
        keys = self._target_writes.changed_keys(0)
        if not keys:
            return []
        gone = set(absent(self._link("target", self._target), keys))
        return [key for key in keys if key not in gone]

    def step(self, timeout: float = 0.05) -> None:
        """Collect the events and apply the changes they name."""
        self.collect(timeout)
        while self.pending:
            self.apply()
            self.collect()

    def settle(self) -> None:
        """Apply everything seen until the source has been quiet for a moment."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.2:
            self.collect(0.05)
            if self.pending:
                while self.pending:
                    self.apply()
                quiet_since = time.monotonic()

    def apply(self) -> None:
        """Re-read up to APPLY_BATCH changed keys from the source and write them."""
        keys = []
        for key in self.pending:
            keys.append(key)
            if len(keys) >= APPLY_BATCH:
                break
        try:
            self._apply(keys)
        except LOST:
            self._drop_links()
            self._resync()
            return
        for key in keys:
            self.pending.pop(key, None)
        self.applied += len(keys)

    def _apply(self, keys: list[bytes]) -> None:
        batch = fetch(self._link("source", self._source), keys)
        now_ms = batch.source_ms
        offset = self._copier.offset_ms
        writes, gone = [], []
        for key, payload, pttl in zip(keys, batch.payloads, batch.pttls, strict=True):
            if payload is None or pttl == -2 or (pttl >= 0 and pttl <= 1):
                gone.append(key)
            else:
                expire_at = b"0" if pttl == -1 else b"%d" % (now_ms + pttl + offset)
                writes.append((key, expire_at, payload))
        target = self._link("target", self._target)
        target.send(restores(writes, replace=True) + one_per_key(b"DEL", gone))
        for (key, _, _), reply in zip(writes, target.read(len(writes) + len(gone)), strict=False):
            if isinstance(reply, ResponseError):
                raise restore_failure(key, reply)

    def _link(self, side: str, client: redis.Redis) -> Link:
        if side not in self._links:
            connection = client.connection_pool.make_connection()
            link = link_for(connection)
            self._links[side] = (connection, link)
            if side == "target" and self._tracking:
                link.send(self._target_writes.tracking())
                reply = link.read(1)[0]
                if isinstance(reply, ResponseError):
                    raise CopyError(
                        f"{self._copier.target_label} refused CLIENT TRACKING ({reply}): the "
                        "follow needs Redis 6 or Valkey on the target to keep its clients' writes"
                    )
        return self._links[side][1]

    def _drop_links(self) -> None:
        for connection, _ in self._links.values():
            connection.disconnect()
        self._links.clear()

    def close(self) -> None:
        self._subscription.close()
        self._target_writes.close()
        self._drop_links()

    def _resync(self) -> None:
        """Subscribe again (waiting for the source to come back), then reconcile. The
        target's writes announced so far are claimed first, so the reconciliation does not
        take them for differences to overwrite."""
        if self._tracking:
            with contextlib.suppress(*LOST):
                self._claim(self._written_on_target())
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            try:
                self._drop_links()
                ensure_notifications(self._source, self._copier.source_label)
                self._subscription.open()
                if self._tracking:
                    self._open_target_writes()
                self.resyncs += 1
                self.reconcile()
                return
            except (CopyError, *LOST) as error:
                if time.monotonic() > deadline:
                    raise CopyError(
                        f"lost the source's change feed and could not re-establish it within "
                        f"{RECONNECT_SECONDS:.0f} s ({error})"
                    ) from None
                self.report()
                time.sleep(0.5)

    def reconcile(self) -> None:
        """Compare both sides key by key and mark every difference as a pending change
        (except keys the target's own clients wrote, which are newer there)."""
        verifier = self._copier.verifier()
        source = self._link("source", self._source)
        target = self._link("target", self._target)
        count = self._copier.settings.scan_count
        now = time.monotonic()
        stream = SourceStream(source, 0, count)
        while not stream.exhausted:
            batch = stream.next_batch()
            differences = verifier.differences(target, batch)
            for key, reason in differences.items():
                if reason is not None and key not in self.written_on_target:
                    self.pending.setdefault(key, now)
        with_target = SourceStream(target, 0, count)
        while not with_target.exhausted:
            for key in absent(source, with_target.next_batch().keys):
                if key not in self.written_on_target:
                    self.pending.setdefault(key, now)


def follow(
    copier: RedisCopier,
    state: CopyState,
    store: CheckpointStore,
    source: redis.Redis,
    target: redis.Redis,
    *,
    db: int = 0,
    stop: Callable[[], bool] = lambda: False,
    status: Status | None = None,
) -> dict[str, Any]:
    """Copy (or resume), follow until `stop()`, drain, verify both ways; returns the report.

    The report carries `ok`, the copy counts, `applied`, `resyncs` and `written_on_target`;
    `ok` is true only when every key equals the source's, except keys the target's own clients
    wrote (`superseded`). A stop during the copy returns with the state checkpointed
    (phase "copy"): resume it with the same call, which reconciles after the scan.
    """
    follower = Follower(copier, source, target, db=db, status=status)
    resuming = state.cursor != 0
    try:
        follower.start()
        copier.measure_clocks()
        follower.report("copying")
        if state.phase == "copy":
            copier.copy(state, store, stop=stop, after_batch=follower.collect)
            if state.phase == "copy":
                return {**state.report(), **follower.status(), "ok": False}
        if resuming:
            follower.resyncs += 1
            follower.reconcile()
        follower.track_target_writes()
        follower.report("following")
        while not stop():
            follower.step()
        follower.report("draining")
        follower.settle()
        state.phase, state.verify_cursor = "verify", 0
        state.verify = "full" if state.verify == "none" else state.verify
        copier.verifier(settle=follower.settle, written_on_target=follower.written_on_target).run(
            state, store, lambda s, st: st.save(s.to_dict())
        )
        follower.report("done")
        return {**state.report(), **follower.status()}
    finally:
        follower.close()
