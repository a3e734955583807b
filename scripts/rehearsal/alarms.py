"""The shift's health-gate alarms, computed from the stand-in's own metrics as CloudWatch would.

Every (scaled) minute the bridge reads the ALB stand-in's access log and probes each task's
/health like a target group health check, publishes the load balancer's metrics to moto's
CloudWatch, and evaluates the three gate alarms the Monitoring construct defines (same
thresholds, 3 of 5 datapoints, missing data not breaching), setting each alarm's state.
moto stores alarm states but does not evaluate alarms; this is that evaluation.

It also evaluates production's failover alarms (infra/constructs/failover_alarms.py), which the
rehearsal's Route53 health check follows: 5xx counts and unhealthy targets, every one of the
last FAILOVER_PERIODS periods breaching. A count per minute shrinks with the time scale, so
the 5xx threshold is scaled with it.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.thresholds import (
    FAILOVER_PERIODS,
    P99_LATENCY_SECONDS,
    SERVER_ERROR_PERCENT,
    SERVER_ERRORS_PER_MINUTE,
)

DATAPOINTS_TO_ALARM = 3
EVALUATION_PERIODS = 5
PERIOD_SECONDS = 60
NAMESPACE = "AWS/ApplicationELB"
ALARM_P99 = "prostudio-rehearsal-P99Latency"
ALARM_5XX = "prostudio-rehearsal-ServerErrorRate"
ALARM_UNHEALTHY = "prostudio-rehearsal-UnhealthyTargets"
GATE_ALARMS = (ALARM_P99, ALARM_5XX, ALARM_UNHEALTHY)
FAILOVER_TARGET_5XX = "prostudio-rehearsal-FailoverTargetErrors"
FAILOVER_ELB_5XX = "prostudio-rehearsal-FailoverLoadBalancerErrors"
FAILOVER_UNHEALTHY = "prostudio-rehearsal-FailoverUnhealthyTargets"
FAILOVER_ALARMS = (FAILOVER_TARGET_5XX, FAILOVER_ELB_5XX, FAILOVER_UNHEALTHY)


@dataclass(frozen=True)
class Period:
    """One period's load balancer metrics; None where CloudWatch would have no datapoint."""

    ended: float
    requests: int
    target_5xx: int
    elb_5xx: int
    p99: float | None
    unhealthy: int

    def breaches(self) -> dict[str, bool | None]:
        error_rate = (
            100 * (self.target_5xx + self.elb_5xx) / self.requests if self.requests else None
        )
        return {
            ALARM_P99: None if self.p99 is None else self.p99 > P99_LATENCY_SECONDS,
            ALARM_5XX: None if error_rate is None else error_rate > SERVER_ERROR_PERCENT,
            ALARM_UNHEALTHY: self.unhealthy > 0,
        }

    def failover_breaches(self, errors_per_period: float) -> dict[str, bool]:
        return {
            FAILOVER_TARGET_5XX: self.target_5xx > errors_per_period,
            FAILOVER_ELB_5XX: self.elb_5xx > errors_per_period,
            FAILOVER_UNHEALTHY: self.unhealthy > 0,
        }


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class AlarmBridge:
    def __init__(
        self,
        cloudwatch: Any,
        access_log: Path,
        probe_targets: Callable[[], int],
        *,
        time_scale: float,
        clock: Callable[[], float],
    ) -> None:
        self.cloudwatch = cloudwatch
        self.access_log = access_log
        self.probe_targets = probe_targets
        self.period_seconds = PERIOD_SECONDS / time_scale
        self.errors_per_period = SERVER_ERRORS_PER_MINUTE / time_scale
        self.clock = clock
        self.offset = 0
        self.history: deque[Period] = deque(maxlen=EVALUATION_PERIODS)
        self.periods: list[Period] = []
        self.states: list[tuple[float, dict[str, str]]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def create_alarms(self) -> None:
        for name in GATE_ALARMS + FAILOVER_ALARMS:
            self.cloudwatch.put_metric_alarm(
                AlarmName=name,
                Namespace=NAMESPACE,
                MetricName=name.rsplit("-", 1)[-1],
                Statistic="Maximum",
                Period=PERIOD_SECONDS,
                EvaluationPeriods=EVALUATION_PERIODS,
                DatapointsToAlarm=DATAPOINTS_TO_ALARM,
                Threshold=P99_LATENCY_SECONDS if name == ALARM_P99 else SERVER_ERROR_PERCENT,
                ComparisonOperator="GreaterThanThreshold",
                TreatMissingData="notBreaching",
            )
        self.evaluate()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=self.period_seconds + 10)

    def _loop(self) -> None:
        while not self.stopped.wait(self.period_seconds):
            self.collect()
            self.evaluate()

    def collect(self) -> Period:
        statuses: list[tuple[int, str]] = []
        latencies: list[float] = []
        with self.access_log.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            entry = json.loads(line)
            if not entry["uri"].startswith("/api/"):
                continue
            statuses.append((int(entry["status"]), entry["upstream_status"]))
            upstream = entry["upstream_time"].split(",")[-1].strip()
            if upstream and upstream != "-":
                latencies.append(float(upstream))
        period = Period(
            ended=self.clock(),
            requests=len(statuses),
            target_5xx=sum(1 for _, up in statuses if up.split(",")[-1].strip().startswith("5")),
            elb_5xx=sum(
                1 for status, up in statuses if status >= 500 and not up.strip().startswith("5")
            ),
            p99=percentile(latencies, 0.99),
            unhealthy=self.probe_targets(),
        )
        self.periods.append(period)
        self.history.append(period)
        self.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {"MetricName": "RequestCount", "Value": period.requests},
                {"MetricName": "HTTPCode_Target_5XX_Count", "Value": period.target_5xx},
                {"MetricName": "HTTPCode_ELB_5XX_Count", "Value": period.elb_5xx},
                {"MetricName": "UnHealthyHostCount", "Value": period.unhealthy},
                *(
                    [{"MetricName": "TargetResponseTime", "Value": period.p99}]
                    if period.p99 is not None
                    else []
                ),
            ],
        )
        return period

    def evaluate(self) -> dict[str, str]:
        states: dict[str, str] = {}
        reasons: dict[str, str] = {}
        for name in GATE_ALARMS:
            breaching = sum(1 for p in self.history if p.breaches()[name])
            states[name] = "ALARM" if breaching >= DATAPOINTS_TO_ALARM else "OK"
            reasons[name] = f"{breaching} of the last {len(self.history)} datapoints breaching"
        recent = list(self.history)[-FAILOVER_PERIODS:]
        for name in FAILOVER_ALARMS:
            breaching = len(recent) == FAILOVER_PERIODS and all(
                period.failover_breaches(self.errors_per_period)[name] for period in recent
            )
            states[name] = "ALARM" if breaching else "OK"
            reasons[name] = f"breaching in all of the last {FAILOVER_PERIODS} periods: {breaching}"
        # As CloudWatch, only a change of state is written (six calls to moto every period
        # otherwise).
        published = self.states[-1][1] if self.states else {}
        for name, state in states.items():
            if published.get(name) != state:
                self.cloudwatch.set_alarm_state(
                    AlarmName=name, StateValue=state, StateReason=reasons[name]
                )
        self.states.append((self.clock(), states))
        return states

    def all_ok(self) -> bool:
        return bool(self.states) and all(v == "OK" for v in self.states[-1][1].values())

    def state(self, name: str) -> str:
        return self.states[-1][1].get(name, "INSUFFICIENT_DATA") if self.states else "OK"
