"""The operator CLI, run as a subprocess (and in-process where a hook is needed)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
from copy_checkpoint import CheckpointBusy, FileCheckpointStore
from copy_clients import CONNECT_TIMEOUT_SECONDS
from copy_support import TARGET_PASSWORD
from copy_testdata import populate_all_types, populate_strings
from copy_verify import Verifier

from devtools.redis_servers import RedisServer

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "scripts" / "migrate_redis.py"
SUMMARY_FIELDS = {"scanned", "copied", "skipped", "expired", "mismatched", "seconds"}


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_REDIS_PASSWORD")}
    env["TARGET_REDIS_PASSWORD"] = TARGET_PASSWORD
    return env


@dataclass
class CopyCli:
    """scripts/migrate_redis.py pointed at the session's source and TLS target."""

    source_server: RedisServer
    target_server: RedisServer
    checkpoint: Path

    def options(
        self,
        *extra: str,
        source: str | None = None,
        target: str | None = None,
        target_ca: str | None = None,
    ) -> list[str]:
        """The CLI's arguments; ``source``, ``target`` and ``target_ca`` replace the defaults."""
        return [
            "--source",
            source or self.source_server.url,
            "--target",
            target or self.target_server.url,
            "--target-ca",
            target_ca or str(self.target_server.ca_cert),
            "--checkpoint",
            str(self.checkpoint),
            *extra,
        ]

    def command(self, *extra: str, **replaced: str) -> list[str]:
        """The subprocess command line: this interpreter, the script and ``options()``."""
        return [sys.executable, str(CLI), *self.options(*extra, **replaced)]

    def run(self, *extra: str, **replaced: str) -> subprocess.CompletedProcess[str]:
        """Run ``command()`` to the end, the target password in the environment."""
        return subprocess.run(
            self.command(*extra, **replaced),
            capture_output=True,
            text=True,
            env=cli_env(),
            cwd=self.checkpoint.parent,
            timeout=120,
            check=False,
        )


@pytest.fixture
def copy_cli(source_server: RedisServer, target_server: RedisServer, tmp_path: Path) -> CopyCli:
    return CopyCli(source_server, target_server, tmp_path / "copy.json")


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    last_line = result.stdout.strip().splitlines()[-1]
    summary: dict[str, Any] = json.loads(last_line)
    assert summary.keys() >= SUMMARY_FIELDS
    return summary


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_copies_to_a_tls_target_with_the_password_from_the_environment(
    source: redis.Redis, target: redis.Redis, copy_cli: CopyCli
) -> None:
    populate_all_types(source, big=False)
    total = source.dbsize()

    result = copy_cli.run()

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    summary = summary_of(result)
    assert (summary["scanned"], summary["copied"], summary["mismatched"]) == (total, total, 0)
    assert summary["ok"] is True
    assert target.dbsize() == total
    assert json.loads(copy_cli.checkpoint.read_text())["phase"] == "done"


def test_cli_rejects_bad_input_with_one_line(copy_cli: CopyCli, tmp_path: Path) -> None:
    bad_scheme = copy_cli.run(source="http://127.0.0.1:6379")
    assert_one_line_error(bad_scheme, "--source must be a redis://")

    bad_policy = copy_cli.run("--policy", "merge")
    assert_one_line_error(bad_policy, "invalid choice: 'merge'")

    missing_ca = copy_cli.run(target_ca=str(tmp_path / "nowhere.pem"))
    assert_one_line_error(missing_ca, "--target-ca")

    nothing_to_resume = copy_cli.run("--resume")
    assert_one_line_error(nothing_to_resume, "nothing to resume")
    assert not copy_cli.checkpoint.exists()


def test_cli_refuses_a_bad_or_conflicting_user_with_one_line(copy_cli: CopyCli) -> None:
    spaced = copy_cli.run("--target-user", "follow user")
    assert_one_line_error(spaced, "--target-user is not a user name")

    conflicting = copy_cli.run(
        "--source-user", "follow", source=copy_cli.source_server.url.replace("//", "//other@")
    )
    assert_one_line_error(conflicting, "--source names one user and --source-user another")

    from_environment = subprocess.run(
        copy_cli.command(),
        capture_output=True,
        text=True,
        env=cli_env() | {"TARGET_REDIS_USERNAME": "x" * 129},
        timeout=60,
        check=False,
    )
    assert_one_line_error(from_environment, "TARGET_REDIS_USERNAME is not a user name")
    assert not copy_cli.checkpoint.exists()


def test_cli_precondition_failure_writes_nothing(
    source: redis.Redis, target: redis.Redis, copy_cli: CopyCli
) -> None:
    populate_strings(source, 20)
    target.set("occupied", "1")

    result = copy_cli.run()

    assert_one_line_error(result, "already holds 1 key(s) and policy is 'fail'")
    assert target.dbsize() == 1


def test_cli_wrong_password_is_one_line(
    source: redis.Redis, target_server: RedisServer, copy_cli: CopyCli
) -> None:
    result = copy_cli.run(target=f"rediss://:not-the-password@127.0.0.1:{target_server.port}/0")

    assert_one_line_error(result, "rejected the credentials")
    assert result.stderr.startswith("warning: --target carries a password")
    assert "not-the-password" not in result.stderr + result.stdout


def test_cli_killed_midway_resumes_with_no_key_lost_or_counted_twice(
    source: redis.Redis, target: redis.Redis, copy_cli: CopyCli
) -> None:
    # Given a slow copy (small batches) killed with SIGKILL once progress is checkpointed
    source.execute_command("DEBUG", "POPULATE", 40_000, "key", 16)
    total = source.dbsize()
    process = subprocess.Popen(
        copy_cli.command("--scan-count", "20"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    deadline = time.monotonic() + 60
    saved: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if copy_cli.checkpoint.exists():
            saved = json.loads(copy_cli.checkpoint.read_text())
            if saved["counts"]["copied"] > 0:
                break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert saved["phase"] == "copy", "the copy finished before it could be killed"
    assert target.dbsize() < total

    # When the same command is rerun with --resume
    resumed = copy_cli.run("--scan-count", "1000", "--resume")

    # Then every key is copied exactly once in the counts and present on the target
    assert resumed.returncode == 0, resumed.stderr
    summary = summary_of(resumed)
    assert summary["scanned"] == summary["copied"] == total
    assert summary["mismatched"] == 0
    assert target.dbsize() == total


def test_cli_refuses_to_start_over_an_unfinished_checkpoint(
    source: redis.Redis, copy_cli: CopyCli
) -> None:
    copy_cli.checkpoint.write_text(json.dumps({"phase": "copy"}))

    result = copy_cli.run()

    assert_one_line_error(result, "holds an unfinished copy; pass --resume")


def load_cli(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("migrate_redis_cli", CLI)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_cli_exits_non_zero_when_verification_finds_a_tampered_key(
    source: redis.Redis,
    target: redis.Redis,
    copy_cli: CopyCli,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a target key tampered with after the copy and before verification
    populate_strings(source, 100)
    verify = Verifier.run

    def tamper_then_verify(self: Verifier, *args: Any) -> None:
        target.set("k:42", "tampered")
        verify(self, *args)

    monkeypatch.setattr(Verifier, "run", tamper_then_verify)
    monkeypatch.setenv("TARGET_REDIS_PASSWORD", TARGET_PASSWORD)
    cli = load_cli(monkeypatch)

    # When the CLI runs
    status = cli.main(copy_cli.options())

    # Then it exits non-zero, names the key, and still ends stdout with the summary
    captured = capsys.readouterr()
    assert status == 1
    assert "b'k:42': value differs" in captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert (summary["mismatched"], summary["ok"]) == (1, False)


def test_file_checkpoint_is_atomic_and_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "state" / "copy.json"
    first = FileCheckpointStore(path)
    first.acquire()
    first.save({"phase": "copy", "cursor": 7})
    assert first.load() == {"phase": "copy", "cursor": 7}
    assert sorted(p.name for p in path.parent.iterdir()) == ["copy.json", "copy.json.lock"]

    second = FileCheckpointStore(path)
    with pytest.raises(CheckpointBusy, match="another copy is using checkpoint"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_cli_explains_an_unencoded_hash_in_a_password(copy_cli: CopyCli) -> None:
    result = copy_cli.run(target="redis://:pa#ss@127.0.0.1:6379/0")

    assert_one_line_error(result, "--target has an unencoded '#' in its password")
    assert "%23" in result.stderr
    assert "TARGET_REDIS_PASSWORD" in result.stderr
    assert "pa#ss" not in result.stderr
    assert "invalid port" not in result.stderr


def test_cli_tls_url_at_a_plain_server_fails_fast(
    source: redis.Redis, source_server: RedisServer, copy_cli: CopyCli
) -> None:
    started = time.monotonic()

    result = copy_cli.run(source=f"rediss://127.0.0.1:{source_server.port}/0")

    assert_one_line_error(result, f"cannot reach source redis at 127.0.0.1:{source_server.port}")
    assert time.monotonic() - started < 2 * CONNECT_TIMEOUT_SECONDS


def read_status(process: subprocess.Popen[str], state: str) -> list[dict[str, Any]]:
    """Status lines from the CLI's stdout up to the first one in `state`."""
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(json.loads(line))
        if seen[-1].get("state") == state:
            return seen
    raise AssertionError(f"the CLI ended before {state}: {seen}")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP])
def test_cli_follow_stops_on_a_signal_drains_verifies_and_exits_0(
    stop_signal: signal.Signals, source: redis.Redis, target: redis.Redis, copy_cli: CopyCli
) -> None:
    # Given the CLI following a source
    populate_all_types(source, big=False)
    process = subprocess.Popen(
        copy_cli.command("--follow"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        text=True,
    )
    statuses = read_status(process, "following")

    # When the source changes and the CLI gets the signal
    source.set("str:plain", "changed while following")
    source.delete("bulk:3")
    source.set("late", "new", ex=600)
    time.sleep(0.5)
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=60)

    # Then it drains, verifies both ways and ends with the summary; the target is the source
    lines = [json.loads(line) for line in out.strip().splitlines()]
    states = [line.get("state") for line in statuses + lines]
    assert states[0] == "copying"
    assert {"following", "draining", "done"} <= set(states)
    assert all("lag_keys" in line and "applied" in line for line in statuses + lines)
    summary = lines[-1]
    assert process.returncode == 0, err
    assert summary["ok"] is True and summary["mismatched"] == 0
    assert target.get("str:plain") == b"changed while following"
    assert target.get("bulk:3") is None
    assert target.ttl("late") > 500
    assert target.dbsize() == source.dbsize()


def test_cli_sigterm_mid_copy_checkpoints_and_resumes(
    source: redis.Redis, target: redis.Redis, copy_cli: CopyCli
) -> None:
    # Given a slow one-shot copy
    source.execute_command("DEBUG", "POPULATE", 40_000, "key", 16)
    process = subprocess.Popen(
        copy_cli.command("--scan-count", "20"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        text=True,
    )
    deadline = time.monotonic() + 60
    while not copy_cli.checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.01)

    # When it gets SIGTERM
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)

    # Then it saves its progress, says how to go on, and exits 128 + 15
    assert process.returncode == 143, err
    assert "SIGTERM" in err and "--resume" in err
    assert "Traceback" not in err
    assert json.loads(copy_cli.checkpoint.read_text())["phase"] == "copy"
    assert target.dbsize() < 40_000
    resumed = copy_cli.run("--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert summary_of(resumed)["copied"] == 40_000
    assert target.dbsize() == 40_000
