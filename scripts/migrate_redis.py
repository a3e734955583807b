#!/usr/bin/env python3
"""Copy every key from one Redis server to another, verify it, and resume after a stop.

    python scripts/migrate_redis.py --source redis://old-host:6379 \\
        --target rediss://new-host:6379 [--policy fail|skip|replace] \\
        [--verify full|sample|none] [--resume] [--follow]

Passwords come from SOURCE_REDIS_PASSWORD / TARGET_REDIS_PASSWORD or --source-password-file /
--target-password-file; a password written in a URL works but draws a warning (other users
can read it in the process list). An ElastiCache (ACL) user comes from --source-user /
--target-user or SOURCE_REDIS_USERNAME / TARGET_REDIS_USERNAME (the default user otherwise).
URLs are shown without their credentials. The last line of
stdout is a one-line JSON summary. With --follow the copy then applies the source's live
changes until SIGTERM, SIGINT or SIGHUP, printing a JSON status line at every state change and
every 5 s; then it drains, verifies and exits. A signal in any other mode, during a follow's
resync or wait for the source, or a second one during its drain, checkpoints and exits
128 + signal. A source that restarted or lost its keys stops a follow (exit 1) unless
--accept-source-reset. Progress is saved in --checkpoint (default: $PROSTUDIO_STATE_DIR, else
$XDG_STATE_HOME/prostudio, else ~/.local/state/prostudio).

Exit codes: 0 copied and verified both ways; 1 the copy or its verification failed, or a
follow stopped on a source that restarted or lost its keys; 2 bad input, nothing was changed;
128 + signal stopped by a signal, progress checkpointed (130 for Ctrl-C, also during start-up).
"""

from __future__ import annotations

import cli_launch

cli_launch.begin("migrate-redis", ("redis", "tqdm"))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NoReturn  # noqa: E402

import redis  # noqa: E402
from copy_checkpoint import FileCheckpointStore  # noqa: E402
from copy_clients import make_client  # noqa: E402
from copy_engine import RedisCopier  # noqa: E402
from copy_follow import follow  # noqa: E402
from copy_state import POLICIES, VERIFY_MODES, CopyError, CopySettings, CopyState  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402
from tqdm import tqdm  # noqa: E402

from runtime.common.cli_input import (  # noqa: E402
    RedisUrl,
    parse_redis_url,
    warn_password_in_argv,
)
from runtime.common.errors import ExitCode, UsageError  # noqa: E402

cli_launch.ready()

DEFAULT_CHECKPOINT = "redis-copy.checkpoint.json"
MAX_SCAN_COUNT = 100_000
MAX_SAMPLE_SIZE = 10_000_000
EXIT_FAILED = ExitCode.FAILED
EXIT_USAGE = ExitCode.USAGE
EXIT_INTERRUPTED = ExitCode.INTERRUPTED
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# An ACL user name as a client sends it in AUTH: printable, no spaces, bounded.
USER_NAME = re.compile(r"[!-~]{1,128}")


Endpoint = RedisUrl


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def default_checkpoint() -> Path:
    """The checkpoint's home when --checkpoint is not given: a state directory outside any
    checkout, so no copy leaves files where it was started."""
    state = os.environ.get("PROSTUDIO_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "prostudio"
    )
    return Path(state) / DEFAULT_CHECKPOINT


def parse_endpoint(
    option: str, url: str, password_variable: str, password_file: Path | None = None
) -> Endpoint:
    """Parse a Redis URL strictly; the password comes from the URL, the file or the
    environment variable, in that order. A password in the URL draws a warning."""
    endpoint = parse_redis_url(
        option, url, password_variable=password_variable, password_file=password_file
    )
    warn_password_in_argv(
        option, url, f"pass it in {password_variable} or {option}-password-file instead"
    )
    return endpoint


def with_user(option: str, endpoint: Endpoint, user: str | None, user_variable: str) -> Endpoint:
    """`endpoint` logging in as `user` (the option), else as the environment variable names;
    a URL that names another user is refused rather than silently overridden."""
    chosen = user if user is not None else os.environ.get(user_variable) or None
    if chosen is None:
        return endpoint
    source = f"{option}-user" if user is not None else user_variable
    if not USER_NAME.fullmatch(chosen):
        raise UsageError(f"{source} is not a user name (1 to 128 printable characters, no spaces)")
    if endpoint.username and endpoint.username != chosen:
        raise UsageError(f"{option} names one user and {source} another; give the user once")
    return dataclasses.replace(endpoint, username=chosen)


def check_checkpoint_path(path: Path) -> None:
    """UsageError unless `path` can be a checkpoint file (and its directory can hold it)."""
    if path.is_dir():
        raise UsageError(f"--checkpoint {path} is a directory; name a file in it")
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"--checkpoint {path}: cannot create {directory} ({error.strerror or error})"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.R_OK | os.W_OK)
    ):
        raise UsageError(f"--checkpoint {path} is not writable")


def check_bounds(option: str, value: int, high: int) -> None:
    if not 1 <= value <= high:
        raise UsageError(f"{option} {value} is outside 1 to {high}")


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
        help=f"progress file (default: {DEFAULT_CHECKPOINT} in $PROSTUDIO_STATE_DIR, else "
        "$XDG_STATE_HOME/prostudio, else ~/.local/state/prostudio)",
    )
    parser.add_argument(
        "--source-password-file", type=Path, help="file whose first line is the source password"
    )
    parser.add_argument(
        "--target-password-file", type=Path, help="file whose first line is the target password"
    )
    parser.add_argument(
        "--source-user",
        help="ACL user to log in to the source as (default: $SOURCE_REDIS_USERNAME, else the "
        "default user)",
    )
    parser.add_argument(
        "--target-user",
        help="ACL user to log in to the target as (default: $TARGET_REDIS_USERNAME, else the "
        "default user)",
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="after the copy, apply the source's live changes until SIGTERM/SIGINT/SIGHUP, "
        "then drain and verify",
    )
    parser.add_argument(
        "--preflight",
        action="store_true",
        help="only check that the target can take the source's data (reachable, engine and "
        "version, memory, policy); write nothing; exit 0, or 1 with the reason",
    )
    parser.add_argument(
        "--accept-source-reset",
        action="store_true",
        help="with --follow, mirror a source that restarted or lost its keys (by default the "
        "follow stops and the target keeps its keys)",
    )
    parser.add_argument("--source-ca", type=Path, help="CA bundle to trust for a rediss:// source")
    parser.add_argument("--target-ca", type=Path, help="CA bundle to trust for a rediss:// target")
    parser.add_argument(
        "--scan-count",
        type=int,
        default=3000,
        help=f"keys per SCAN batch, 1 to {MAX_SCAN_COUNT} (default 3000)",
    )
    parser.add_argument(
        "--sample-size",
        type=int,
        default=10_000,
        help=f"keys checked by --verify sample, 1 to {MAX_SAMPLE_SIZE}",
    )
    args = parser.parse_args(argv)
    if args.checkpoint is None:
        args.checkpoint = default_checkpoint()
    return args


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
    """The first SIGINT, SIGTERM or SIGHUP asks the run to stop at its next safe point; a
    second one (`halted`) also ends a follow's drain and verification."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.count = 0
        for number in STOP_SIGNALS:
            signal.signal(number, self._handle)

    def _handle(self, number: int, _frame: Any) -> None:
        self.count += 1
        if self.signal is None:
            self.signal = number
            print(
                f"{signal.Signals(number).name} received: stopping at the next checkpoint",
                file=sys.stderr,
            )

    def __call__(self) -> bool:
        return self.signal is not None

    def halted(self) -> bool:
        return self.count > 1


def _status_line(status: dict[str, Any]) -> None:
    print(json.dumps(status, separators=(",", ":")), flush=True)


def _preflight_only(copier: RedisCopier) -> int:
    """--preflight: the copy's checks, nothing written; one JSON line naming both engines."""
    source, target = copier.preflight(resuming=False)
    print(json.dumps({"preflight": "ok", "source": source.name, "target": target.name}))
    return 0


def _stopped(args: argparse.Namespace, stop: _Stop, report: dict[str, Any]) -> int:
    name = signal.Signals(stop.signal or signal.SIGINT).name
    during = "while " + report["stopped_in"] if "stopped_in" in report else "during the copy"
    print(
        f"error: stopped by {name} {during}; progress is saved in "
        f"{args.checkpoint}: rerun the same command with --resume to continue",
        file=sys.stderr,
    )
    print(json.dumps(report, separators=(",", ":")))
    return 128 + (stop.signal or signal.SIGINT)


def _settings(args: argparse.Namespace) -> CopySettings:
    for option, ca_file in (("--source-ca", args.source_ca), ("--target-ca", args.target_ca)):
        if ca_file is not None and not (ca_file.is_file() and os.access(ca_file, os.R_OK)):
            raise UsageError(f"{option} {ca_file} is not a readable file")
    check_bounds("--scan-count", args.scan_count, MAX_SCAN_COUNT)
    check_bounds("--sample-size", args.sample_size, MAX_SAMPLE_SIZE)
    try:
        return CopySettings(
            policy=args.policy,
            verify=args.verify,
            scan_count=args.scan_count,
            sample_size=args.sample_size,
        )
    except CopyError as error:
        raise UsageError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    source_endpoint = with_user(
        "--source",
        parse_endpoint("--source", args.source, "SOURCE_REDIS_PASSWORD", args.source_password_file),
        args.source_user,
        "SOURCE_REDIS_USERNAME",
    )
    target_endpoint = with_user(
        "--target",
        parse_endpoint("--target", args.target, "TARGET_REDIS_PASSWORD", args.target_password_file),
        args.target_user,
        "TARGET_REDIS_USERNAME",
    )
    settings = _settings(args)
    source = build_client(source_endpoint, args.source_ca)
    target = build_client(target_endpoint, args.target_ca)
    copier = RedisCopier(
        source,
        target,
        settings,
        source_label=source_endpoint.label,
        target_label=target_endpoint.label,
    )
    if args.preflight:
        return _preflight_only(copier)
    check_checkpoint_path(args.checkpoint)
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
                halt=stop.halted,
                status=_status_line,
                accept_reset=args.accept_source_reset,
            )
        else:
            copier.advance(state, store, progress=progress, stop=stop)
            report = state.report()
    finally:
        progress.close()
        store.release()
    if not state.done:
        return _stopped(args, stop, report)
    if not report["ok"]:
        print(
            f"error: verification failed: {report['mismatched']} mismatched key(s): "
            + "; ".join(report["mismatches"][:3]),
            file=sys.stderr,
        )
    print(json.dumps(report, separators=(",", ":")))
    return 0 if report["ok"] else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (CopyError, OSError) as error:
        text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        where = f" ({error.filename})" if isinstance(error, OSError) and error.filename else ""
        print(f"error: {text}{where}", file=sys.stderr)
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
