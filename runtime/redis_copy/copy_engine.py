"""Copy every key of one Redis database to another: SCAN + DUMP + PTTL -> RESTORE ABSTTL.

`RedisCopier` is shared by the operator CLI and the CloudFormation custom resource. It checks
preconditions (copy_preflight) before writing anything, copies in pipelined batches,
checkpoints its progress through a `CheckpointStore` (copy_state), and verifies the result in
both directions (copy_verify). The follow (copy_follow) runs alongside it.

The hot loop speaks RESP on connections borrowed from each client's pool (copy_wire): SCANs
read ahead on a source link of their own, pipelines of TIME + PTTL/DUMP for the next few
batches queued on another, and pipelines of RESTOREs for a few batches queued on the target,
whose replies are read only once the later batches are on their way. Each server always has
work waiting, so a moment without CPU for one process does not stall the others.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from typing import Any

import redis
from copy_preflight import (
    ServerFacts,
    check_preconditions,
    sampled_rdb_version,
    server_facts,
)
from copy_scan import Batch, SourceStream, time_ms
from copy_state import (
    CheckpointStore,
    CopyError,
    CopySettings,
    CopyState,
    PreconditionError,
    ProgressCallback,
)
from copy_verify import Verifier, value_differences
from copy_wire import Link, first_error, restore_commands, wire
from redis.exceptions import OutOfMemoryError, ResponseError

CLOCK_SAMPLES = 5
# Batches whose RESTOREs are queued on the target at once.
RESTORES_IN_FLIGHT = 3


class RedisCopier:
    """Copies one database to another and verifies it; state lives in a CheckpointStore."""

    def __init__(
        self,
        source: redis.Redis,
        target: redis.Redis,
        settings: CopySettings,
        *,
        source_label: str,
        target_label: str,
    ) -> None:
        self._source = source
        self._target = target
        self.settings = settings
        self.source_label = source_label
        self.target_label = target_label
        self.offset_ms = 0

    def preflight(self, *, resuming: bool) -> tuple[ServerFacts, ServerFacts]:
        """Check every precondition; returns the facts read from both servers."""
        if self.source_label == self.target_label:
            raise PreconditionError(
                f"source and target are both {self.source_label}; point --target at the new server"
            )
        source = server_facts(self._source, "source", self.source_label)
        target = server_facts(self._target, "target", self.target_label)
        check_preconditions(
            source,
            target,
            self.settings,
            source_label=self.source_label,
            target_label=self.target_label,
            resuming=resuming,
            source_payload_version=sampled_rdb_version(self._source),
        )
        return source, target

    def start(self) -> CopyState:
        """Check preconditions and return the initial state of a new run."""
        source, _ = self.preflight(resuming=False)
        return CopyState(
            source=self.source_label,
            target=self.target_label,
            source_run_id=source.run_id,
            policy=self.settings.policy,
            verify=self.settings.verify,
            source_keys_at_start=source.keys,
        )

    def resume(self, saved: Mapping[str, Any]) -> CopyState:
        """Check a saved state belongs to these servers and may go on."""
        state = CopyState.from_dict(saved)
        if (state.source, state.target) != (self.source_label, self.target_label):
            raise CopyError(
                f"checkpoint is for {state.source} -> {state.target}, not "
                f"{self.source_label} -> {self.target_label}; use its own checkpoint file"
            )
        if state.done:
            return state
        source, _ = self.preflight(resuming=True)
        if state.source_run_id and source.run_id != state.source_run_id:
            raise CopyError(
                "source restarted since the checkpoint was written (run_id changed), so its "
                "SCAN cursor no longer applies; start a new copy with policy replace"
            )
        state.policy = self.settings.policy
        return state

    def advance(
        self,
        state: CopyState,
        store: CheckpointStore,
        *,
        progress: ProgressCallback | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> CopyState:
        """Copy and verify until done or until `stop()`; a stopped run resumes from `store`."""
        self.measure_clocks()
        copied_this_call = state.phase == "copy"
        if copied_this_call:
            self.copy(state, store, progress=progress, stop=stop)
        if state.phase.startswith("verify") and not (copied_this_call and stop()):
            self.verifier(past=stop).run(state, store, self._commit, progress)
        return state

    def verifier(
        self,
        *,
        settle: Callable[[], None] | None = None,
        past: Callable[[], bool] | None = None,
        written_on_target: Collection[bytes] = frozenset(),
    ) -> Verifier:
        """A two-way verifier for these servers, with this run's clock offset."""
        return Verifier(
            self._source,
            self._target,
            self.settings,
            offset_ms=self.offset_ms,
            settle=settle,
            past=past or (lambda: False),
            written_on_target=written_on_target,
        )

    def measure_clocks(self) -> int:
        """Target clock minus source clock in ms, so absolute expiries mean the same moment.

        NTP-style: of a few samples, the one with the shortest round trip wins, and an offset
        within that sample's uncertainty (half its round trip) is taken as zero.
        """
        best: tuple[float, int] | None = None
        for _ in range(CLOCK_SAMPLES):
            before = time.monotonic()
            source_ms = time_ms(self._source.time())
            target_ms = time_ms(self._target.time())
            round_trip_ms = (time.monotonic() - before) * 1000
            offset = round(target_ms - source_ms - round_trip_ms / 2)
            if best is None or round_trip_ms < best[0]:
                best = (round_trip_ms, offset)
        assert best is not None
        round_trip_ms, offset = best
        self.offset_ms = 0 if abs(offset) <= max(round_trip_ms / 2, 1.0) else offset
        return self.offset_ms

    def copy(
        self,
        state: CopyState,
        store: CheckpointStore,
        *,
        progress: ProgressCallback | None = None,
        stop: Callable[[], bool] = lambda: False,
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        """The copy phase: scan from the saved cursor, restore each batch, checkpoint."""
        replay_left = state.replay_window
        since_commit = 0
        started = time.monotonic()
        # Batches restored on the target but not counted yet: a checkpoint's cursor is behind
        # them, so a resume may find them there already.
        window = self.settings.batches_per_checkpoint + RESTORES_IN_FLIGHT - 1
        with (
            wire(self._source) as source,
            wire(self._source) as scan,
            wire(self._target) as target,
        ):
            stream = SourceStream(source, scan, state.cursor, self.settings.scan_count)
            sent: deque[Batch] = deque()
            while True:
                batch = None
                halted = stop()
                # At least one batch per call, so a stopped run always makes progress.
                if not stream.exhausted and (not sent or not halted):
                    batch = stream.next_batch()
                while sent and (batch is None or len(sent) >= RESTORES_IN_FLIGHT):
                    done = sent.popleft()
                    self._finish(target, done, state, replay_left > 0)
                    replay_left = max(replay_left - 1, 0)
                    state.cursor = done.next_cursor
                    since_commit += 1
                    if done.next_cursor == 0:
                        state.phase = "verify" if state.verify != "none" else "done"
                    if progress:
                        progress(state)
                if after_batch:
                    after_batch()
                if batch is None:
                    break
                if since_commit >= self.settings.batches_per_checkpoint:
                    now = time.monotonic()
                    state.seconds += now - started
                    state.copy_seconds += now - started
                    started = now
                    self._commit(state, store, window=window)
                    since_commit = 0
                self._send_restores(target, batch)
                sent.append(batch)
            stream.drain()
        elapsed = time.monotonic() - started
        state.seconds += elapsed
        state.copy_seconds += elapsed
        self._commit(state, store)

    def _commit(self, state: CopyState, store: CheckpointStore, *, window: int = 0) -> None:
        state.replay_window = window
        store.save(state.to_dict())

    def _send_restores(self, target: Link, batch: Batch) -> None:
        """RESTORE every key of the batch still alive at this moment of the source's clock,
        with its absolute expiry moved to the target's clock."""
        elapsed_ms = (time.monotonic() - batch.read_at) * 1000
        # A key with a TTL is alive when its PTTL at the batch's read is above this.
        alive_above = max(elapsed_ms + 1, 0)
        payloads, pttls = batch.payloads, batch.pttls
        sent = [
            index
            for index, (payload, pttl) in enumerate(zip(payloads, pttls, strict=True))
            if payload is not None and (pttl == -1 or pttl > alive_above)
        ]
        batch.expired += len(payloads) - len(sent)
        batch.sent = sent
        if sent:
            base = batch.source_ms + self.offset_ms
            bulks = batch.bulks
            target.send(
                restore_commands(
                    [bulks[index] for index in sent],
                    [0 if (pttl := pttls[index]) == -1 else base + pttl for index in sent],
                    [payload for index in sent if (payload := payloads[index]) is not None],
                    replace=self.settings.policy == "replace",
                )
            )

    def _finish(self, target: Link, batch: Batch, state: CopyState, replaying: bool) -> None:
        """Read the target's replies to one batch of RESTOREs and count the outcomes."""
        busy: list[int] = []
        failure: CopyError | None = None
        counts = state.counts
        replies = target.read(len(batch.sent))
        if first_error(replies) is None:
            counts.copied += len(replies)
        else:
            for index, reply in zip(batch.sent, replies, strict=True):
                if not isinstance(reply, ResponseError):
                    counts.copied += 1
                elif str(reply).startswith("BUSYKEY"):
                    busy.append(index)
                elif failure is None:
                    failure = restore_failure(batch.keys[index], reply)
        if failure:
            raise failure
        counts.expired += batch.expired
        counts.scanned += len(batch.keys)
        if busy:
            self._resolve_busy(batch, busy, state, replaying)

    def _resolve_busy(
        self, batch: Batch, busy: list[int], state: CopyState, replaying: bool
    ) -> None:
        """Decide what a key already on the target means under the run's policy.

        A key that holds exactly the source's value was written by this run when it comes
        from the batches interrupted before the last checkpoint (`replaying`: count it now),
        or, under policy fail (the target started empty), when SCAN returned it a second
        time (already counted, so not counted again). Under policy skip it is skipped.
        """
        counts = state.counts
        pipe = self._target.pipeline(transaction=False)
        for index in busy:
            pipe.dump(batch.keys[index])
        target_payloads = pipe.execute()
        differing = [
            batch.keys[index]
            for index, target_payload in zip(busy, target_payloads, strict=True)
            if target_payload != batch.payloads[index]
        ]
        reasons = value_differences(self._source, self._target, differing)
        for index in busy:
            key = batch.keys[index]
            same = reasons.get(key) is None
            if same and replaying:
                counts.copied += 1
            elif same and self.settings.policy == "fail":
                counts.scanned -= 1
            elif self.settings.policy == "skip":
                counts.skipped += 1
            elif replaying:
                self._restore_replace(batch, index)
                counts.copied += 1
            else:
                raise CopyError(
                    f"key {key!r} already exists on the target with a different value and "
                    "policy is 'fail'; resume with policy skip or replace"
                )

    def _restore_replace(self, batch: Batch, index: int) -> None:
        pttl = batch.pttls[index]
        payload = batch.payloads[index]
        assert payload is not None, "only keys that were sent are restored again"
        expire_at = 0 if pttl < 0 else batch.source_ms + pttl + self.offset_ms
        self._target.restore(
            batch.keys[index],
            expire_at,
            payload,
            replace=True,
            absttl=pttl >= 0,
        )


def restore_failure(key: bytes, reply: ResponseError) -> CopyError:
    """The one-line error for a RESTORE the target refused."""
    message = str(reply)
    if isinstance(reply, OutOfMemoryError) or message.startswith("OOM"):
        return CopyError(f"target ran out of memory restoring key {key!r}; use a larger node type")
    return CopyError(f"target rejected RESTORE of key {key!r}: {message}")
