"""The production image, as far as this machine can check it without a container engine: the
Dockerfile's own CMD and HEALTHCHECK run here with its ENV and production's Redis shape (TLS +
auth token), and its COPY sources exist in the build context.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from pathlib import Path

from local_service import LOADED_MACHINE_REDIS_TIMEOUT_MS
from service_helpers import (
    REPO_ROOT,
    SERVICE_ROOT,
    TLS_REDIS_TOKEN,
    wait_until,
)

from devtools.processes import free_port, http_get
from devtools.redis_servers import RedisServer

DOCKERFILE = SERVICE_ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in logical]


def image_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arguments in instructions():
        if instruction == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def exec_form(instruction: str) -> list[str]:
    arguments = next(args for name, args in instructions() if name == instruction)
    if instruction == "HEALTHCHECK":
        arguments = arguments.split("CMD", 1)[1]
    command = json.loads(arguments)
    assert isinstance(command, list)
    return command


def test_image_is_slim_non_root_with_a_healthcheck_and_the_box_gunicorn_config() -> None:
    parsed = instructions()
    names = [name for name, _ in parsed]

    assert parsed[0][0] == "FROM" and "-slim" in parsed[0][1]
    users = [args for name, args in parsed if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert names.index("USER") < names.index("CMD")
    assert "HEALTHCHECK" in names
    assert exec_form("CMD") == ["gunicorn", "--config", "deploy/gunicorn.conf.py"]
    assert image_environment()["GUNICORN_BIND"] == "0.0.0.0:8000"
    assert ("EXPOSE", "8000") in parsed
    # Metrics stay on the task's loopback (the default), off the load balancer's port.
    assert "METRICS_BIND" not in image_environment()


def test_copy_sources_exist_and_survive_the_dockerignore() -> None:
    ignore = (SERVICE_ROOT / ".dockerignore").read_text().splitlines()
    for name, arguments in instructions():
        if name == "COPY":
            for source in arguments.split()[:-1]:
                assert (SERVICE_ROOT / source).exists(), source
                assert f"!{source}" in ignore, f"{source} is excluded by .dockerignore"


def test_image_command_serves_with_production_settings(
    tls_redis: RedisServer, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "API_", "GUNI"))},
        **image_environment(),
        "PATH": f"{REPO_ROOT / '.venv/bin'}:{os.environ['PATH']}",
        # Loopback only on this machine; the image binds 0.0.0.0:8000.
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(tls_redis.port),
        "REDIS_TLS": "true",
        "REDIS_AUTH_TOKEN": TLS_REDIS_TOKEN,
        "REDIS_TLS_CA_FILE": str(tls_redis.ca_cert),
        "REDIS_TIMEOUT_MS": LOADED_MACHINE_REDIS_TIMEOUT_MS,
    }
    with (tmp_path / "container.log").open("w") as log:
        server = subprocess.Popen(
            exec_form("CMD"), cwd=SERVICE_ROOT, env=env, stdout=log, stderr=log
        )
    try:

        def healthy() -> bool:
            check = subprocess.run(
                exec_form("HEALTHCHECK"),
                check=False,
                cwd=SERVICE_ROOT,
                env=env,
                capture_output=True,
            )
            return check.returncode == 0

        wait_until(healthy, what="the image's HEALTHCHECK to pass")
        wait_until(lambda: http_get(port, "/health/ready")[0] == 200, what="/health/ready")
        path = "/api/v1/tracks/container/waveform"
        assert [http_get(port, path)[1]["X-Cache"] for _ in range(2)] == ["MISS", "HIT"]
        # The load balancer's port has no metrics; their own port has them all.
        assert http_get(port, "/%6Detrics")[0] == 404
        assert b"prostudio_cache_hits_total 1.0" in http_get(metrics_port, "/metrics")[2]
    finally:
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=30)

    assert exit_code == 0
    records = [json.loads(line) for line in (tmp_path / "container.log").read_text().splitlines()]
    boots = [r for r in records if str(r.get("event", "")).startswith("Booting worker")]
    assert len(boots) == int(image_environment()["API_WORKERS"])
