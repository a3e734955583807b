#!/usr/bin/env python3
"""Shift Route53 weighted traffic between an old and a new record, gradually and health-gated.

    shift_traffic.py status --zone-id Z --name api.example.com [--old-id old --new-id new]
    shift_traffic.py shift  ... --to 100 [--step 10] [--interval 240]
                                [--alarm NAME ...] [--health-url URL] [--endpoint-url URL]
    shift_traffic.py abort  ...
    shift_traffic.py pause | resume | promote  ...

pause, resume, promote and abort act on the shift that holds the lock (a deploy's or another
terminal's) through the control record it reads at each poll, and wait until it has acted:
pause holds the weights, resume continues, promote skips the remaining soaks, abort walks back
at once to where the shift started. An abort that nobody acts on within a minute (the shift's
process died) stops the shift here: its last healthy weights back, the lock released.

Ctrl-C during a shift puts back the last healthy weights and releases the lock. A walk toward
old never soaks and its step is clamped to the distance left: `shift --to 0 --step 100` is one
Route53 change from any weight.

The health URL is shown without its credentials (a URL with a password draws a warning); the
soak interval is 0 to 3600 s per step.

Exit codes: 0 done; 1 the shift failed (a gate, a rollback, a lost lock); 2 bad input, nothing
changed; 3 no usable AWS credentials; 4 an AWS call failed (unreachable, denied, ...);
130 interrupted (also while starting).
"""

from __future__ import annotations

import cli_launch

cli_launch.begin("shift-traffic", ("boto3",))

import argparse  # noqa: E402
import getpass  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

from botocore.exceptions import (  # noqa: E402
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from shift_control import (  # noqa: E402
    ABORT,
    DECISIONS,
    PAUSE,
    PROMOTE,
    Decision,
    write_decision,
)
from shift_engine import (  # noqa: E402
    POLL_SECONDS,
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

from infra.config import DEFAULTS  # noqa: E402
from infra.parameters import NEW_SET_ID, OLD_SET_ID  # noqa: E402
from runtime.common.cli_input import aws_region, http_url, warn_password_in_argv  # noqa: E402
from runtime.common.errors import ExitCode, UsageError  # noqa: E402

cli_launch.ready()

EXIT_FAILED = ExitCode.FAILED
EXIT_BAD_INPUT = ExitCode.USAGE
EXIT_NO_CREDENTIALS = ExitCode.NO_CREDENTIALS
EXIT_AWS_ERROR = ExitCode.AWS_ERROR
EXIT_INTERRUPTED = ExitCode.INTERRUPTED
# Error codes AWS answers when the credentials themselves are the problem.
CREDENTIAL_ERROR_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}
)
DEFAULT_STEP = int(DEFAULTS["shift_step"])
DEFAULT_INTERVAL = int(DEFAULTS["shift_interval"])
# How long a control command waits for the running shift to act on its decision.
ACKNOWLEDGE_SECONDS = 60


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, no usage dump
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="shift_traffic.py",
        description="Move traffic between two Route53 weighted records of one name.",
    )
    parser.add_argument("command", choices=["status", "shift", *DECISIONS])
    parser.add_argument("--zone-id", required=True, help="hosted zone id (Z...)")
    parser.add_argument("--name", required=True, help="record name, e.g. api.example.com")
    parser.add_argument(
        "--old-id",
        default=OLD_SET_ID,
        help=f"set identifier of the old record (default {OLD_SET_ID}, as ZeroCostStack names it)",
    )
    parser.add_argument(
        "--new-id",
        default=NEW_SET_ID,
        help=f"set identifier of the new record (default {NEW_SET_ID}, as ProdStack names it)",
    )
    parser.add_argument("--to", type=int, help="target percent of traffic to new (0..100)")
    parser.add_argument(
        "--step",
        type=int,
        default=DEFAULT_STEP,
        help=f"points per step (default {DEFAULT_STEP}); toward old, clamped to the distance left",
    )
    parser.add_argument(
        "--interval",
        type=int,
        default=DEFAULT_INTERVAL,
        help=f"soak seconds per step toward new (default {DEFAULT_INTERVAL}, as shift_interval)",
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
    parser.add_argument(
        "--endpoint-url",
        help="Route53 endpoint only; AWS_ENDPOINT_URL (every service) or "
        "AWS_ENDPOINT_URL_ROUTE_53 / AWS_ENDPOINT_URL_CLOUDWATCH redirect as in the AWS CLI",
    )
    parser.add_argument("--region", help="region of the CloudWatch alarms")
    return parser


def _check_values(args: argparse.Namespace) -> None:
    """Refuse malformed URLs and regions before any client exists."""
    if args.endpoint_url is not None:
        http_url("--endpoint-url", args.endpoint_url)
    if args.region is not None:
        aws_region("--region", args.region)
    if args.health_url:
        warn_password_in_argv(
            "--health-url", args.health_url, "prefer a health URL that needs none"
        )


def _request(args: argparse.Namespace) -> ShiftRequest:
    if args.command == "shift" and args.to is None:
        raise ShiftError("shift needs --to N (percent of traffic to new, 0..100)")
    try:
        _check_values(args)
    except UsageError as error:
        raise ShiftError(str(error)) from None
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
    sts = boto3.client("sts", region_name=args.region, config=config)
    # Route53 publishes its health checks' status metric in us-east-1 only.
    metrics = boto3.client("cloudwatch", region_name="us-east-1", config=config)
    return ShiftContext(route53=route53, cloudwatch=cloudwatch, sts=sts, route53_metrics=metrics)


def _owner() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}:{os.getpid()}"


def _operator(ctx: ShiftContext) -> str:
    """Who decides: the caller's AWS identity, or the terminal's user and host."""
    if ctx.sts is not None:
        try:
            return str(ctx.sts.get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError):
            pass
    return _owner().rsplit(":", 1)[0]


def _acknowledged(decision: str, shift: dict[str, Any] | None, run: str) -> bool:
    if shift is None or shift["run"] != run:
        return True
    if decision == PAUSE:
        return shift["paused_seconds"] is not None
    if decision == PROMOTE:
        return bool(shift["promoted"]) and shift["paused_seconds"] is None
    if decision == ABORT:
        return False
    return shift["paused_seconds"] is None


def _decide(request: ShiftRequest, ctx: ShiftContext, decision: str) -> None:
    """Write `decision` for the running shift and wait until it has acted on it."""
    shown = status(request, ctx)
    shift = shown["shift"]
    if shift is None:
        if decision == ABORT:
            _print_progress(stop(request, ctx, None, "aborted"))
            return
        raise ShiftError(f"no shift in progress on {shown['name']}; nothing to {decision}")
    by = _operator(ctx)
    run = shift["run"]
    write_decision(ctx.records(request), Decision(decision, run, by, ctx.now()))
    print(f"{decision} by {by} written for run {run} (held by {shift['owner']})", flush=True)
    deadline = ctx.now() + ACKNOWLEDGE_SECONDS
    while True:
        shown = status(request, ctx)
        if _acknowledged(decision, shown["shift"], run):
            weights = f"old {shown['old']['weight']} new {shown['new']['weight']}"
            print(f"{decision} acted on: {weights}", flush=True)
            return
        if ctx.now() >= deadline:
            break
        ctx.sleep(POLL_SECONDS)
    if decision == ABORT:
        print(f"nobody acted on the abort within {ACKNOWLEDGE_SECONDS}s; stopping it here")
        _print_progress(stop(request, ctx, None, "aborted"))
        return
    raise ShiftFailed(
        f"run {run} did not act on {decision} within {ACKNOWLEDGE_SECONDS}s; is its process "
        "(or deploy) still running? The decision stays written for it",
        shown["old"]["weight"],
        shown["new"]["weight"],
    )


def _print_progress(progress: Progress) -> None:
    print(progress.message, flush=True)


def _no_credentials(detail: str) -> int:
    print(
        f"error: no usable AWS credentials ({detail}); set AWS_PROFILE, or "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and run again",
        file=sys.stderr,
    )
    return EXIT_NO_CREDENTIALS


def _execute(args: argparse.Namespace, context: ShiftContext | None) -> None:
    request = _request(args)
    ctx = context or _context(args)
    if args.command == "status":
        print(json.dumps(status(request, ctx), indent=2))
    elif args.command in DECISIONS:
        _decide(request, ctx, args.command)
    else:
        run(request, ctx, run_id=uuid.uuid4().hex[:12], owner=_owner(), report=_print_progress)


def _failure(error: Exception) -> tuple[str, int]:
    """The one line to print and the exit code for an error that ended the command."""
    if isinstance(error, (LockLost, ShiftFailed)):
        return f"failed: {error}", EXIT_FAILED
    if isinstance(error, ShiftError):
        return f"error: {error}", EXIT_BAD_INPUT
    code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else ""
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)) or (
        code in CREDENTIAL_ERROR_CODES
    ):
        return (
            f"error: no usable AWS credentials ({error}); set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and run again",
            EXIT_NO_CREDENTIALS,
        )
    return f"error: AWS call failed: {error}", EXIT_AWS_ERROR


def main(argv: Sequence[str] | None = None, *, context: ShiftContext | None = None) -> int:
    """Run one command; returns the exit code. `context` injects clients and a clock."""
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:
        print("interrupted while starting; nothing was changed", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        _execute(args, context)
    except (LockLost, ShiftError, ShiftFailed, ClientError, BotoCoreError) as error:
        message, code = _failure(error)
        print(message, file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted: last healthy weights kept, lock released", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
