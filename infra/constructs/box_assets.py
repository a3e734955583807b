"""The operator tools the boxes carry: the Redis copy CLI and its engine, as one asset.

provision.sh installs it as the `migrate_redis` command, so a Session Manager shell on a box
(inside the VPC) can run the copy, and the deploy-time cutover runs its follow mode there.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = "/opt/prostudio/tools"
# The asset keeps the repo's layout: the CLI imports the engine's modules from
# runtime/redis_copy and the shared ones as the runtime.common package.
TOOL_FILES = {
    "scripts/migrate_redis.py": "scripts/migrate_redis.py",
    "scripts/cli_launch.py": "scripts/cli_launch.py",
    "runtime/redis_copy": "runtime/redis_copy",
    "runtime/common": "runtime/common",
}


@jsii.implements(ILocalBundling)
class _ToolsLayout:
    """Copies the CLI and the engine modules into the asset (no Docker)."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        output = Path(output_dir)
        for source, destination in TOOL_FILES.items():
            origin = REPO_ROOT / source
            target = output / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    dirs_exist_ok=True,
                )
            else:
                shutil.copy2(origin, target)
        return True


def tools_asset(scope: Construct, id_: str) -> s3_assets.Asset:
    """Hashed by its bundled output, so a change to the CLI or the engine is a new version."""
    return s3_assets.Asset(
        scope,
        id_,
        path=str(REPO_ROOT / "runtime" / "redis_copy"),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(image=DockerImage.from_registry("unused"), local=_ToolsLayout()),
    )
