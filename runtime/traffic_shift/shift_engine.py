"""Gradual, health-gated Route53 weighted traffic shift, as a step machine.

`start` validates a request and takes the lock; each `advance` call moves the shift on by at
most one phase and never sleeps, so a Lambda polled by the Provider framework and the CLI's
loop (`run`) drive the same code. Per step: one batch UPSERTs both weights (with the lock),
the next polls wait for INSYNC, then the step soaks for the interval. While traffic moves
toward the new target, every poll checks the health gates; a failure puts back the last
healthy weights (or all-old) and raises ShiftFailed with the reason.

A walk toward old is the way back: no gate applies to it, so it never soaks, and its step is
clamped to the distance left (`step_toward_old`, when set, replaces `step` for it). From any
weight, "everything back to old" with a step of 100 is one Route53 change and its INSYNC.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from shift_control import ABORT, PAUSE, PROMOTE, Decision, decision_for, read_decision
from shift_health import (
    HEALTHY,
    STATUS_METRIC_TYPES,
    Verdict,
    alarm_verdict,
    check_url,
    health_check_type,
    health_check_verdict,
    probe_verdict,
    require_alarms,
    status_metric_verdict,
)
from shift_records import (
    MAX_WEIGHT,
    MIN_WEIGHT,
    Lock,
    LockHeld,
    LockLost,
    LockState,
    RecordPair,
    Route53Records,
    ShiftError,
    safe_owner,
)
from shift_retry import call_with_retry

from runtime.common.shift_rules import (
    POLL_SECONDS,
    ROLLBACK_CHOICES,
    ROLLBACK_TO_HEALTHY,
    ROLLBACK_TO_OLD,
    SYNC_TIMEOUT_SECONDS,
)

STALE_LOCK_SECONDS = 2 * 3600
# The longest soak per step (as the shift_interval flag allows): a longer one would hold the
# lock for days.
MAX_INTERVAL_SECONDS = 3600
# A shift with a deadline (the custom resource's time) fails this long before it, so its own
# one-line reason, not the Provider's timeout, is what CloudFormation shows.
DEADLINE_MARGIN_SECONDS = 2 * POLL_SECONDS
# The state changes a shift reports (Progress.notice, ShiftFailed.change).
STARTED, STEPPED, PAUSED, RESUMED, PROMOTED = "started", "step", "paused", "resumed", "promoted"
COMPLETED, ROLLED_BACK, ABORTED, FAILED = "completed", "rolled back", "aborted", "failed"

__all__ = [
    "ABORTED",
    "COMPLETED",
    "FAILED",
    "PAUSED",
    "POLL_SECONDS",
    "PROMOTED",
    "RESUMED",
    "ROLLBACK_TO_HEALTHY",
    "ROLLBACK_TO_OLD",
    "ROLLED_BACK",
    "STALE_LOCK_SECONDS",
    "STARTED",
    "STEPPED",
    "SYNC_TIMEOUT_SECONDS",
    "LockHeld",
    "LockLost",
    "Progress",
    "ShiftContext",
    "ShiftError",
    "ShiftFailed",
    "ShiftRequest",
    "advance",
    "run",
    "start",
    "status",
    "stop",
]


class ShiftFailed(Exception):
    """The shift stopped after it had changed weights; they were put back as `message` says.
    `change` is the state change it reports: rolled back, aborted or failed."""

    def __init__(
        self, message: str, old_weight: int, new_weight: int, change: str = ROLLED_BACK
    ) -> None:
        super().__init__(message)
        self.old_weight = old_weight
        self.new_weight = new_weight
        self.change = change


@dataclass(frozen=True)
class ShiftRequest:
    """What to shift (one name, two set identifiers), where to, how fast, and which gates."""

    zone_id: str
    name: str
    old_id: str
    new_id: str
    target: int
    step: int
    interval_seconds: int
    alarms: tuple[str, ...] = ()
    health_url: str | None = None
    use_health_check: bool = True
    rollback_to: str = ROLLBACK_TO_HEALTHY
    step_toward_old: int | None = None
    # Seconds the whole shift may take from its start (the custom resource's time), or None.
    deadline_seconds: int | None = None

    @property
    def has_gates(self) -> bool:
        return bool(self.alarms or self.health_url or self.use_health_check)


@dataclass
class ShiftContext:
    """The clients, clock and randomness the engine uses; tests inject virtual time."""

    route53: Any
    cloudwatch: Any | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Any] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    probe: Callable[[str], Verdict] = probe_verdict
    # Who an operator's decision is from (STS GetCallerIdentity); only the CLI sets it.
    sts: Any | None = None
    # CloudWatch in us-east-1, where Route53 publishes its HealthCheckStatus metric.
    route53_metrics: Any | None = None

    def call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        return call_with_retry(method, sleep=self.sleep, rng=self.rng, **kwargs)

    def records(self, request: ShiftRequest) -> Route53Records:
        return Route53Records(self.route53, request.zone_id, request.name, self.call)

    def now(self) -> int:
        return int(self.clock())


@dataclass(frozen=True)
class Progress:
    """Where a shift stands after a call; `wait_seconds` says when polling again is useful.
    `notice` names the state change this call made (empty when it made none), once."""

    done: bool
    kind: str
    message: str
    old_weight: int
    new_weight: int
    wait_seconds: float = 0.0
    notice: str = ""


def _weights(new_weight: int) -> str:
    return f"old {MAX_WEIGHT - new_weight} new {new_weight}"


def _divisors(distance: int) -> str:
    return ", ".join(str(d) for d in range(1, distance + 1) if distance % d == 0)


def validate_request(request: ShiftRequest) -> None:
    """ShiftError for a request that is wrong on its face, before anything is read."""
    for label, value in (
        ("zone id", request.zone_id),
        ("record name", request.name),
        ("old set identifier", request.old_id),
        ("new set identifier", request.new_id),
    ):
        if not value.strip():
            raise ShiftError(f"{label} is empty")
    if not MIN_WEIGHT <= request.target <= MAX_WEIGHT:
        raise ShiftError(f"target weight {request.target} is outside 0..100 (percent to new)")
    for label, step in (("step", request.step), ("step toward old", request.step_toward_old)):
        if step is not None and not 1 <= step <= MAX_WEIGHT:
            raise ShiftError(f"{label} {step} is outside 1..100")
    if not 0 <= request.interval_seconds <= MAX_INTERVAL_SECONDS:
        raise ShiftError(
            f"interval {request.interval_seconds}s is outside 0 to {MAX_INTERVAL_SECONDS}s"
        )
    if request.rollback_to not in ROLLBACK_CHOICES:
        raise ShiftError(f"rollback target {request.rollback_to!r} is not 'healthy' or 'old'")
    if request.health_url:
        check_url(request.health_url)


def describe_lock(state: LockState, now: int, request: ShiftRequest | None = None) -> str:
    age = max(0, now - state.started)
    text = (
        f"held by {state.owner} (run {state.run}, started {age}s ago, "
        f"{_weights(state.weight)}, heading to new {state.target})"
    )
    abort = abort_command(request)
    if age > STALE_LOCK_SECONDS:
        return text + f"; it looks stale: break it with `{abort}`"
    return text + f"; wait for it to finish or stop it with `{abort}`"


def abort_command(request: ShiftRequest | None) -> str:
    """The installed command that stops this name's shift, as an operator types it."""
    if request is None:
        return "shift-traffic abort --zone-id ZONE --name NAME"
    return (
        f"shift-traffic abort --zone-id {request.zone_id} --name {request.name} "
        f"--old-id {request.old_id} --new-id {request.new_id}"
    )


def start(
    request: ShiftRequest,
    ctx: ShiftContext,
    *,
    run_id: str,
    owner: str,
    take_over: bool = False,
) -> Progress:
    """Validate everything, then take the lock. ShiftError (nothing changed) on bad input.

    `take_over` lets a new run replace a lock left by an earlier run of the same `owner`
    (a custom resource whose previous operation CloudFormation has given up on).
    """
    validate_request(request)
    records = ctx.records(request)
    pair = records.read_pair(request.old_id, request.new_id)
    current = pair.new.weight
    distance = abs(request.target - current)
    rising = request.target > current
    step = request.step if rising else min(request.step_toward_old or request.step, distance)
    if rising and distance % step:
        raise ShiftError(
            f"step {request.step} does not divide the distance from new {current} to new "
            f"{request.target} ({distance} points); use a step among {_divisors(distance)}"
        )
    if request.alarms:
        if ctx.cloudwatch is None:
            raise ShiftError("health alarms were given but no CloudWatch client")
        require_alarms(ctx.cloudwatch, request.alarms, ctx.call)
    owner = safe_owner(owner)
    now = ctx.now()
    lock = records.read_lock()
    previous: Lock | None = None
    if lock is not None:
        if not (take_over and lock.state.owner == owner):
            held = describe_lock(lock.state, now, request)
            raise LockHeld(f"{records.name} is already being shifted: {held}")
        previous = lock
    if distance == 0:
        if previous is not None:
            records.write(previous, None, comment=f"traffic shift {run_id}: release")
        return Progress(
            True, "done", f"already at {_weights(current)}; nothing to do", *pair.weights
        )
    state = LockState(
        run=run_id,
        owner=owner,
        started=now,
        target=request.target,
        step=max(step, 1),
        interval=request.interval_seconds,
        rising=rising,
        phase="soak",
        since=0,
        origin=current,
        weight=current,
        healthy=current,
    )
    records.acquire(state, previous)
    steps = -(-distance // state.step)
    pace = f"soaking {request.interval_seconds}s each" if rising else "no soak toward old"
    return Progress(
        False,
        "start",
        f"shifting {records.name}: {_weights(current)} -> {_weights(request.target)} in {steps} "
        f"step(s) of {state.step}, {pace}",
        *pair.weights,
        notice=STARTED,
    )


def check_gates(request: ShiftRequest, ctx: ShiftContext, pair: RecordPair) -> Verdict:
    """The first failing gate, or HEALTHY."""
    health_check_id = pair.new.raw.get("HealthCheckId")
    if request.use_health_check and health_check_id:
        verdict = route53_health_verdict(ctx, str(health_check_id))
        if not verdict.healthy:
            return verdict
    if request.alarms:
        if ctx.cloudwatch is None:
            return Verdict(False, "no CloudWatch client to read the alarms")
        verdict = alarm_verdict(ctx.cloudwatch, request.alarms, ctx.call)
        if not verdict.healthy:
            return verdict
    if request.health_url:
        return ctx.probe(request.health_url)
    return HEALTHY


def route53_health_verdict(ctx: ShiftContext, health_check_id: str) -> Verdict:
    try:
        kind = health_check_type(ctx.route53, health_check_id, ctx.call)
    except (ClientError, BotoCoreError) as error:
        return Verdict(False, f"health check {health_check_id} cannot be read: {error}")
    if kind not in STATUS_METRIC_TYPES:
        return health_check_verdict(ctx.route53, health_check_id, ctx.call)
    if ctx.route53_metrics is None:
        return Verdict(False, f"no us-east-1 CloudWatch client to read {health_check_id}")
    return status_metric_verdict(ctx.route53_metrics, health_check_id, ctx.call, ctx.clock())


def _rollback(
    request: ShiftRequest,
    records: Route53Records,
    lock: Lock,
    pair: RecordPair,
    reason: str,
) -> ShiftFailed:
    back_to = MIN_WEIGHT if request.rollback_to == ROLLBACK_TO_OLD else lock.state.healthy
    return _walk_back(
        records, lock, pair, back_to,
        reason=reason, comment=f"roll back ({reason})", moved="rolled back to",
    )  # fmt: skip


def _walk_back(
    records: Route53Records,
    lock: Lock,
    pair: RecordPair,
    back_to: int,
    *,
    reason: str,
    comment: str,
    moved: str,
    change: str = ROLLED_BACK,
) -> ShiftFailed:
    """Set new's weight to `back_to` (no write when it is there already), release the lock,
    and fail the shift with `reason` and where the weights were left."""
    changed = pair.new.weight != back_to
    records.write(
        lock, None, pair if changed else None, back_to,
        comment=f"traffic shift {lock.state.run}: {comment}",
    )  # fmt: skip
    where = moved if changed else "left at"
    return ShiftFailed(
        f"{reason}; {where} {_weights(back_to)}", MAX_WEIGHT - back_to, back_to, change=change
    )


def advance(request: ShiftRequest, ctx: ShiftContext, run_id: str) -> Progress:
    """Move the shift `run_id` on by at most one phase; never sleeps.

    Raises ShiftFailed after a rollback, LockLost if the lock is no longer this run's.
    """
    records = ctx.records(request)
    lock = records.read_lock()
    pair = records.read_pair(request.old_id, request.new_id)
    if lock is None or lock.state.run != run_id:
        if lock is None and pair.new.weight == request.target:
            return Progress(True, "done", f"done: {_weights(pair.new.weight)}", *pair.weights)
        holder = "nobody" if lock is None else lock.state.owner
        raise LockLost(
            f"shift {run_id} lost the lock of {records.name} (now held by {holder}); "
            f"weights are {_weights(pair.new.weight)}"
        )
    state = lock.state
    if pair.new.weight != state.weight:
        records.write(lock, None, comment=f"traffic shift {run_id}: release")
        raise ShiftFailed(
            f"weights changed outside the shift (expected {_weights(state.weight)}); "
            "left them as found and released the lock",
            *pair.weights,
            change=FAILED,
        )
    now = ctx.now()
    decision = decision_for(records, state.run)
    if decision is not None and decision.decision == ABORT:
        raise _abort(records, lock, pair, decision)
    if state.rising and request.has_gates:
        verdict = check_gates(request, ctx, pair)
        if not verdict.healthy:
            raise _rollback(request, records, lock, pair, f"unhealthy: {verdict.reason}")
    if request.deadline_seconds and now - state.started >= (
        request.deadline_seconds - DEADLINE_MARGIN_SECONDS
    ):
        raise _out_of_time(request, records, lock, pair, now)
    changed = _follow_decision(records, lock, pair, decision, now)
    if changed is not None:
        return changed
    if state.phase == "sync":
        return _wait_in_sync(request, records, lock, pair, now)
    if state.paused:
        return _holding(state, pair, now)
    return _soak_or_step(request, records, lock, pair, now)


def _follow_decision(
    records: Route53Records, lock: Lock, pair: RecordPair, decision: Decision | None, now: int
) -> Progress | None:
    """Apply a pause, resume or promote not yet applied (one lock write, one notice)."""
    state = lock.state
    wanted = decision.decision if decision else None
    by = decision.by if decision else "the control record's removal"
    if wanted == PAUSE and not state.paused:
        records.write(lock, state.evolve(paused=now), comment=f"traffic shift {state.run}: pause")
        return Progress(
            False,
            PAUSED,
            f"paused by {by}: holding {_weights(state.weight)}",
            *pair.weights,
            wait_seconds=POLL_SECONDS,
            notice=PAUSED,
        )
    if wanted == PAUSE or not (state.paused or (wanted == PROMOTE and not state.promoted)):
        return None
    # The soak continues where the pause held it: the paused time does not count.
    held = now - max(state.paused, state.since) if state.paused else 0
    promote = wanted == PROMOTE
    resumed = state.evolve(
        paused=0, promoted=state.promoted or promote, since=state.since + max(0, held)
    )
    action = "promote" if promote else "resume"
    records.write(lock, resumed, comment=f"traffic shift {state.run}: {action}")
    what = "promoted (remaining soaks skipped)" if promote else "resumed"
    if promote and state.paused:
        what = "resumed and promoted (remaining soaks skipped)"
    return Progress(
        False,
        PROMOTED if promote else RESUMED,
        f"{what} by {by} at {_weights(state.weight)}",
        *pair.weights,
        notice=PROMOTED if promote else RESUMED,
    )


def _holding(state: LockState, pair: RecordPair, now: int) -> Progress:
    return Progress(
        False,
        PAUSED,
        f"paused for {max(0, now - state.paused)}s: holding {_weights(state.weight)}",
        *pair.weights,
        wait_seconds=POLL_SECONDS,
    )


def _abort(
    records: Route53Records, lock: Lock, pair: RecordPair, decision: Decision
) -> ShiftFailed:
    """Walk back at once to where the shift started (a walk toward old stays where it is),
    release the lock, and fail the shift."""
    state = lock.state
    back_to = state.origin if state.rising else pair.new.weight
    aborted = f"aborted by {decision.by}"
    return _walk_back(
        records, lock, pair, back_to,
        reason=aborted, comment=aborted, moved="walked back to", change=ABORTED,
    )  # fmt: skip


def _out_of_time(
    request: ShiftRequest, records: Route53Records, lock: Lock, pair: RecordPair, now: int
) -> ShiftFailed:
    state = lock.state
    why = f"the shift's time ran out ({request.deadline_seconds}s"
    if state.paused:
        paused_by = read_decision(records)
        who = f" by {paused_by.by}" if paused_by and paused_by.decision == PAUSE else ""
        why += f", paused{who} for {now - state.paused}s"
    failed = _rollback(request, records, lock, pair, why + ")")
    failed.change = FAILED
    return failed


def _wait_in_sync(
    request: ShiftRequest, records: Route53Records, lock: Lock, pair: RecordPair, now: int
) -> Progress:
    state = lock.state
    if state.change == "-":
        # A step whose change id was never recorded: submitting the same weights again is
        # harmless and yields an id to wait for.
        change = records.set_weights(pair, state.weight, f"traffic shift {state.run}: resubmit")
        records.write(lock, state.evolve(change=change), comment=f"traffic shift {state.run}")
        return Progress(False, "sync", f"resubmitted {_weights(state.weight)}", *pair.weights)
    if records.change_status(state.change) != "INSYNC":
        waited = now - state.since
        if state.rising and waited > SYNC_TIMEOUT_SECONDS:
            raise _rollback(
                request,
                records,
                lock,
                pair,
                f"Route53 change {state.change} not INSYNC after {waited}s",
            )
        return Progress(
            False,
            "sync",
            f"waiting for Route53 to apply {_weights(state.weight)} ({waited}s)",
            *pair.weights,
            wait_seconds=POLL_SECONDS,
        )
    if not state.rising or (state.promoted and not state.paused):
        # Toward old nothing is gated, and a promoted shift skips its soaks: step on (or
        # finish) at once.
        return _soak_or_step(request, records, lock, pair, now)
    records.write(
        lock,
        state.evolve(phase="soak", since=now, change="-"),
        comment=f"traffic shift {state.run}: in sync",
    )
    return Progress(
        False,
        "soak",
        f"in sync at {_weights(state.weight)}; soaking {state.interval}s",
        *pair.weights,
        wait_seconds=min(state.interval, POLL_SECONDS),
    )


def _soak_or_step(
    request: ShiftRequest, records: Route53Records, lock: Lock, pair: RecordPair, now: int
) -> Progress:
    state = lock.state
    remaining = state.since + state.interval - now if state.rising and not state.promoted else 0
    if remaining > 0:
        return Progress(
            False,
            "soak",
            f"soaking {_weights(state.weight)}: {remaining}s left",
            *pair.weights,
            wait_seconds=min(remaining, POLL_SECONDS),
        )
    if state.weight == state.target:
        records.write(lock, None, comment=f"traffic shift {state.run}: done")
        return Progress(
            True, "done", f"done: {_weights(state.weight)}", *pair.weights, notice=COMPLETED
        )
    next_weight = (
        min(state.weight + state.step, state.target)
        if state.rising
        else max(state.weight - state.step, state.target)
    )
    stepped = state.evolve(
        phase="sync", since=now, weight=next_weight, healthy=state.weight, change="-"
    )
    change = records.write(
        lock, stepped, pair, next_weight, comment=f"traffic shift {state.run}: step"
    )
    records.write(
        Lock(record=records.lock_record(stepped), state=stepped),
        stepped.evolve(change=change),
        comment=f"traffic shift {state.run}: record change",
    )
    done_steps = -(-abs(next_weight - state.origin) // state.step)
    total_steps = -(-abs(state.target - state.origin) // state.step)
    return Progress(
        False,
        "step",
        f"step {done_steps}/{total_steps}: {_weights(next_weight)} (change {change})",
        MAX_WEIGHT - next_weight,
        next_weight,
        wait_seconds=POLL_SECONDS,
        notice=STEPPED,
    )


def stop(request: ShiftRequest, ctx: ShiftContext, run_id: str | None, reason: str) -> Progress:
    """End a shift now: put back its last healthy weights if it was moving toward new (a walk
    back toward old stays where it is), then release the lock. `run_id=None` stops any run."""
    records = ctx.records(request)
    lock = records.read_lock()
    pair = records.read_pair(request.old_id, request.new_id)
    if lock is None:
        return Progress(
            True, "stopped", f"no shift in progress; {_weights(pair.new.weight)}", *pair.weights
        )
    if run_id is not None and lock.state.run != run_id:
        raise LockLost(f"shift {run_id} no longer holds the lock of {records.name}")
    back_to = lock.state.healthy if lock.state.rising else pair.new.weight
    changed = pair.new.weight != back_to
    records.write(
        lock,
        None,
        pair if changed else None,
        back_to,
        comment=f"traffic shift {lock.state.run}: stop ({reason})",
    )
    return Progress(
        True,
        "stopped",
        f"stopped ({reason}): {_weights(back_to)}, lock released",
        MAX_WEIGHT - back_to,
        back_to,
    )


def status(request: ShiftRequest, ctx: ShiftContext) -> dict[str, Any]:
    """The current weights and the running shift, if any, as plain data."""
    records = ctx.records(request)
    pair = records.read_pair(request.old_id, request.new_id)
    lock = records.read_lock()
    shift = None
    if lock is not None:
        state = lock.state
        shift = {
            "run": state.run,
            "owner": state.owner,
            "age_seconds": max(0, ctx.now() - state.started),
            "phase": state.phase,
            "target": state.target,
            "step": state.step,
            "interval_seconds": state.interval,
            "last_healthy_new_weight": state.healthy,
            "paused_seconds": max(0, ctx.now() - state.paused) if state.paused else None,
            "promoted": state.promoted,
        }
    decision = read_decision(records)
    control = None
    if decision is not None:
        control = {
            **decision.as_dict(),
            "applies": lock is not None and decision.run == lock.state.run,
        }
    return {
        "zone_id": request.zone_id,
        "name": records.name,
        "old": {"set_id": request.old_id, "weight": pair.old.weight},
        "new": {"set_id": request.new_id, "weight": pair.new.weight},
        "shift": shift,
        "control": control,
    }


def run(
    request: ShiftRequest,
    ctx: ShiftContext,
    *,
    run_id: str,
    owner: str,
    report: Callable[[Progress], None],
) -> Progress:
    """Start and drive a shift to its end with `ctx.sleep` between polls (the CLI's loop).

    On KeyboardInterrupt the last healthy weights are put back and the lock is released.
    """
    progress = start(request, ctx, run_id=run_id, owner=owner)
    report(progress)
    try:
        while not progress.done:
            ctx.sleep(progress.wait_seconds)
            progress = advance(request, ctx, run_id)
            report(progress)
    except KeyboardInterrupt:
        report(stop(request, ctx, run_id, "interrupted"))
        raise
    return progress
