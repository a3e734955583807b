"""Shared test setup: node on PATH and offline AWS defaults (imports: pyproject's pythonpath)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
node_bin = ROOT / "node_modules" / ".bin"
if node_bin.is_dir():
    os.environ["PATH"] = f"{node_bin}{os.pathsep}{os.environ['PATH']}"
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Apps built without an outdir (construct tests) synthesize here, removed when the run ends.
_SCRATCH = Path(tempfile.mkdtemp(prefix="cdk-test-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ.setdefault("CDK_OUTDIR", str(_SCRATCH))
