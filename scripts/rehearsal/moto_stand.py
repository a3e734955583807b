"""moto's server on loopback, standing in for Route53 and CloudWatch."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3

from devtools.processes import ManagedProcess, free_port
from rehearsal.stands import http_status, wait_until

MOTO_CREDENTIAL = "rehearsal"


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
        wait_until(lambda: http_status("127.0.0.1", self.port, "/moto-api/") < 500, "moto server")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
