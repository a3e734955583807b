"""The production stand-ins: a Sentinel-managed Redis group with TLS and AUTH, service tasks
started with the image's command and settings behind an nginx in the ALB's role, and moto's
Route53 and CloudWatch over HTTP.

The old tier is ``devtools.topology.LocalTopology`` itself, as ``make run-local`` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import redis

from devtools.processes import ManagedProcess, TopologyError, find_binary, free_port, http_get
from devtools.redis_servers import TlsFiles, make_tls_files
from rehearsal.paths import DOCKERFILE, SERVICE_ROOT

SENTINEL_MASTER = "prostudio"
SENTINEL_QUORUM = 2
SENTINEL_DOWN_AFTER_MS = 1000
SENTINEL_FAILOVER_TIMEOUT_MS = 10_000
# The ALB's address: the "new" record is an alias to a name that resolves here.
ALB_ADDRESS = "127.0.0.3"
OLD_ADDRESS = "127.0.0.1"
STARTUP_SECONDS = 30.0
MOTO_CREDENTIAL = "rehearsal"


def wait_until(ready: Callable[[], bool], what: str, timeout: float = STARTUP_SECONDS) -> None:
    """Poll `ready` every 50 ms; TopologyError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.05)
    raise TopologyError(f"{what} not ready after {timeout:.0f} s")


def image_settings(dockerfile: Path = DOCKERFILE) -> tuple[dict[str, str], list[str]]:
    """The image's ENV variables and CMD, read from the Dockerfile the production image uses."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    env: dict[str, str] = {}
    command: list[str] = []
    for line in text.splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
        elif keyword == "CMD":
            command = json.loads(rest)
    if not command:
        raise TopologyError(f"{dockerfile} has no CMD in exec form")
    return env, command


class RedisGroup:
    """A primary and two replicas with TLS and AUTH, watched by three Sentinels: the role of
    the ElastiCache replication group of three nodes. Sentinel promotes a replica on failover,
    as ElastiCache does behind its primary endpoint."""

    def __init__(self, workdir: Path, replicas: int = 2, sentinels: int = 3) -> None:
        self.workdir = workdir
        self.password = secrets.token_hex(16)
        self.tls: TlsFiles = make_tls_files(workdir / "tls")
        self.node_ports = [free_port() for _ in range(1 + replicas)]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: list[ManagedProcess] = []

    def _tls_args(self) -> list[str]:
        return [
            "--tls-cert-file", str(self.tls.server_cert),
            "--tls-key-file", str(self.tls.server_key),
            "--tls-ca-cert-file", str(self.tls.ca_cert),
            "--tls-auth-clients", "no",
            "--tls-replication", "yes",
        ]  # fmt: skip

    def start(self) -> None:
        primary = self.node_ports[0]
        for index, port in enumerate(self.node_ports):
            data = self.workdir / f"node-{port}"
            data.mkdir(parents=True, exist_ok=True)
            command = [
                find_binary("redis-server"),
                "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port),
                "--save", "", "--appendonly", "no", "--dir", str(data),
                "--requirepass", self.password, "--masterauth", self.password,
                "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lfu",
                *self._tls_args(),
            ]  # fmt: skip
            if index:
                command += ["--replicaof", "127.0.0.1", str(primary)]
            self.processes.append(ManagedProcess(f"redis-{port}", command, log=data / "redis.log"))
        for port in self.node_ports:
            wait_until(functools.partial(self._answers, port), f"redis {port}")
        wait_until(self._replicas_in_sync, "replication")
        for port in self.sentinel_ports:
            self._start_sentinel(port, primary)
        wait_until(self._sentinels_agree, "sentinels")

    def _start_sentinel(self, port: int, primary: int) -> None:
        directory = self.workdir / f"sentinel-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    "port 0",
                    f"tls-port {port}",
                    f"tls-cert-file {self.tls.server_cert}",
                    f"tls-key-file {self.tls.server_key}",
                    f"tls-ca-cert-file {self.tls.ca_cert}",
                    "tls-auth-clients no",
                    "tls-replication yes",
                    f"dir {directory}",
                    f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary} {SENTINEL_QUORUM}",
                    f"sentinel auth-pass {SENTINEL_MASTER} {self.password}",
                    f"sentinel down-after-milliseconds {SENTINEL_MASTER} {SENTINEL_DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {SENTINEL_MASTER} {SENTINEL_FAILOVER_TIMEOUT_MS}",
                    "",
                ]
            )
        )
        command = [find_binary("redis-server"), str(config), "--sentinel"]
        self.processes.append(
            ManagedProcess(f"sentinel-{port}", command, log=directory / "sentinel.log")
        )

    def client(self, port: int, **options: object) -> redis.Redis:
        """A client of one node (or, without a password, of one Sentinel)."""
        settings: dict[str, object] = {
            "host": "127.0.0.1",
            "port": port,
            "password": self.password,
            "ssl": True,
            "ssl_ca_certs": str(self.tls.ca_cert),
            "socket_timeout": 2.0,
            "socket_connect_timeout": 2.0,
        }
        settings.update(options)
        return redis.Redis(**settings)  # type: ignore[arg-type]

    def sentinel(self, port: int) -> redis.Redis:
        return self.client(port, password=None)

    def primary_port(self) -> int:
        """The port the Sentinels name as master now."""
        sentinel = self.sentinel(self.sentinel_ports[0])
        address: Any = sentinel.sentinel_get_master_addr_by_name(SENTINEL_MASTER)
        return int(address[1])

    def _answers(self, port: int) -> bool:
        return bool(self.client(port).ping())

    def _replicas_in_sync(self) -> bool:
        info: Any = self.client(self.node_ports[0]).info("replication")
        return int(info.get("connected_slaves", 0)) == len(self.node_ports) - 1

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            master: Any = self.sentinel(port).sentinel_master(SENTINEL_MASTER)
            if int(master.get("num-other-sentinels", 0)) < len(self.sentinel_ports) - 1:
                return False
        return True

    def failover(self) -> tuple[int, int]:
        """Ask Sentinel to fail the primary over; return (old, new) primary ports."""
        before = self.primary_port()
        self.sentinel(self.sentinel_ports[0]).execute_command("SENTINEL FAILOVER", SENTINEL_MASTER)
        wait_until(lambda: self.primary_port() != before, "failover", timeout=20)
        return before, self.primary_port()

    def service_environment(self) -> dict[str, str]:
        """How a task reaches the group: TLS and an auth token, as in production, with the
        Sentinels in the role of the primary endpoint."""
        return {
            "REDIS_SENTINEL_HOSTS": ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
            "REDIS_SENTINEL_MASTER": SENTINEL_MASTER,
            "REDIS_TLS": "true",
            "REDIS_TLS_CA_FILE": str(self.tls.ca_cert),
            "REDIS_AUTH_TOKEN": self.password,
        }

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


class PrimaryEndpoint:
    """ElastiCache's primary endpoint: a TCP port that always leads to the current master.

    Each new connection is forwarded (TLS passes through untouched) to the master the
    Sentinels name; after a failover, connections to the old master are closed, as ElastiCache
    drops them, and clients reconnect to the new one. The follow's target is this endpoint."""

    def __init__(self, group: RedisGroup) -> None:
        self.group = group
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.links: dict[int, set[asyncio.StreamWriter]] = {}
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(timeout=10)

    async def _serve(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.loop.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):
                current = await asyncio.to_thread(self.group.primary_port)
                for port in [p for p in self.links if p != current]:
                    for writer in self.links.pop(port):
                        writer.close()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            port = await asyncio.to_thread(self.group.primary_port)
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        except Exception:  # noqa: BLE001 - no master reachable: refuse this connection
            writer.close()
            return
        self.links.setdefault(port, set()).update({writer, upstream_writer})
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )
        self.links.get(port, set()).difference_update({writer, upstream_writer})

    async def _shutdown(self) -> None:
        self.server.close()
        for writers in self.links.values():
            for writer in writers:
                writer.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if not self.thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


ALB_CONFIG = """\
worker_processes 1;
pid {pid};
error_log {error_log} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    log_format alb escape=json '{{"time":$msec,"status":$status,'
        '"upstream_status":"$upstream_status","request_time":$request_time,'
        '"upstream_time":"$upstream_response_time","uri":"$uri"}}';
    upstream tasks {{
{servers}
        keepalive 16;
    }}
    server {{
        listen {listen};
        access_log {access_log} alb buffer=4k flush=1s;
        location / {{
            include {fault};
            proxy_pass http://tasks;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


class NewTier:
    """Service tasks (the image's CMD with its ENV, bound to loopback) behind an nginx that
    plays the ALB: round robin over the tasks, one access log line per request."""

    def __init__(
        self,
        workdir: Path,
        redis_group: RedisGroup,
        *,
        tasks: int = 3,
        workers_per_task: int | None = None,
        port: int,
    ) -> None:
        self.workdir = workdir
        self.redis_group = redis_group
        self.port = port
        self.image_env, self.image_command = image_settings()
        self.workers_per_task = workers_per_task
        self.task_ports = [free_port() for _ in range(tasks)]
        self.tasks: list[ManagedProcess] = []
        self.alb: ManagedProcess | None = None
        self.access_log = workdir / "alb-access.log"
        self.fault_file = workdir / "alb-fault.conf"

    def task_command(self) -> list[str]:
        """The image's CMD, its program taken from this Python's environment."""
        program, *arguments = self.image_command
        local = Path(sys.executable).parent / program
        return [str(local) if local.exists() else program, *arguments]

    def task_environment(self, index: int) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("REDIS_", "API_", "GUNICORN_", "PROMETHEUS_"))
        }
        env.update(self.image_env)
        env.update(self.redis_group.service_environment())
        env["GUNICORN_BIND"] = f"127.0.0.1:{self.task_ports[index]}"
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.workdir / f"task-{index}" / "metrics")
        if self.workers_per_task is not None:
            env["API_WORKERS"] = str(self.workers_per_task)
        return env

    def start(self) -> None:
        for index in range(len(self.task_ports)):
            (self.workdir / f"task-{index}").mkdir(parents=True, exist_ok=True)
            self.tasks.append(
                ManagedProcess(
                    f"task-{index}",
                    self.task_command(),
                    log=self.workdir / f"task-{index}" / "task.log",
                    cwd=str(SERVICE_ROOT),
                    env=self.task_environment(index),
                )
            )
        for port in self.task_ports:
            wait_until(functools.partial(_ready, port), f"task on port {port}")
        self.start_alb()

    def start_alb(self) -> None:
        nginx_dir = self.workdir / "alb"
        (nginx_dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.fault_file.write_text("")
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in self.task_ports)
        config = nginx_dir / "nginx.conf"
        config.write_text(
            ALB_CONFIG.format(
                pid=nginx_dir / "nginx.pid",
                error_log=nginx_dir / "error.log",
                tmp=nginx_dir / "tmp",
                servers=servers,
                listen=f"{ALB_ADDRESS}:{self.port}",
                access_log=self.access_log,
                fault=self.fault_file,
            )
        )
        self.alb = ManagedProcess(
            "alb",
            [find_binary("nginx"), "-p", str(nginx_dir), "-c", str(config), "-g", "daemon off;"],
            log=nginx_dir / "nginx.log",
        )
        wait_until(lambda: _get(ALB_ADDRESS, self.port, "/health") == 200, "the ALB stand-in")

    def answer_5xx(self, on: bool) -> None:
        """Make every request through the ALB answer 500 (a bad release), or stop doing so."""
        self.fault_file.write_text("return 500;\n" if on else "")
        if self.alb is None:
            return
        os.kill(self.alb.pid, signal.SIGHUP)
        # nginx reloads in the background: return once new connections get the new config.
        expected = 500 if on else 200
        streak = 0

        def applied() -> bool:
            nonlocal streak
            streak = streak + 1 if _get(ALB_ADDRESS, self.port, "/health") == expected else 0
            return streak >= 3

        wait_until(applied, "the ALB stand-in's reload", timeout=10)

    def worker_pids(self, index: int) -> list[int]:
        """The pids of one task's worker processes (children of its gunicorn master)."""
        master = self.tasks[index].pid
        children = Path(f"/proc/{master}/task/{master}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def kill_worker(self, index: int = 0) -> int:
        """SIGKILL one worker of a task, as an out-of-memory kill would; return its pid."""
        pids = self.worker_pids(index)
        if not pids:
            raise TopologyError(f"task-{index} has no worker to kill")
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    def stop(self) -> None:
        if self.alb is not None:
            self.alb.stop()
            self.alb = None
        for task in self.tasks:
            task.stop()
        self.tasks.clear()


def _ready(port: int) -> bool:
    return http_get(port, "/health/ready", 1.0)[0] == 200


def _get(host: str, port: int, path: str) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=2.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def moto_session() -> boto3.session.Session:
    """A boto3 session for moto's server: any credentials do, none is real."""
    return boto3.session.Session(
        aws_access_key_id=MOTO_CREDENTIAL,
        aws_secret_access_key=MOTO_CREDENTIAL,
        region_name="us-east-1",
    )


class MotoServer:
    """moto's server on loopback: Route53 and CloudWatch over real HTTP."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            log=self.workdir / "moto.log",
        )
        wait_until(lambda: _get("127.0.0.1", self.port, "/moto-api/") < 500, "moto server")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
