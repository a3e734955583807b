"""Verification in both directions: every source key on the target with its value and TTL,
then every target key on the source (a key only on the target is stale).

A key that differs is a suspect until it is checked again: first `settle()` runs (the follow
applies the changes it has seen, so a key that changed during verification is compared after
its change is applied), then both sides are read afresh. Only a key that still differs is a
mismatch, unless the target's own clients wrote it during a follow (`superseded`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Generator
from dataclasses import dataclass
from functools import partial
from itertools import compress
from operator import not_
from typing import Any

import redis
from copy_digest import existing, read_value_digests, request_value_digests
from copy_payload import same_unordered
from copy_scan import Batch, KeyStream, read_fetch
from copy_state import CheckpointStore, CopyError, CopySettings, CopyState, ProgressCallback
from copy_wire import Link, fetch_request, pack, wire

EXPIRED = "expired"
# A DUMP payload ends with the RDB version that wrote it (2 bytes) and a CRC64 (8 bytes): equal
# bodies are equal values whichever engine wrote them.
PAYLOAD_TRAILER = 10
Commit = Callable[[CopyState, CheckpointStore], None]
# One scanned batch's check (it counts into the state) and the cursor after the batch.
_Step = tuple[Callable[[CopyState], None], int]


class Verifier:
    """Compares source and target; `offset_ms` is the target's clock minus the source's."""

    def __init__(
        self,
        source: redis.Redis,
        target: redis.Redis,
        settings: CopySettings,
        *,
        offset_ms: int = 0,
        settle: Callable[[], None] | None = None,
        past: Callable[[], bool] = lambda: False,
        written_on_target: Collection[bytes] = frozenset(),
    ) -> None:
        self._source = source
        self._target = target
        self.settings = settings
        self.offset_ms = offset_ms
        self._settle = settle
        self._past = past
        self._written_on_target = written_on_target
        self._mark = time.monotonic()

    def run(
        self,
        state: CopyState,
        store: CheckpointStore,
        commit: Commit,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Advance the verify phases until done or until `past()` says to stop."""
        self._mark = time.monotonic()
        with (
            wire(self._source) as source,
            wire(self._target) as target,
            wire(self._source) as source_check,
            wire(self._target) as target_check,
            wire(self._source) as source_scan,
            wire(self._target) as target_scan,
        ):
            links = Links(source, target, source_check, target_check)
            scans = {"verify": source_scan, "verify-target": target_scan}
            if state.verify == "sample":
                self._sample(source, target, state)
                state.phase = "done"
            while state.phase in {"verify", "verify-target"}:
                if self._pass(scans[state.phase], links, state, store, commit, progress):
                    break
        if state.done:
            state.target_keys = int(self._target.dbsize())
        self._account(state)
        commit(state, store)

    def _account(self, state: CopyState) -> None:
        now = time.monotonic()
        state.seconds += now - self._mark
        self._mark = now

    def _pass(  # noqa: PLR0917 - the links, the state and the run's three hooks
        self,
        scanned: Link,
        links: Links,
        state: CopyState,
        store: CheckpointStore,
        commit: Commit,
        progress: ProgressCallback | None,
    ) -> bool:
        """One phase's scan from its cursor (on its own link, as the next batch is always in
        flight); True when stopped before its end."""
        from_target = state.phase == "verify-target"
        stream = KeyStream(scanned, state.verify_cursor, self.settings.scan_count)
        batches = (
            self._target_batches(stream, links)
            if from_target
            else self._source_batches(stream, links)
        )
        since_commit = 0
        for check, next_cursor in batches:
            check(state)
            state.verify_cursor = next_cursor
            since_commit += 1
            if progress:
                progress(state)
            if next_cursor == 0:
                state.phase = "done" if from_target else "verify-target"
                return False
            if self._past():
                batches.close()
                return True
            if since_commit >= self.settings.batches_per_checkpoint:
                self._account(state)
                commit(state, store)
                since_commit = 0
        return False

    def _source_batches(self, stream: KeyStream, links: Links) -> Generator[_Step]:
        compared = self.compared_batches(stream, links)
        try:
            for _, cursor, differences in compared:
                yield partial(self._check_source_keys, links, differences), cursor
        finally:
            compared.close()

    def _target_batches(self, stream: KeyStream, links: Links) -> Generator[_Step]:
        try:
            while True:
                keys, cursor = stream.next_keys()
                yield partial(self._check_target_keys, links.source, links.target, keys), cursor
                if stream.exhausted:
                    return
        except GeneratorExit:
            stream.drain()
            raise

    def compared_batches(
        self, stream: KeyStream, links: Links
    ) -> Generator[tuple[list[bytes], int, dict[bytes, str | None]]]:
        """Each scanned batch, its cursor and its keys' differences (quick_differences).

        The next batch's reads are in flight on both servers while this one is compared, and
        its differing keys are looked at again on the check links, so both servers keep
        working while the client compares. Closing the iterator early reads and drops the
        replies still in flight, so the links can be used again."""
        keys, cursor = stream.next_keys()
        _request(links.source, links.target, keys)
        while True:
            following = None if stream.exhausted else stream.next_keys()
            if following is not None:
                _request(links.source, links.target, following[0])
            differences = self._compare(links, keys)
            try:
                yield keys, cursor, differences
            except GeneratorExit:
                if following is not None:
                    _drop(links.source, links.target, following[0])
                stream.drain()
                raise
            if following is None:
                return
            keys, cursor = following

    def _sample(self, source: Link, target: Link, state: CopyState) -> None:
        size = self.settings.sample_size
        keys = _random_keys(source, size)
        if keys:
            links = Links(source, target, source, target)
            differences = self.quick_differences(source, target, keys)
            self._check_source_keys(links, differences, state)
        self._check_target_keys(source, target, _random_keys(target, size), state)

    def _check_source_keys(
        self,
        links: Links,
        reasons: dict[bytes, str | None],
        state: CopyState,
    ) -> None:
        """Count a compared batch (each key's difference); a differing key is read again
        (after `settle()`) on the check links before it counts as a mismatch."""
        counts = state.verification
        if _differing(reasons):
            written = self._written_on_target
            suspects = [
                key
                for key, reason in reasons.items()
                if reason not in {None, EXPIRED} and key not in written
            ]
            if suspects:
                if self._settle:
                    self._settle()
                reasons.update(
                    self.quick_differences(links.source_check, links.target_check, suspects)
                )
                # A target client's write that made the second read differ was announced
                # before that read answered: collect it before the key counts as a mismatch.
                if self._settle and _differing({key: reasons[key] for key in suspects}):
                    self._settle()
        outcomes = list(reasons.values())
        expired = outcomes.count(EXPIRED)
        counts.expired += expired
        counts.checked += len(outcomes) - expired
        counts.matched += outcomes.count(None)
        if _differing(reasons):
            for key, reason in reasons.items():
                if reason is not None and reason != EXPIRED:
                    self._record(state, key, reason)

    def _check_target_keys(
        self, source: Link, target: Link, keys: list[bytes], state: CopyState
    ) -> None:
        state.verification.target_checked += len(keys)
        only_on_target = absent(source, keys)
        if set(only_on_target) - set(self._written_on_target) and self._settle:
            self._settle()
        if only_on_target:
            still_there = set(only_on_target) - set(absent(target, only_on_target))
            only_on_target = [key for key in absent(source, only_on_target) if key in still_there]
        for key in only_on_target:
            if key not in self._written_on_target:
                state.verification.target_only += 1
            self._record(state, key, "only on the target (deleted on the source?)")

    def _record(self, state: CopyState, key: bytes, reason: str) -> None:
        if key in self._written_on_target:
            state.verification.superseded += 1
        elif self.settings.policy == "skip":
            state.verification.kept += 1
        else:
            state.verification.mismatch(key, reason)

    def quick_differences(
        self, source: Link, target: Link, keys: list[bytes]
    ) -> dict[bytes, str | None]:
        """Each key's difference: None when the same, EXPIRED when gone from the source.

        Both servers read the batch (TIME, PTTLs, DUMPs) at once. Payload bodies that differ
        (their trailers, the RDB version and CRC, always differ between engines), unless they
        are the same hashtable-encoded set or hash in another order (copy_payload), are
        compared again by logical-value digests on the servers (copy_digest), and only keys
        that still differ are read whole."""
        _request(source, target, keys)
        return self._compare(Links(source, target, source, target), keys)

    def _compare(self, links: Links, keys: list[bytes]) -> dict[bytes, str | None]:
        """quick_differences for a batch already requested on `links.source` and
        `links.target`; value digests go over the check links."""
        if not keys:
            return {}
        mine = _batch(keys, links.source)
        theirs = _batch(keys, links.target)
        tolerance = self.settings.ttl_tolerance_ms
        target_ms = theirs.source_ms - self.offset_ms
        # Target expiry minus source expiry, both absolute, is shift + target PTTL - source PTTL.
        shift = target_ms - mine.source_ms
        # Most keys hold the same bytes and the same TTL: told apart in one pass, and only the
        # rest are looked at one by one.
        alike = [
            source_payload == target_payload
            and source_payload is not None
            and (
                (source_pttl == -1 and target_pttl == -1)
                or (
                    source_pttl >= 0
                    and target_pttl >= 0
                    and -tolerance <= shift + target_pttl - source_pttl <= tolerance
                )
            )
            for source_payload, target_payload, source_pttl, target_pttl in zip(
                mine.payloads, theirs.payloads, mine.pttls, theirs.pttls, strict=True
            )
        ]
        result: dict[bytes, str | None] = dict.fromkeys(keys)
        suspects: list[bytes] = []
        for index in compress(range(len(keys)), map(not_, alike)):
            key = keys[index]
            source_payload, source_pttl = mine.payloads[index], mine.pttls[index]
            target_payload, target_pttl = theirs.payloads[index], theirs.pttls[index]
            if source_payload is None or source_pttl == -2:
                result[key] = EXPIRED
            elif target_payload is None or target_pttl == -2:
                result[key] = EXPIRED if 0 <= source_pttl <= tolerance else "missing on target"
            else:
                reason = ttl_difference(
                    mine.source_ms, source_pttl, target_ms, target_pttl, tolerance
                )
                result[key] = reason
                if (
                    reason is None
                    and source_payload != target_payload
                    and source_payload[:-PAYLOAD_TRAILER] != target_payload[:-PAYLOAD_TRAILER]
                    and not same_unordered(source_payload, target_payload)
                ):
                    suspects.append(key)
        if suspects:
            check_source, check_target = links.source_check, links.target_check
            request_value_digests(check_source, suspects)
            request_value_digests(check_target, suspects)
            by_value = zip(
                read_value_digests(check_source), read_value_digests(check_target), strict=True
            )
            still = [
                key
                for key, (ours, copied) in zip(suspects, by_value, strict=True)
                if ours is None or ours != copied
            ]
            result.update(value_differences(self._source, self._target, still))
        return result


@dataclass(frozen=True)
class Links:
    """Links to both servers: batches are read on the first two, differing keys looked at
    again on the check links while the next batch is in flight."""

    source: Link
    target: Link
    source_check: Link
    target_check: Link


def _differing(reasons: dict[bytes, str | None]) -> bool:
    """Whether any key differs (is neither the same nor expired), counted in C."""
    outcomes = list(reasons.values())
    return outcomes.count(None) + outcomes.count(EXPIRED) < len(outcomes)


def _request(source: Link, target: Link, keys: list[bytes]) -> None:
    if keys:
        request = fetch_request(keys)
        source.send(request)
        target.send(request)


def _drop(source: Link, target: Link, keys: list[bytes]) -> None:
    """Read and drop the replies of a batch requested but not compared."""
    if keys:
        source.read(1 + 2 * len(keys))
        target.read(1 + 2 * len(keys))


def _batch(keys: list[bytes], link: Link) -> Batch:
    batch = Batch(next_cursor=0, keys=keys)
    batch.source_ms, batch.payloads, batch.pttls = read_fetch(link, len(keys))
    return batch


def _random_keys(link: Link, count: int) -> list[bytes]:
    link.send(pack(b"RANDOMKEY") * count)
    return list({key for key in link.read(count) if isinstance(key, bytes)})


def absent(link: Link, keys: list[bytes]) -> list[bytes]:
    """The keys that do not exist on the link's server."""
    return [key for key, exists in zip(keys, existing(link, keys), strict=True) if not exists]


def ttl_difference(
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
