"""Where the repository's pieces live, and the import paths the rehearsal needs."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_ROOT = REPO_ROOT / "runtime" / "service"
SCRIPTS_DIR = REPO_ROOT / "scripts"
DOCKERFILE = SERVICE_ROOT / "Dockerfile"

for entry in (SERVICE_ROOT, REPO_ROOT / "tests", REPO_ROOT):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

