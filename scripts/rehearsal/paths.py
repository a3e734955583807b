"""Where the repository's pieces live."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_ROOT = REPO_ROOT / "runtime" / "service"
SCRIPTS_DIR = REPO_ROOT / "scripts"
DOCKERFILE = SERVICE_ROOT / "Dockerfile"
