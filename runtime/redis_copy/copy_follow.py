"""Change capture: follow a live source until stopped, then drain and verify both ways.

The subscription to the source's keyspace notifications opens before the scan starts, so
every change made during the copy is seen. An event only names a key: the key's current
state is read from the source and applied (`RESTORE ... REPLACE ABSTTL` with its value and
absolute expiry, `DEL` when it is gone), so a renewed TTL or a late expiry event can never
undo a newer write. Changes seen during the copy are applied once the scan is over, after
every RESTORE of the scan.

Pub/Sub is fire-and-forget: a dropped subscription (connection lost, source restarted,
`CLIENT KILL TYPE pubsub`, output buffer limit) may have missed events. It is detected (a
closed socket, or a PING left unanswered), opened again once, and followed by one
reconciliation pass that compares both sides and marks every difference as a change to apply
(`resyncs`). The change feeds are read between the pass's batches, so the source's pubsub
output buffer never fills with events the follow has not read, and the pass's own duration
never looks like another loss. A loss during the copy only re-subscribes: the pass runs once
the scan is over.

A source that lost its data is never mirrored (`SourceReset`): before a reconciliation, and
every second while following, the source's run_id and key count are compared with what the
follow has seen. A new run_id (a restart; the box's Redis keeps nothing on disk), or a key
count that fell to under half of both the count seen a moment before and the target's (a
FLUSHALL, which publishes no per-key event), stops the follow before anything is written, the
target as it was; `accept_reset` mirrors such a source anyway.

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
from collections.abc import Callable, Iterable
from typing import Any

import redis
from copy_engine import RedisCopier, restore_failure
from copy_feeds import Subscription, TargetWrites
from copy_preflight import ensure_notifications
from copy_scan import KeyStream, fetch
from copy_state import CheckpointStore, CopyError, CopyState
from copy_verify import Links, absent
from copy_wire import Link, link_for, one_per_key, restores
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

APPLY_BATCH = 2000
STATUS_SECONDS = 5.0
RECONNECT_SECONDS = 300.0
RECONNECT_PAUSE_SECONDS = 0.5
GUARD_SECONDS = 1.0
# A source holding under this fraction of the keys it (and the target) held is a lost
# dataset, not deletions; keyspaces smaller than RESET_MIN_KEYS are never judged so.
RESET_FRACTION = 0.5
RESET_MIN_KEYS = 100
LOST = (RedisConnectionError, RedisTimeoutError, OSError)
Status = Callable[[dict[str, Any]], None]


class SourceReset(CopyError):
    """The source restarted or lost its keys: mirroring it would empty the target."""


class Interrupted(Exception):
    """A stop signal arrived inside a loop that cannot finish cleanly (a resync, a wait for
    the source): the run ends at once, its state checkpointed, to be resumed."""


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
        source_run_id: str = "",
        accept_reset: bool = False,
        interrupted: Callable[[], bool] = lambda: False,
    ) -> None:
        self._copier = copier
        self._source = source
        self._target = target
        self._status = status
        self.source_run_id = source_run_id
        self._accept_reset = accept_reset
        self.interrupted = interrupted
        self._source_keys_seen = 0
        self._replid = ""
        self._guarded = 0.0
        self.needs_reconcile = False
        self.progress: tuple[int, int] | None = None
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
        self._guard()

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
        line = {
            "state": self.state,
            "lag_keys": len(self.pending),
            "applied": self.applied,
            "lag_ms": 0 if oldest is None else round((time.monotonic() - oldest) * 1000),
            "resyncs": self.resyncs,
            "written_on_target": len(self.written_on_target),
        }
        if self.progress is not None:
            line["resync_compared"], line["resync_total"] = self.progress
        return line

    def collect(self, timeout: float = 0.0) -> None:
        """Read the events that have arrived; a lost subscription is re-established and
        reconciled."""
        try:
            self._read_feeds(timeout)
            if time.monotonic() - self._guarded >= GUARD_SECONDS:
                self._guard()
        except LOST:
            self._resync()
            return
        self.report()

    def _read_feeds(self, timeout: float = 0.0) -> None:
        """Both change feeds: the source's changes become pending, the target's own writes
        are claimed. Raises LOST when either feed is gone."""
        keys = self._subscription.changed_keys(timeout)
        written = self._written_on_target() if self._tracking else []
        now = time.monotonic()
        pending = self.pending
        for key in keys:
            pending.setdefault(key, now)
        self._claim(written)

    def _guard(self, *, after_loss: bool = False) -> None:
        """Raise SourceReset when the source restarted or lost most of its keys."""
        self._guarded = time.monotonic()
        label = self._copier.source_label
        pipe = self._source.pipeline(transaction=False)
        pipe.info("server")
        pipe.info("replication")
        pipe.dbsize()
        server, replication, keys = pipe.execute()
        run_id = str(server.get("run_id", ""))
        source_keys = int(keys)
        target_keys = int(self._target.dbsize()) - len(self.written_on_target)
        seen, self._source_keys_seen = self._source_keys_seen, source_keys
        history = {str(replication.get(name, "")) for name in ("master_replid", "master_replid2")}
        # A replica promoted by a failover has a run_id of its own but carries the old
        # primary's replication ID as its second one: the same data, not a restart.
        failed_over = bool(self._replid) and self._replid in history
        if not self.source_run_id or failed_over:
            self.source_run_id = run_id
        self._replid = str(replication.get("master_replid", ""))
        what = ""
        if run_id != self.source_run_id:
            what = f"restarted (its run_id changed) and now holds {source_keys} key(s)"
        elif (
            max(seen, target_keys) >= RESET_MIN_KEYS
            and source_keys < RESET_FRACTION * seen
            and source_keys < RESET_FRACTION * target_keys
        ):
            when = "came back with" if after_loss else "now holds"
            what = f"{when} {source_keys} key(s) where it had {seen} (flushed or restarted?)"
        if not what:
            return
        if self._accept_reset:
            self.source_run_id = run_id
            return
        raise SourceReset(
            f"source {label} {what}, the target {max(target_keys, 0)}: not mirrored, the "
            "target keeps its keys; check the source, and rerun with --accept-source-reset "
            "only if the target should become what the source holds now"
        )

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
                expire_at = 0 if pttl == -1 else now_ms + pttl + offset
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
        """Subscribe again (waiting for the source to come back), check the source did not
        lose its data, then reconcile once. The target's writes announced so far are claimed
        first, so the reconciliation does not take them for differences to overwrite. During
        the copy only the subscription is opened again: the pass runs after the scan."""
        if self._tracking:
            with contextlib.suppress(*LOST):
                self._claim(self._written_on_target())
        while True:
            self._reconnect()
            self.resyncs += 1
            try:
                self._guard(after_loss=True)
                if self.state == "copying":
                    self.needs_reconcile = True
                    return
                self.reconcile()
                return
            except LOST:
                continue

    def _reconnect(self) -> None:
        """Open both feeds again, waiting up to RECONNECT_SECONDS for the source to answer."""
        deadline = time.monotonic() + RECONNECT_SECONDS
        resume_state = self.state
        while True:
            self._check_interrupted()
            try:
                self._drop_links()
                ensure_notifications(self._source, self._copier.source_label)
                self._subscription.open()
                if self._tracking:
                    self._open_target_writes()
                self.state = resume_state
                return
            except (CopyError, *LOST) as error:
                if time.monotonic() > deadline:
                    raise CopyError(
                        f"lost the source's change feed and could not re-establish it within "
                        f"{RECONNECT_SECONDS:.0f} s ({error})"
                    ) from None
                self.report("reconnecting")
                self._pause(RECONNECT_PAUSE_SECONDS)

    def reconcile_after_copy(self) -> None:
        """The pass a resumed follow, or a loss during the copy, owes once the scan is over."""
        try:
            self.reconcile()
        except LOST:
            self._drop_links()
            self._resync()

    def _pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._check_interrupted()
            time.sleep(min(left, 0.1))

    def _check_interrupted(self) -> None:
        if self.interrupted():
            raise Interrupted(self.state)

    def reconcile(self) -> None:
        """Compare both sides key by key and mark every difference as a pending change
        (except keys the target's own clients wrote, which are newer there). Both change
        feeds are read between batches; the status line carries the keys compared of the
        total; a stop signal ends the pass (Interrupted)."""
        verifier = self._copier.verifier()
        source = self._link("source", self._source)
        target = self._link("target", self._target)
        count = self._copier.settings.scan_count
        resume_state = self.state
        self.progress = (0, int(self._source.dbsize()) + int(self._target.dbsize()))
        self.report("resyncing")
        try:
            stream = KeyStream(self._link("scan", self._source), 0, count)
            # The batches are read on links of their own: the feeds' handling between batches
            # uses the source and target links while the next batch is in flight.
            links = Links(
                self._link("resync-source", self._source),
                self._link("resync-target", self._target),
                source,
                target,
            )
            batches = verifier.compared_batches(stream, links)
            try:
                for keys, _, differences in batches:
                    self._mark(key for key, reason in differences.items() if reason is not None)
                    self._between_batches(len(keys), stream)
            finally:
                batches.close()
            with_target = KeyStream(self._link("target-scan", self._target), 0, count)
            while not with_target.exhausted:
                keys, _ = with_target.next_keys()
                self._mark(absent(source, keys))
                self._between_batches(len(keys), with_target)
            done = self.progress[0]
            self.progress = (done, done)
            self._reported = 0.0
            self.report()
        except LOST:
            # The resync that follows the loss resumes what the follow was doing before this
            # pass, not "resyncing".
            self.state = resume_state
            raise
        finally:
            self.progress = None
        self.needs_reconcile = False
        self.report(resume_state)

    def _mark(self, keys: Iterable[bytes]) -> None:
        now = time.monotonic()
        for key in keys:
            if key not in self.written_on_target:
                self.pending.setdefault(key, now)

    def _between_batches(self, compared: int, stream: KeyStream) -> None:
        assert self.progress is not None
        done, total = self.progress
        self.progress = (done + compared, max(total, done + compared))
        if self.interrupted():
            stream.drain()
            raise Interrupted(self.state)
        self._read_feeds()
        self.report()


def follow(
    copier: RedisCopier,
    state: CopyState,
    store: CheckpointStore,
    source: redis.Redis,
    target: redis.Redis,
    *,
    db: int = 0,
    stop: Callable[[], bool] = lambda: False,
    halt: Callable[[], bool] = lambda: False,
    status: Status | None = None,
    accept_reset: bool = False,
) -> dict[str, Any]:
    """Copy (or resume), follow until `stop()`, drain, verify both ways; returns the report.

    The report carries `ok`, the copy counts, `applied`, `resyncs` and `written_on_target`;
    `ok` is true only when every key equals the source's, except keys the target's own clients
    wrote (`superseded`). A stop during the copy, or during a resync or a wait for the source
    (`stop()`), or during the drain and verification (`halt()`), returns at once with the state
    checkpointed and `ok` false: resume it with the same call, which reconciles first. A source
    that restarted or lost its keys raises SourceReset unless `accept_reset`.
    """
    follower = Follower(
        copier,
        source,
        target,
        db=db,
        status=status,
        source_run_id=state.source_run_id,
        accept_reset=accept_reset,
        interrupted=stop,
    )
    resuming = state.cursor != 0 or state.phase != "copy"
    try:
        follower.start()
        copier.measure_clocks()
        follower.report("copying")
        if state.phase == "copy":
            copier.copy(state, store, stop=stop, after_batch=follower.collect)
            if state.phase == "copy":
                return {**state.report(), **follower.status(), "ok": False}
        state.phase, state.verify_cursor = "verify", 0
        state.verify = "full" if state.verify == "none" else state.verify
        if resuming or follower.needs_reconcile:
            follower.resyncs += resuming
            follower.reconcile_after_copy()
        follower.track_target_writes()
        follower.report("following")
        while not stop():
            follower.step()
        follower.interrupted = halt
        follower.report("draining")
        follower.settle()
        copier.verifier(
            settle=follower.settle, past=halt, written_on_target=follower.written_on_target
        ).run(
            state,
            store,
            lambda s, st: st.save(s.to_dict()),
            lambda _state: follower.report("verifying"),
        )
        if not state.done:
            raise Interrupted("verifying")
        follower.report("done")
        return {**state.report(), **follower.status()}
    except Interrupted as interrupted:
        state.source_run_id = follower.source_run_id
        store.save(state.to_dict())
        return {**state.report(), **follower.status(), "ok": False, "stopped_in": str(interrupted)}
    finally:
        follower.close()
