"""Health gates of the new target. Anything that cannot be read counts as unhealthy.

- Route53 health check: an endpoint check is healthy when more than half of the checkers
  report `Success`. A calculated check, or one that follows a CloudWatch alarm, has no
  checkers (GetHealthCheckStatus cannot read it): it is healthy when the latest minute of the
  `HealthCheckStatus` metric Route53 publishes for it (AWS/Route53, us-east-1 only) is 1.
- CloudWatch alarms: healthy only in state OK; ALARM and INSUFFICIENT_DATA both fail the gate
  (an alarm used as a gate should treat missing data as not breaching).
- HTTP probe: a GET of the `/health` URL answering 2xx within a few seconds.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError
from shift_records import ShiftError

from runtime.common.cli_input import without_credentials

PROBE_TIMEOUT_SECONDS = 3.0
# Health checks without checkers of their own; Route53 reports them only as a metric.
STATUS_METRIC_TYPES = frozenset({"CALCULATED", "CLOUDWATCH_METRIC"})
# Route53 publishes HealthCheckStatus once a minute; three minutes tolerate one late datapoint.
STATUS_WINDOW_SECONDS = 180
_ALARM_NAMES_PER_CALL = 100

Caller = Callable[..., Any]


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str = ""


HEALTHY = Verdict(True)


def check_url(url: str) -> None:
    """ShiftError unless `url` is an absolute http(s) URL with a host and a valid port."""
    shown = without_credentials(url)
    try:
        parsed = urlparse(url)
        hostname, port = parsed.hostname, parsed.port
    except ValueError:
        raise ShiftError(f"health URL {shown!r} is not a valid URL") from None
    if parsed.scheme not in {"http", "https"} or not hostname or port == 0:
        raise ShiftError(f"health URL {shown!r} is not an http:// or https:// URL with a host")


def describe_alarms(cloudwatch: Any, names: Sequence[str], call: Caller) -> dict[str, str]:
    """State of each existing alarm, by name. Metric alarms are asked for first; composite
    alarms only for names still missing, because CloudWatch returns composite alarms only to
    callers whose DescribeAlarms permission is not scoped to alarm ARNs."""
    states = _alarm_states(cloudwatch, names, call, {})
    missing = [name for name in names if name not in states]
    if missing:
        states.update(_alarm_states(cloudwatch, missing, call, {"AlarmTypes": ["CompositeAlarm"]}))
    return states


def _alarm_states(
    cloudwatch: Any, names: Sequence[str], call: Caller, extra: dict[str, Any]
) -> dict[str, str]:
    states: dict[str, str] = {}
    for start in range(0, len(names), _ALARM_NAMES_PER_CALL):
        params: dict[str, Any] = {
            "AlarmNames": list(names[start : start + _ALARM_NAMES_PER_CALL]),
            **extra,
        }
        while True:
            page = call(cloudwatch.describe_alarms, **params)
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                states[alarm["AlarmName"]] = alarm["StateValue"]
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
    return states


def require_alarms(cloudwatch: Any, names: Sequence[str], call: Caller) -> None:
    """ShiftError naming every alarm that does not exist."""
    if not names:
        return
    states = describe_alarms(cloudwatch, names, call)
    missing = [name for name in names if name not in states]
    if missing:
        raise ShiftError(
            f"health alarm(s) {', '.join(missing)} do not exist in this account and region; "
            "check --alarm names (and the region)"
        )


def alarm_verdict(cloudwatch: Any, names: Sequence[str], call: Caller) -> Verdict:
    try:
        states = describe_alarms(cloudwatch, names, call)
    except (ClientError, BotoCoreError) as error:
        return Verdict(False, f"alarms cannot be read: {error}")
    for name in names:
        state = states.get(name)
        if state is None:
            return Verdict(False, f"alarm {name} no longer exists")
        if state != "OK":
            return Verdict(False, f"alarm {name} is {state}")
    return HEALTHY


def health_check_verdict(route53: Any, health_check_id: str, call: Caller) -> Verdict:
    try:
        response = call(route53.get_health_check_status, HealthCheckId=health_check_id)
    except (ClientError, BotoCoreError) as error:
        return Verdict(False, f"health check {health_check_id} cannot be read: {error}")
    statuses = [
        str(item.get("StatusReport", {}).get("Status", ""))
        for item in response.get("HealthCheckObservations", [])
    ]
    if not statuses:
        return Verdict(False, f"health check {health_check_id} has no observations yet")
    passing = sum(status.startswith("Success") for status in statuses)
    if passing * 2 <= len(statuses):
        failing = next(status for status in statuses if not status.startswith("Success"))
        return Verdict(
            False,
            f"health check {health_check_id}: {passing}/{len(statuses)} checkers report "
            f"success ({failing})",
        )
    return HEALTHY


def health_check_type(route53: Any, health_check_id: str, call: Caller) -> str:
    response = call(route53.get_health_check, HealthCheckId=health_check_id)
    return str(response["HealthCheck"]["HealthCheckConfig"]["Type"])


def status_metric_verdict(metrics: Any, health_check_id: str, call: Caller, now: float) -> Verdict:
    """The latest minute of Route53's HealthCheckStatus for the check (us-east-1 CloudWatch)."""
    try:
        response = call(
            metrics.get_metric_statistics,
            Namespace="AWS/Route53",
            MetricName="HealthCheckStatus",
            Dimensions=[{"Name": "HealthCheckId", "Value": health_check_id}],
            StartTime=datetime.fromtimestamp(now - STATUS_WINDOW_SECONDS, UTC),
            EndTime=datetime.fromtimestamp(now, UTC),
            Period=60,
            Statistics=["Minimum"],
        )
    except (ClientError, BotoCoreError) as error:
        return Verdict(False, f"health check {health_check_id} status cannot be read: {error}")
    points = sorted(response.get("Datapoints", []), key=lambda point: point["Timestamp"])
    if not points:
        return Verdict(
            False,
            f"health check {health_check_id} reported no status for {STATUS_WINDOW_SECONDS}s",
        )
    if points[-1]["Minimum"] < 1:
        return Verdict(False, f"health check {health_check_id} is unhealthy")
    return HEALTHY


def probe_verdict(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> Verdict:
    check_url(url)
    # check_url allows only http and https.
    request = urllib.request.Request(  # noqa: S310
        url, headers={"User-Agent": "prostudio-traffic-shift"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        return Verdict(False, f"GET {without_credentials(url)} failed: {error}")
    if not 200 <= status < 300:
        return Verdict(False, f"GET {without_credentials(url)} answered {status}")
    return HEALTHY
