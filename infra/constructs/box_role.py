"""What the boxes' instance role may do, as policies of the project's own.

AmazonSSMManagedInstanceCore is not attached: its `ssm:GetParameter*` on `*` would let a box
read every parameter of the account. The agent policy keeps what Session Manager, Run Command,
State Manager and Patch Manager need from the SSM agent; each release may read its own two
asset objects, never the whole assets bucket. The boxes' secrets, metrics and command output
are granted where those are made (web_hosts, box_alarms, box_steps, imported_box_role).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

# Actions the service authorization reference lists without any resource type: only `*`.
AGENT_ACTIONS_WITHOUT_RESOURCES = (
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
    "ssm:GetDeployablePatchSnapshotForInstance",
    "ssm:GetManifest",
    "ssm:ListAssociations",
    "ssm:PutConfigurePackageResult",
    "ssm:PutInventory",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    # The agent looks its output group up by name before writing Run Command output.
    "logs:DescribeLogGroups",
)
# Actions on the instance itself, its associations and the documents they run.
AGENT_ACTIONS_ON_RESOURCES = (
    "ssm:DescribeAssociation",
    "ssm:DescribeDocument",
    "ssm:GetDocument",
    "ssm:ListInstanceAssociations",
    "ssm:PutComplianceItems",
    "ssm:UpdateAssociationStatus",
    "ssm:UpdateInstanceAssociationStatus",
    "ssm:UpdateInstanceInformation",
)


def agent_policy(scope: Construct, id_: str, *, role: iam.IRole) -> iam.Policy:
    """The SSM agent (Session Manager, Run Command, associations, patching) and cfn-init."""
    stack = Stack.of(scope)
    return iam.Policy(
        scope,
        id_,
        roles=[role],
        statements=[
            iam.PolicyStatement(actions=list(AGENT_ACTIONS_WITHOUT_RESOURCES), resources=["*"]),
            iam.PolicyStatement(
                actions=list(AGENT_ACTIONS_ON_RESOURCES),
                resources=[
                    # The role exists before its boxes, so it cannot name their ids.
                    stack.format_arn(service="ec2", resource="instance", resource_name="*"),
                    stack.format_arn(service="ssm", resource="association", resource_name="*"),
                    # AWS's documents the associations run (AWS-RunShellScript and
                    # AWS-RunPatchBaseline) have no account in their ARN.
                    stack.format_arn(
                        service="ssm", resource="document", resource_name="*", account=""
                    ),
                ],
            ),
            iam.PolicyStatement(
                # cfn-init reads the box's metadata; cfn-signal reports it healthy.
                actions=["cloudformation:DescribeStackResource", "cloudformation:SignalResource"],
                resources=[Aws.STACK_ID],
            ),
        ],
    )


def release_id(assets: Sequence[s3_assets.Asset]) -> str:
    return hashlib.sha256("".join(asset.asset_hash for asset in assets).encode()).hexdigest()[:10]


def release_policy(
    scope: Construct, *, role: iam.IRole, assets: Sequence[s3_assets.Asset]
) -> iam.Policy:
    """Read of exactly these asset objects. Named by them, so the previous release's policy
    is deleted only after a deploy succeeded: CloudFormation's rollback of a failed update,
    which re-applies the previous release, can still read its assets."""
    return iam.Policy(
        scope,
        f"Release{release_id(assets)}",
        roles=[role],
        statements=[
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{Aws.PARTITION}:s3:::{asset.s3_bucket_name}/{asset.s3_object_key}"
                    for asset in assets
                ],
            )
        ],
    )
