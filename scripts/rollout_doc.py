#!/usr/bin/env python3
"""Write (or check) docs/runbook.md's rollout section from infra/rollout.py, the sequence the
rollout walk (tests/rollout) proves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra import rollout

ROOT = Path(__file__).resolve().parents[1]

RUNBOOK = ROOT / "docs" / "runbook.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the section in place")
    args = parser.parse_args(argv)
    text = RUNBOOK.read_text()
    begin, end = text.find(rollout.BEGIN_MARKER), text.find(rollout.END_MARKER)
    if begin < 0 or end < begin:
        print(
            f"error: {RUNBOOK.relative_to(ROOT)} has no {rollout.BEGIN_MARKER} ... "
            f"{rollout.END_MARKER} section",
            file=sys.stderr,
        )
        return 1
    current = text[begin : end + len(rollout.END_MARKER)] + "\n"
    wanted = rollout.markdown()
    if current == wanted:
        return 0
    if not args.write:
        print(
            f"error: {RUNBOOK.relative_to(ROOT)}'s rollout section is stale; "
            "run scripts/rollout_doc.py --write",
            file=sys.stderr,
        )
        return 1
    after = text[end + len(rollout.END_MARKER) :]
    RUNBOOK.write_text(text[:begin] + wanted + after.removeprefix("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
