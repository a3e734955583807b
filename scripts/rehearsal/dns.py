"""The public name in moto's Route53, as WeightedDns builds it, and a client-side resolver.

"old" is an A record with the box's address (TTL 60 s); "new" is an alias to the load
balancer's name and carries production's health check, which follows the failover alarms
(CLOUDWATCH_METRIC checks combined by a CALCULATED one, as AlarmHealthCheck builds it). Both
start at weights 100/0. The resolver answers as Route53 does with health checks: one weighted
choice among the healthy records with a non-zero weight; when none is healthy, among the
healthy weight-0 records; when no record is healthy, as if all were. Each client caches the
answer for the TTL (divided by the rehearsal's time scale). moto keeps health checks but not
their alarm configuration, so the stand-in keeps that itself (`HealthChecks`), reads the
alarms' states from moto's CloudWatch, where the alarm bridge sets them, and runs the HTTPS
probe of the load balancer on the scaled clock.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from infra.parameters import NEW_SET_ID as NEW
from infra.parameters import OLD_SET_ID as OLD
from infra.thresholds import (
    INITIAL_NEW_WEIGHT,
    INITIAL_OLD_WEIGHT,
    PROBE_FAILURE_THRESHOLD,
    RECORD_TTL_SECONDS,
)
from rehearsal.stands import ALB_ADDRESS, OLD_ADDRESS

ZONE_NAME = "prostudio-rehearsal.test"
DOMAIN_NAME = f"api.{ZONE_NAME}"
ALB_NAME = f"prostudio-alb.{ZONE_NAME}"
# How long Route53's name servers take to answer with a change (production seconds).
NAME_SERVER_DELAY_SECONDS = 5


class EndpointProbe:
    """Route53's HTTPS endpoint check, on the scaled clock: a GET of `path` every interval;
    3 failures (or successes) in a row change its state. Healthy on 2xx or 3xx."""

    def __init__(self, address: str, port: int, path: str, interval: float) -> None:
        self.address, self.port, self.path, self.interval = address, port, path, interval
        self.healthy = True
        self.streak = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=self.interval + 5)

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):
            self.observe(self._answers())

    def _answers(self) -> bool:
        connection = http.client.HTTPConnection(self.address, self.port, timeout=2.0)
        try:
            connection.request("GET", self.path)
            return 200 <= connection.getresponse().status < 400
        except OSError:
            return False
        finally:
            connection.close()

    def observe(self, answered: bool) -> None:
        self.streak = self.streak + 1 if answered != self.healthy else 0
        if self.streak >= PROBE_FAILURE_THRESHOLD:
            self.healthy, self.streak = answered, 0


@dataclass(frozen=True)
class HealthCheck:
    """A health check as Route53 evaluates it: following one alarm, an endpoint `probe`, or
    `children` of which at least `threshold` must be healthy."""

    alarm: str = ""
    insufficient_data_healthy: bool = True
    children: tuple[str, ...] = ()
    threshold: int = 0
    probe: EndpointProbe | None = None


@dataclass
class HealthChecks:
    """Health checks by id, evaluated against CloudWatch's alarm states."""

    cloudwatch: Any
    checks: dict[str, HealthCheck] = field(default_factory=dict)

    def create(self, route53: Any, check: HealthCheck) -> str:
        config: dict[str, Any] = {"Type": "CLOUDWATCH_METRIC"}
        if check.children:
            config = {"Type": "CALCULATED", "ChildHealthChecks": list(check.children),
                      "HealthThreshold": check.threshold}  # fmt: skip
        elif check.probe is not None:
            config = {"Type": "HTTPS", "FullyQualifiedDomainName": ALB_NAME,
                      "ResourcePath": check.probe.path, "Port": 443}  # fmt: skip
        created = route53.create_health_check(
            CallerReference=f"{time.time_ns()}", HealthCheckConfig=config
        )
        check_id = str(created["HealthCheck"]["Id"])
        self.checks[check_id] = check
        return check_id

    def healthy(self, check_id: str, states: dict[str, str]) -> bool:
        check = self.checks[check_id]
        if check.probe is not None:
            return check.probe.healthy
        if check.children:
            return sum(self.healthy(child, states) for child in check.children) >= check.threshold
        state = states.get(check.alarm, "INSUFFICIENT_DATA")
        return state == "OK" or (state == "INSUFFICIENT_DATA" and check.insufficient_data_healthy)

    def alarm_states(self) -> dict[str, str]:
        names = sorted({check.alarm for check in self.checks.values() if check.alarm})
        if not names:
            return {}
        found = self.cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
        return {alarm["AlarmName"]: alarm["StateValue"] for alarm in found}


@dataclass(frozen=True)
class Zone:
    zone_id: str
    name: str = DOMAIN_NAME
    old_id: str = OLD
    new_id: str = NEW


def production_health_check(
    health: HealthChecks, route53: Any, alarms: tuple[str, ...], probe: EndpointProbe
) -> str:
    """Production's check: healthy while every failover alarm is (no data: healthy) and the
    probe of the load balancer's /health/ready answers."""
    children = tuple(health.create(route53, HealthCheck(alarm=name)) for name in alarms)
    children += (health.create(route53, HealthCheck(probe=probe)),)
    return health.create(route53, HealthCheck(children=children, threshold=len(children)))


def create_zone(route53: Any, new_health_check: str | None = None) -> Zone:
    """The hosted zone with the two weighted records and the load balancer's name."""
    zone_id = route53.create_hosted_zone(Name=ZONE_NAME, CallerReference=str(time.time()))[
        "HostedZone"
    ]["Id"].split("/")[-1]
    changes = [
        _upsert(
            {
                "Name": ALB_NAME + ".",
                "Type": "A",
                "TTL": RECORD_TTL_SECONDS,
                "ResourceRecords": [{"Value": ALB_ADDRESS}],
            }
        ),
        _upsert(
            {
                "Name": DOMAIN_NAME + ".",
                "Type": "A",
                "SetIdentifier": OLD,
                "Weight": INITIAL_OLD_WEIGHT,
                "TTL": RECORD_TTL_SECONDS,
                "ResourceRecords": [{"Value": OLD_ADDRESS}],
            }
        ),
        _upsert(
            {
                "Name": DOMAIN_NAME + ".",
                "Type": "A",
                "SetIdentifier": NEW,
                "Weight": INITIAL_NEW_WEIGHT,
                "AliasTarget": {
                    "HostedZoneId": zone_id,
                    "DNSName": ALB_NAME + ".",
                    "EvaluateTargetHealth": True,
                },
                **({"HealthCheckId": new_health_check} if new_health_check else {}),
            }
        ),
    ]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return Zone(zone_id)


def _upsert(record: dict[str, Any]) -> dict[str, Any]:
    return {"Action": "UPSERT", "ResourceRecordSet": record}


@dataclass(frozen=True)
class Answer:
    address: str
    ttl: float


class Resolver:
    """Reads the zone from Route53 (what its name servers would answer) and picks one record
    per query by weight, as Route53 does; each client caches its answer for the TTL.

    Route53's name servers answer with a change seconds after it is made: the records and the
    alarm states are read again once NAME_SERVER_DELAY_SECONDS (scaled) have passed, not on
    every query (two calls to moto each). The endpoint probe is read live."""

    def __init__(
        self,
        route53: Any,
        zone: Zone,
        time_scale: float,
        rng: random.Random,
        health: HealthChecks | None = None,
    ) -> None:
        self.route53 = route53
        self.health = health
        self.zone = zone
        self.time_scale = time_scale
        self.rng = rng
        self.lock = threading.Lock()
        self.view: tuple[list[dict[str, Any]], dict[str, str]] = ([], {})
        self.view_read_at: float | None = None

    def read(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The zone's records and the alarm states, as the name servers hold them now."""
        with self.lock:
            now = time.monotonic()
            delay = NAME_SERVER_DELAY_SECONDS / self.time_scale
            if self.view_read_at is None or now - self.view_read_at >= delay:
                response = self.route53.list_resource_record_sets(
                    HostedZoneId=self.zone.zone_id, MaxItems="300"
                )
                states = self.health.alarm_states() if self.health is not None else {}
                self.view = (list(response["ResourceRecordSets"]), states)
                self.view_read_at = now
            return self.view

    def weights(self) -> dict[str, int]:
        """The weight of each set identifier of the public name."""
        records, _ = self.read()
        return {
            record["SetIdentifier"]: int(record["Weight"])
            for record in records
            if record["Name"].rstrip(".") == self.zone.name and "SetIdentifier" in record
        }

    def resolve(self) -> Answer:
        records, states = self.read()
        candidates = [
            r
            for r in records
            if r["Name"].rstrip(".") == self.zone.name
            and r.get("Type") == "A"
            and "SetIdentifier" in r
        ]
        live = self.answerable(candidates, states)
        with self.lock:
            chosen = self.rng.choices(live, weights=[max(1, int(r["Weight"])) for r in live])[0]
        if "AliasTarget" in chosen:
            target = chosen["AliasTarget"]["DNSName"].rstrip(".")
            chosen = next(r for r in records if r["Name"].rstrip(".") == target)
        return Answer(chosen["ResourceRecords"][0]["Value"], float(chosen["TTL"]) / self.time_scale)

    def healthy(self, record: dict[str, Any], states: dict[str, str]) -> bool:
        check = record.get("HealthCheckId")
        return not check or self.health is None or self.health.healthy(check, states)

    def answerable(
        self, candidates: list[dict[str, Any]], states: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The records Route53 would choose among, by weight."""
        healthy = [r for r in candidates if self.healthy(r, states)]
        return (
            [r for r in healthy if int(r["Weight"]) > 0]
            or healthy
            or [r for r in candidates if int(r["Weight"]) > 0]
            or candidates
        )

    def new_is_healthy(self) -> bool:
        records, states = self.read()
        new = [r for r in records if r.get("SetIdentifier") == self.zone.new_id]
        return all(self.healthy(record, states) for record in new)


class CachedName:
    """One client's cached answer."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.answer: Answer | None = None
        self.expires = 0.0

    def address(self) -> str:
        now = time.monotonic()
        if self.answer is None or now >= self.expires:
            self.answer = self.resolver.resolve()
            self.expires = now + self.answer.ttl
        return self.answer.address
