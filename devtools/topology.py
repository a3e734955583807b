"""The box's topology on this machine: redis-server, gunicorn and nginx on loopback, configured
from the same files in ``runtime/service/deploy/`` that provision.sh installs. Used by
``make run-local``, ``make bench-app``, the rehearsal and the service tests.
"""

from __future__ import annotations

import contextlib
import getpass
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from prostudio.provisioning import redis_maxmemory_mb, render_file, write_file

from devtools.processes import (
    ManagedProcess,
    TopologyError,
    find_binary,
    free_port,
    http_get,
    port_in_use,
)

__all__ = [
    "LocalTopology",
    "ManagedProcess",
    "TopologyError",
    "find_binary",
    "free_port",
    "http_get",
    "port_in_use",
]

SERVICE_ROOT = Path(__file__).resolve().parents[1] / "runtime" / "service"
DEPLOY_DIR = SERVICE_ROOT / "deploy"
STATIC_DIR = SERVICE_ROOT / "static"
# As deploy/prostudio.socket (Backlog=) and prostudio.service (TimeoutStopSec=) set them.
SOCKET_BACKLOG = 2048
GRACEFUL_STOP_SECONDS = 30
SYSTEMD_FIRST_FD = 3
SERVICE_VARIABLES = (
    "REDIS_",
    "API_WORKERS",
    "MAX_MEMORY_MB",
    "CACHE_TTL_SECONDS",
    "LOG_LEVEL",
    "GUNICORN_",
    "PROMETHEUS_MULTIPROC_DIR",
    "METRICS_BIND",
)


class LocalTopology:
    """nginx -> gunicorn (unix socket) -> redis-server, all on loopback under ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        nginx_port: int | None = None,
        redis_port: int | None = None,
        api_workers: int = 1,
        max_memory_mb: int = 1024,
        nginx_workers: str = "auto",
        cpu: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        service_root: Path = SERVICE_ROOT,
        app: str | None = None,
    ) -> None:
        self.workdir = workdir.resolve()
        self.nginx_port = nginx_port or free_port()
        self.redis_port = redis_port or free_port()
        self.metrics_port = free_port()
        self.redis_password = secrets.token_hex(16)
        self.api_workers = api_workers
        self.max_memory_mb = max_memory_mb
        self.nginx_workers = nginx_workers
        self.cpu = cpu
        self.extra_env = dict(extra_env or {})
        self.python = python
        # gunicorn's package and gunicorn.conf.py come from here (the benchmark points it at
        # an earlier version of the service); nginx and Redis always use this tree's files.
        self.service_root = service_root
        # Another ASGI app than gunicorn.conf.py's (the tests load failing variants).
        self.app = app
        # A Unix socket path must be under 108 bytes: the sockets live in a short private
        # directory (0700, under the system's temporary directory), not under `workdir`, so
        # a checkout or a workdir at a long path works too.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="prostudio-"))
        self.socket_path = self.socket_dir / "gunicorn.sock"
        self.listener: socket.socket | None = None
        self.redis_socket = self.socket_dir / "redis.sock"
        self.processes: dict[str, ManagedProcess] = {}

    def __enter__(self) -> LocalTopology:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _pinned(self, command: Sequence[str]) -> list[str]:
        if self.cpu is None:
            return list(command)
        return [find_binary("taskset"), "-c", self.cpu, *command]

    def log_path(self, name: str) -> Path:
        """Where a process's output goes."""
        return self.workdir / "logs" / f"{name}.log"

    def start(self) -> None:
        """Start Redis, gunicorn and nginx, and return once /health answers through nginx."""
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        try:
            self.start_redis()
            self.start_gunicorn()
            self.start_nginx()
            self.wait_for_health()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process this topology started, front to back."""
        for name in ("nginx", "gunicorn", "redis"):
            process = self.processes.pop(name, None)
            if process is not None:
                process.stop()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            self.socket_path.unlink(missing_ok=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def render_redis_config(self) -> Path:
        """redis.conf from deploy/, bound to 127.0.0.1 with a throwaway password."""
        config_dir = self.workdir / "redis"
        (config_dir / "data").mkdir(parents=True, exist_ok=True)
        write_file(config_dir / "auth.conf", f"requirepass '{self.redis_password}'\n", 0o600)
        render_file(
            DEPLOY_DIR / "redis.conf",
            config_dir / "redis.conf",
            {
                "BIND": "127.0.0.1",
                "PORT": str(self.redis_port),
                "UNIX_SOCKET": str(self.redis_socket),
                "DATA_DIR": str(config_dir / "data"),
                "MAXMEMORY_MB": str(redis_maxmemory_mb(self.max_memory_mb)),
                "AUTH_INCLUDE": str(config_dir / "auth.conf"),
            },
        )
        return config_dir / "redis.conf"

    def start_redis(self) -> None:
        """Start (or restart) redis-server and wait until it answers PING."""
        config = self.render_redis_config()
        self.processes["redis"] = ManagedProcess(
            "redis",
            self._pinned([find_binary("redis-server"), str(config)]),
            log=self.log_path("redis"),
        )
        self._wait(self._redis_answers, "redis")

    def stop_redis(self) -> None:
        """Stop redis-server (an outage, as far as the service can tell)."""
        process = self.processes.pop("redis", None)
        if process is not None:
            process.stop()

    def _redis_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as conn:
                conn.sendall(f"AUTH {self.redis_password}\r\nPING\r\n".encode())
                reply = b""
                while b"PONG" not in reply and b"-" not in reply:
                    chunk = conn.recv(64)
                    if not chunk:
                        return False
                    reply += chunk
                return b"PONG" in reply
        except OSError:
            return False

    def service_environment(self) -> dict[str, str]:
        """The environment gunicorn gets: the caller's minus any service variable, plus ours."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(SERVICE_VARIABLES)
        }
        env.update(
            {
                "REDIS_HOST": "127.0.0.1",
                "REDIS_PORT": str(self.redis_port),
                "REDIS_SOCKET": str(self.redis_socket),
                "REDIS_PASSWORD": self.redis_password,
                "API_WORKERS": str(self.api_workers),
                "MAX_MEMORY_MB": str(self.max_memory_mb),
                "GUNICORN_BIND": f"unix:{self.socket_path}",
                "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
                "METRICS_BIND": f"127.0.0.1:{self.metrics_port}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def gunicorn_command(self) -> list[str]:
        """gunicorn with the shipped configuration file."""
        config = self.service_root / "deploy" / "gunicorn.conf.py"
        command = [self.python, "-m", "gunicorn", "--config", str(config)]
        return [*command, self.app] if self.app else command

    def hold_socket(self) -> int:
        """Listen on gunicorn's unix socket here, as the box's prostudio.socket unit does:
        connections wait in its backlog while gunicorn restarts. Returns its descriptor."""
        if self.listener is None:
            self.socket_path.unlink(missing_ok=True)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self.socket_path))
            self.socket_path.chmod(0o660)
            listener.listen(SOCKET_BACKLOG)
            self.listener = listener
        return self.listener.fileno()

    def start_gunicorn(self, env: Mapping[str, str] | None = None) -> None:
        """Start gunicorn on the held socket, handed over as systemd does (descriptor 3,
        LISTEN_FDS, LISTEN_PID), and wait until it answers."""
        held = self.hold_socket()
        move = "" if held == SYSTEMD_FIRST_FD else f"exec {SYSTEMD_FIRST_FD}<&{held} {held}<&-; "
        handover = f'{move}LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"'
        command = self._pinned(self.gunicorn_command())
        self.processes["gunicorn"] = ManagedProcess(
            "gunicorn",
            [find_binary("bash"), "-c", handover, "gunicorn", *command],
            log=self.log_path("gunicorn"),
            cwd=str(self.service_root),
            env=dict(env) if env is not None else self.service_environment(),
            pass_fds=(held,),
        )
        self._wait(self._gunicorn_answers, "gunicorn")

    def restart_gunicorn(self, env: Mapping[str, str] | None = None) -> None:
        """What `systemctl restart prostudio.service` does: SIGTERM the master (it finishes
        the requests it holds), wait for it, start a new one. The socket stays open."""
        process = self.processes.pop("gunicorn")
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=GRACEFUL_STOP_SECONDS)
        process.stop()
        self.start_gunicorn(env)

    def _gunicorn_answers(self) -> bool:
        """True when gunicorn itself (not the socket's backlog) answers /health."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(0.5)
                conn.connect(str(self.socket_path))
                conn.sendall(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
                return conn.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def render_nginx_config(self) -> Path:
        """nginx's main file and the site, from deploy/, for loopback and this workdir."""
        nginx_dir = self.workdir / "nginx"
        (nginx_dir / "tmp").mkdir(parents=True, exist_ok=True)
        render_file(
            DEPLOY_DIR / "nginx.conf",
            nginx_dir / "site.conf",
            {
                "LISTEN": f"127.0.0.1:{self.nginx_port}",
                "SOCKET": str(self.socket_path),
                "STATIC_ROOT": str(STATIC_DIR),
                "ACCESS_LOG": str(self.log_path("nginx-access")),
                "PROXY_PARAMS": str(DEPLOY_DIR / "proxy_params.conf"),
            },
        )
        render_file(
            DEPLOY_DIR / "nginx-main.conf",
            nginx_dir / "nginx.conf",
            {
                "USER": getpass.getuser(),
                "WORKER_PROCESSES": self.nginx_workers,
                "PID_FILE": str(nginx_dir / "nginx.pid"),
                "ERROR_LOG": str(self.log_path("nginx-error")),
                "TEMP_DIR": str(nginx_dir / "tmp"),
                "SITE_CONF": str(nginx_dir / "site.conf"),
            },
        )
        return nginx_dir / "nginx.conf"

    def start_nginx(self) -> None:
        """Start nginx in the foreground (its master is the process group leader)."""
        config = self.render_nginx_config()
        command = [
            find_binary("nginx"),
            "-p",
            str(config.parent),
            "-c",
            str(config),
            "-e",
            str(self.log_path("nginx-error")),
            "-g",
            "daemon off;",
        ]
        self.processes["nginx"] = ManagedProcess(
            "nginx", self._pinned(command), log=self.log_path("nginx")
        )

    def _health_ok(self) -> bool:
        try:
            return http_get(self.nginx_port, "/health", timeout=1.0)[0] == 200
        except OSError:
            return False

    def wait_for_health(self) -> None:
        """Block until /health answers 200 through nginx."""
        self._wait(self._health_ok, "nginx")

    def _wait(self, ready: Callable[[], bool], name: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for process in self.processes.values():
                if not process.running():
                    raise TopologyError(
                        f"{process.name} exited with {process.popen.returncode}; "
                        f"see {process.log}:\n{process.log.read_text()[-2000:]}"
                    )
            time.sleep(0.05)
        raise TopologyError(f"{name} not ready after {timeout:.0f} s; see {self.log_path(name)}")

    def scrape(self) -> tuple[int, http.client.HTTPMessage, bytes]:
        """GET the merged metrics from their own port (gunicorn's master serves them)."""
        return http_get(self.metrics_port, "/metrics")

    def url(self, path: str) -> str:
        """The address of a path through nginx."""
        return f"http://127.0.0.1:{self.nginx_port}{path}"

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, http.client.HTTPMessage, bytes]:
        """GET a path through nginx."""
        return http_get(self.nginx_port, path, timeout)
