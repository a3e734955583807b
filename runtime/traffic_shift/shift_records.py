"""The two weighted records of one name, and the lock record that guards a shift.

The lock is a TXT record `_shift.<name>` in the same zone. It is created with a Route53
CREATE (which fails if the record exists), rewritten with DELETE of its exact current value
plus CREATE of the new one (which fails if anyone else changed it) and released with DELETE.
Route53 applies a change batch atomically, so a weight change and its lock rewrite travel in
one batch. Its value is the state of the shift, so a Lambda that polls can resume it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from runtime.common.shift_rules import LOCK_PREFIX

MIN_WEIGHT = 0
MAX_WEIGHT = 100
LOCK_TTL_SECONDS = 60
LOCK_VERSION = "1"
# A TXT record holds strings of at most 255 characters each; longer states use several.
TXT_STRING_LIMIT = 255
_TXT_STRING = re.compile(r'"([^"]*)"')
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
_UNSAFE_OWNER = re.compile(r"[^A-Za-z0-9._:@/+-]")


class ShiftError(Exception):
    """A request that cannot be carried out; nothing was changed. One line for the operator."""


class LockHeld(ShiftError):
    """Another shift holds the lock record of this name."""


class LockLost(ShiftError):
    """The lock of a running shift was taken or released by someone else."""


Caller = Callable[..., Any]


def normalize_name(name: str) -> str:
    """Lower-case, fully qualified, with Route53's octal escapes (\\052 for *) decoded."""
    decoded = _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), name.strip())
    return decoded.lower().rstrip(".") + "."


def lock_name(name: str) -> str:
    return LOCK_PREFIX + normalize_name(name)


def encode_txt_fields(fields: Mapping[str, object]) -> str:
    """`key=value` pairs as one TXT value, in quoted strings of at most 255 characters."""
    text = " ".join(f"{key}={value}" for key, value in fields.items())
    chunks = [text[i : i + TXT_STRING_LIMIT] for i in range(0, len(text), TXT_STRING_LIMIT)]
    return " ".join(f'"{chunk}"' for chunk in chunks)


def decode_txt_fields(value: str) -> dict[str, str]:
    """The `key=value` pairs of a TXT value written by `encode_txt_fields`."""
    text = "".join(_TXT_STRING.findall(value))
    return dict(token.split("=", 1) for token in text.split() if "=" in token)


@dataclass(frozen=True)
class WeightedRecord:
    """One weighted record set exactly as Route53 lists it."""

    raw: dict[str, Any]

    @property
    def set_id(self) -> str:
        return str(self.raw["SetIdentifier"])

    @property
    def weight(self) -> int:
        return int(self.raw["Weight"])

    def with_weight(self, weight: int) -> dict[str, Any]:
        """The record set to UPSERT: every field kept (alias or values, TTL, health check)."""
        return {**self.raw, "Weight": weight}


@dataclass(frozen=True)
class RecordPair:
    old: WeightedRecord
    new: WeightedRecord

    @property
    def weights(self) -> tuple[int, int]:
        return self.old.weight, self.new.weight


@dataclass(frozen=True)
class LockState:
    """What the lock record holds: who runs the shift and how far it got."""

    run: str
    owner: str
    started: int
    target: int
    step: int
    interval: int
    rising: bool
    phase: str
    since: int
    origin: int
    weight: int
    healthy: int
    change: str = "-"
    # When an operator's pause took hold (0: not paused), and whether the run was promoted.
    paused: int = 0
    promoted: bool = False

    def encode(self) -> str:
        fields = {
            "v": LOCK_VERSION,
            "run": self.run,
            "owner": self.owner,
            "started": self.started,
            "target": self.target,
            "step": self.step,
            "interval": self.interval,
            "rising": int(self.rising),
            "phase": self.phase,
            "since": self.since,
            "from": self.origin,
            "weight": self.weight,
            "healthy": self.healthy,
            "change": self.change,
            "paused": self.paused,
            "promoted": int(self.promoted),
        }
        return encode_txt_fields(fields)

    @classmethod
    def decode(cls, value: str) -> LockState:
        fields = decode_txt_fields(value)
        try:
            return cls(
                run=fields["run"],
                owner=fields["owner"],
                started=int(fields["started"]),
                target=int(fields["target"]),
                step=int(fields["step"]),
                interval=int(fields["interval"]),
                rising=fields["rising"] == "1",
                phase=fields["phase"],
                since=int(fields["since"]),
                origin=int(fields["from"]),
                weight=int(fields["weight"]),
                healthy=int(fields["healthy"]),
                change=fields.get("change", "-"),
                paused=int(fields.get("paused", "0")),
                promoted=fields.get("promoted", "0") == "1",
            )
        except (KeyError, ValueError):
            raise ShiftError(
                f"lock record holds {value!r}, which is not a shift state; "
                "delete it by hand once no shift runs"
            ) from None

    def evolve(self, **changes: Any) -> LockState:
        return replace(self, **changes)


def safe_owner(owner: str) -> str:
    return _UNSAFE_OWNER.sub("_", owner)[:80] or "unknown"


@dataclass(frozen=True)
class Lock:
    """The lock record as listed, and the state decoded from it."""

    record: dict[str, Any]
    state: LockState


class Route53Records:
    """Reads and writes the records of one name through a retrying caller."""

    def __init__(self, route53: Any, zone_id: str, name: str, call: Caller) -> None:
        self._route53 = route53
        self._call = call
        self.zone_id = zone_id
        self.name = normalize_name(name)
        self.lock_name = lock_name(name)

    def _list_name(self, name: str) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"HostedZoneId": self.zone_id, "StartRecordName": name}
        while True:
            try:
                page = self._call(self._route53.list_resource_record_sets, **params)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code in {"NoSuchHostedZone", "InvalidInput"}:
                    raise ShiftError(
                        f"hosted zone {self.zone_id} cannot be read ({code}); check --zone-id"
                    ) from None
                raise
            for record in page.get("ResourceRecordSets", []):
                if normalize_name(record["Name"]) != name:
                    return
                yield record
            next_name = page.get("NextRecordName")
            if not page.get("IsTruncated") or normalize_name(next_name or "") != name:
                return
            params["StartRecordName"] = next_name
            params["StartRecordType"] = page["NextRecordType"]
            if page.get("NextRecordIdentifier"):
                params["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    def read_pair(self, old_id: str, new_id: str) -> RecordPair:
        """Both weighted records, checked to be usable as percentages; ShiftError if not."""
        if old_id == new_id:
            raise ShiftError(f"old and new set identifiers are both {old_id!r}; give two")
        by_id = {
            str(record["SetIdentifier"]): record
            for record in self._list_name(self.name)
            if "SetIdentifier" in record
        }
        found = ", ".join(sorted(by_id)) or "none"
        records = []
        for role, set_id in (("old", old_id), ("new", new_id)):
            record = by_id.get(set_id)
            if record is None:
                raise ShiftError(
                    f"no record {self.name} with set identifier {set_id!r} ({role}) in zone "
                    f"{self.zone_id}; set identifiers found: {found}"
                )
            records.append(_checked(record, role))
        old, new = records
        if old.raw["Type"] != new.raw["Type"]:
            raise ShiftError(
                f"old record is type {old.raw['Type']} but new is {new.raw['Type']}; "
                "weighted records of one name must share a type"
            )
        pair = RecordPair(old=old, new=new)
        if sum(pair.weights) != MAX_WEIGHT:
            raise ShiftError(
                f"weights old={old.weight} new={new.weight} do not add up to 100; we speak in "
                "percent: set them to e.g. 100 and 0 before shifting"
            )
        return pair

    def read_lock(self) -> Lock | None:
        for record in self._list_name(self.lock_name):
            if record["Type"] == "TXT":
                values = [item["Value"] for item in record.get("ResourceRecords", [])]
                return Lock(record=record, state=LockState.decode("".join(values)))
        return None

    def read_txt(self, name: str) -> str | None:
        """The joined values of the TXT record `name`, or None when there is none."""
        for record in self._list_name(normalize_name(name)):
            if record["Type"] == "TXT":
                return "".join(item["Value"] for item in record.get("ResourceRecords", []))
        return None

    def upsert_txt(self, name: str, value: str, ttl: int, comment: str) -> str:
        record = {"Name": name, "Type": "TXT", "TTL": ttl, "ResourceRecords": [{"Value": value}]}
        return self._submit([{"Action": "UPSERT", "ResourceRecordSet": record}], comment)

    def lock_record(self, state: LockState) -> dict[str, Any]:
        return {
            "Name": self.lock_name,
            "Type": "TXT",
            "TTL": LOCK_TTL_SECONDS,
            "ResourceRecords": [{"Value": state.encode()}],
        }

    def _submit(self, changes: list[dict[str, Any]], comment: str) -> str:
        try:
            response = self._call(
                self._route53.change_resource_record_sets,
                HostedZoneId=self.zone_id,
                ChangeBatch={"Comment": comment[:256], "Changes": changes},
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            message = error.response.get("Error", {}).get("Message", "")
            if code in {"InvalidChangeBatch", "InvalidInput"} and self.lock_name.rstrip(
                "."
            ) in message.lower().replace("\\052", "*"):
                raise LockLost(
                    f"the lock record {self.lock_name} changed under this shift ({message})"
                ) from None
            raise
        return str(response["ChangeInfo"]["Id"])

    def acquire(self, state: LockState, previous: Lock | None = None) -> str:
        """Create the lock (or take over `previous`, by its exact value); LockHeld if lost."""
        changes = [{"Action": "CREATE", "ResourceRecordSet": self.lock_record(state)}]
        if previous is not None:
            changes.insert(0, {"Action": "DELETE", "ResourceRecordSet": previous.record})
        try:
            return self._submit(changes, f"traffic shift {state.run}: acquire lock")
        except LockLost as error:
            raise LockHeld(f"another shift took the lock first: {error}") from None

    def write(
        self,
        lock: Lock,
        state: LockState | None,
        pair: RecordPair | None = None,
        new_weight: int | None = None,
        comment: str = "traffic shift",
    ) -> str:
        """One atomic batch: replace (or with state=None release) the lock, optionally with both
        weights set so that the new record gets `new_weight` percent."""
        changes: list[dict[str, Any]] = [{"Action": "DELETE", "ResourceRecordSet": lock.record}]
        if state is not None:
            changes.append({"Action": "CREATE", "ResourceRecordSet": self.lock_record(state)})
        if pair is not None and new_weight is not None:
            changes += [
                {"Action": "UPSERT", "ResourceRecordSet": pair.old.with_weight(100 - new_weight)},
                {"Action": "UPSERT", "ResourceRecordSet": pair.new.with_weight(new_weight)},
            ]
        return self._submit(changes, comment)

    def set_weights(self, pair: RecordPair, new_weight: int, comment: str) -> str:
        """Both weights in one batch, without touching the lock."""
        return self._submit(
            [
                {"Action": "UPSERT", "ResourceRecordSet": pair.old.with_weight(100 - new_weight)},
                {"Action": "UPSERT", "ResourceRecordSet": pair.new.with_weight(new_weight)},
            ],
            comment,
        )

    def change_status(self, change_id: str) -> str:
        response = self._call(self._route53.get_change, Id=change_id)
        return str(response["ChangeInfo"]["Status"])


def _checked(record: dict[str, Any], role: str) -> WeightedRecord:
    name, set_id = record["Name"], record["SetIdentifier"]
    if "Weight" not in record:
        raise ShiftError(
            f"record {name} set identifier {set_id!r} ({role}) is not a weighted record; "
            "the shift moves Weight between two weighted records"
        )
    weight = int(record["Weight"])
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise ShiftError(
            f"record {name} set identifier {set_id!r} ({role}) has weight {weight}, outside "
            "0..100; Route53 allows up to 255 but the shift speaks in percent: set 0..100"
        )
    if "AliasTarget" in record and "TTL" in record:
        raise ShiftError(
            f"record {name} set identifier {set_id!r} ({role}) is an alias with a TTL "
            f"({record['TTL']}); an alias record has no TTL: remove it"
        )
    return WeightedRecord(raw=record)
