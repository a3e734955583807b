"""The deploy's engines, started as their command-line tools: the Redis copy (and its follow
mode where the copy CLI has one) and the traffic shift. Their output goes to log files; the
harness never reads their verdicts, only what it measures itself."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rehearsal.paths import SCRIPTS_DIR

COPY_CLI = SCRIPTS_DIR / "migrate_redis.py"
SHIFT_RUNNER = SCRIPTS_DIR / "rehearsal" / "shift_runner.py"


def copy_has_follow() -> bool:
    """True when the copy CLI offers --follow (the online migration's change capture)."""
    result = subprocess.run(
        [sys.executable, str(COPY_CLI), "--help"], capture_output=True, text=True, check=False
    )
    return "--follow" in result.stdout


class CopyRun:
    """scripts/migrate_redis.py from one Redis to the other: old -> new, or new -> old when
    the boxes' switch is rolled back."""

    def __init__(
        self,
        workdir: Path,
        *,
        source: str,
        source_password: str,
        target: str,
        target_password: str,
        tls_ca: Path,
        follow: bool,
        name: str = "copy",
    ) -> None:
        self.log = workdir / f"{name}.log"
        self.status_lines: list[tuple[float, dict[str, object]]] = []
        self.follow = follow
        command = [
            sys.executable, str(COPY_CLI), "--source", source, "--target", target,
            "--source-ca" if source.startswith("rediss") else "--target-ca", str(tls_ca),
            "--policy", "replace", "--checkpoint", str(workdir / f"{name}.checkpoint.json"),
        ]  # fmt: skip
        if follow:
            command.append("--follow")
        env = dict(os.environ)
        env["SOURCE_REDIS_PASSWORD"] = source_password
        env["TARGET_REDIS_PASSWORD"] = target_password
        self.stderr = self.log.with_suffix(".stderr.log").open("wb")
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("w") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                try:
                    status = json.loads(line)
                except ValueError:
                    continue
                if isinstance(status, dict):
                    self.status_lines.append((time.monotonic(), status))

    def state(self) -> str:
        return str(self.status_lines[-1][1].get("state", "")) if self.status_lines else ""

    def stop(self, timeout: float) -> int | None:
        """SIGTERM (the follow's drain signal) and wait; None if it did not exit in time."""
        if self.process.poll() is not None:
            return self.process.returncode
        os.killpg(self.process.pid, signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            return None
        self.reader.join(timeout=5)
        self.stderr.close()
        return code


class ShiftRun:
    """scripts/shift_traffic.py shift, on the rehearsal's scaled clock, in its own process,
    started ahead: it shifts on `go()`."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        endpoint: str,
        scale: float,
        args: list[str],
        *,
        epoch: float,
    ) -> None:
        self.log = workdir / f"shift-{name}.log"
        self.output = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(SHIFT_RUNNER),
                "--scale",
                str(scale),
                "--endpoint-url",
                endpoint,
                "--epoch",
                repr(epoch),
                "--on-go",
                "--",
                *args,
            ],
            stdout=self.output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE,
            env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
            start_new_session=True,
        )

    def go(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it has exited: its status says why
            self.process.stdin.write(b"go\n")
            self.process.stdin.close()

    def ended(self, within: float) -> bool:
        """True once the shift has exited, waiting at most `within` seconds for it."""
        try:
            self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            return False
        return True

    def wait(self, timeout: float) -> int | None:
        """Its exit status; past `timeout` it is interrupted (the CLI puts back the last healthy
        weights). One never told to go ends without a shift."""
        assert self.process.stdin is not None
        if not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            return None
        finally:
            self.output.flush()
