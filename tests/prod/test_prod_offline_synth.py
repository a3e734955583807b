"""`cdk synth` of production needs no Docker engine: the image asset is only staged."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from synth_support import ROOT

CDK = ROOT / "node_modules" / ".bin" / "cdk"


@pytest.mark.slow
def test_cdk_synth_of_production_never_calls_docker(tmp_path: Path) -> None:
    calls = tmp_path / "docker-calls"
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    docker = fake_bin / "docker"
    docker.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    docker.chmod(0o755)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(fake_bin), str(CDK.parent), os.environ["PATH"]]),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "CDK_DOCKER": str(docker),
    }
    out = tmp_path / "cdk.out"
    result = subprocess.run(
        [str(CDK), "synth", "--no-notices", "--quiet", "-o", str(out), "-c", "phase=3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not calls.exists(), calls.read_text()
    manifest = json.loads((out / "ProdStack.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert (out / image["source"]["directory"] / "Dockerfile").is_file()
