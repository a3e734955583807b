"""deploy/provision.sh, run for real into a scratch root: the system commands it would run on
Amazon Linux (dnf, useradd, systemctl, aws, nginx) are stand-ins that record their arguments;
everything else (rendering, secrets handling, config validation) is the shipped code.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from local_service import local_service
from prostudio.provisioning import read_env_file
from service_helpers import (
    REPO_ROOT,
    SERVICE_ROOT,
    TLS_REDIS_TOKEN,
    wait_until,
)

from devtools.processes import ManagedProcess, find_binary, free_port
from devtools.redis_servers import answers_ping, wait_for_redis
from infra.constructs.cache_users import SERVICE_ACCESS

SECRET = "Sx9dPq2LmVb7Rt4KwZc8Hn3Jf6Gy1Ua"
RECORDING_STUB = '#!/bin/sh\necho "$(basename "$0") $*" >> "$CALLS_LOG"\n'
# The box's private address, as the instance metadata service (IMDSv2) tells it to curl.
PRIVATE_ADDRESS = "10.0.1.23"
# curl reaching the instance metadata service on the box (METADATA_DOWN: unreachable); any
# other URL goes to the real curl.
METADATA_CURL = f"""#!/bin/sh
case "$*" in
  *169.254.169.254/latest/api/token*) [ -n "$METADATA_DOWN" ] && exit 7; echo token ;;
  *169.254.169.254/latest/meta-data/local-ipv4*) echo {PRIVATE_ADDRESS} ;;
  *) exec /usr/bin/curl "$@" ;;
esac
"""
STUBS = {
    "dnf": RECORDING_STUB,
    "useradd": RECORDING_STUB,
    "usermod": RECORDING_STUB,
    "chown": RECORDING_STUB,
    "systemctl": RECORDING_STUB,
    "nginx": RECORDING_STUB,
    "systemd-run": RECORDING_STUB,
    "aws": RECORDING_STUB + 'printf "%s\\n" "$FAKE_SECRET"\n',
    "curl": METADATA_CURL,
}


@dataclass
class Run:
    """One provision.sh run: its result, the scratch root and the recorded commands."""

    result: subprocess.CompletedProcess[str]
    root: Path

    @property
    def calls(self) -> list[str]:
        log = self.root / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A scratch root holding a copy of the asset, stand-in commands and a venv launcher."""
    app = tmp_path / "opt/prostudio/app"
    shutil.copytree(SERVICE_ROOT, app, ignore=shutil.ignore_patterns("__pycache__"))
    tools = tmp_path / "opt/prostudio/tools"
    (tools / "scripts").mkdir(parents=True)
    for script in ("migrate_redis.py", "cli_launch.py"):
        shutil.copy2(REPO_ROOT / "scripts" / script, tools / "scripts")
    shutil.copytree(
        REPO_ROOT / "runtime/redis_copy",
        tools / "runtime/redis_copy",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, text in STUBS.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    venv_bin = tmp_path / "opt/prostudio/venv/bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(f'#!/bin/sh\nexec {REPO_ROOT}/.venv/bin/python "$@"\n')
    (venv_bin / "pip").write_text(RECORDING_STUB)
    for launcher in venv_bin.iterdir():
        launcher.chmod(0o755)
    return tmp_path


def box_env(root: Path, secret: str = SECRET, **env: str) -> dict[str, str]:
    """What a script sees on the scratch box: the stand-ins first on PATH, provision's
    variables for a local-Redis box, and `env` on top."""
    return {
        "PATH": f"{root / 'stubs'}:{os.environ['PATH']}",
        "HOME": str(root),
        "PROSTUDIO_ROOT": str(root),
        "CALLS_LOG": str(root / "calls.log"),
        "FAKE_SECRET": secret,
        "PROSTUDIO_REDIS_MODE": "local",
        "PROSTUDIO_REDIS_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:r",
        "AWS_REGION": "eu-west-1",
        "API_WORKERS": "2",
        "MAX_MEMORY_MB": "1024",
        **env,
    }


def provision(root: Path, secret: str = SECRET, **env: str) -> Run:
    """Run the shipped provision.sh against the scratch root."""
    variables = box_env(root, secret, **env)
    result = subprocess.run(
        ["bash", str(root / "opt/prostudio/app/deploy/provision.sh")],
        env=variables,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return Run(result, root)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_shellcheck_finds_nothing() -> None:
    shellcheck = REPO_ROOT / ".venv/bin/shellcheck"
    scripts = sorted(str(path) for path in (SERVICE_ROOT / "deploy").glob("*.sh"))
    result = subprocess.run(
        [str(shellcheck), "-x", *scripts],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout


def test_local_mode_installs_redis_with_the_secret_and_starts_everything(box: Path) -> None:
    run = provision(box)

    assert run.result.returncode == 0, run.result.stderr
    env_file = run.file("/etc/prostudio/env")
    assert mode(env_file) == 0o600
    assert env_file.read_text().splitlines() == [
        "REDIS_HOST='127.0.0.1'",
        "REDIS_PORT='6379'",
        "REDIS_SOCKET='/run/prostudio-redis/redis.sock'",
        "REDIS_TLS='false'",
        "API_WORKERS='2'",
        "MAX_MEMORY_MB='1024'",
        "LOG_LEVEL='info'",
        f"REDIS_PASSWORD='{SECRET}'",
    ]
    auth = run.file("/etc/prostudio/redis-auth.conf")
    assert auth.read_text() == f"requirepass '{SECRET}'\n"
    assert mode(auth) == 0o640
    redis_conf = run.file("/etc/prostudio/redis.conf").read_text()
    assert f"bind 127.0.0.1 {PRIVATE_ADDRESS}\n" in redis_conf
    assert "unixsocket /run/prostudio-redis/redis.sock\n" in redis_conf
    assert "maxmemory 256mb\n" in redis_conf
    assert "include /etc/prostudio/redis-auth.conf\n" in redis_conf
    assert SECRET not in redis_conf
    unit = run.file("/etc/systemd/system/prostudio-redis.service").read_text()
    assert f"ExecStart={find_binary('redis-server')} /etc/prostudio/redis.conf" in unit
    site = run.file("/etc/nginx/conf.d/prostudio.conf").read_text()
    assert "listen 80 default_server;" in site
    assert "server unix:/run/prostudio-api/gunicorn.sock" in site
    assert f"alias {box}/opt/prostudio/app/static/;" in site
    assert (
        "include /etc/nginx/conf.d/prostudio.conf;" in run.file("/etc/nginx/nginx.conf").read_text()
    )
    assert run.file("/etc/systemd/system/prostudio.service").exists()
    assert_socket_is_held_by_systemd(run, site)
    assert run.file("/etc/systemd/system/nginx.service.d/prostudio.conf").exists()
    calls = run.calls
    assert "dnf install -y -q nginx redis6 python3.11 python3.11-pip" in calls
    assert any(call.startswith("pip install") and "requirements.txt" in call for call in calls)
    assert any(call.startswith("aws secretsmanager get-secret-value") for call in calls)
    service_calls = [call for call in calls if call.startswith("systemctl")]
    assert service_calls == [
        "systemctl daemon-reload",
        "systemctl disable --now redis6.service",
        "systemctl enable prostudio-redis.service",
        "systemctl restart prostudio-redis.service",
        "systemctl enable --now prostudio.socket",
        "systemctl enable prostudio.service nginx.service",
        "systemctl restart prostudio.service",
        "systemctl reload-or-restart nginx.service",
    ]
    assert SECRET not in "\n".join(calls)


def unit_settings(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0].isalpha()
    )


def assert_socket_is_held_by_systemd(run: Run, site: str) -> None:
    """systemd listens on the socket nginx uses and hands it to gunicorn, outside the
    runtime directory systemd empties whenever the service stops."""
    socket_unit = unit_settings(run.file("/etc/systemd/system/prostudio.socket").read_text())
    service = run.file("/etc/systemd/system/prostudio.service").read_text()
    service_unit = unit_settings(service)
    path = socket_unit["ListenStream"]
    assert f"server unix:{path}" in site
    assert f"Environment=GUNICORN_BIND=unix:{path}" in service
    assert service_unit["Requires"] == "prostudio.socket"
    assert "prostudio.socket" in service_unit["After"].split()
    assert socket_unit["SocketGroup"] == service_unit["Group"]
    assert not path.startswith(f"/run/{service_unit['RuntimeDirectory']}/")


def test_rendered_box_redis_conf_runs_in_redis_server(box: Path, tmp_path: Path) -> None:
    run = provision(box)
    assert run.result.returncode == 0, run.result.stderr
    rendered = run.file("/etc/prostudio/redis.conf").read_text()
    local = tmp_path / "redis-local.conf"
    data = tmp_path / "data"
    data.mkdir()
    local.write_text(
        rendered.replace("/etc/prostudio", str(run.file("/etc/prostudio")))
        .replace("/var/lib/prostudio-redis", str(data))
        .replace("/run/prostudio-redis", str(data))
    )
    port = free_port()

    process = ManagedProcess(
        "box-redis",
        [find_binary("redis-server"), str(local), "--bind", "127.0.0.1", "--port", str(port)],
        log=tmp_path / "box-redis.log",
    )  # fmt: skip
    try:
        wait_for_redis(process, port, password=SECRET)
        client = redis.Redis(port=port, password=SECRET, decode_responses=True)
        assert client.config_get("maxmemory") == {"maxmemory": str(256 * 1024 * 1024)}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lfu"}
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("protected-mode") == {"protected-mode": "yes"}
        assert not answers_ping(port, "wrong-password-123456")
    finally:
        process.stop()


def test_external_mode_points_at_elasticache_and_stops_local_redis(box: Path) -> None:
    run = provision(
        box,
        PROSTUDIO_REDIS_MODE="external",
        REDIS_HOST="master.prostudio.abc123.euw1.cache.amazonaws.com",
        REDIS_PORT="6380",
        REDIS_TLS="true",
    )

    assert run.result.returncode == 0, run.result.stderr
    env = run.file("/etc/prostudio/env").read_text()
    assert "REDIS_HOST='master.prostudio.abc123.euw1.cache.amazonaws.com'\n" in env
    assert "REDIS_PORT='6380'\nREDIS_TLS='true'\n" in env
    assert f"REDIS_AUTH_TOKEN='{SECRET}'\n" in env
    assert "REDIS_PASSWORD" not in env
    assert not run.file("/etc/prostudio/redis.conf").exists()
    assert "systemctl disable --now prostudio-redis.service" in run.calls
    assert "systemctl restart prostudio-redis.service" not in run.calls


def test_running_twice_gives_the_same_box(box: Path) -> None:
    first = provision(box)
    files = {path: path.read_bytes() for path in (box / "etc").rglob("*") if path.is_file()}
    second = provision(box)

    assert first.result.returncode == second.result.returncode == 0
    assert {path: path.read_bytes() for path in (box / "etc").rglob("*") if path.is_file()} == files


@pytest.mark.parametrize(
    ("env", "secret", "message"),
    [
        ({"PROSTUDIO_REDIS_MODE": "cloud"}, SECRET, "PROSTUDIO_REDIS_MODE='cloud'"),
        ({"PROSTUDIO_REDIS_MODE": "external"}, SECRET, "REDIS_HOST is required"),
        ({"API_WORKERS": ""}, SECRET, "API_WORKERS=''"),
        ({}, "has'quote-0123456789", "single quotes"),
        ({"API_WORKERS": "0"}, SECRET, "API_WORKERS=0 is out of range"),
    ],
)
def test_bad_input_stops_before_any_service_restarts(
    box: Path, env: dict[str, str], secret: str, message: str
) -> None:
    run = provision(box, secret=secret, **env)

    assert run.result.returncode != 0
    assert len(run.result.stderr.splitlines()) == 1, run.result.stderr
    assert message in run.result.stderr
    assert "Traceback" not in run.result.stderr
    assert not [call for call in run.calls if call.startswith("systemctl")]


def test_the_box_gets_a_runnable_migrate_redis_command(box: Path) -> None:
    run = provision(box)

    assert run.result.returncode == 0, run.result.stderr
    assert "pip install --quiet --disable-pip-version-check --no-cache-dir -r " + str(
        box / "opt/prostudio/app/deploy/tools-requirements.txt"
    ) in "\n".join(run.calls)
    command = run.file("/usr/local/bin/migrate_redis")
    assert mode(command) == 0o755
    # The wrapper names the box's paths; run it here against the scratch copy of the tools.
    text = command.read_text().replace("/opt/prostudio", str(box / "opt/prostudio"))
    (box / "migrate_redis").write_text(text)
    result = subprocess.run(
        ["sh", str(box / "migrate_redis"), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--source" in result.stdout


def test_cfn_hup_left_by_an_older_release_is_retired(box: Path) -> None:
    hook = box / "etc/cfn/hooks.d/cfn-auto-reloader.conf"
    unit = box / "etc/systemd/system/cfn-hup.service"
    for path in (hook, unit):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("left by cfn-init\n")

    run = provision(box)

    assert run.result.returncode == 0, run.result.stderr
    assert not hook.exists() and not unit.exists()
    assert "systemctl disable --now cfn-hup.service" in run.calls


def test_tool_pins_match_the_repos_pins() -> None:
    """The box installs the CLI with the same pins as the operator package (pyproject.toml)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        name.split("[")[0]: version
        for name, version in (dependency.split("==") for dependency in project["dependencies"])
    }
    for line in (SERVICE_ROOT / "deploy/tools-requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            assert pins[name] == version, line


def stage_release(root: Path, marker: str) -> tuple[Path, Path]:
    """An unpacked service and tools asset, as update.sh receives them from the deploy."""
    stage = root / f"stage-{marker}"
    shutil.copytree(root / "opt/prostudio/app", stage / "app")
    shutil.copytree(root / "opt/prostudio/tools", stage / "tools")
    (stage / "app/RELEASE").write_text(marker)
    return stage / "app", stage / "tools"


def update(root: Path, app: Path, tools: Path, ready_url: str) -> subprocess.CompletedProcess[str]:
    env = box_env(root, PROSTUDIO_READY_URL=ready_url, READY_SECONDS="2")
    return subprocess.run(
        ["bash", str(app / "deploy/update.sh"), str(app), str(tools)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def release_of(root: Path) -> str:
    marker = root / "opt/prostudio/app/RELEASE"
    return marker.read_text() if marker.exists() else "original"


def test_an_update_that_gets_ready_keeps_the_new_release(box: Path, stack: Any) -> None:
    app, tools = stage_release(box, "v2")

    result = update(box, app, tools, stack.url("/health/ready"))

    assert result.returncode == 0, result.stderr
    assert release_of(box) == "v2"
    assert (box / "opt/prostudio/app.previous").is_dir()


def test_an_update_that_never_gets_ready_puts_the_previous_release_back(box: Path) -> None:
    app, tools = stage_release(box, "v2")

    result = update(box, app, tools, f"http://127.0.0.1:{free_port()}/health/ready")

    assert result.returncode == 1
    assert "restoring the previous release" in result.stderr
    assert release_of(box) == "original"
    assert (box / "opt/prostudio/app.failed/RELEASE").read_text() == "v2"


def cutover(
    root: Path, action: str, new_port: int, ready_url: str, ca_file: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = box_env(
        root,
        TLS_REDIS_TOKEN,
        NEW_HOST="127.0.0.1",
        NEW_PORT=str(new_port),
        NEW_TLS="true",
        NEW_TLS_CA_FILE=str(ca_file),
        NEW_SECRET_ARN="arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod",
        PROSTUDIO_READY_URL=ready_url,
        READY_SECONDS="2",
        **extra,
    )
    return subprocess.run(
        ["bash", str(root / "opt/prostudio/app/deploy/redis-cutover.sh"), *action.split()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


SWITCH_ENV = "/etc/prostudio/redis-switch.env"
DROP_IN = "/etc/systemd/system/prostudio.service.d/redis-switch.conf"


def test_the_switch_points_the_service_at_the_production_redis_it_can_reach(
    box: Path, tls_redis: Any, stack: Any
) -> None:
    result = cutover(
        box, "switch-to-new", tls_redis.port, stack.url("/health/ready"), tls_redis.ca_cert
    )

    assert result.returncode == 0, result.stderr
    env_file = Run(result, box).file(SWITCH_ENV)
    assert mode(env_file) == 0o600
    assert env_file.read_text().splitlines() == [
        "REDIS_HOST='127.0.0.1'",
        f"REDIS_PORT='{tls_redis.port}'",
        "REDIS_TLS='true'",
        "REDIS_USERNAME=''",
        "REDIS_SOCKET=''",
        "REDIS_PASSWORD=''",
        f"REDIS_TLS_CA_FILE='{tls_redis.ca_cert}'",
        f"REDIS_AUTH_TOKEN='{TLS_REDIS_TOKEN}'",
    ]
    assert f"EnvironmentFile={SWITCH_ENV}" in Run(result, box).file(DROP_IN).read_text()
    assert "systemctl restart prostudio.service" in Run(result, box).calls


def test_a_box_that_cannot_reach_the_production_redis_keeps_its_own(box: Path, stack: Any) -> None:
    result = cutover(
        box, "switch-to-new", free_port(), stack.url("/health/ready"), box / "no-ca.pem"
    )

    assert result.returncode == 1
    assert "cannot use 127.0.0.1" in result.stderr
    run = Run(result, box)
    assert not run.file(SWITCH_ENV).exists() and not run.file(DROP_IN).exists()
    assert not any("restart" in call for call in run.calls)


def test_a_switched_box_that_is_not_ready_goes_back_to_its_own_redis(
    box: Path, tls_redis: Any
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/health/ready"
    result = cutover(box, "switch-to-new", tls_redis.port, closed, tls_redis.ca_cert)

    assert result.returncode == 1
    assert "going back to the box's own Redis" in result.stderr
    run = Run(result, box)
    assert not run.file(SWITCH_ENV).exists() and not run.file(DROP_IN).exists()
    assert run.calls.count("systemctl restart prostudio.service") == 2


def test_the_forward_follow_is_skipped_on_a_box_already_switched(box: Path) -> None:
    drop_in = box / DROP_IN.lstrip("/")
    drop_in.parent.mkdir(parents=True)
    drop_in.write_text("[Service]\n")

    started = cutover(box, "follow-start forward", 1, "http://127.0.0.1:1/", box / "ca")
    stopped = cutover(box, "follow-stop", 1, "http://127.0.0.1:1/", box / "ca")

    assert started.returncode == 0 and "nothing to copy" in started.stdout
    assert stopped.returncode == 0 and '"skipped": true' in stopped.stdout
    assert not any("systemd-run" in call for call in Run(started, box).calls)


def test_a_real_service_started_with_the_switched_environment_serves_from_production(
    box: Path, tls_redis: Any, stack: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """systemd applies the drop-in's file after the base one; so does this merge. The real
    service (gunicorn behind nginx) must then be ready on the production stand-in."""
    assert provision(box).result.returncode == 0
    switched = cutover(
        box, "switch-to-new", tls_redis.port, stack.url("/health/ready"), tls_redis.ca_cert
    )
    assert switched.returncode == 0, switched.stderr
    merged = read_env_file(box / "etc/prostudio/env") | read_env_file(box / SWITCH_ENV.lstrip("/"))

    with local_service(tmp_path_factory.mktemp("switched"), extra_env=merged) as service:
        wait_until(lambda: service.get("/health/ready")[0] == 200, what="the switched service")
        status, _, body = service.get("/health/ready")
        assert (status, body) == (200, b'{"status":"ready","redis":"ok"}')
        assert service.get("/api/v1/tracks/switched-track/waveform")[0] == 200
        own = redis.Redis(port=service.redis_port, password=service.redis_password)
        on_production = [k for k in tls_redis.client().keys("*") if b"switched-track" in k]
        assert on_production, "the service wrote its cache entry to the production Redis"
        assert not [k for k in own.keys("*") if b"switched-track" in k]


SERVICE_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod-service"


def test_a_box_switched_to_a_group_with_users_serves_as_the_service_user(
    box: Path, tls_redis: Any, stack: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The switch reads the service user's secret (not the follow's), probes and writes the
    box's environment with that user, and the real service then works through it."""
    admin = tls_redis.client()
    admin.execute_command(
        "ACL", "SETUSER", "service", "reset", f">{TLS_REDIS_TOKEN}", *SERVICE_ACCESS.split()
    )
    assert provision(box).result.returncode == 0
    switched = cutover(
        box,
        "switch-to-new",
        tls_redis.port,
        stack.url("/health/ready"),
        tls_redis.ca_cert,
        NEW_USER="follow",
        NEW_SERVICE_USER="service",
        NEW_SERVICE_SECRET_ARN=SERVICE_SECRET_ARN,
    )

    assert switched.returncode == 0, switched.stderr
    secret_reads = [c for c in Run(switched, box).calls if "get-secret-value" in c]
    assert any(f"--secret-id {SERVICE_SECRET_ARN} " in call for call in secret_reads)
    assert not any(
        "--secret-id arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod " in c
        for c in secret_reads
    ), "the switch read the follow's secret"
    merged = read_env_file(box / "etc/prostudio/env") | read_env_file(box / SWITCH_ENV.lstrip("/"))
    assert merged["REDIS_USERNAME"] == "service"
    with local_service(tmp_path_factory.mktemp("switched-user"), extra_env=merged) as service:
        wait_until(lambda: service.get("/health/ready")[0] == 200, what="the switched service")
        status, _, body = service.get("/health/ready")
        assert (status, body) == (200, b'{"status":"ready","redis":"ok"}')
        assert service.get("/api/v1/tracks/user-track/waveform")[0] == 200
    written = [key for key in admin.keys("*") if b"user-track" in key]
    assert written, "the service wrote its cache entry as the service user"
    names = {entry["username"] for entry in admin.acl_log() if entry["object"] != "client|setinfo"}
    assert "service" not in names, admin.acl_log()


FAKE_SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$CALLS_LOG"
case "$*" in
  *SubState*) echo "$FAKE_SUBSTATE" ;;
  *ExecMainStatus*) echo "$FAKE_STATUS" ;;
esac
"""


def follow(root: Path, action: str, log: list[str], substate: str, status: str = "0") -> Any:
    """Run a follow subcommand with systemd stood in: the unit's state and exit status are
    the test's, its stdout log the lines given."""
    (root / "stubs/systemctl").write_text(FAKE_SYSTEMCTL)
    state = root / "var/lib/prostudio/cutover"
    state.mkdir(parents=True, exist_ok=True)
    (state / "state").write_text("running\n")
    (state / "follow.jsonl").write_text("".join(f"{line}\n" for line in log))
    env = box_env(
        root,
        FAKE_SUBSTATE=substate,
        FAKE_STATUS=status,
        FOLLOW_WAIT_SECONDS="3",
        FOLLOW_STOP_SECONDS="3",
    )
    return subprocess.run(
        ["bash", str(root / "opt/prostudio/app/deploy/redis-cutover.sh"), action],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


COPYING = '{"state": "copying", "lag_keys": 0}'
FOLLOWING = '{"state": "following", "lag_keys": 3, "applied": 10}'
SUMMARY_OK = '{"state": "done", "ok": true, "mismatched": 0}'
SUMMARY_BAD = '{"state": "done", "ok": false, "mismatched": 7}'


def test_follow_wait_returns_once_the_follow_is_following(box: Path) -> None:
    result = follow(box, "follow-wait", [COPYING, FOLLOWING], "running")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == FOLLOWING


def test_follow_wait_fails_when_the_follow_is_still_copying_at_the_deadline(box: Path) -> None:
    result = follow(box, "follow-wait", [COPYING], "running")

    assert result.returncode == 1
    assert "did not catch up" in result.stderr


def test_follow_wait_fails_when_the_follow_exited(box: Path) -> None:
    result = follow(box, "follow-wait", [COPYING], "failed")

    assert result.returncode == 1
    assert "exited before it caught up" in result.stderr


def test_follow_stop_sends_sigterm_and_reports_the_verified_summary(box: Path) -> None:
    result = follow(box, "follow-stop", [FOLLOWING, SUMMARY_OK], "exited", "0")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == SUMMARY_OK
    assert "systemctl kill --signal=SIGTERM prostudio-follow" in Run(result, box).calls


def test_follow_stop_fails_when_the_final_verification_differs(box: Path) -> None:
    result = follow(box, "follow-stop", [FOLLOWING, SUMMARY_BAD], "failed", "1")

    assert result.returncode == 1
    assert SUMMARY_BAD in result.stdout
    assert "the two Redis servers differ" in result.stderr
