"""Render the box's configuration files from the templates in ``deploy/``.

Templates mark values as ``@NAME@``. The same function renders them for the box (provision.sh
calls this module's command line), for ``make run-local``, the benchmark and the tests.

Command line (secrets arrive on standard input, never as arguments)::

    python -m prostudio.provisioning render [--mode 0644] SRC DEST NAME=VALUE...
    python -m prostudio.provisioning env-file DEST SECRET_NAME NAME=VALUE...
    python -m prostudio.provisioning redis-auth DEST
    python -m prostudio.provisioning redis-maxmemory MAX_MEMORY_MB
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
SECRET_PATTERN = re.compile(r"^[!-&(-~]{16,256}$")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
REDIS_SHARE_OF_MEMORY = 4
MIN_REDIS_MAXMEMORY_MB = 64


class ProvisioningError(ValueError):
    """A template, value or secret that cannot be used; the message says what to fix."""


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``@NAME@``; every placeholder needs a value and every value a placeholder."""
    wanted = set(PLACEHOLDER.findall(text))
    missing = sorted(wanted - values.keys())
    if missing:
        raise ProvisioningError(f"no value for {', '.join('@' + m + '@' for m in missing)}")
    unused = sorted(values.keys() - wanted)
    if unused:
        raise ProvisioningError(f"the template has no placeholder for {', '.join(unused)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def write_file(destination: Path, text: str, mode: int = 0o644) -> None:
    """Write atomically with the given mode: readers see the old file or the new one."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, destination)


def render_file(
    source: Path, destination: Path, values: Mapping[str, str], mode: int = 0o644
) -> None:
    """Render a template file into place."""
    write_file(destination, render_template(source.read_text(), values), mode)


def redis_maxmemory_mb(max_memory_mb: int) -> int:
    """Redis's share of the host's memory budget: a quarter, leaving room for the OS, nginx,
    the gunicorn workers and Redis's own overhead above ``maxmemory``.
    """
    return max(MIN_REDIS_MAXMEMORY_MB, max_memory_mb // REDIS_SHARE_OF_MEMORY)


def checked_secret(raw: str) -> str:
    """The secret without its trailing newline, if it is safe to quote in the box's files."""
    secret = raw.rstrip("\r\n")
    if not SECRET_PATTERN.match(secret):
        raise ProvisioningError(
            "the Redis secret must be 16-256 printable characters without spaces or single "
            "quotes; regenerate it (e.g. exclude punctuation)"
        )
    return secret


def env_file_text(entries: Mapping[str, str]) -> str:
    """A systemd EnvironmentFile; single quotes keep every value literal (no expansion)."""
    lines = []
    for name, value in entries.items():
        if not ENV_NAME.match(name):
            raise ProvisioningError(f"{name!r} is not a valid environment variable name")
        if "'" in value or "\n" in value:
            raise ProvisioningError(f"{name} contains a single quote or a line break")
        lines.append(f"{name}='{value}'\n")
    return "".join(lines)


def read_env_file(path: Path) -> dict[str, str]:
    """An EnvironmentFile as env_file_text writes it, read back (NAME='value' lines)."""
    entries = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        entries[name] = value.strip("'")
    return entries


def redis_auth_text(password: str) -> str:
    """The include file that sets Redis's password."""
    return f"requirepass '{checked_secret(password)}'\n"


def _assignments(pairs: Sequence[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not ENV_NAME.match(name):
            raise ProvisioningError(f"{pair!r} is not NAME=VALUE")
        values[name] = value
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Command line used by provision.sh."""
    parser = argparse.ArgumentParser(prog="python -m prostudio.provisioning")
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="render a template file")
    render.add_argument("source", type=Path)
    render.add_argument("destination", type=Path)
    render.add_argument("--mode", type=lambda raw: int(raw, 8), default=0o644)
    render.add_argument("values", nargs="*")
    env_file = commands.add_parser("env-file", help="write the service's environment file")
    env_file.add_argument("destination", type=Path)
    env_file.add_argument("secret_name", help="variable that receives the secret from stdin")
    env_file.add_argument("values", nargs="*")
    auth = commands.add_parser("redis-auth", help="write Redis's requirepass include file")
    auth.add_argument("destination", type=Path)
    maxmemory = commands.add_parser("redis-maxmemory", help="print Redis maxmemory in MB")
    maxmemory.add_argument("max_memory_mb", type=int)
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "render":
            render_file(
                arguments.source,
                arguments.destination,
                _assignments(arguments.values),
                arguments.mode,
            )
        elif arguments.command == "env-file":
            entries = _assignments(arguments.values)
            entries[arguments.secret_name] = checked_secret(sys.stdin.read())
            write_file(arguments.destination, env_file_text(entries), 0o600)
        elif arguments.command == "redis-auth":
            write_file(arguments.destination, redis_auth_text(sys.stdin.read()), 0o640)
        else:
            sys.stdout.write(f"{redis_maxmemory_mb(arguments.max_memory_mb)}\n")
    except (ProvisioningError, OSError) as error:
        sys.stderr.write(f"provisioning: {error}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
