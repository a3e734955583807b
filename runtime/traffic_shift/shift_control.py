"""Operator decisions for a running shift, without a spec edit: the control record.

The control record is a TXT record `_shift-control.<name>` in the zone of the shifted name.
`shift_traffic.py pause | resume | promote | abort` UPSERTs it with the decision, the run it
is meant for (the lock's run at that moment), who made it and when; the shift reads it at each
poll. A decision names its run, so one left behind never acts on a later shift.

  pause    hold the current weights (no step, the soak clock stops); the gates still run
  resume   continue where the pause held, with the rest of the soak
  promote  skip the remaining soaks: each remaining step waits only for Route53's INSYNC
  abort    walk back at once to where the shift started, and fail it
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shift_records import (
    Route53Records,
    ShiftError,
    decode_txt_fields,
    encode_txt_fields,
    normalize_name,
    safe_owner,
)

CONTROL_PREFIX = "_shift-control."
CONTROL_TTL_SECONDS = 60
CONTROL_VERSION = "1"
PAUSE, RESUME, PROMOTE, ABORT = "pause", "resume", "promote", "abort"
DECISIONS = (PAUSE, RESUME, PROMOTE, ABORT)


def control_name(name: str) -> str:
    return CONTROL_PREFIX + normalize_name(name)


@dataclass(frozen=True)
class Decision:
    """One operator decision for the shift `run`."""

    decision: str
    run: str
    by: str
    at: int

    def encode(self) -> str:
        return encode_txt_fields(
            {
                "v": CONTROL_VERSION,
                "decision": self.decision,
                "run": self.run,
                "by": safe_owner(self.by),
                "at": self.at,
            }
        )

    @classmethod
    def decode(cls, value: str) -> Decision:
        fields = decode_txt_fields(value)
        try:
            decision = cls(
                decision=fields["decision"],
                run=fields["run"],
                by=fields["by"],
                at=int(fields["at"]),
            )
        except (KeyError, ValueError):
            raise ShiftError(
                f"control record holds {value!r}, which is not a decision; "
                "write one with shift_traffic.py pause|resume|promote|abort"
            ) from None
        if decision.decision not in DECISIONS:
            raise ShiftError(f"control record decision {decision.decision!r} is unknown")
        return decision

    def as_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "run": self.run, "by": self.by, "at": self.at}


def read_decision(records: Route53Records) -> Decision | None:
    """The control record's decision, whatever run it names; None when there is none."""
    values = records.read_txt(control_name(records.name))
    return Decision.decode(values) if values is not None else None


def decision_for(records: Route53Records, run: str) -> Decision | None:
    """The decision meant for `run`, or None (none written, or one for another run)."""
    decision = read_decision(records)
    return decision if decision is not None and decision.run == run else None


def write_decision(records: Route53Records, decision: Decision) -> str:
    """UPSERT the control record; the change id."""
    return records.upsert_txt(
        control_name(records.name),
        decision.encode(),
        CONTROL_TTL_SECONDS,
        comment=f"traffic shift {decision.run}: {decision.decision} by {safe_owner(decision.by)}",
    )
