"""The new tier's stand-in: service tasks started with the production image's command and
settings, behind an nginx in the ALB's role."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shlex
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from devtools.processes import ManagedProcess, TopologyError, find_binary, free_port, http_get
from rehearsal.paths import DOCKERFILE, SERVICE_ROOT
from rehearsal.redis_group import RedisGroup
from rehearsal.stands import ALB_ADDRESS, http_status, together, wait_until


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
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.extra_env = dict(extra_env or {})
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
        env.update(self.extra_env)
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
        wait_until(
            lambda: http_status(ALB_ADDRESS, self.port, "/health") == 200, "the ALB stand-in"
        )

    def open_redis_pools(self, in_flight: int) -> None:
        """Open the Redis connections the tasks need for `in_flight` requests at once, spread
        round robin, before they take traffic: as many requests at once to each, each for a
        track of its own (a miss, so a write, which no follow may be running to see). A new
        TLS connection holds a task's event loop for about 50 ms: opened while traffic moves
        in, they would read as a p99 breach in a rehearsal period of a few dozen requests,
        where a production minute's thousands absorb them."""
        per_task = math.ceil(in_flight / len(self.task_ports))
        together(
            *(
                functools.partial(http_get, port, f"/api/v1/tracks/pool-{port}-{n}/waveform", 10.0)
                for port in self.task_ports
                for n in range(per_task)
            )
        )

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
            streak = streak + 1 if http_status(ALB_ADDRESS, self.port, "/health") == expected else 0
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
        together(*(task.stop for task in self.tasks))
        self.tasks.clear()


def _ready(port: int) -> bool:
    return http_get(port, "/health/ready", 1.0)[0] == 200
