"""The rehearsal's schedule: stand up both tiers, send load, run the engines step by step,
inject the faults one at a time, then measure everything from outside."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from devtools.processes import free_port, http_get
from devtools.topology import LocalTopology
from infra.thresholds import PROBE_INTERVAL_SECONDS, RECORD_TTL_SECONDS
from rehearsal.alarms import FAILOVER_ALARMS, GATE_ALARMS, AlarmBridge
from rehearsal.box_switch import BoxSwitch
from rehearsal.compare import Comparison, compare
from rehearsal.dns import (
    EndpointProbe,
    HealthChecks,
    Resolver,
    Zone,
    create_zone,
    production_health_check,
)
from rehearsal.engines import CopyRun, ShiftRun, copy_has_follow
from rehearsal.keyspace import KeyWriter, prefill
from rehearsal.load import SENDERS, LoadGenerator
from rehearsal.moto_stand import MotoServer, moto_session
from rehearsal.new_tier import NewTier
from rehearsal.progress import Progress
from rehearsal.redis_group import PrimaryEndpoint, RedisGroup
from rehearsal.stands import ALB_ADDRESS, together, wait_until

# How late the harness may notice the health check's change (it looks every 0.05 s), plus a
# request's own connect time.
DETECTION_SLACK_SECONDS = 0.25
# After a Redis switch, how long the old tier may take to answer ready and to cache a fresh
# track: polls that return at the first success, sized for a machine whose cores are busy.
SETTLE_SECONDS = 60.0


@dataclass(frozen=True)
class Plan:
    """How long and how hard: the full rehearsal or the short one `make test` runs."""

    faults: bool
    rate: float
    time_scale: float
    warm_seconds: float
    follow_seconds: float
    soak_seconds: float
    # How long production stays down in the failback once every client has reached old.
    outage_seconds: float
    shift_interval: int
    tasks: int
    workers_per_task: int | None
    hot_tracks: int
    seed: int = 13
    max_seconds: float = 540.0
    # Keys put on the old Redis before the copy, and writes/s straight to it during the follow.
    prefill_keys: int = 0
    key_writes: int = 0
    # The services' Redis budget (REDIS_TIMEOUT_MS); None keeps production's 250 ms.
    redis_timeout_ms: int | None = None


FULL = Plan(
    faults=True, rate=80, time_scale=20, warm_seconds=25, follow_seconds=20,
    soak_seconds=15, outage_seconds=7.5, shift_interval=240, tasks=3, workers_per_task=2,
    hot_tracks=300, prefill_keys=120_000, key_writes=1000,
)  # fmt: skip
SHORT = Plan(
    # The hit rate is taken over the soak's ~200 requests (4 % of them cold misses); the hot
    # tracks are asked for in the 10 s or more of load before it, so the warm can be short.
    faults=False, rate=40, time_scale=60, warm_seconds=2, follow_seconds=1, hot_tracks=30,
    soak_seconds=5, outage_seconds=1, shift_interval=30, tasks=2, workers_per_task=1,
    max_seconds=240,
    # It runs inside make test beside other work: a TLS handshake on busy cores outlasts the
    # box's 250 ms, and the switched box would stay unready for its whole readiness wait.
    redis_timeout_ms=2000,
)  # fmt: skip

# The schedule's shifts: shift_traffic.py's target and step, and the soak per step (None: the
# plan's shift_interval).
SHIFTS: dict[str, tuple[list[str], int | None]] = {
    "5xx": (["--to", "100", "--step", "25"], None),
    "forward": (["--to", "100", "--step", "25"], None),
    "rollback": (["--to", "0", "--step", "100"], 0),
    "roll-forward": (["--to", "100", "--step", "50"], None),
}


@dataclass
class Timeline:
    origin: float = field(default_factory=time.monotonic)
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)
    weights: list[tuple[float, int]] = field(default_factory=list)
    not_exercised: dict[str, str] = field(default_factory=dict)
    follow_exits: dict[str, int | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Told the name of each phase as it starts (the live progress display).
    listener: Callable[[str], None] | None = None

    def now(self) -> float:
        return time.monotonic() - self.origin

    @contextlib.contextmanager
    def phase(self, name: str) -> Any:
        started = self.now()
        if self.listener:
            self.listener(name)
        try:
            yield
        finally:
            self.phases.append((name, started, self.now()))

    def fault(self, label: str) -> None:
        self.faults.append((self.now(), label))


@dataclass
class Outcome:
    timeline: Timeline
    samples: list[Any]
    comparison: Comparison | None
    five_xx_window: tuple[float, float] | None
    rolled_back_on_5xx: bool
    failback: dict[str, Any]
    alarm_periods: list[Any]
    follow_status: list[tuple[float, dict[str, object]]]
    plan: Plan
    workdir: Path


class Rehearsal:
    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.timeline = Timeline()
        # Wall time the scaled clock counts from: the shifts' and Route53's metrics share it.
        self.epoch = time.time()
        self.stack = contextlib.ExitStack()
        self.five_xx_window: tuple[float, float] | None = None
        self.rolled_back_on_5xx = False
        self.failback: dict[str, Any] = {}
        self.copy: CopyRun | None = None
        self.reverse: CopyRun | None = None
        self.comparisons: list[tuple[str, Comparison]] = []

    # -- stand-ins ---------------------------------------------------------------------------

    def service_budget(self) -> dict[str, str]:
        timeout = self.plan.redis_timeout_ms
        return {} if timeout is None else {"REDIS_TIMEOUT_MS": str(timeout)}

    def stand_up(self) -> None:
        port = free_port()
        while port_in_use_on(ALB_ADDRESS, port):
            port = free_port()
        self.port = port
        self.moto = MotoServer(self.workdir / "moto")
        self.old = LocalTopology(
            self.workdir / "old",
            nginx_port=port,
            # 2, not a production box's 1: on busy cores a switch's restart left a lone
            # worker's tier without an answer for seconds.
            api_workers=2,
            nginx_workers="1",
            extra_env=self.service_budget(),
        )
        self.group = RedisGroup(self.workdir / "redis-group")
        self.new = NewTier(
            self.workdir / "new",
            self.group,
            tasks=self.plan.tasks,
            workers_per_task=self.plan.workers_per_task,
            port=port,
            extra_env=self.service_budget(),
        )
        self.stack.callback(together, self.moto.stop, self.old.stop, self.group.stop, self.new.stop)
        # The tasks boot while the group comes up: they reach Redis only when asked, and the
        # wait for them ends once they answer ready.
        together(
            self.start_route53,
            self.old.start,
            self.group.start,
            self.new.start,
            self.check_copy_follows,
        )
        self.bridge = AlarmBridge(
            self.cloudwatch,
            self.new.access_log,
            self.unhealthy_targets,
            time_scale=self.plan.time_scale,
            clock=self.timeline.now,
        )
        self.bridge.create_alarms()
        self.bridge.start()
        self.stack.callback(self.bridge.stop)
        self.probe.start()
        self.stack.callback(self.probe.stop)
        self.resolver = Resolver(
            self.route53,
            self.zone,
            self.plan.time_scale,
            random.Random(self.plan.seed),  # noqa: S311 - load, not secrets
            self.health,
        )
        self.sampler_stop = threading.Event()
        self.sampler = threading.Thread(target=self._sample_weights, daemon=True)
        self.sampler.start()
        self.stack.callback(self.sampler_stop.set)
        self.load = LoadGenerator(
            self.resolver,
            port,
            rate=self.plan.rate,
            max_seconds=self.plan.max_seconds,
            seed=self.plan.seed,
            origin=self.timeline.origin,
            hot_tracks=self.plan.hot_tracks,
        )
        self.start_shifts()

    def start_route53(self) -> None:
        """moto's server, the zone with its records and production's health check."""
        self.moto.start()
        session = moto_session()
        self.route53 = session.client("route53", endpoint_url=self.moto.url)
        self.cloudwatch = session.client("cloudwatch", endpoint_url=self.moto.url)
        self.health = HealthChecks(self.cloudwatch)
        self.probe = EndpointProbe(
            ALB_ADDRESS, self.port, "/health/ready", PROBE_INTERVAL_SECONDS / self.plan.time_scale
        )
        self.new_health_check = production_health_check(
            self.health, self.route53, FAILOVER_ALARMS, self.probe
        )
        self.zone: Zone = create_zone(self.route53, self.new_health_check)

    def check_copy_follows(self) -> None:
        """Whether the copy CLI has --follow (its --help, run while the stand-ins start)."""
        self.copy_follows = copy_has_follow()

    def request_counts(self) -> tuple[int, int]:
        load: LoadGenerator | None = getattr(self, "load", None)
        return load.counts() if load else (0, 0)

    def unhealthy_targets(self) -> int:
        unhealthy = 0
        for task_port in self.new.task_ports:
            try:
                unhealthy += http_get(task_port, "/health", 2.0)[0] != 200
            except OSError:
                unhealthy += 1
        return unhealthy

    def _sample_weights(self) -> None:
        while not self.sampler_stop.wait(0.5):
            with contextlib.suppress(Exception):
                weights = self.resolver.weights()
                self.timeline.weights.append((self.timeline.now(), weights.get("new", 0)))
            with contextlib.suppress(Exception):
                self.publish_health_status()

    def publish_health_status(self) -> None:
        """Route53's HealthCheckStatus of the new record's check (1 healthy, 0 not), as it
        publishes it in us-east-1, stamped on the scaled clock the shifts read it with."""
        scaled = self.epoch + (time.time() - self.epoch) * self.plan.time_scale
        self.cloudwatch.put_metric_data(
            Namespace="AWS/Route53",
            MetricData=[
                {
                    "MetricName": "HealthCheckStatus",
                    "Dimensions": [{"Name": "HealthCheckId", "Value": self.new_health_check}],
                    "Timestamp": datetime.fromtimestamp(scaled, UTC),
                    "Value": 1.0 if self.resolver.new_is_healthy() else 0.0,
                }
            ],
        )

    def new_weight(self) -> int:
        return self.timeline.weights[-1][1] if self.timeline.weights else 0

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> Outcome:
        plan, timeline = self.plan, self.timeline
        with self.stack:
            progress = Progress(self.request_counts)
            timeline.listener = progress.phase
            progress.start()
            self.stack.callback(progress.stop)
            with timeline.phase("stand up"):
                self.stand_up()
            self.load.start()
            self.stack.callback(self.load.stop)
            with timeline.phase("warm (old tier only)"):
                started = time.monotonic()
                prefill(self.old_redis(), plan.prefill_keys)
                time.sleep(max(0.0, plan.warm_seconds - (time.monotonic() - started)))
            with timeline.phase("copy + follow"):
                self.copy_and_follow()
            with timeline.phase("boxes' Redis switch"):
                self.redis_switch("switch-to-new")
            with timeline.phase("drain"):
                self.drain(self.copy)
                # The tasks' keys of their own are only on new, which the comparison skips.
                together(
                    lambda: self.comparisons.append(("old -> new", self.compare(forward=True))),
                    lambda: self.new.open_redis_pools(in_flight=SENDERS),
                )
            if plan.faults:
                with timeline.phase("shift, new tier answers 5xx"):
                    self.shift_with_5xx()
            with timeline.phase("gated shift to new"):
                self.shift(
                    "forward",
                    faults=(
                        [(50, "production worker killed", self.kill_worker),
                         (75, "Redis primary failover", self.failover)]
                        if plan.faults else []
                    ),
                )  # fmt: skip
            with timeline.phase("soak on new"):
                time.sleep(plan.soak_seconds)
            with timeline.phase("failback: production fails, no shift running"):
                self.fail_back()
            with timeline.phase("rollback to old"):
                self.shift("rollback")
                self.wait_for_tier("old")
            with timeline.phase("Redis switch rolled back under traffic"):
                self.roll_back_switch()
            with timeline.phase("roll forward to new"):
                self.shift("roll-forward")
                self.wait_for_tier("new")
            self.load.stop()
            samples = self.load.snapshot()
            periods = list(self.bridge.periods)
        return Outcome(
            timeline=timeline,
            samples=samples,
            comparison=combined(self.comparisons) if self.comparisons else None,
            five_xx_window=self.five_xx_window,
            rolled_back_on_5xx=self.rolled_back_on_5xx,
            failback=self.failback,
            alarm_periods=periods,
            follow_status=self.copy.status_lines if self.copy else [],
            plan=plan,
            workdir=self.workdir,
        )

    def copy_and_follow(self) -> None:
        follow = self.copy_follows
        self.endpoint = PrimaryEndpoint(self.group)
        self.endpoint.start()
        self.stack.callback(self.endpoint.stop)
        self.copy = self.start_copy("copy", forward=True, follow=follow)
        if not follow:
            self.timeline.not_exercised["follow"] = (
                "scripts/migrate_redis.py has no --follow: one-shot copy only, no change capture"
            )
            self.timeline.not_exercised["follow subscription killed"] = "no follow to kill"
            code = self.copy.wait(timeout=120)
            self.timeline.notes.append(f"one-shot copy exited with {code}")
            return
        wait_until(lambda: self.copy is not None and self.copy.state() == "following",
                   "the follow", timeout=180)  # fmt: skip
        writer = KeyWriter(self.old_redis(), max(self.plan.prefill_keys, 1), self.plan.key_writes)
        if self.plan.key_writes:
            writer.start()
        time.sleep(self.plan.follow_seconds / 2)
        if self.plan.faults:
            self.timeline.fault("follow's subscription killed")
            self.old_redis().execute_command("CLIENT KILL TYPE pubsub")
        time.sleep(self.plan.follow_seconds / 2)
        writer.halt.set()
        if writer.is_alive():
            writer.join()
            self.timeline.notes.append(f"{writer.writes} writes straight to the old Redis")

    def start_copy(self, name: str, *, forward: bool, follow: bool) -> CopyRun:
        """migrate_redis between the old Redis and the new primary: old -> new or back."""
        old = (f"redis://127.0.0.1:{self.old.redis_port}/0", self.old.redis_password)
        new = (f"rediss://127.0.0.1:{self.endpoint.port}/0", self.group.password)
        (source, source_password), (target, target_password) = (old, new) if forward else (new, old)
        run = CopyRun(
            self.workdir, source=source, source_password=source_password, target=target,
            target_password=target_password, tls_ca=self.group.tls.ca_cert, follow=follow,
            name=name,
        )  # fmt: skip
        self.stack.callback(run.stop, 30)
        return run

    def redis_switch(self, action: str) -> None:
        """The deploy's redis-cutover.sh on the old tier's box, then /health/ready from outside."""
        if not hasattr(self, "box_switch"):
            self.box_switch = BoxSwitch(
                self.workdir, self.old, new_port=self.endpoint.port,
                new_ca=self.group.tls.ca_cert, token=self.group.password,
            )  # fmt: skip
        self.timeline.fault(f"old tier: redis-cutover.sh {action}")
        code = self.box_switch.run(action)
        self.timeline.notes.append(f"redis-cutover.sh {action} exited with {code}")
        status = self.old_tier_ready()
        if status != 200:
            self.timeline.not_exercised[f"old tier ready after {action}"] = f"HTTP {status}"
            return
        self.check_old_tier_writes_to("new" if action == "switch-to-new" else "old", action)

    def old_tier_ready(self) -> int:
        """/health/ready of the old tier, polled until 200 or SETTLE_SECONDS: its last status."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            try:
                status = http_get(self.old.nginx_port, "/health/ready", 5.0)[0]
            except OSError:
                status = 0
            if status == 200 or time.monotonic() > deadline:
                return status
            time.sleep(0.2)

    def check_old_tier_writes_to(self, side: str, action: str) -> None:
        """A fresh track through the old tier's nginx: its cache entry must land on `side`.
        A write that landed nowhere (the service's Redis budget ran out on a busy machine)
        is retried with another track until SETTLE_SECONDS; one on the wrong side is not."""
        new = self.group.client(self.group.primary_port())
        deadline = time.monotonic() + SETTLE_SECONDS
        found = {"old": False, "new": False}
        while not any(found.values()) and time.monotonic() < deadline:
            marker = f"rehearsal-{action}-{time.monotonic_ns()}"
            http_get(self.old.nginx_port, f"/api/v1/tracks/{marker}/waveform", 5.0)
            found = {
                name: any(marker.encode() in key for key in client.scan_iter(match=f"*{marker}*"))
                for name, client in (("old", self.old_redis()), ("new", new))
            }
        if found != {"old": side == "old", "new": side == "new"}:
            self.timeline.not_exercised[f"old tier on the {side} Redis after {action}"] = (
                f"its cache entry for a fresh track was found on {found}"
            )
        else:
            self.timeline.notes.append(f"after {action} the old tier writes to the {side} Redis")

    def roll_back_switch(self) -> None:
        """As the deploy reverts: follow new -> old, switch the box back, drain."""
        self.reverse = self.start_copy("reverse-follow", forward=False, follow=True)
        wait_until(lambda: self.reverse is not None and self.reverse.state() == "following",
                   "the reverse follow", timeout=90)  # fmt: skip
        time.sleep(self.plan.follow_seconds / 2)
        self.redis_switch("switch-to-old")
        self.drain(self.reverse)
        self.comparisons.append(("new -> old", self.compare(forward=False)))

    def shift_args(self, target: list[str], interval: int | None = None) -> list[str]:
        z = self.zone
        alarms = [a for name in GATE_ALARMS for a in ("--alarm", name)]
        every = self.plan.shift_interval if interval is None else interval
        return [
            "shift", "--zone-id", z.zone_id, "--name", z.name, "--old-id", z.old_id,
            "--new-id", z.new_id, *target, "--interval", str(every), *alarms,
            "--rollback-to", "old", "--region", "us-east-1",
        ]  # fmt: skip

    def start_shifts(self) -> None:
        """Every shift of the schedule, started now to wait for its turn: a shift CLI's imports
        take a second or more on busy cores, which would otherwise open each shift."""
        names = [name for name in SHIFTS if self.plan.faults or name != "5xx"]
        self.shifts: dict[str, ShiftRun] = {}
        for name in names:
            run = ShiftRun(
                self.workdir, name, self.moto.url, self.plan.time_scale,
                self.shift_args(*SHIFTS[name]), epoch=self.epoch,
            )  # fmt: skip
            self.stack.callback(run.wait, 0)
            self.shifts[name] = run

    def shift(
        self,
        name: str,
        *,
        faults: list[tuple[int, str, Callable[[], None]]] | None = None,
    ) -> int | None:
        run = self.shifts[name]
        run.go()
        pending = list(faults or [])
        deadline = time.monotonic() + 180
        while not run.ended(within=0.2) and time.monotonic() < deadline:
            if pending and self.new_weight() >= pending[0][0]:
                _, label, inject = pending.pop(0)
                self.timeline.fault(label)
                inject()
        code = run.wait(timeout=max(1.0, deadline - time.monotonic()))
        self.timeline.notes.append(f"shift {name} exited with {code}")
        for _, label, _inject in pending:
            self.timeline.notes.append(f"fault '{label}' not injected: the shift ended first")
        return code

    def shift_with_5xx(self) -> None:
        run = self.shifts["5xx"]
        run.go()
        deadline = time.monotonic() + 180
        at_fault = None
        while not run.ended(within=0.2) and time.monotonic() < deadline:
            weight = self.new_weight()
            if at_fault is None and weight >= 50:
                at_fault = weight
                self.timeline.fault("new tier answers 5xx")
                self.five_xx_window = (self.timeline.now(), self.timeline.now())
                self.new.answer_5xx(True)
            if at_fault is not None and weight < at_fault and not self.rolled_back_on_5xx:
                self.rolled_back_on_5xx = True
                self.timeline.fault(f"gate walked traffic back to new={weight}%")
        run.wait(timeout=max(1.0, deadline - time.monotonic()))
        time.sleep(1.0)
        if at_fault is not None and self.new_weight() < at_fault and not self.rolled_back_on_5xx:
            self.rolled_back_on_5xx = True
            self.timeline.fault(f"gate walked traffic back to new={self.new_weight()}%")
        self.new.answer_5xx(False)
        if self.five_xx_window is not None:
            self.five_xx_window = (self.five_xx_window[0], self.timeline.now())
            self.timeline.fault("new tier healthy again")
        wait_until(self.bridge.all_ok, "the gate alarms to clear", timeout=120)

    @property
    def resolver_ttl(self) -> float:
        return float(RECORD_TTL_SECONDS) / self.plan.time_scale

    def fail_back(self) -> None:
        """Production answers 5xx with the shift finished at 100% and nothing deploying: its
        failover alarm fires, its health check fails, and the resolver sends every client to
        old by health alone (old's weight is 0); once production recovers, back to new."""
        weight_before = self.new_weight()
        started = self.timeline.now()
        self.timeline.fault("production answers 5xx (failback)")
        self.new.answer_5xx(True)
        wait_until(lambda: not self.resolver.new_is_healthy(), "the health check to fail",
                   timeout=60)  # fmt: skip
        unhealthy_at = self.timeline.now()
        self.timeline.fault("production's health check unhealthy")
        self.wait_for_tier("old")
        routed_at = self.timeline.now()
        time.sleep(self.plan.outage_seconds)
        self.new.answer_5xx(False)
        self.timeline.fault("production healthy again")
        recovered_at = self.timeline.now()
        wait_until(self.resolver.new_is_healthy, "the health check to recover", timeout=60)
        self.wait_for_tier("new")
        self.failback = {
            "fault_at_s": round(started, 1),
            "detected_after_s": round(unhealthy_at - started, 1),
            "all_on_old_after_s": round(routed_at - started, 1),
            "back_on_new_after_recovery_s": round(self.timeline.now() - recovered_at, 1),
            # The alarm's detection window: from the fault until the check turned unhealthy,
            # plus the answers clients had cached just before (one scaled TTL).
            "window": (started, unhealthy_at + self.resolver_ttl + DETECTION_SLACK_SECONDS),
            "new_weight_unchanged": self.new_weight() == weight_before == 100,
            "served_by_old": sum(
                1 for s in self.load.snapshot()
                if s.tier == "old" and routed_at <= s.started <= recovered_at
            ),
        }  # fmt: skip

    def kill_worker(self) -> None:
        pid = self.new.kill_worker(0)
        self.timeline.notes.append(f"killed worker {pid} of task-0")

    def failover(self) -> None:
        before, after = self.group.failover()
        self.timeline.notes.append(f"Redis primary moved from port {before} to {after}")

    def drain(self, run: CopyRun | None) -> None:
        if run is None or not run.follow:
            return
        code = run.stop(timeout=120)
        self.timeline.follow_exits[run.log.stem] = code
        self.timeline.notes.append(f"{run.log.stem} drained and exited with {code}")

    def compare(self, *, forward: bool) -> Comparison:
        """Every key of the side the follow read must be on the side it wrote."""
        old, new = self.old_redis(), self.group.client(self.group.primary_port())
        return compare(old, new) if forward else compare(new, old)

    def old_redis(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.old.redis_port, password=self.old.redis_password
        )

    def wait_for_tier(self, tier: str) -> None:
        """Until every client's cached answer points at `tier` (bounded by the TTL)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            recent = self.load.latest(40)
            if recent and all(s.tier == tier for s in recent):
                return
            time.sleep(0.05)
        self.timeline.notes.append(f"traffic did not all reach the {tier} tier within 60 s")


def combined(comparisons: list[tuple[str, Comparison]]) -> Comparison:
    """Both drains' comparisons as one figure: keys lost or stale in either direction."""
    parts = [c for _, c in comparisons]
    return Comparison(
        compared=sum(c.compared for c in parts),
        missing=sum(c.missing for c in parts),
        value_differs=sum(c.value_differs for c in parts),
        ttl_shorter=sum(c.ttl_shorter for c in parts),
        examples=tuple(f"{name}: {e}" for name, c in comparisons for e in c.examples),
    )


def port_in_use_on(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((address, port)) == 0
