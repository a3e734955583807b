"""The deploy-time cutover's preflight (runtime/service/deploy/redis-cutover.sh): before the
first box switches, the old Redis must be able to take production's data back, or the step
fails in one line. The script runs as SSM runs it on the box; only `aws` (the secrets),
`systemctl` and `systemd-run` are stood in, and /usr/local/bin/migrate_redis is the
checkout's CLI against real servers: the boxes' Redis 6.2 and ElastiCache's Valkey."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from copy_support import TARGET_PASSWORD
from copy_testdata import populate_strings

from devtools.redis_servers import RedisServer, redis62_binary, start_redis, valkey_binary

REPO = Path(__file__).resolve().parents[2]
# Every old Redis has a password (the box's own, or a phase-2 group's AUTH token): a secret
# read that comes back empty fails the step.
OLD_PASSWORD = "old-box-Pa55word"
SCRIPT = REPO / "runtime" / "service" / "deploy" / "redis-cutover.sh"
NEW_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:new"
OLD_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:old"
STUBS = {
    "aws": f"""#!/bin/sh
echo "aws $*" >> "$CALLS_LOG"
case "$*" in *{NEW_SECRET}*) printf %s "$NEW_TOKEN" ;; *) printf %s "$OLD_TOKEN" ;; esac
""",
    "systemctl": '#!/bin/sh\necho "systemctl $*" >> "$CALLS_LOG"\n',
    "systemd-run": '#!/bin/sh\necho "systemd-run $*" >> "$CALLS_LOG"\n',
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RedisServer]]:
    workdir = tmp_path_factory.mktemp("cutover-engines")
    started = {
        "redis62": start_redis(workdir / "redis62", password=OLD_PASSWORD, binary=redis62_binary()),
        "valkey": start_redis(workdir / "valkey", password=TARGET_PASSWORD, binary=valkey_binary()),
        "old-valkey": start_redis(
            workdir / "old-valkey", password=OLD_PASSWORD, binary=valkey_binary()
        ),
    }
    yield started
    for server in started.values():
        server.stop()


def cutover(
    root: Path, action: str, old: RedisServer, new: RedisServer, **stubbed: str
) -> subprocess.CompletedProcess[str]:
    stubs = root / "stubs"
    stubs.mkdir(parents=True, exist_ok=True)
    for name, text in {**STUBS, **stubbed}.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    cli = root / "usr/local/bin/migrate_redis"
    cli.parent.mkdir(parents=True, exist_ok=True)
    cli.write_text(f'#!/bin/sh\nexec {sys.executable} {REPO / "scripts/migrate_redis.py"} "$@"\n')
    cli.chmod(0o755)
    env = {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "PROSTUDIO_ROOT": str(root),
        "CALLS_LOG": str(root / "calls.log"),
        "AWS_REGION": "us-east-1",
        "NEW_TOKEN": new.password or "",
        "OLD_TOKEN": old.password or "",
        "OLD_HOST": "127.0.0.1", "OLD_PORT": str(old.port), "OLD_TLS": "false",
        "OLD_SECRET_ARN": OLD_SECRET,
        "NEW_HOST": "127.0.0.1", "NEW_PORT": str(new.port), "NEW_TLS": "false",
        "NEW_SECRET_ARN": NEW_SECRET,
    }  # fmt: skip
    return subprocess.run(
        ["bash", str(SCRIPT), *action.split()],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def calls(root: Path) -> str:
    log = root / "calls.log"
    return log.read_text() if log.exists() else ""


def test_a_cutover_whose_revert_would_copy_valkey_into_redis_62_fails_before_anything(
    servers: dict[str, RedisServer], tmp_path: Path
) -> None:
    populate_strings(servers["valkey"].client(), 50)

    result = cutover(tmp_path, "follow-start forward", servers["redis62"], servers["valkey"])

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: target runs Redis 6.2.14, which cannot RESTORE the source's Valkey 9.1.2 DUMP "
        "payloads (RDB version 80, the target reads up to 9); use a target engine at least as "
        "new as the source",
        "redis-cutover: the old Redis could not take production's data back if this deploy "
        "were reverted; no box has switched",
    ]
    assert "systemd-run" not in calls(tmp_path)
    assert TARGET_PASSWORD not in calls(tmp_path)
    assert OLD_PASSWORD not in result.stderr


def test_a_cutover_between_engines_that_can_go_back_starts_its_follow(
    servers: dict[str, RedisServer], tmp_path: Path
) -> None:
    result = cutover(tmp_path, "follow-start forward", servers["old-valkey"], servers["valkey"])

    assert result.returncode == 0, result.stderr
    assert "follow forward started" in result.stdout
    started = [line for line in calls(tmp_path).splitlines() if line.startswith("systemd-run")]
    assert len(started) == 1 and "--follow" in started[0]
    assert TARGET_PASSWORD not in started[0]


def test_a_follow_stopped_by_a_restarted_source_fails_the_wait_with_its_reason(
    servers: dict[str, RedisServer], tmp_path: Path
) -> None:
    # Given a forward follow that stopped: its source restarted and it did not mirror it
    state = tmp_path / "var/lib/prostudio/cutover"
    state.mkdir(parents=True)
    (state / "state").write_text("running\n")
    (state / "direction").write_text("forward\n")
    (state / "follow.jsonl").write_text('{"state":"copying","lag_keys":0}\n')
    reason = (
        "error: source 127.0.0.1:6379/0 restarted (its run_id changed) and now holds 0 key(s), "
        "the target 20000: not mirrored, the target keeps its keys; check the source, and "
        "rerun with --accept-source-reset only if the target should become what the source "
        "holds now"
    )
    (state / "follow.err").write_text(f"{reason}\n")
    unit_failed = '#!/bin/sh\necho "systemctl $*" >> "$CALLS_LOG"\necho failed\n'

    # When the deploy waits for it to catch up
    result = cutover(
        tmp_path, "follow-wait", servers["old-valkey"], servers["valkey"], systemctl=unit_failed
    )

    # Then the step fails with the follow's reason, before any box switched
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        reason,
        "redis-cutover: the follow exited before it caught up; no box has switched",
    ]
