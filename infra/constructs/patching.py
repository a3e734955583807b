"""Weekly OS patching of the zero-cost boxes through SSM Patch Manager, one box at a time."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ssm as ssm
from constructs import Construct

# Sunday 04:00 UTC, the quietest hour of the week for a European and American audience.
PATCH_SCHEDULE = "cron(0 4 ? * SUN *)"
# AL2023 locks dnf to the AMI's release, so Patch Manager (which uses dnf as configured)
# would find nothing new. The persistent override points dnf at the newest release.
RELEASE_OVERRIDE = "/etc/dnf/vars/releasever"
REBOOT_OPTION = "RebootIfNeeded"


class Patching(Construct):
    """Two State Manager associations on the boxes:

    - `ReleaseLatest` writes the dnf release override (at creation, then daily, so a rebuilt
      box has it before its first patch run);
    - `Patch` runs AWS-RunPatchBaseline (Install, RebootIfNeeded) with the AWS default patch
      baseline for Amazon Linux 2023 (security updates), one box at a time, stopping at the
      first failure, only at the scheduled time (never during a deploy).
    """

    def __init__(self, scope: Construct, id_: str, *, boxes: Sequence[ec2.Instance]) -> None:
        super().__init__(scope, id_)
        stack_name = Stack.of(self).stack_name
        targets = [
            ssm.CfnAssociation.TargetProperty(
                key="InstanceIds", values=[box.instance_id for box in boxes]
            )
        ]
        self.release_override = ssm.CfnAssociation(
            self,
            "ReleaseLatest",
            name="AWS-RunShellScript",
            association_name=f"{stack_name}-dnf-release-latest",
            targets=targets,
            parameters={"commands": [f"echo latest > {RELEASE_OVERRIDE}"]},
            schedule_expression="rate(1 day)",
        )
        self.patch = ssm.CfnAssociation(
            self,
            "Patch",
            name="AWS-RunPatchBaseline",
            association_name=f"{stack_name}-weekly-patch",
            targets=targets,
            parameters={"Operation": ["Install"], "RebootOption": [REBOOT_OPTION]},
            schedule_expression=PATCH_SCHEDULE,
            apply_only_at_cron_interval=True,
            max_concurrency="1",
            max_errors="0",
            compliance_severity="HIGH",
        )
