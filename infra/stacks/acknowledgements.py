"""Every cdk-nag acknowledgement of a stack, each with the reason it is acceptable.

Kept in one place per stack so a reviewer sees every accepted finding at once. Each entry
names the construct it applies to (a path below the stack), so an acknowledgement never
hides the same finding elsewhere. Entries whose construct a flag leaves out are skipped;
a test checks that every entry is used by some flag combination.
"""

from __future__ import annotations

from typing import NamedTuple

from aws_cdk import Acknowledgment, Stack, Validations


class Accepted(NamedTuple):
    path: str
    rule: str
    reason: str


_ASSET_READ = (
    "cfn-init downloads the versioned runtime asset; CDK's asset grant emits this wildcard "
    "scoped to the bootstrap assets bucket of this account and region only."
)

ZERO_COST: tuple[Accepted, ...] = (
    Accepted(
        "Web/SecurityGroup",
        "AwsSolutions-EC23",
        "Without the ALB increment the box is the public web server: 80 and 443 must be "
        "open to the internet. With the ALB on, the box admits the ALB only.",
    ),
    Accepted(
        "Web/Role",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        "AmazonSSMManagedInstanceCore]",
        "AWS-maintained minimum for Session Manager, which replaces SSH and key pairs.",
    ),
    Accepted("Web/Role", "AwsSolutions-IAM5[Action::s3:GetBucket*]", _ASSET_READ),
    Accepted("Web/Role", "AwsSolutions-IAM5[Action::s3:GetObject*]", _ASSET_READ),
    Accepted("Web/Role", "AwsSolutions-IAM5[Action::s3:List*]", _ASSET_READ),
    Accepted(
        "Web/Role",
        "AwsSolutions-IAM5[Resource::arn:aws:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-"
        "{region}/*]",
        _ASSET_READ,
    ),
    Accepted(
        "Web/RedisPassword",
        "AwsSolutions-SMG4",
        "The box's requirepass is written into redis.conf at boot; rotating it needs a "
        "coordinated Redis and service restart that the single box does not run.",
    ),
    Accepted(
        "Web",
        "AwsSolutions-EC28",
        "Detailed monitoring is billed; basic 5-minute metrics are enough for the free box.",
    ),
    Accepted(
        "Web",
        "AwsSolutions-EC29",
        "Termination protection would block rolling an increment back with cdk deploy; the "
        "box is rebuilt from its asset by cloud-init.",
    ),
    Accepted(
        "Cache/AuthToken",
        "AwsSolutions-SMG4",
        "The AUTH token is also the boxes' Redis credential read at boot; ElastiCache token "
        "rotation (ROTATE then SET) is an operator runbook step, not automatic.",
    ),
    Accepted(
        "Cache/ReplicationGroup",
        "AwsSolutions-AEC4",
        "The phase-2 cache is one cache.t3.micro node by design (cost); Multi-AZ needs "
        "replicas, which production's three-node group has.",
    ),
    Accepted(
        "LoadBalancer/Alb/SecurityGroup",
        "AwsSolutions-EC23",
        "The internet-facing ALB must accept 443 (and 80, redirected to 443) from anyone.",
    ),
    Accepted(
        "Web",
        "CloudFormation-Validate::E1152",
        "EC2 resolves resolve:ssm image ids at launch; the schema's AMI pattern predates it.",
    ),
)


def acknowledge(stack: Stack, accepted: tuple[Accepted, ...]) -> list[Accepted]:
    """Attach each entry to its construct; return the entries that applied."""
    applied = []
    for entry in accepted:
        target = stack.node.try_find_child(entry.path.split("/")[0])
        for part in entry.path.split("/")[1:]:
            target = target.node.try_find_child(part) if target else None
        if target is None:
            continue
        rule = entry.rule.replace("{region}", stack.region)
        Validations.of(target).acknowledge(Acknowledgment(id=rule, reason=entry.reason))
        applied.append(entry)
    return applied


PROD: tuple[Accepted, ...] = (
    Accepted(
        "Dns/OldRecord",
        "CloudFormation-Validate::E3023",
        "The box's Elastic IP is an SSM parameter resolved at deploy time; the validator reads "
        "the parameter's default, which is its name, not the address it holds.",
    ),
    Accepted(
        "Cache/AuthToken",
        "AwsSolutions-SMG4",
        "An ElastiCache AUTH token changes through ModifyReplicationGroup (ROTATE, then SET "
        "once every client has the new token); a Secrets Manager rotation alone would lock the "
        "tasks out. The rotation is the runbook step in docs/production.md.",
    ),
    Accepted(
        "LoadBalancer/Alb/SecurityGroup",
        "AwsSolutions-EC23",
        "The internet-facing production ALB must accept 443 (and 80, redirected to 443) from "
        "anyone; the tasks behind it admit the ALB only.",
    ),
    Accepted(
        "Service/Task",
        "AwsSolutions-ECS2",
        "The plain variables are non-secret tuning (API_WORKERS, MAX_MEMORY_MB, REDIS_PORT, "
        "REDIS_TLS); REDIS_HOST and REDIS_AUTH_TOKEN are injected as ECS secrets.",
    ),
    Accepted(
        "Service/Task/ExecutionRole",
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken has no resource-level permissions; every other statement of "
        "the execution role names the assets repository, the log group or the two secrets.",
    ),
)
