"""Copy every key of one Redis database to another: SCAN + DUMP + PTTL -> RESTORE ABSTTL.

The engine is shared by the operator CLI and the CloudFormation custom resource. It checks
preconditions before writing anything, copies in pipelined batches, checkpoints its progress
through a `CheckpointStore`, and verifies the result key by key.

The hot loop speaks RESP directly on a connection borrowed from each client's pool: one SCAN,
one pipeline of TIME + DUMP/PTTL pairs on the source, then one pipeline of RESTOREs on the
target whose replies are read while the next source batch is being fetched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import redis
from copy_wire import Wire, pack, wire
from redis.exceptions import (
    AuthenticationError,
    OutOfMemoryError,
    ResponseError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from runtime.common.copy_rules import COPY_POLICIES as POLICIES
from runtime.common.copy_rules import VERIFY_MODES

STATE_FORMAT = 1
MAX_EXAMPLES = 20
CLOCK_SAMPLES = 5


class CopyError(Exception):
    """A copy that cannot start or go on; `str()` is one line for the operator."""


class PreconditionError(CopyError):
    """A check made before anything is written failed."""


class VerificationFailed(CopyError):
    """The copy finished but verification found mismatched keys."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        self.report = dict(report)
        examples = "; ".join(self.report.get("mismatches", [])[:3])
        super().__init__(
            f"verification failed: {self.report['mismatched']} mismatched key(s)"
            + (f", e.g. {examples}" if examples else "")
        )


class CheckpointStore(Protocol):
    """Durable storage for one copy run's state (a JSON-serialisable mapping)."""

    def load(self) -> dict[str, Any] | None:
        """Return the saved state, or None when there is none."""
        ...

    def save(self, state: Mapping[str, Any]) -> None:
        """Persist the state durably before returning."""
        ...


@dataclass(frozen=True)
class CopySettings:
    """How to copy: existing-key policy, verification mode and batch tuning."""

    policy: str = "fail"
    verify: str = "full"
    scan_count: int = 3000
    batches_per_checkpoint: int = 10
    sample_size: int = 10_000
    ttl_tolerance_ms: int = 1000
    memory_margin: float = 1.2

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise CopyError(f"policy {self.policy!r} is unknown; use one of {', '.join(POLICIES)}")
        if self.verify not in VERIFY_MODES:
            raise CopyError(
                f"verify mode {self.verify!r} is unknown; use one of {', '.join(VERIFY_MODES)}"
            )
        if self.scan_count < 1 or self.batches_per_checkpoint < 1 or self.sample_size < 1:
            raise CopyError("scan_count, batches_per_checkpoint and sample_size must be >= 1")


@dataclass(frozen=True)
class ServerFacts:
    """What the preconditions need to know about one server."""

    run_id: str
    version: tuple[int, ...]
    version_text: str
    used_memory: int
    dataset_bytes: int
    maxmemory: int
    maxmemory_policy: str
    keys: int


@dataclass
class CopyCounts:
    """Per-key outcomes of the copy phase; scanned == copied + skipped + expired."""

    scanned: int = 0
    copied: int = 0
    skipped: int = 0
    expired: int = 0


@dataclass
class VerifyCounts:
    """Outcomes of the verification phase; `kept` counts target values kept by policy skip."""

    checked: int = 0
    matched: int = 0
    mismatched: int = 0
    kept: int = 0
    expired: int = 0
    examples: list[str] = field(default_factory=list)

    def mismatch(self, key: bytes, reason: str) -> None:
        self.mismatched += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{key!r}: {reason}")


@dataclass
class CopyState:
    """Everything needed to resume a run; saved after each group of batches."""

    source: str
    target: str
    source_run_id: str
    policy: str
    verify: str
    source_keys_at_start: int
    phase: str = "copy"
    cursor: int = 0
    verify_cursor: int = 0
    replay_window: int = 0
    seconds: float = 0.0
    copy_seconds: float = 0.0
    counts: CopyCounts = field(default_factory=CopyCounts)
    verification: VerifyCounts = field(default_factory=VerifyCounts)
    target_keys: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = STATE_FORMAT
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CopyState:
        if data.get("format") != STATE_FORMAT:
            raise CopyError("checkpoint has an unknown format; delete it and start over")
        fields = {k: v for k, v in data.items() if k not in {"format", "counts", "verification"}}
        return cls(
            **fields,
            counts=CopyCounts(**data["counts"]),
            verification=VerifyCounts(**data["verification"]),
        )

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def report(self) -> dict[str, Any]:
        """The run's summary: counts, verification outcome and elapsed seconds."""
        verified = self.verify != "none"
        return {
            "source": self.source,
            "target": self.target,
            "policy": self.policy,
            "verify": self.verify,
            "scanned": self.counts.scanned,
            "copied": self.counts.copied,
            "skipped": self.counts.skipped,
            "expired": self.counts.expired,
            "mismatched": self.verification.mismatched,
            "verified": self.verification.checked if verified else 0,
            "kept": self.verification.kept,
            "expired_since_copy": self.verification.expired,
            "target_keys": self.target_keys,
            "seconds": round(self.seconds, 3),
            "copy_seconds": round(self.copy_seconds, 3),
            "ok": self.done and self.verification.mismatched == 0,
            "mismatches": list(self.verification.examples),
        }


ProgressCallback = Callable[[CopyState], None]


def _parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _mib(value: float) -> str:
    return f"{value / 1048576:.1f} MiB"


def server_facts(client: redis.Redis, role: str, label: str) -> ServerFacts:
    """Read INFO and DBSIZE, turning connection and auth failures into one-line errors."""
    try:
        info = client.info("server")
        memory = client.info("memory")
        keys = int(client.dbsize())
    except AuthenticationError as error:
        raise PreconditionError(
            f"{role} redis at {label} rejected the credentials ({error}); check the {role} password"
        ) from None
    except (RedisConnectionError, RedisTimeoutError, OSError) as error:
        raise PreconditionError(
            f"cannot reach {role} redis at {label} ({error}); "
            "check host, port, TLS setting and network access"
        ) from None
    except ResponseError as error:
        raise PreconditionError(f"{role} redis at {label} refused INFO/DBSIZE ({error})") from None
    used = int(memory.get("used_memory", 0))
    return ServerFacts(
        run_id=str(info.get("run_id", "")),
        version=_parse_version(str(info.get("redis_version", "0"))),
        version_text=str(info.get("redis_version", "unknown")),
        used_memory=used,
        dataset_bytes=max(int(memory.get("used_memory_dataset", used)), 0),
        maxmemory=int(memory.get("maxmemory", 0)),
        maxmemory_policy=str(memory.get("maxmemory_policy", "noeviction")),
        keys=keys,
    )


def check_preconditions(
    source: ServerFacts,
    target: ServerFacts,
    settings: CopySettings,
    *,
    source_label: str,
    target_label: str,
    resuming: bool,
) -> None:
    """Raise PreconditionError for the first check that fails; nothing has been written yet."""
    if source.run_id and source.run_id == target.run_id:
        raise PreconditionError(
            f"source {source_label} and target {target_label} are the same server "
            f"(run_id {source.run_id}); point --target at the new server"
        )
    if target.version < source.version:
        raise PreconditionError(
            f"target runs Redis {target.version_text}, older than the source's "
            f"{source.version_text}: RESTORE would reject the source's DUMP payloads; "
            "use a target engine at least as new as the source"
        )
    if settings.policy == "fail" and not resuming and target.keys > 0:
        raise PreconditionError(
            f"target {target_label} already holds {target.keys} key(s) and policy is 'fail'; "
            "empty the target or choose policy skip or replace"
        )
    if target.maxmemory:
        needed = int(source.dataset_bytes * settings.memory_margin)
        free = target.maxmemory - target.used_memory
        if needed > free:
            sizes = (
                f"the source's {_mib(source.dataset_bytes)} of data "
                f"(+{round((settings.memory_margin - 1) * 100)}% margin) does not fit in the "
                f"{_mib(free)} free under the target's maxmemory {_mib(target.maxmemory)}"
            )
            if target.maxmemory_policy == "noeviction":
                raise PreconditionError(
                    f"target maxmemory too small: {sizes}; use a larger node type"
                )
            raise PreconditionError(
                f"target maxmemory-policy {target.maxmemory_policy} would evict copied keys: "
                f"{sizes}; use a larger node type"
            )


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._target = target
        self.settings = settings
        self.source_label = source_label
        self.target_label = target_label
        self._clock = clock
        self._offset_ms = 0

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
        deadline: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> CopyState:
        """Copy and verify until done or until `deadline` (monotonic seconds) passes."""
        self._offset_ms = self._clock_offset_ms()
        copied_this_call = state.phase == "copy"
        if copied_this_call:
            self._copy(state, store, deadline, progress)
        if state.phase == "verify" and not (copied_this_call and self._past(deadline)):
            self._verify(state, store, deadline, progress)
        return state

    def _past(self, deadline: float | None) -> bool:
        return deadline is not None and self._clock() >= deadline

    def _clock_offset_ms(self) -> int:
        """Target clock minus source clock in ms, so absolute expiries mean the same moment.

        NTP-style: of a few samples, the one with the shortest round trip wins, and an offset
        within that sample's uncertainty (half its round trip) is taken as zero.
        """
        best: tuple[float, int] | None = None
        for _ in range(CLOCK_SAMPLES):
            before = time.monotonic()
            source_ms = _time_ms(self._source.time())
            target_ms = _time_ms(self._target.time())
            round_trip_ms = (time.monotonic() - before) * 1000
            offset = round(target_ms - source_ms - round_trip_ms / 2)
            if best is None or round_trip_ms < best[0]:
                best = (round_trip_ms, offset)
        assert best is not None
        round_trip_ms, offset = best
        return 0 if abs(offset) <= max(round_trip_ms / 2, 1.0) else offset

    def _copy(
        self,
        state: CopyState,
        store: CheckpointStore,
        deadline: float | None,
        progress: ProgressCallback | None,
    ) -> None:
        replay_left = state.replay_window
        since_commit = 0
        started = time.monotonic()
        with wire(self._source) as source, wire(self._target) as target:
            stream = _SourceStream(source, state.cursor, self.settings.scan_count)
            pending: _Batch | None = None
            while True:
                batch = None
                # At least one batch per call, so a slice always makes progress.
                if not stream.exhausted and (pending is None or not self._past(deadline)):
                    batch = stream.next_batch()
                if pending is not None:
                    self._finish(target, pending, state, replay_left > 0)
                    replay_left = max(replay_left - 1, 0)
                    state.cursor = pending.next_cursor
                    since_commit += 1
                    if pending.next_cursor == 0:
                        state.phase = "verify" if state.verify != "none" else "done"
                    if progress:
                        progress(state)
                if batch is None:
                    break
                if since_commit >= self.settings.batches_per_checkpoint:
                    now = time.monotonic()
                    state.seconds += now - started
                    state.copy_seconds += now - started
                    started = now
                    self._commit(state, store, window=self.settings.batches_per_checkpoint)
                    since_commit = 0
                self._send_restores(target, batch)
                pending = batch
            stream.drain()
        elapsed = time.monotonic() - started
        state.seconds += elapsed
        state.copy_seconds += elapsed
        self._commit(state, store, window=0)

    def _commit(self, state: CopyState, store: CheckpointStore, *, window: int) -> None:
        state.replay_window = window
        store.save(state.to_dict())

    def _send_restores(self, target: Wire, batch: _Batch) -> None:
        now_source_ms = batch.source_ms + (time.monotonic() - batch.read_at) * 1000
        if self.settings.policy == "replace":
            head, tail = b"*6\r\n$7\r\nRESTORE\r\n$", b"\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n"
        else:
            head, tail = b"*5\r\n$7\r\nRESTORE\r\n$", b"\r\n$6\r\nABSTTL\r\n"
        commands = []
        sent = []
        offset = self._offset_ms
        keys = batch.keys
        pttls = batch.pttls
        for index, payload in enumerate(batch.payloads):
            pttl = pttls[index]
            if payload is None or pttl == -2:
                batch.expired += 1
                continue
            if pttl == -1:
                expire_at = b"0"
            else:
                source_expiry = batch.source_ms + pttl
                if source_expiry <= now_source_ms + 1:
                    batch.expired += 1
                    continue
                expire_at = b"%d" % (source_expiry + offset)
            key = keys[index]
            commands.append(
                b"%b%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b%b"
                % (head, len(key), key, len(expire_at), expire_at, len(payload), payload, tail)
            )
            sent.append(index)
        batch.sent = sent
        if commands:
            target.send(b"".join(commands))

    def _finish(self, target: Wire, batch: _Batch, state: CopyState, replaying: bool) -> None:
        """Read the target's replies to one batch of RESTOREs and count the outcomes."""
        busy: list[int] = []
        failure: CopyError | None = None
        counts = state.counts
        replies = target.read(len(batch.sent))
        for index, reply in zip(batch.sent, replies, strict=True):
            if not isinstance(reply, ResponseError):
                counts.copied += 1
                continue
            message = str(reply)
            if message.startswith("BUSYKEY"):
                busy.append(index)
            elif failure is None and (
                isinstance(reply, OutOfMemoryError) or message.startswith("OOM")
            ):
                failure = CopyError(
                    f"target ran out of memory restoring key {batch.keys[index]!r}; "
                    "use a larger node type"
                )
            elif failure is None:
                failure = CopyError(
                    f"target rejected RESTORE of key {batch.keys[index]!r}: {message}"
                )
        if failure:
            raise failure
        counts.expired += batch.expired
        counts.scanned += len(batch.keys)
        if busy:
            self._resolve_busy(batch, busy, state, replaying)

    def _resolve_busy(
        self, batch: _Batch, busy: list[int], state: CopyState, replaying: bool
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

    def _restore_replace(self, batch: _Batch, index: int) -> None:
        pttl = batch.pttls[index]
        payload = batch.payloads[index]
        assert payload is not None, "only keys that were sent are restored again"
        expire_at = 0 if pttl < 0 else batch.source_ms + pttl + self._offset_ms
        self._target.restore(
            batch.keys[index],
            expire_at,
            payload,
            replace=True,
            absttl=pttl >= 0,
        )

    def _verify(
        self,
        state: CopyState,
        store: CheckpointStore,
        deadline: float | None,
        progress: ProgressCallback | None,
    ) -> None:
        started = time.monotonic()
        since_commit = 0
        if state.verify == "sample":
            keys = self._sample_keys()
            with wire(self._source) as source, wire(self._target) as target:
                source.send(_fetch_request(keys))
                sample = _Batch(next_cursor=0, keys=keys)
                sample.source_ms, sample.payloads, sample.pttls = _read_fetch(source, len(keys))
                self._check_keys(target, sample, state.verification)
        else:
            with wire(self._source) as source, wire(self._target) as target:
                stream = _SourceStream(source, state.verify_cursor, self.settings.scan_count)
                while not stream.exhausted:
                    batch = stream.next_batch()
                    self._check_keys(target, batch, state.verification)
                    state.verify_cursor = batch.next_cursor
                    since_commit += 1
                    if progress:
                        progress(state)
                    if stream.exhausted:
                        break
                    if self._past(deadline):
                        stream.drain()
                        state.seconds += time.monotonic() - started
                        self._commit(state, store, window=0)
                        return
                    if since_commit >= self.settings.batches_per_checkpoint:
                        now = time.monotonic()
                        state.seconds += now - started
                        started = now
                        self._commit(state, store, window=0)
                        since_commit = 0
        state.target_keys = int(self._target.dbsize())
        state.phase = "done"
        state.seconds += time.monotonic() - started
        self._commit(state, store, window=0)

    def _sample_keys(self) -> list[bytes]:
        pipe = self._source.pipeline(transaction=False)
        for _ in range(self.settings.sample_size):
            pipe.randomkey()
        return list({key for key in pipe.execute() if key is not None})

    def _check_keys(self, target: Wire, batch: _Batch, counts: VerifyCounts) -> None:
        """Compare each key's value and TTL on both servers."""
        keys = batch.keys
        if not keys:
            return
        target.send(_fetch_request(keys))
        target_ms, target_payloads, target_pttls = _read_fetch(target, len(keys))
        source_ms = batch.source_ms
        source_items = zip(batch.payloads, batch.pttls, strict=True)
        target_items = zip(target_payloads, target_pttls, strict=True)
        tolerance = self.settings.ttl_tolerance_ms
        suspects: list[bytes] = []
        for key, (source_payload, source_pttl), (target_payload, target_pttl) in zip(
            keys, source_items, target_items, strict=True
        ):
            if source_payload is None or source_pttl == -2:
                counts.expired += 1
                continue
            counts.checked += 1
            if target_payload is None or target_pttl == -2:
                if 0 <= source_pttl <= tolerance:
                    counts.checked -= 1
                    counts.expired += 1
                else:
                    counts.mismatch(key, "missing on target")
                continue
            reason = _ttl_difference(
                source_ms, source_pttl, target_ms - self._offset_ms, target_pttl, tolerance
            )
            if reason is None and source_payload != target_payload:
                # Same value, other bytes: e.g. a hashtable-encoded set iterates differently.
                suspects.append(key)
            else:
                self._record(counts, key, reason)
        if suspects:
            reasons = value_differences(self._source, self._target, suspects)
            for key in suspects:
                self._record(counts, key, reasons[key])

    def _record(self, counts: VerifyCounts, key: bytes, reason: str | None) -> None:
        if reason is None:
            counts.matched += 1
        elif self.settings.policy == "skip":
            counts.kept += 1
        else:
            counts.mismatch(key, reason)


@dataclass
class _Batch:
    next_cursor: int
    keys: list[bytes]
    payloads: list[bytes | None] = field(default_factory=list)
    pttls: list[int] = field(default_factory=list)
    source_ms: int = 0
    read_at: float = 0.0
    sent: list[int] = field(default_factory=list)
    expired: int = 0


class _SourceStream:
    """SCAN + TIME/PTTL/DUMP batches with the next batch's request always in flight.

    Each fetch is sent together with the SCAN for the batch after it, so the source prepares
    batch N+1 while the caller restores batch N.
    """

    def __init__(self, source: Wire, cursor: int, count: int) -> None:
        self._source = source
        self._count = b"%d" % count
        self._inflight: tuple[list[bytes], int] | None = None
        self.exhausted = False
        source.send(self._scan(cursor))
        next_cursor, keys = source.read(1)[0]
        self._request(keys, int(next_cursor))

    def _scan(self, cursor: int) -> bytes:
        return pack(b"SCAN", b"%d" % cursor, b"COUNT", self._count)

    def _request(self, keys: list[bytes], next_cursor: int) -> None:
        request = _fetch_request(keys)
        if next_cursor != 0:
            request += self._scan(next_cursor)
        self._source.send(request)
        self._inflight = (keys, next_cursor)

    def next_batch(self) -> _Batch:
        assert self._inflight is not None, "next_batch after the last batch"
        keys, next_cursor = self._inflight
        self._inflight = None
        batch = _Batch(next_cursor=next_cursor, keys=keys)
        batch.source_ms, batch.payloads, batch.pttls = _read_fetch(self._source, len(keys))
        batch.read_at = time.monotonic()
        if next_cursor == 0:
            self.exhausted = True
        else:
            after, more_keys = self._source.read(1)[0]
            self._request(more_keys, int(after))
        return batch

    def drain(self) -> None:
        """Read and drop the request still in flight (a stop before the scan's end)."""
        if self._inflight is not None:
            keys, next_cursor = self._inflight
            self._source.read(1 + 2 * len(keys) + (1 if next_cursor else 0))
            self._inflight = None


def _time_ms(reply: Any) -> int:
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


def _fetch_request(keys: list[bytes]) -> bytes:
    """TIME, every PTTL, then every DUMP, so all TTLs are read at the TIME instant.

    Reading each PTTL next to its DUMP would shift the TTLs after a big key by the time its
    DUMP took, and stretch them by that much on the target.
    """
    commands = [b"*1\r\n$4\r\nTIME\r\n"]
    commands += [b"*2\r\n$4\r\nPTTL\r\n$%d\r\n%b\r\n" % (len(key), key) for key in keys]
    commands += [b"*2\r\n$4\r\nDUMP\r\n$%d\r\n%b\r\n" % (len(key), key) for key in keys]
    return b"".join(commands)


def _read_fetch(connection: Wire, count: int) -> tuple[int, list[bytes | None], list[int]]:
    replies = connection.read(1 + 2 * count)
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise CopyError(f"redis refused TIME/PTTL/DUMP: {reply}")
    return _time_ms(replies[0]), replies[1 + count :], replies[1 : 1 + count]


def _ttl_difference(
    source_ms: int, source_pttl: int, target_ms: int, target_pttl: int, tolerance: int
) -> str | None:
    if source_pttl == -1 and target_pttl == -1:
        return None
    if source_pttl == -1:
        return f"ttl: source has none, target expires in {target_pttl} ms"
    if target_pttl == -1:
        return f"ttl: source expires in {source_pttl} ms, target has none"
    drift = (target_ms + target_pttl) - (source_ms + source_pttl)
    if abs(drift) > tolerance:
        return f"ttl: target expires {drift} ms {'later' if drift > 0 else 'earlier'}"
    return None


def _queue_value_read(pipe: Any, key: bytes, kind: str) -> int:
    """Queue the commands that read a key's whole logical value; returns how many."""
    if kind == "string":
        pipe.get(key)
    elif kind == "hash":
        pipe.hgetall(key)
    elif kind == "list":
        pipe.lrange(key, 0, -1)
    elif kind == "set":
        pipe.smembers(key)
    elif kind == "zset":
        pipe.zrange(key, 0, -1, withscores=True)
    elif kind == "stream":
        pipe.xrange(key)
        pipe.xinfo_groups(key)
        return 2
    else:
        raise CopyError(f"key {key!r} has type {kind!r}, which the copy does not compare")
    return 1


def _read_values(client: redis.Redis, keys: list[bytes], kinds: list[str]) -> list[Any]:
    """Each key's logical value, in a form whose equality ignores internal encodings."""
    pipe = client.pipeline(transaction=False)
    sizes = [_queue_value_read(pipe, key, kind) for key, kind in zip(keys, kinds, strict=True)]
    replies = iter(pipe.execute(raise_on_error=False))
    values = []
    for size in sizes:
        value = next(replies)
        if size == 2:
            groups = next(replies)
            if isinstance(groups, Exception):
                value = groups
            elif not isinstance(value, Exception):
                value = (value, [(g["name"], g["last-delivered-id"]) for g in groups])
        values.append(value)
    return values


def value_differences(
    source: redis.Redis, target: redis.Redis, keys: list[bytes]
) -> dict[bytes, str | None]:
    """Compare keys by type and logical value (not DUMP bytes); None means the same."""
    if not keys:
        return {}
    kinds = []
    for client in (source, target):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds.append([_decode(kind) for kind in pipe.execute()])
    result: dict[bytes, str | None] = {}
    comparable = []
    for key, source_kind, target_kind in zip(keys, kinds[0], kinds[1], strict=True):
        if source_kind != target_kind:
            result[key] = f"type: source {source_kind}, target {target_kind}"
        elif source_kind == "none":
            result[key] = None
        else:
            comparable.append((key, source_kind))
    names = [key for key, _ in comparable]
    types = [kind for _, kind in comparable]
    source_values = _read_values(source, names, types)
    target_values = _read_values(target, names, types)
    for key, source_value, target_value in zip(names, source_values, target_values, strict=True):
        if isinstance(source_value, Exception) or isinstance(target_value, Exception):
            result[key] = f"value could not be read ({source_value!r}, {target_value!r})"
        else:
            result[key] = None if source_value == target_value else "value differs"
    return result


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
