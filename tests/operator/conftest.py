"""The operator tools import the engines as top-level modules, as the installed package does."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for folder in ("runtime/traffic_shift", "runtime/redis_copy", "runtime/service"):
    if str(ROOT / folder) not in sys.path:
        sys.path.insert(0, str(ROOT / folder))
