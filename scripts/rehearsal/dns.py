"""The public name in moto's Route53, as WeightedDns builds it, and a client-side resolver.

"old" is an A record with the box's address (TTL 60 s); "new" is an alias to the load
balancer's name. Both start at weights 100/0. The resolver answers as a client's resolver
does: one weighted choice among the records with a non-zero weight, cached for the TTL
(divided by the rehearsal's time scale).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from infra.parameters import NEW_SET_ID as NEW
from infra.parameters import OLD_SET_ID as OLD
from rehearsal.paths import constants
from rehearsal.stands import ALB_ADDRESS, OLD_ADDRESS

INITIAL_OLD_WEIGHT, INITIAL_NEW_WEIGHT, RECORD_TTL_SECONDS = constants(
    "infra/constructs/weighted_dns.py",
    "INITIAL_OLD_WEIGHT",
    "INITIAL_NEW_WEIGHT",
    "RECORD_TTL_SECONDS",
)

ZONE_NAME = "prostudio-rehearsal.test"
DOMAIN_NAME = f"api.{ZONE_NAME}"
ALB_NAME = f"prostudio-alb.{ZONE_NAME}"


@dataclass(frozen=True)
class Zone:
    zone_id: str
    name: str = DOMAIN_NAME
    old_id: str = OLD
    new_id: str = NEW


def create_zone(route53: Any) -> Zone:
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
    per query by weight, as Route53 does; each client caches its answer for the TTL."""

    def __init__(self, route53: Any, zone: Zone, time_scale: float, rng: random.Random) -> None:
        self.route53 = route53
        self.zone = zone
        self.time_scale = time_scale
        self.rng = rng
        self.lock = threading.Lock()

    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            response = self.route53.list_resource_record_sets(
                HostedZoneId=self.zone.zone_id, MaxItems="300"
            )
        return list(response["ResourceRecordSets"])

    def weights(self) -> dict[str, int]:
        """The weight of each set identifier of the public name."""
        return {
            record["SetIdentifier"]: int(record["Weight"])
            for record in self.records()
            if record["Name"].rstrip(".") == self.zone.name and "SetIdentifier" in record
        }

    def resolve(self) -> Answer:
        records = self.records()
        candidates = [
            r
            for r in records
            if r["Name"].rstrip(".") == self.zone.name
            and r.get("Type") == "A"
            and "SetIdentifier" in r
        ]
        live = [r for r in candidates if int(r["Weight"]) > 0] or candidates
        with self.lock:
            chosen = self.rng.choices(live, weights=[max(1, int(r["Weight"])) for r in live])[0]
        if "AliasTarget" in chosen:
            target = chosen["AliasTarget"]["DNSName"].rstrip(".")
            chosen = next(r for r in records if r["Name"].rstrip(".") == target)
        return Answer(chosen["ResourceRecords"][0]["Value"], float(chosen["TTL"]) / self.time_scale)


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
