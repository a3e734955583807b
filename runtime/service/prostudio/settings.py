"""Service settings read once from the environment and validated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

LOG_LEVELS = ("debug", "info", "warning", "error")
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})
HOSTNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")
SENTINEL_MASTER_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class RedisSettings:
    """How to reach Redis: one server (optionally TLS) or a Sentinel-managed master. The
    passwords are left out of its repr, so a settings object can be printed or logged.
    """

    host: str = "127.0.0.1"
    port: int = 6379
    socket_path: str | None = None
    password: str | None = field(default=None, repr=False)
    username: str | None = None
    tls: bool = False
    tls_ca_file: str | None = None
    sentinel_hosts: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = "mymaster"
    sentinel_password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 0.25
    retries: int = 2
    max_connections: int = 256

    @property
    def uses_sentinel(self) -> bool:
        """True when the master is discovered through Sentinel."""
        return bool(self.sentinel_hosts)


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    redis: RedisSettings
    api_workers: int = 1
    max_memory_mb: int = 1024
    cache_ttl_seconds: int = 300
    outage_cooldown_seconds: float = 1.0
    log_level: str = "info"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9100


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not an integer; set a whole number from {low} to {high}"
        ) from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range; set a value from {low} to {high}")
    return value


def _boolean(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; set true or false")


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "")
    return value if value else None


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not HOSTNAME_PATTERN.match(value):
        raise ConfigError(f"{name}={value!r} is not a host name or IP address")
    return value


def _sentinel_hosts(env: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    raw = env.get("REDIS_SENTINEL_HOSTS", "").strip()
    if not raw:
        return ()
    hosts = []
    for entry in raw.split(","):
        host, _, port = entry.strip().rpartition(":")
        if not host or not HOSTNAME_PATTERN.match(host) or not port.isdigit():
            raise ConfigError(
                f"REDIS_SENTINEL_HOSTS entry {entry.strip()!r} is not host:port; "
                "use a comma-separated list like 10.0.0.5:26379,10.0.0.6:26379"
            )
        if not 1 <= int(port) <= 65535:
            raise ConfigError(f"REDIS_SENTINEL_HOSTS entry {entry.strip()!r} has a bad port")
        hosts.append((host, int(port)))
    return tuple(hosts)


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = _optional(env, name)
    if value is not None and ("\n" in value or "\r" in value):
        raise ConfigError(f"{name} contains a line break; store the secret as one line")
    return value


def load_redis_settings(env: Mapping[str, str]) -> RedisSettings:
    """Read the REDIS_* variables."""
    password = _secret(env, "REDIS_PASSWORD")
    auth_token = _secret(env, "REDIS_AUTH_TOKEN")
    if password and auth_token:
        raise ConfigError(
            "REDIS_PASSWORD and REDIS_AUTH_TOKEN are both set; set REDIS_PASSWORD for the "
            "box's Redis or REDIS_AUTH_TOKEN for ElastiCache, not both"
        )
    tls = _boolean(env, "REDIS_TLS")
    if auth_token and not tls:
        raise ConfigError(
            "REDIS_AUTH_TOKEN is set but REDIS_TLS is not true; "
            "ElastiCache accepts an auth token only over TLS"
        )
    ca_file = _optional(env, "REDIS_TLS_CA_FILE")
    if ca_file and not tls:
        raise ConfigError("REDIS_TLS_CA_FILE is set but REDIS_TLS is not true")
    socket_path = _optional(env, "REDIS_SOCKET")
    if socket_path and not socket_path.startswith("/"):
        raise ConfigError(f"REDIS_SOCKET={socket_path!r} must be an absolute path")
    if socket_path and (tls or env.get("REDIS_SENTINEL_HOSTS", "").strip()):
        raise ConfigError(
            "REDIS_SOCKET is for the box's own Redis; unset it when REDIS_TLS or "
            "REDIS_SENTINEL_HOSTS is set"
        )
    sentinel_master = env.get("REDIS_SENTINEL_MASTER", "").strip() or "mymaster"
    if not SENTINEL_MASTER_PATTERN.match(sentinel_master):
        raise ConfigError(f"REDIS_SENTINEL_MASTER={sentinel_master!r} is not a valid name")
    timeout_ms = _integer(env, "REDIS_TIMEOUT_MS", 250, 10, 10_000)
    return RedisSettings(
        host=_host(env, "REDIS_HOST", "127.0.0.1"),
        port=_integer(env, "REDIS_PORT", 6379, 1, 65535),
        socket_path=socket_path,
        password=password or auth_token,
        username=_optional(env, "REDIS_USERNAME"),
        tls=tls,
        tls_ca_file=ca_file,
        sentinel_hosts=_sentinel_hosts(env),
        sentinel_master=sentinel_master,
        sentinel_password=_secret(env, "REDIS_SENTINEL_PASSWORD"),
        timeout_seconds=timeout_ms / 1000,
        retries=_integer(env, "REDIS_RETRIES", 2, 0, 10),
        max_connections=_integer(env, "REDIS_MAX_CONNECTIONS", 256, 8, 10_000),
    )


def _metrics_bind(env: Mapping[str, str]) -> tuple[str, int]:
    raw = env.get("METRICS_BIND", "").strip() or "127.0.0.1:9100"
    host, _, port = raw.rpartition(":")
    if not HOSTNAME_PATTERN.match(host) or not re.fullmatch(r"[0-9]{1,5}", port):
        raise ConfigError(f"METRICS_BIND={raw!r} is not host:port, e.g. 127.0.0.1:9100")
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"METRICS_BIND={raw!r} has a port outside 1-65535")
    return host, int(port)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and validate every variable; raise ConfigError naming the first bad one."""
    log_level = env.get("LOG_LEVEL", "").strip().lower() or "info"
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    cooldown_ms = _integer(env, "REDIS_OUTAGE_COOLDOWN_MS", 1000, 0, 60_000)
    metrics_host, metrics_port = _metrics_bind(env)
    return Settings(
        redis=load_redis_settings(env),
        api_workers=_integer(env, "API_WORKERS", 1, 1, 64),
        max_memory_mb=_integer(env, "MAX_MEMORY_MB", 1024, 256, 1_048_576),
        cache_ttl_seconds=_integer(env, "CACHE_TTL_SECONDS", 300, 1, 604_800),
        outage_cooldown_seconds=cooldown_ms / 1000,
        log_level=log_level,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
    )
