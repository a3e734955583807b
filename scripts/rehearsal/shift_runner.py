"""Run scripts/shift_traffic.py's own main() on a scaled clock.

    python scripts/rehearsal/shift_runner.py --scale 10 --endpoint-url URL [--epoch T] [--on-go] \
        -- shift ...

The shift CLI takes its clients, clock and sleep from an injected ShiftContext; this gives it
boto3 clients of moto's server and a clock that runs `scale` times faster than the wall, so a
300 s soak takes 30 s. The clock counts from `--epoch` (the harness's start) so that every shift
and the metrics the harness stamps share one scaled time. Everything else (steps, gates,
rollback, lock) is the CLI's.

With `--on-go` it loads the CLI and its clients, then waits for a line on stdin before it
shifts (the harness starts it ahead, so the shift is not late by its imports); stdin closed
without a line ends it without a shift.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parents[1]
SHIFT_CLI = SCRIPTS_DIR / "shift_traffic.py"


def load_cli() -> object:
    spec = importlib.util.spec_from_file_location("shift_traffic", SHIFT_CLI)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {SHIFT_CLI}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--epoch", type=float, help="wall time the scaled clock counts from")
    parser.add_argument("--on-go", action="store_true", help="shift once stdin gives a line")
    parser.add_argument("cli_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cli = load_cli()
    from shift_engine import ShiftContext  # noqa: PLC0415
    from shift_retry import client_config  # noqa: PLC0415

    from rehearsal.moto_stand import moto_session  # noqa: PLC0415

    wall_start = args.epoch if args.epoch is not None else time.time()

    def clock() -> float:
        return wall_start + (time.time() - wall_start) * args.scale

    def sleep(seconds: float) -> None:
        time.sleep(max(0.0, seconds) / args.scale)

    session = moto_session()
    context = ShiftContext(
        route53=session.client("route53", endpoint_url=args.endpoint_url, config=client_config()),
        cloudwatch=session.client(
            "cloudwatch", endpoint_url=args.endpoint_url, config=client_config()
        ),
        route53_metrics=session.client(
            "cloudwatch", endpoint_url=args.endpoint_url, config=client_config()
        ),
        clock=clock,
        sleep=sleep,
    )
    cli_args = [a for a in args.cli_args if a != "--"]
    if args.on_go and not sys.stdin.readline():
        return 0
    return int(cli.main(cli_args, context=context))  # type: ignore[attr-defined]


if __name__ == "__main__":
    raise SystemExit(main())
