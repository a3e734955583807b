#!/usr/bin/env python3
"""Rehearse the whole cutover on this machine, under load (``make rehearse``).

    python scripts/rehearse.py [--short] [--workdir DIR]

Stands up the old tier (as ``make run-local`` runs it), a production stand-in (service tasks
behind an nginx in the ALB's role, a Sentinel-managed Redis group with TLS and AUTH), moto's
Route53 with the weighted records, then runs the copy, the gated shift, the faults, the
drain, a rollback and a roll-forward while clients send requests. The harness measures
everything itself. The last stdout line is a JSON summary; the exit status is 0 only when
every goal was met, and the summary names each one missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from pathlib import Path

try:
    from rehearsal.report import text_summary, write_report
    from rehearsal.scenario import FULL, SHORT, Rehearsal
    from rehearsal.stands import TopologyError
except ModuleNotFoundError as missing:
    package = (missing.name or "a module").partition(".")[0]
    sys.exit(
        f"error: the rehearsal needs the test tools ({package} is not installed); "
        "run `make rehearse`, which installs them"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--short", action="store_true", help="a few seconds per phase and no faults (make test)"
    )
    parser.add_argument("--workdir", type=Path, help="logs and the report (default: a tmp dir)")
    args = parser.parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="prostudio-rehearsal-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    plan = SHORT if args.short else FULL
    try:
        outcome = Rehearsal(plan, workdir).run()
    except Exception as error:  # noqa: BLE001 - any failure still ends with the JSON line
        (workdir / "error.log").write_text(traceback.format_exc())
        kind = "" if isinstance(error, (TopologyError, OSError)) else f"{type(error).__name__}: "
        print(
            f"error: the rehearsal could not run: {kind}{error} (traceback and logs in {workdir})",
            file=sys.stderr,
        )
        print(json.dumps({"ok": False, "error": str(error), "report": None}))
        return 1
    result = write_report(outcome, workdir)
    print(text_summary(result))
    print(f"report: {result['report']}")
    print(json.dumps(result, separators=(",", ":")))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
