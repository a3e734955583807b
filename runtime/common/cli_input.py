"""What the operator CLIs share about their input: URLs shown without credentials, Redis and
HTTP URLs parsed strictly (a value out of range is refused, never reinterpreted), passwords
from the environment or a file, and a one-line warning for a password given in argv.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import UsageError

DEFAULT_REDIS_PORT = 6379
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
MAX_DATABASE = 1_000_000
PORT = re.compile(r"[0-9]{1,5}")
DATABASE = re.compile(r"[0-9]{1,7}")
MAX_PASSWORD_FILE_BYTES = 4096


def without_credentials(url: str) -> str:
    """`url` with anything before the last '@' of its authority removed; never raises, and
    drops too much rather than too little when the URL is malformed."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url.rpartition("@")[2] if "@" in url else url
    if "@" in rest:
        rest = rest.rpartition("@")[2]
    return f"{scheme}://{rest}"


def has_credentials(url: str) -> bool:
    """True when the URL carries a user or password before its host."""
    return "@" in url.partition("://")[2]


def warn_password_in_argv(option: str, url: str, advice: str) -> None:
    """One line on stderr when a URL given on the command line carries a password."""
    credentials = url.partition("://")[2].rpartition("@")[0]
    if ":" in credentials:
        sys.stderr.write(
            f"warning: {option} carries a password, which other users of this machine can "
            f"read in the process list; {advice}\n"
        )


def read_password_file(option: str, path: Path) -> str:
    """The first line of a password file, or UsageError saying what is wrong with it."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PASSWORD_FILE_BYTES + 1)
    except OSError as error:
        raise UsageError(f"{option} {path}: {error.strerror or error}") from None
    if len(data) > MAX_PASSWORD_FILE_BYTES:
        raise UsageError(f"{option} {path} is larger than a password file can be")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{option} {path} is not UTF-8 text") from None
    lines = text.splitlines()
    password = lines[0] if lines else ""
    if not password:
        raise UsageError(f"{option} {path} is empty")
    return password


@dataclass(frozen=True)
class RedisUrl:
    """A redis:// or rediss:// URL's connection settings; repr never shows the password."""

    host: str
    port: int
    db: int
    tls: bool
    username: str | None
    password: str | None = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}/{self.db}"


def _port_text(netloc: str) -> str | None:
    """The port as written after the host (None when there is none)."""
    host_port = netloc.rpartition("@")[2]
    if host_port.startswith("["):
        after = host_port.partition("]")[2]
        return after[1:] if after.startswith(":") else None
    return host_port.partition(":")[2] if ":" in host_port else None


def parse_redis_url(
    option: str,
    url: str,
    *,
    password_variable: str,
    environ: Mapping[str, str] | None = None,
    password_file: Path | None = None,
) -> RedisUrl:
    """Parse a Redis URL strictly. The password comes from the URL, else `password_file`,
    else the environment variable `password_variable`. Messages never repeat credentials."""
    env = environ if environ is not None else os.environ
    shown = without_credentials(url)
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise UsageError(f"{option} is not a valid URL: {shown!r}") from None
    if parts.fragment and "@" in parts.fragment:
        raise UsageError(
            f"{option} has an unencoded '#' in its password: percent-encode it as %23 "
            f"(redis://:pa%23ss@host:6379) or pass the password in {password_variable}"
        )
    if parts.scheme not in {"redis", "rediss"}:
        raise UsageError(f"{option} must be a redis:// or rediss:// URL, got {shown!r}")
    if not hostname:
        raise UsageError(f"{option} needs a host, e.g. redis://10.0.0.5:6379")
    port_text = _port_text(parts.netloc)
    if port_text is not None and not PORT.fullmatch(port_text):
        raise UsageError(f"{option} has an invalid port in {shown!r}; use 1 to 65535")
    port = int(port_text) if port_text else DEFAULT_REDIS_PORT
    if not 1 <= port <= 65535:
        raise UsageError(f"{option} port {port} is outside 1 to 65535")
    if parts.query or parts.fragment:
        raise UsageError(f"{option} takes no query or fragment: {shown!r}")
    path = parts.path.strip("/") if parts.path.count("/") <= 1 else parts.path
    if path and not DATABASE.fullmatch(path):
        raise UsageError(f"{option} database must be a number, e.g. redis://host:6379/0")
    db = int(path or 0)
    if db > MAX_DATABASE:
        raise UsageError(f"{option} database {db} is out of range")
    if parts.password:
        password: str | None = unquote(parts.password)
    elif password_file is not None:
        password = read_password_file(f"{option}-password-file", password_file)
    else:
        password = env.get(password_variable)
    return RedisUrl(
        host=hostname,
        port=port,
        db=db,
        tls=parts.scheme == "rediss",
        username=unquote(parts.username) if parts.username else None,
        password=password or None,
    )


def http_url(option: str, url: str) -> str:
    """`url` when it is an absolute http(s) URL with a host; UsageError otherwise."""
    shown = without_credentials(url)
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        port = parts.port
    except ValueError:
        raise UsageError(f"{option} is not a valid URL: {shown!r}") from None
    if parts.scheme not in {"http", "https"} or not hostname:
        raise UsageError(f"{option} must be an http:// or https:// URL with a host, got {shown!r}")
    if port == 0:
        raise UsageError(f"{option} port 0 is outside 1 to 65535")
    return url


def bounded_number(option: str, value: float, low: float, high: float) -> float:
    """`value` when finite and within [low, high]; UsageError otherwise."""
    if not math.isfinite(value) or not low <= value <= high:
        raise UsageError(f"{option} {value:g} is outside {low:g} to {high:g}")
    return value


def aws_region(option: str, value: str) -> str:
    """`value` when it is shaped like an AWS region name (us-east-1); UsageError otherwise."""
    if not REGION.fullmatch(value):
        raise UsageError(f"{option} {value[:40]!r} is not an AWS region name, e.g. us-east-1")
    return value
