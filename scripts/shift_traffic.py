#!/usr/bin/env python3
"""Shift Route53 weighted traffic between an old and a new record, gradually and health-gated.

    shift_traffic.py status --zone-id Z --name api.example.com --old-id old --new-id new
    shift_traffic.py shift  ... --to 100 [--step 10] [--interval 300]
                                [--alarm NAME ...] [--health-url URL] [--endpoint-url URL]
    shift_traffic.py abort  ...

Ctrl-C during a shift puts back the last healthy weights and releases the lock.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from shift_engine import (
    ROLLBACK_TO_HEALTHY,
    ROLLBACK_TO_OLD,
    LockLost,
    Progress,
    ShiftContext,
    ShiftError,
    ShiftFailed,
    ShiftRequest,
    run,
    status,
    stop,
)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, no usage dump
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="shift_traffic.py",
        description="Move traffic between two Route53 weighted records of one name.",
    )
    parser.add_argument("command", choices=["status", "shift", "abort"])
    parser.add_argument("--zone-id", required=True, help="hosted zone id (Z...)")
    parser.add_argument("--name", required=True, help="record name, e.g. api.example.com")
    parser.add_argument("--old-id", required=True, help="set identifier of the old record")
    parser.add_argument("--new-id", required=True, help="set identifier of the new record")
    parser.add_argument("--to", type=int, help="target percent of traffic to new (0..100)")
    parser.add_argument("--step", type=int, default=10, help="points per step (default 10)")
    parser.add_argument(
        "--interval", type=int, default=300, help="soak seconds per step (default 300)"
    )
    parser.add_argument(
        "--alarm", action="append", default=[], help="CloudWatch alarm that must stay OK"
    )
    parser.add_argument("--health-url", help="URL of the new endpoint's /health; 2xx = healthy")
    parser.add_argument(
        "--no-health-check",
        action="store_true",
        help="ignore the Route53 health check attached to the new record",
    )
    parser.add_argument(
        "--rollback-to",
        choices=[ROLLBACK_TO_HEALTHY, ROLLBACK_TO_OLD],
        default=ROLLBACK_TO_HEALTHY,
        help="on failure return to the last healthy weights (default) or all-old",
    )
    parser.add_argument("--endpoint-url", help="Route53 endpoint (as in the AWS CLI)")
    parser.add_argument("--region", help="region of the CloudWatch alarms")
    return parser


def _request(args: argparse.Namespace) -> ShiftRequest:
    if args.command == "shift" and args.to is None:
        raise ShiftError("shift needs --to N (percent of traffic to new, 0..100)")
    return ShiftRequest(
        zone_id=args.zone_id,
        name=args.name,
        old_id=args.old_id,
        new_id=args.new_id,
        target=args.to if args.to is not None else 0,
        step=args.step,
        interval_seconds=args.interval,
        alarms=tuple(args.alarm),
        health_url=args.health_url,
        use_health_check=not args.no_health_check,
        rollback_to=args.rollback_to,
    )


def _context(args: argparse.Namespace) -> ShiftContext:
    import boto3  # noqa: PLC0415 - only when no clients were injected
    from shift_retry import client_config  # noqa: PLC0415

    config = client_config()
    route53 = boto3.client(
        "route53", endpoint_url=args.endpoint_url, region_name="us-east-1", config=config
    )
    cloudwatch = (
        boto3.client("cloudwatch", region_name=args.region, config=config) if args.alarm else None
    )
    return ShiftContext(route53=route53, cloudwatch=cloudwatch)


def _owner() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}:{os.getpid()}"


def _print_progress(progress: Progress) -> None:
    print(progress.message, flush=True)


def main(argv: Sequence[str] | None = None, *, context: ShiftContext | None = None) -> int:
    """Run one command; returns the exit code. `context` injects clients and a clock."""
    args = build_parser().parse_args(argv)
    try:
        request = _request(args)
        ctx = context or _context(args)
        if args.command == "status":
            print(json.dumps(status(request, ctx), indent=2))
        elif args.command == "abort":
            _print_progress(stop(request, ctx, None, "aborted"))
        else:
            run(
                request,
                ctx,
                run_id=uuid.uuid4().hex[:12],
                owner=_owner(),
                report=_print_progress,
            )
    except LockLost as error:
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ShiftError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ShiftFailed as error:
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS call failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted: last healthy weights kept, lock released", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
