"""A copy run's settings, durable state and report, and the errors every part raises.

Copy policies and verification modes are defined once, in runtime.common.copy_rules, which
the CDK app's configuration reads too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from runtime.common.copy_rules import COPY_POLICIES as POLICIES
from runtime.common.copy_rules import VERIFY_MODES

STATE_FORMAT = 1
MAX_EXAMPLES = 20


class CopyError(Exception):
    """A copy that cannot start or go on; `str()` is one line for the operator."""


class PreconditionError(CopyError):
    """A check made before anything is written failed."""


class VerificationFailed(CopyError):
    """The copy finished but verification found mismatched keys."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        self.report = dict(report)
        examples = "; ".join(self.report.get("mismatches", [])[:3])
        super().__init__(
            f"verification failed: {self.report['mismatched']} mismatched key(s)"
            + (f", e.g. {examples}" if examples else "")
        )


class CheckpointStore(Protocol):
    """Durable storage for one copy run's state (a JSON-serialisable mapping)."""

    def load(self) -> dict[str, Any] | None:
        """Return the saved state, or None when there is none."""
        ...

    def save(self, state: Mapping[str, Any]) -> None:
        """Persist the state durably before returning."""
        ...


@dataclass(frozen=True)
class CopySettings:
    """How to copy: existing-key policy, verification mode and batch tuning."""

    policy: str = "fail"
    verify: str = "full"
    scan_count: int = 3000
    batches_per_checkpoint: int = 10
    sample_size: int = 10_000
    ttl_tolerance_ms: int = 1000
    memory_margin: float = 1.2

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise CopyError(f"policy {self.policy!r} is unknown; use one of {', '.join(POLICIES)}")
        if self.verify not in VERIFY_MODES:
            raise CopyError(
                f"verify mode {self.verify!r} is unknown; use one of {', '.join(VERIFY_MODES)}"
            )
        if self.scan_count < 1 or self.batches_per_checkpoint < 1 or self.sample_size < 1:
            raise CopyError("scan_count, batches_per_checkpoint and sample_size must be >= 1")


@dataclass
class CopyCounts:
    """Per-key outcomes of the copy phase; scanned == copied + skipped + expired."""

    scanned: int = 0
    copied: int = 0
    skipped: int = 0
    expired: int = 0


@dataclass
class VerifyCounts:
    """Outcomes of verification; `kept` counts target keys kept on purpose by policy skip,
    `superseded` keys that differ because the target's own clients wrote them later."""

    checked: int = 0
    matched: int = 0
    mismatched: int = 0
    kept: int = 0
    superseded: int = 0
    expired: int = 0
    target_checked: int = 0
    target_only: int = 0
    examples: list[str] = field(default_factory=list)

    def mismatch(self, key: bytes, reason: str) -> None:
        self.mismatched += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{key!r}: {reason}")


@dataclass
class CopyState:
    """Everything needed to resume a run; saved after each group of batches.

    Phases: copy, verify (source side), verify-target (keys only on the target), done.
    """

    source: str
    target: str
    source_run_id: str
    policy: str
    verify: str
    source_keys_at_start: int
    phase: str = "copy"
    cursor: int = 0
    verify_cursor: int = 0
    replay_window: int = 0
    seconds: float = 0.0
    copy_seconds: float = 0.0
    counts: CopyCounts = field(default_factory=CopyCounts)
    verification: VerifyCounts = field(default_factory=VerifyCounts)
    target_keys: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = STATE_FORMAT
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CopyState:
        if data.get("format") != STATE_FORMAT:
            raise CopyError("checkpoint has an unknown format; delete it and start over")
        fields = {k: v for k, v in data.items() if k not in {"format", "counts", "verification"}}
        return cls(
            **fields,
            counts=CopyCounts(**data["counts"]),
            verification=VerifyCounts(**data["verification"]),
        )

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def report(self) -> dict[str, Any]:
        """The run's summary: counts, verification outcome and elapsed seconds."""
        verified = self.verify != "none"
        return {
            "source": self.source,
            "target": self.target,
            "policy": self.policy,
            "verify": self.verify,
            "scanned": self.counts.scanned,
            "copied": self.counts.copied,
            "skipped": self.counts.skipped,
            "expired": self.counts.expired,
            "mismatched": self.verification.mismatched,
            "verified": self.verification.checked if verified else 0,
            "target_verified": self.verification.target_checked if verified else 0,
            "target_only": self.verification.target_only,
            "kept": self.verification.kept,
            "superseded": self.verification.superseded,
            "expired_since_copy": self.verification.expired,
            "target_keys": self.target_keys,
            "seconds": round(self.seconds, 3),
            "copy_seconds": round(self.copy_seconds, 3),
            "ok": self.done and self.verification.mismatched == 0,
            "mismatches": list(self.verification.examples),
        }


ProgressCallback = Callable[[CopyState], None]
