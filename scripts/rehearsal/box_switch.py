"""The boxes' Redis switch: the deploy's own runtime/service/deploy/redis-cutover.sh, run
against the old tier. Only what a laptop lacks is stood in: `aws` answers the production
token, and `systemctl restart prostudio.service` becomes a restart of the old tier's gunicorn
on its held socket, with the environment the script's drop-in names, as systemd would merge
it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from prostudio.provisioning import read_env_file
from prostudio.topology import LocalTopology

from rehearsal.paths import REPO_ROOT

CUTOVER_SCRIPT = REPO_ROOT / "runtime" / "service" / "deploy" / "redis-cutover.sh"
DROP_IN = "etc/systemd/system/prostudio.service.d/redis-switch.conf"
SWITCH_ENV = "etc/prostudio/redis-switch.env"

SYSTEMCTL = """#!/bin/sh
if [ "$1" = restart ]; then
  touch "$RESTART_REQUEST"
  while [ -e "$RESTART_REQUEST" ]; do sleep 0.1; done
fi
"""


class BoxSwitch:
    """redis-cutover.sh switch-to-new|switch-to-old on the old tier, under traffic."""

    def __init__(
        self,
        workdir: Path,
        box: LocalTopology,
        *,
        new_port: int,
        new_ca: Path,
        token: str,
    ) -> None:
        self.box = box
        self.root = workdir / "box"
        self.log = workdir / "box-switch.log"
        stubs = self.root / "stubs"
        python = self.root / "opt/prostudio/venv/bin/python"
        for path, text in (
            (python, f'#!/bin/sh\nexec {sys.executable} "$@"\n'),
            (stubs / "aws", '#!/bin/sh\nprintf %s "$REHEARSAL_NEW_TOKEN"\n'),
            (stubs / "systemctl", SYSTEMCTL),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755)
        (self.root / "etc/prostudio").mkdir(parents=True, exist_ok=True)
        self.request = self.root / "restart-request"
        self.env = {
            **os.environ,
            "PATH": f"{stubs}:{os.environ['PATH']}",
            "PROSTUDIO_ROOT": str(self.root),
            "RESTART_REQUEST": str(self.request),
            "REHEARSAL_NEW_TOKEN": token,
            "AWS_REGION": "us-east-1",
            "NEW_HOST": "127.0.0.1",
            "NEW_PORT": str(new_port),
            "NEW_TLS": "true",
            "NEW_TLS_CA_FILE": str(new_ca),
            "NEW_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod",
            "PROSTUDIO_READY_URL": box.url("/health/ready"),
        }

    def run(self, action: str, timeout: float = 300.0) -> int | None:
        """Run one subcommand, serving its restart requests; its exit status, None on timeout."""
        with self.log.open("ab") as log:
            log.write(f"--- redis-cutover.sh {action}\n".encode())
            log.flush()
            process = subprocess.Popen(
                ["bash", str(CUTOVER_SCRIPT), action],
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + timeout
            while process.poll() is None and time.monotonic() < deadline:
                if self.request.exists():
                    self.restart_service()
                    self.request.unlink()
                time.sleep(0.05)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
                return None
            return process.returncode

    def service_environment(self) -> dict[str, str]:
        """The base environment, then the drop-in's file over it, as systemd applies them."""
        env = self.box.service_environment()
        if (self.root / DROP_IN).exists():
            env.update(read_env_file(self.root / SWITCH_ENV))
        return env

    def restart_service(self) -> None:
        """`systemctl restart prostudio.service`: gunicorn stops and starts again on the
        socket the box holds (prostudio.socket), with the merged environment."""
        self.box.restart_gunicorn(self.service_environment())
