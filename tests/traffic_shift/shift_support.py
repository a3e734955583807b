"""Helpers for the traffic shift tests: a moto Route53 zone with two weighted records, a virtual
clock, a recorder of the weights each change batch writes, and Route53 error injection."""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from shift_engine import ShiftContext, ShiftRequest
from shift_retry import client_config

ROOT = Path(__file__).resolve().parents[2]

ZONE_NAME = "example.com"
RECORD_NAME = "api.example.com"
OLD_ID = "zero-cost"
NEW_ID = "prod"
ALB_ZONE = "Z35SXDOTRQ7X7K"
ALB_DNS = "prod-alb-123.us-east-1.elb.amazonaws.com."


def load_cli() -> ModuleType:
    """scripts/shift_traffic.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "shift_traffic_cli", ROOT / "scripts" / "shift_traffic.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class VirtualClock:
    """Time that moves only when the engine sleeps (or a test says so)."""

    now: float = 1_700_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class WeightRecorder:
    """Every change batch Route53 accepted, and the (old, new) weight pairs they set, in order."""

    pairs: list[tuple[int, int]] = field(default_factory=list)
    batches: list[list[dict[str, Any]]] = field(default_factory=list)

    def remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["shift_changes"] = params["ChangeBatch"]["Changes"]

    def accepted(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        if http_response.status_code >= 300:
            return
        changes = context["shift_changes"]
        self.batches.append(changes)
        weights = {
            change["ResourceRecordSet"]["SetIdentifier"]: change["ResourceRecordSet"]["Weight"]
            for change in changes
            if change["Action"] == "UPSERT" and "Weight" in change["ResourceRecordSet"]
        }
        if OLD_ID in weights and NEW_ID in weights:
            self.pairs.append((weights[OLD_ID], weights[NEW_ID]))

    def attach(self, route53: Any) -> None:
        operation = "route53.ChangeResourceRecordSets"
        route53.meta.events.register(f"before-parameter-build.{operation}", self.remember)
        route53.meta.events.register(f"after-call.{operation}", self.accepted)


def route53_error(code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    """A `before-call` answer: botocore raises it as the ClientError Route53 would send, and
    no request reaches moto (a `before-send` answer would not stop moto's own handler)."""
    http = AWSResponse("https://route53.amazonaws.com", 400, {}, None)
    parsed = {
        "Error": {"Code": code, "Message": message, "Type": "Sender"},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    return http, parsed


@dataclass
class FlakyRoute53:
    """Fails a share of Route53 calls with Throttling or PriorRequestNotComplete before they
    reach moto; botocore raises them as ClientErrors exactly like real ones."""

    rate: float
    rng: random.Random
    injected: int = 0
    sent: int = 0

    def __call__(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        self.sent += 1
        if self.rng.random() >= self.rate:
            return None
        self.injected += 1
        if self.rng.random() < 0.5:
            return route53_error("Throttling", "Rate exceeded")
        return route53_error("PriorRequestNotComplete", "The request was rejected")


@dataclass
class Env:
    """One mocked account: clients, the zone, a virtual clock and the weight recorder."""

    route53: Any
    cloudwatch: Any
    zone_id: str
    clock: VirtualClock
    recorder: WeightRecorder
    probe_calls: list[str] = field(default_factory=list)

    def context(self, **overrides: Any) -> ShiftContext:
        settings: dict[str, Any] = {
            "route53": self.route53,
            "cloudwatch": self.cloudwatch,
            "clock": self.clock,
            "sleep": self.clock.sleep,
            "rng": random.Random(7),
        }
        settings.update(overrides)
        return ShiftContext(**settings)

    def request(self, **overrides: Any) -> ShiftRequest:
        settings: dict[str, Any] = {
            "zone_id": self.zone_id,
            "name": RECORD_NAME,
            "old_id": OLD_ID,
            "new_id": NEW_ID,
            "target": 100,
            "step": 10,
            "interval_seconds": 60,
        }
        settings.update(overrides)
        return ShiftRequest(**settings)

    def records(self) -> dict[str, dict[str, Any]]:
        listed = self.route53.list_resource_record_sets(HostedZoneId=self.zone_id)
        return {
            record["SetIdentifier"]: record
            for record in listed["ResourceRecordSets"]
            if record.get("SetIdentifier")
        }

    def weights(self) -> tuple[int, int]:
        records = self.records()
        return records[OLD_ID]["Weight"], records[NEW_ID]["Weight"]

    def lock_values(self) -> list[str]:
        listed = self.route53.list_resource_record_sets(HostedZoneId=self.zone_id)
        return [
            value["Value"]
            for record in listed["ResourceRecordSets"]
            if record["Name"].startswith("_shift.")
            for value in record["ResourceRecords"]
        ]

    def set_weights(self, old: int, new: int) -> None:
        records = self.records()
        self.route53.change_resource_record_sets(
            HostedZoneId=self.zone_id,
            ChangeBatch={
                "Changes": [
                    {"Action": "UPSERT", "ResourceRecordSet": {**records[OLD_ID], "Weight": old}},
                    {"Action": "UPSERT", "ResourceRecordSet": {**records[NEW_ID], "Weight": new}},
                ]
            },
        )

    def put_alarm(self, name: str, state: str = "OK") -> None:
        self.cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="HTTPCode_Target_5XX_Count",
            Namespace="AWS/ApplicationELB",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=10,
            ComparisonOperator="GreaterThanThreshold",
        )
        self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")

    def inject(self, event: str, handler: Callable[..., Any]) -> None:
        self.route53.meta.events.register(event, handler)


def shift_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """A mocked account with the zone and both weighted records; for the `env` fixture."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        route53 = boto3.client("route53", region_name="us-east-1", config=client_config())
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", config=client_config())
        zone = route53.create_hosted_zone(Name=ZONE_NAME, CallerReference="shift-tests")
        zone_id = zone["HostedZone"]["Id"].split("/")[-1]
        route53.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": RECORD_NAME,
                            "Type": "A",
                            "SetIdentifier": OLD_ID,
                            "Weight": 100,
                            "TTL": 60,
                            "ResourceRecords": [{"Value": "192.0.2.10"}],
                        },
                    },
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": RECORD_NAME,
                            "Type": "A",
                            "SetIdentifier": NEW_ID,
                            "Weight": 0,
                            "AliasTarget": {
                                "HostedZoneId": ALB_ZONE,
                                "DNSName": ALB_DNS,
                                "EvaluateTargetHealth": True,
                            },
                        },
                    },
                ]
            },
        )
        recorder = WeightRecorder()
        recorder.attach(route53)
        yield Env(route53, cloudwatch, zone_id, VirtualClock(), recorder)
