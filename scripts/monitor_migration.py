#!/usr/bin/env python3
"""Watch a migration: both tiers, both Redis servers, the live copy, the traffic shift.

    monitor_migration.py --old-url http://OLD/health --new-url https://NEW/health \\
        --old-redis redis://OLD:6379 --new-redis rediss://NEW:6379 [--new-redis-ca FILE] \\
        [--follow-status follow.jsonl] [--zone-id Z --name api.example.com] \\
        [--alarm NAME ... | --alarm-prefix PREFIX] [--cluster C --service S] \\
        [--interval 5] [--json] [--once]

Every section is optional, but at least one is needed: give the options of what you want
watched. A live terminal view by default; --json prints one JSON object per round instead.
Redis passwords come from OLD_REDIS_PASSWORD / NEW_REDIS_PASSWORD or --old-redis-password-file /
--new-redis-password-file (a password in a URL works but draws a warning); every URL is shown
without its credentials. AWS endpoints follow AWS_ENDPOINT_URL(_<SERVICE>). The follow status is
the copy CLI's --follow stdout saved to a file (`| tee follow.jsonl`).

Exit codes: 0 healthy (--once), or a watch ended with Ctrl-C; 1 something is unhealthy
(--once); 2 bad input or nothing to watch; 130 interrupted while starting.
"""

from __future__ import annotations

import cli_launch

cli_launch.begin("monitor-migration", ("boto3", "redis", "rich"))

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import ssl  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NoReturn  # noqa: E402
from urllib.parse import unquote, urlsplit  # noqa: E402

import boto3  # noqa: E402
import redis  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402
from redis.retry import Retry  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.table import Table  # noqa: E402
from shift_engine import ShiftContext, ShiftRequest, status  # noqa: E402
from shift_records import MAX_WEIGHT, ShiftError  # noqa: E402

from runtime.common.cli_input import (  # noqa: E402
    aws_region,
    bounded_number,
    http_url,
    parse_redis_url,
    warn_password_in_argv,
    without_credentials,
)
from runtime.common.errors import UsageError  # noqa: E402

cli_launch.ready()

EXIT_UNHEALTHY = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# "reconnecting" (the source is not answering) is a problem; a resync is part of following.
HEALTHY_STATES = {"copying", "following", "resyncing", "draining", "verifying", "done"}
MAX_INTERVAL_SECONDS = 3600
WATCHED = ("--old-url", "--new-url", "--old-redis", "--new-redis", "--follow-status",
           "--zone-id", "--alarm", "--alarm-prefix", "--cluster")  # fmt: skip


@dataclass
class Round:
    """One look at everything, and what in it is unhealthy."""

    sections: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": round(time.time(), 3),
            "healthy": not self.problems,
            "problems": self.problems,
            **self.sections,
        }


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="monitor_migration.py", description=__doc__.splitlines()[0])
    parser.add_argument("--old-url", help="the old tier's health URL")
    parser.add_argument("--new-url", help="the new tier's health URL")
    parser.add_argument("--insecure", action="store_true", help="skip TLS checks of the URLs")
    parser.add_argument("--max-latency-ms", type=float, default=1000, help="slower is unhealthy")
    parser.add_argument("--old-redis", help="redis:// or rediss:// URL of the old Redis")
    parser.add_argument("--new-redis", help="redis:// or rediss:// URL of the new Redis")
    parser.add_argument("--old-redis-ca", type=Path, help="CA bundle for a rediss:// old Redis")
    parser.add_argument("--new-redis-ca", type=Path, help="CA bundle for a rediss:// new Redis")
    parser.add_argument(
        "--old-redis-password-file", type=Path, help="file whose first line is its password"
    )
    parser.add_argument(
        "--new-redis-password-file", type=Path, help="file whose first line is its password"
    )
    parser.add_argument("--follow-status", type=Path, help="the copy CLI's --follow JSON lines")
    parser.add_argument("--max-lag-keys", type=int, default=1000, help="more lag is unhealthy")
    parser.add_argument("--max-status-age", type=float, default=30, help="older is unhealthy (s)")
    parser.add_argument("--zone-id", help="Route53 zone of the weighted records")
    parser.add_argument("--name", help="the weighted record's name")
    parser.add_argument("--old-id", default="old", help="old record's set identifier (old)")
    parser.add_argument("--new-id", default="new", help="new record's set identifier (new)")
    parser.add_argument("--alarm", action="append", default=[], help="CloudWatch alarm name")
    parser.add_argument("--alarm-prefix", help="every CloudWatch alarm whose name starts so")
    parser.add_argument("--cluster", help="ECS cluster of the new tier")
    parser.add_argument("--service", help="ECS service of the new tier")
    parser.add_argument("--region", help="region of the alarms and the ECS service")
    parser.add_argument(
        "--interval",
        type=float,
        default=5,
        help=f"seconds between rounds, above 0 and up to {MAX_INTERVAL_SECONDS}",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines instead of the view")
    parser.add_argument("--once", action="store_true", help="one round; exit 1 if unhealthy")
    args = parser.parse_args(argv)
    if bool(args.zone_id) != bool(args.name):
        parser.error("--zone-id and --name go together")
    if bool(args.cluster) != bool(args.service):
        parser.error("--cluster and --service go together")
    if args.alarm_prefix == "" or "" in args.alarm:
        parser.error("--alarm and --alarm-prefix need a non-empty name")
    watched = (
        args.old_url, args.new_url, args.old_redis, args.new_redis, args.follow_status,
        args.zone_id, args.alarm, args.alarm_prefix, args.cluster,
    )  # fmt: skip
    if not any(watched):
        parser.error(f"nothing to watch: give at least one of {', '.join(WATCHED)}")
    try:
        check_values(args)
    except UsageError as error:
        parser.error(str(error))
    return args


def check_values(args: argparse.Namespace) -> None:
    """Refuse values out of range rather than reinterpret them."""
    if args.interval <= 0:
        raise UsageError(f"--interval {args.interval:g} must be above 0")
    bounded_number("--interval", args.interval, 0, MAX_INTERVAL_SECONDS)
    bounded_number("--max-latency-ms", args.max_latency_ms, 0, 3_600_000)
    bounded_number("--max-status-age", args.max_status_age, 0, 86_400)
    bounded_number("--max-lag-keys", args.max_lag_keys, 0, 10**12)
    for option, url in (("--old-url", args.old_url), ("--new-url", args.new_url)):
        if url is not None:
            http_url(option, url)
            warn_password_in_argv(option, url, "prefer a health URL that needs none")
    for option, ca_file in (
        ("--old-redis-ca", args.old_redis_ca),
        ("--new-redis-ca", args.new_redis_ca),
    ):
        if ca_file is not None and not ca_file.is_file():
            raise UsageError(f"{option} {ca_file} is not a readable file")
    if args.region is not None:
        aws_region("--region", args.region)


def health_request(url: str) -> urllib.request.Request:
    """A GET of `url`; credentials written in it go in an Authorization header instead."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return urllib.request.Request(url)  # noqa: S310 - http(s) only, checked at parse time
    user = unquote(parts.username or "")
    secret = unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    request = urllib.request.Request(without_credentials(url))  # noqa: S310
    request.add_header("Authorization", f"Basic {token}")
    return request


def check_endpoint(url: str, insecure: bool, max_ms: float, problems: list[str]) -> dict[str, Any]:
    context = ssl._create_unverified_context() if insecure else None  # noqa: S323
    shown = without_credentials(url)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(  # noqa: S310
            health_request(url), timeout=5, context=context
        ) as response:
            code = response.status
    except urllib.error.HTTPError as error:
        code = error.code
    except (urllib.error.URLError, OSError, ValueError) as error:
        problems.append(f"{shown}: unreachable ({error})")
        return {"url": shown, "status": None, "latency_ms": None}
    latency = round((time.perf_counter() - started) * 1000, 1)
    if code != 200:
        problems.append(f"{shown}: HTTP {code}")
    elif latency > max_ms:
        problems.append(f"{shown}: {latency} ms, above {max_ms:g} ms")
    return {"url": shown, "status": code, "latency_ms": latency}


def redis_client(
    option: str, url: str, password_variable: str, ca_file: Path | None, password_file: Path | None
) -> redis.Redis:
    endpoint = parse_redis_url(
        option, url, password_variable=password_variable, password_file=password_file
    )
    warn_password_in_argv(
        option, url, f"pass it in {password_variable} or {option}-password-file instead"
    )
    return redis.Redis(
        host=endpoint.host,
        port=endpoint.port,
        db=endpoint.db,
        username=endpoint.username,
        password=endpoint.password,
        ssl=endpoint.tls,
        ssl_ca_certs=str(ca_file) if ca_file else None,
        socket_timeout=5,
        socket_connect_timeout=5,
        # Each round reports what it sees; the next round is the retry.
        retry=Retry(NoBackoff(), 0),
    )


def check_redis(label: str, client: redis.Redis, problems: list[str]) -> dict[str, Any]:
    try:
        info: dict[str, Any] = client.info()
        keys = int(client.dbsize())
    except RedisError as error:
        problems.append(f"{label} Redis: {error}")
        return {"up": False}
    hits, misses = int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
    return {
        "up": True,
        "keys": keys,
        "used_memory_mb": round(int(info.get("used_memory", 0)) / 2**20, 1),
        "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        "ops_per_sec": int(info.get("instantaneous_ops_per_sec", 0)),
    }


def check_follow(path: Path, max_lag: int, max_age: float, problems: list[str]) -> dict[str, Any]:
    """The last JSON line the copy CLI wrote in follow mode."""
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
        age = time.time() - path.stat().st_mtime
    except OSError as error:
        problems.append(f"follow status {path}: {error.strerror or error}")
        return {}
    last: dict[str, Any] = {}
    for line in reversed(lines):
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            last = parsed
            break
    state = last.get("state")
    lag = last.get("lag_keys")
    if not last:
        problems.append(f"follow status {path}: no JSON status line yet")
    elif state not in HEALTHY_STATES:
        problems.append(f"follow: state {state!r}")
    elif state != "done" and age > max_age:
        problems.append(f"follow: no status line for {age:.0f} s")
    if isinstance(lag, int) and lag > max_lag:
        problems.append(f"follow: lag {lag} keys, above {max_lag}")
    return {
        "state": state,
        "lag_keys": lag,
        "lag_ms": last.get("lag_ms"),
        "applied": last.get("applied"),
        "resyncs": last.get("resyncs"),
        "age_seconds": round(age, 1),
    }


def check_alarms(
    cloudwatch: Any, names: list[str], prefix: str | None, problems: list[str]
) -> dict[str, str]:
    pages = cloudwatch.get_paginator("describe_alarms")
    query: dict[str, Any] = {"AlarmNames": names} if names else {"AlarmNamePrefix": prefix}
    states = {
        alarm["AlarmName"]: alarm["StateValue"]
        for page in pages.paginate(**query)
        for alarm in page["MetricAlarms"]
    }
    for name in names:
        if name not in states:
            problems.append(f"alarm {name}: not found")
    problems.extend(f"alarm {name}: {state}" for name, state in states.items() if state == "ALARM")
    return states


def check_ecs(ecs: Any, cluster: str, service: str, problems: list[str]) -> dict[str, Any]:
    found = ecs.describe_services(cluster=cluster, services=[service])["services"]
    if not found:
        problems.append(f"ECS service {service} not found in {cluster}")
        return {}
    counts = {k: found[0].get(f"{k}Count", 0) for k in ("desired", "running", "pending")}
    if counts["running"] < counts["desired"]:
        problems.append(f"ECS: {counts['running']} of {counts['desired']} tasks running")
    return counts


@dataclass
class Monitor:
    args: argparse.Namespace
    clients: Callable[[str], Any]
    redis: dict[str, redis.Redis] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for side in ("old", "new"):
            url = getattr(self.args, f"{side}_redis")
            if url:
                self.redis[side] = redis_client(
                    f"--{side}-redis",
                    url,
                    f"{side.upper()}_REDIS_PASSWORD",
                    getattr(self.args, f"{side}_redis_ca"),
                    getattr(self.args, f"{side}_redis_password_file"),
                )

    def round(self) -> Round:
        result, args = Round(), self.args
        problems = result.problems
        endpoints = {
            side: check_endpoint(url, args.insecure, args.max_latency_ms, problems)
            for side, url in (("old", args.old_url), ("new", args.new_url))
            if url
        }
        if endpoints:
            result.sections["endpoints"] = endpoints
        if self.redis:
            result.sections["redis"] = {
                side: check_redis(side, client, problems) for side, client in self.redis.items()
            }
        if args.follow_status:
            result.sections["follow"] = check_follow(
                args.follow_status, args.max_lag_keys, args.max_status_age, problems
            )
        try:
            self._aws(result)
        except (BotoCoreError, ClientError, ShiftError) as error:
            problems.append(f"AWS: {error}")
        return result

    def _aws(self, result: Round) -> None:
        args = self.args
        if args.zone_id:
            # Reading the records only: the walk's step and soak play no part.
            request = ShiftRequest(
                args.zone_id,
                args.name,
                args.old_id,
                args.new_id,
                target=0,
                step=MAX_WEIGHT,
                interval_seconds=0,
            )
            shown = status(request, ShiftContext(route53=self.clients("route53")))
            result.sections["dns"] = shown
            if shown["shift"] and shown["shift"]["phase"] == "failed":
                result.problems.append("shift: failed")
        if args.alarm or args.alarm_prefix:
            result.sections["alarms"] = check_alarms(
                self.clients("cloudwatch"), args.alarm, args.alarm_prefix, result.problems
            )
        if args.cluster:
            result.sections["ecs"] = check_ecs(
                self.clients("ecs"), args.cluster, args.service, result.problems
            )


def shown(value: Any) -> str:
    """A value for the terminal view: '-' where nothing is known."""
    return "-" if value is None else str(value)


def render(result: Round) -> Table:
    data = result.to_dict()
    title = "healthy" if data["healthy"] else "UNHEALTHY: " + "; ".join(data["problems"])
    table = Table(title=f"migration monitor - {title}", expand=True)
    table.add_column("what")
    table.add_column("old")
    table.add_column("new")
    for side in ("old", "new"):
        data.setdefault("endpoints", {}).setdefault(side, {})
        data.setdefault("redis", {}).setdefault(side, {})
    endpoints = data["endpoints"]
    table.add_row("health", *(shown(endpoints[s].get("status")) for s in ("old", "new")))
    table.add_row("latency ms", *(shown(endpoints[s].get("latency_ms")) for s in ("old", "new")))
    for field_name in ("keys", "used_memory_mb", "hit_rate", "ops_per_sec"):
        table.add_row(
            field_name, *(shown(data["redis"][s].get(field_name)) for s in ("old", "new"))
        )
    if "dns" in data:
        dns = data["dns"]
        table.add_row("weight", str(dns["old"]["weight"]), str(dns["new"]["weight"]))
        shift = dns["shift"]
        table.add_row("shift", "", f"{shift['phase']} -> {shift['target']}" if shift else "idle")
        if dns.get("control"):
            table.add_row("decision", "", decision_line(dns["control"]))
    if "follow" in data:
        follow = data["follow"]
        table.add_row(
            "follow", "", f"{shown(follow.get('state'))} lag {shown(follow.get('lag_keys'))} keys"
        )
    for name, state in data.get("alarms", {}).items():
        table.add_row(f"alarm {name}", "", state)
    if data.get("ecs"):
        ecs = data["ecs"]
        table.add_row(
            "ECS tasks", "", f"{ecs['running']}/{ecs['desired']} ({ecs['pending']} pending)"
        )
    return table


def decision_line(control: dict[str, Any]) -> str:
    """An operator's decision on the shift (pause, resume, promote, abort) and who made it."""
    when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(control["at"]))
    line = f"{control['decision']} by {control['by']} at {when}"
    return line if control["applies"] else line + " (an earlier run's)"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        monitor = Monitor(args, lambda service: boto3.client(service, region_name=args.region))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted while starting; nothing was done", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        if args.once or args.json:
            while True:
                result = monitor.round()
                if args.json:
                    print(json.dumps(result.to_dict(), separators=(",", ":")), flush=True)
                else:
                    Console().print(render(result))
                if args.once:
                    return EXIT_UNHEALTHY if result.problems else 0
                time.sleep(args.interval)
        with Live(render(monitor.round()), refresh_per_second=1) as live:
            while True:
                time.sleep(args.interval)
                live.update(render(monitor.round()))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
