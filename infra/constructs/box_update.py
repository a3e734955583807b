"""Checked updates of running boxes: each box in turn fetches the release's two assets and runs
the NEW release's deploy/update.sh, through the project's own SSM document (box_steps.py).

A failed Update is rolled back by CloudFormation with the old properties, which re-applies
the previous release the same way. The boxes are never replaced.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.constructs.box_steps import Boxes, BoxScript, BoxStep, BoxSteps, Parameter

UPDATE_TIMEOUT_SECONDS = 900
# Asset object keys as the CDK's default synthesizer writes them: the asset's hash.
ASSET_KEY_PATTERN = r"^[0-9a-f]{64}\.zip$"


def update_script(app_bucket: str, tools_bucket: str, env: Mapping[str, str]) -> BoxScript:
    """Fetches both assets of a release from the assets bucket and runs its update.sh."""
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return BoxScript(
        id="Update",
        description="ProStudio: apply a release (service and tools assets) to this box",
        parameters={
            "AppObjectKey": Parameter(
                "Object key of the service asset", allowed_pattern=ASSET_KEY_PATTERN
            ),
            "ToolsObjectKey": Parameter(
                "Object key of the tools asset", allowed_pattern=ASSET_KEY_PATTERN
            ),
        },
        lines=(
            "set -euo pipefail",
            'stage="$(mktemp -d /opt/prostudio/stage.XXXXXX)"',
            "trap 'rm -rf \"$stage\"' EXIT",
            f'aws s3 cp --only-show-errors "s3://{app_bucket}/{{{{ AppObjectKey }}}}" '
            '"$stage/app.zip"',
            f'aws s3 cp --only-show-errors "s3://{tools_bucket}/{{{{ ToolsObjectKey }}}}" '
            '"$stage/tools.zip"',
            'python3 -m zipfile -e "$stage/app.zip" "$stage/app"',
            'python3 -m zipfile -e "$stage/tools.zip" "$stage/tools"',
            f'env {exports} bash "$stage/app/deploy/update.sh" "$stage/app" "$stage/tools"',
        ),
    )


class BoxUpdate(Construct):
    """Applies the service and tools assets to each box in turn through deploy/update.sh; a new
    box is provisioned by cfn-init alone and then set to standard CPU credits."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        boxes: Sequence[tuple[str, str]],
        box_role: iam.IRole,
        app: s3_assets.Asset,
        tools: s3_assets.Asset,
        env: Mapping[str, str],
        state_prefix: str,
    ) -> None:
        super().__init__(scope, id_)
        script = update_script(app.s3_bucket_name, tools.s3_bucket_name, env)
        self.steps = BoxSteps(
            self,
            "Steps",
            title="Box update",
            resource_type="Custom::BoxUpdate",
            boxes=Boxes(instance_ids=[instance_id for _, instance_id in boxes]),
            box_role=box_role,
            state_prefix=state_prefix,
            boxes_of_this_template=True,
            apply=[
                BoxStep(
                    f"update {name}",
                    instance_id,
                    script,
                    UPDATE_TIMEOUT_SECONDS,
                    {"AppObjectKey": app.s3_object_key, "ToolsObjectKey": tools.s3_object_key},
                )
                for name, instance_id in boxes
            ],
        )
