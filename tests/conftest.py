"""Shared test setup: the repo root importable, quiet jsii, and offline AWS defaults."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
node_bin = ROOT / "node_modules" / ".bin"
if node_bin.is_dir():
    os.environ["PATH"] = f"{node_bin}{os.pathsep}{os.environ['PATH']}"
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
