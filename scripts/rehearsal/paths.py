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


def constants(relative_path: str, *names: str) -> tuple[object, ...]:
    """Module-level literal constants of a repository file, read without importing it: the
    infra modules hold the rules (thresholds, TTLs, set identifiers), but importing them
    would start the CDK's Node.js runtime."""
    import ast  # noqa: PLC0415

    tree = ast.parse((REPO_ROOT / relative_path).read_text())
    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in names:
                values[target.id] = ast.literal_eval(node.value)
    missing = [name for name in names if name not in values]
    if missing:
        raise LookupError(f"{relative_path} no longer defines {', '.join(missing)}")
    return tuple(values[name] for name in names)
