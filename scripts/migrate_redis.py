#!/usr/bin/env python3
"""Copy every key from one Redis server to another, verify it, and resume after a stop.

    python scripts/migrate_redis.py --source redis://old-host:6379 \\
        --target rediss://new-host:6379 [--policy fail|skip|replace] \\
        [--verify full|sample|none] [--resume] [--follow]

Passwords come from the URL or from SOURCE_REDIS_PASSWORD / TARGET_REDIS_PASSWORD. The last
line of stdout is a one-line JSON summary; the exit status is 0 only when verification (both
ways) passed. With --follow the copy then applies the source's live changes until SIGTERM,
SIGINT or SIGHUP, printing a JSON status line at every state change and every 5 s; then it
drains, verifies and exits. A signal in any other mode checkpoints and exits 128 + signal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import redis
from copy_checkpoint import FileCheckpointStore
from copy_clients import make_client
from copy_engine import RedisCopier
from copy_follow import follow
from copy_state import POLICIES, VERIFY_MODES, CopyError, CopySettings, CopyState
from redis.exceptions import RedisError
from tqdm import tqdm

from runtime.common.errors import ExitCode

DEFAULT_CHECKPOINT = "redis-copy.checkpoint.json"
EXIT_FAILED = ExitCode.FAILED
EXIT_USAGE = ExitCode.USAGE
EXIT_INTERRUPTED = ExitCode.INTERRUPTED
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class UsageError(Exception):
    """Bad command-line input; the message says what to change."""


@dataclass(frozen=True)
class Endpoint:
    """Connection settings parsed from a redis:// or rediss:// URL."""

    host: str
    port: int
    db: int
    tls: bool
    username: str | None
    password: str | None

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}/{self.db}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def parse_endpoint(option: str, url: str, password_variable: str) -> Endpoint:
    """Parse a Redis URL; the password falls back to an environment variable."""
    parts = urlsplit(url)
    if parts.fragment and "@" in parts.fragment:
        raise UsageError(
            f"{option} has an unencoded '#' in its password: percent-encode it as %23 "
            f"(redis://:pa%23ss@host:6379) or pass the password in {password_variable}"
        )
    if parts.scheme not in {"redis", "rediss"}:
        raise UsageError(f"{option} must be a redis:// or rediss:// URL, got {url!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise UsageError(f"{option} has an invalid port in {url!r}") from None
    if not parts.hostname:
        raise UsageError(f"{option} needs a host, e.g. redis://10.0.0.5:6379")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise UsageError(f"{option} database must be a number, e.g. redis://host:6379/0")
    password = unquote(parts.password) if parts.password else os.environ.get(password_variable)
    return Endpoint(
        host=parts.hostname,
        port=port,
        db=int(path or 0),
        tls=parts.scheme == "rediss",
        username=unquote(parts.username) if parts.username else None,
        password=password or None,
    )


def build_client(endpoint: Endpoint, ca_file: Path | None) -> redis.Redis:
    """A client for the engine; nothing connects until the first command."""
    return make_client(
        endpoint.host,
        endpoint.port,
        tls=endpoint.tls,
        password=endpoint.password,
        username=endpoint.username,
        db=endpoint.db,
        ca_file=str(ca_file) if ca_file else None,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="migrate_redis.py",
        description="Copy, verify and resume a Redis keyspace copy (SCAN + DUMP -> RESTORE).",
    )
    parser.add_argument("--source", required=True, help="redis:// or rediss:// URL to copy from")
    parser.add_argument("--target", required=True, help="redis:// or rediss:// URL to copy to")
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default="fail",
        help="keys that already exist on the target: fail (default), skip or replace",
    )
    parser.add_argument(
        "--verify",
        choices=VERIFY_MODES,
        default="full",
        help="check every key (full, default), a random sample, or nothing",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the copy recorded in --checkpoint"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=Path(DEFAULT_CHECKPOINT),
        help=f"progress file (default: ./{DEFAULT_CHECKPOINT})",
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="after the copy, apply the source's live changes until SIGTERM/SIGINT/SIGHUP, "
        "then drain and verify",
    )
    parser.add_argument("--source-ca", type=Path, help="CA bundle to trust for a rediss:// source")
    parser.add_argument("--target-ca", type=Path, help="CA bundle to trust for a rediss:// target")
    parser.add_argument(
        "--scan-count", type=int, default=3000, help="keys per SCAN batch (default 3000)"
    )
    parser.add_argument(
        "--sample-size", type=int, default=10_000, help="keys checked by --verify sample"
    )
    return parser.parse_args(argv)


class _Progress:
    """A tqdm bar on a terminal, nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: Any = None
        self._phase = ""

    def __call__(self, state: CopyState) -> None:
        if not self._enabled:
            return
        if state.phase != self._phase and state.phase in {"copy", "verify"}:
            self.close()
            self._phase = state.phase
            self._bar = tqdm(
                total=state.source_keys_at_start or None,
                desc=state.phase,
                unit="key",
                unit_scale=True,
                file=sys.stderr,
            )
        if self._bar is not None:
            done = state.counts.scanned if self._phase == "copy" else _verified(state)
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _verified(state: CopyState) -> int:
    return state.verification.checked + state.verification.expired


class _Stop:
    """The first SIGINT, SIGTERM or SIGHUP asks the run to stop at its next safe point."""

    def __init__(self) -> None:
        self.signal: int | None = None
        for number in STOP_SIGNALS:
            signal.signal(number, self._handle)

    def _handle(self, number: int, _frame: Any) -> None:
        if self.signal is None:
            self.signal = number
            print(
                f"{signal.Signals(number).name} received: stopping at the next checkpoint",
                file=sys.stderr,
            )

    def __call__(self) -> bool:
        return self.signal is not None


def _status_line(status: dict[str, Any]) -> None:
    print(json.dumps(status, separators=(",", ":")), flush=True)


def run(args: argparse.Namespace) -> int:
    source_endpoint = parse_endpoint("--source", args.source, "SOURCE_REDIS_PASSWORD")
    target_endpoint = parse_endpoint("--target", args.target, "TARGET_REDIS_PASSWORD")
    for option, ca_file in (("--source-ca", args.source_ca), ("--target-ca", args.target_ca)):
        if ca_file is not None and not ca_file.is_file():
            raise UsageError(f"{option} {ca_file} is not a readable file")
    try:
        settings = CopySettings(
            policy=args.policy,
            verify=args.verify,
            scan_count=args.scan_count,
            sample_size=args.sample_size,
        )
    except CopyError as error:
        raise UsageError(str(error)) from None
    source = build_client(source_endpoint, args.source_ca)
    target = build_client(target_endpoint, args.target_ca)
    copier = RedisCopier(
        source,
        target,
        settings,
        source_label=source_endpoint.label,
        target_label=target_endpoint.label,
    )
    store = FileCheckpointStore(args.checkpoint)
    store.acquire()
    progress = _Progress(sys.stderr.isatty() and not args.follow)
    stop = _Stop()
    try:
        saved = store.load()
        if args.resume:
            if saved is None:
                raise UsageError(
                    f"nothing to resume: no checkpoint at {args.checkpoint}; run without --resume"
                )
            state = copier.resume(saved)
        else:
            if saved is not None and saved.get("phase") != "done":
                raise UsageError(
                    f"{args.checkpoint} holds an unfinished copy; pass --resume to continue it "
                    "or delete the file to start over"
                )
            state = copier.start()
            store.save(state.to_dict())
        if args.follow:
            report = follow(
                copier,
                state,
                store,
                source,
                target,
                db=source_endpoint.db,
                stop=stop,
                status=_status_line,
            )
        else:
            copier.advance(state, store, progress=progress, stop=stop)
            report = state.report()
    finally:
        progress.close()
        store.release()
    if not state.done:
        name = signal.Signals(stop.signal or signal.SIGINT).name
        print(
            f"error: stopped by {name} during the copy; progress is saved in "
            f"{args.checkpoint}: rerun the same command with --resume to continue",
            file=sys.stderr,
        )
        print(json.dumps(report, separators=(",", ":")))
        return 128 + (stop.signal or signal.SIGINT)
    if not report["ok"]:
        print(
            f"error: verification failed: {report['mismatched']} mismatched key(s): "
            + "; ".join(report["mismatches"][:3]),
            file=sys.stderr,
        )
    print(json.dumps(report, separators=(",", ":")))
    return 0 if report["ok"] else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except CopyError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except RedisError as error:
        print(
            f"error: redis failed mid-copy ({error}); fix the cause and rerun with --resume",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted; rerun with --resume to continue", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
