"""mypy skips the CDK modules the project does not import (most of a cold run's time); every
module it does import stays checked, so a new import cannot quietly become Any."""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("infra", "runtime", "scripts", "tests", "devtools", "app.py")


def cdk_modules_imported() -> set[str]:
    spec = importlib.util.find_spec("aws_cdk")
    assert spec and spec.origin
    package = Path(spec.origin).parent
    files = [path for name in CHECKED for path in (ROOT / name).glob("**/*.py")]
    files += [ROOT / "app.py"]
    modules = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names if alias.name.startswith("aws_cdk")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aws_cdk"):
                assert node.module
                modules.add(node.module)
                below = (package / node.module.removeprefix("aws_cdk").lstrip(".")).resolve()
                modules |= {
                    f"{node.module}.{alias.name}"
                    for alias in node.names
                    if (below / alias.name / "__init__.py").is_file()
                }
    return modules


def test_mypy_checks_every_cdk_module_the_project_imports() -> None:
    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    followed = {
        module
        for override in overrides
        if override.get("follow_imports") == "normal"
        for module in override["module"]
    }
    skipped = [o["module"] for o in overrides if o.get("follow_imports") == "skip"]

    assert skipped == [["aws_cdk.*"]]
    assert followed == cdk_modules_imported()
