"""Shared test setup: node on PATH and offline AWS defaults (imports: pyproject's pythonpath)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
node_bin = ROOT / "node_modules" / ".bin"
if node_bin.is_dir():
    os.environ["PATH"] = f"{node_bin}{os.pathsep}{os.environ['PATH']}"
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
