"""Every validation finding the app accepts, each with the reason it is acceptable.

The one registry of acknowledgements: the stacks' own entries and those of the constructs
that repeat (the polled Provider, the Redis copy, the traffic shift, the load balancer).
Each entry names the exact construct a finding is reported on (a path below the stack or
construct that applies the table) and the exact finding id, as cdk-nag or CloudFormation
validation reports it, so an acknowledgement never hides the same finding elsewhere.

A finding id may hold placeholders, resolved against the scope that applies the table:
`{region}` and `{partition}` (as the finding prints them), `{path}` (the scope's construct
path), and `{Some/Path}`, the logical
ID of the resource of the construct at that path. An entry whose construct is absent, or
whose `when` says no, does not apply; the compliance tests prove that in every flag
combination the entries that apply are exactly the findings reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from aws_cdk import Acknowledgment, CfnElement, CfnResource, Stack, Token, Validations
from constructs import IConstruct


class Accepted(NamedTuple):
    path: str
    rule: str
    reason: str
    when: Callable[[Any], bool] | None = None


class Acknowledged(NamedTuple):
    """One entry applied to one construct: the finding id and path as reports name them."""

    entry: Accepted
    rule: str
    path: str
    logical_id: str

    @property
    def scanner(self) -> str:
        """Who reports the finding: cdk-nag or CloudFormation validation ("validation"), or
        an independent template scanner that reads the resource's Metadata ("checkov")."""
        return CHECKOV if self.rule.startswith(f"{CHECKOV}::") else "validation"


CHECKOV = "checkov"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")

_AGENT_POLICY = "Web/AgentPolicy/Resource"
_EC28 = "Detailed monitoring is billed; basic 5-minute metrics are enough for the free box."
_EC29 = (
    "Termination protection would block rolling an increment back with cdk deploy; the box "
    "is rebuilt from its asset by cloud-init."
)
_E1152 = "EC2 resolves resolve:ssm image ids at launch; the schema's AMI pattern predates it."


def _has_cache_users(stack: Any) -> bool:
    """The stack's cache has ElastiCache users, not the AUTH token of a group created
    before them."""
    cache = stack.node.try_find_child("Cache")
    return cache is not None and cache.node.try_find_child("Users") is not None


def _cache_users(kms_reason: str | None) -> tuple[Accepted, ...]:
    """The cache's ElastiCache users: their passwords and the group's authentication."""
    entries = [
        Accepted(
            "Cache/ReplicationGroup",
            "AwsSolutions-AEC6",
            "The group authenticates with ElastiCache users (UserGroupIds: default off, one "
            "user per client with its own password); the rule looks only for an AUTH token.",
            when=_has_cache_users,
        ),
        *(
            Accepted(
                f"Cache/Users/{user}Password/Resource",
                "AwsSolutions-SMG4",
                "An ElastiCache user's password changes through ModifyUser (add the new one "
                "beside the old, move every client, then drop the old); a Secrets Manager "
                "rotation alone would lock the clients out.",
            )
            for user in ("Default", "Service", "Follow")
        ),
    ]
    if kms_reason:
        entries += [
            Accepted(f"Cache/Users/{user}Password/Resource", "checkov::CKV_AWS_149", kms_reason)
            for user in ("Default", "Service", "Follow")
        ]
    return tuple(entries)


ZERO_COST: tuple[Accepted, ...] = (
    *_cache_users(
        "A customer-managed KMS key costs a monthly fee the zero-cost stack does not spend; "
        "this secret stays on the AWS managed Secrets Manager key."
    ),
    Accepted(
        "BoxAlarms/ProbePolicy/Resource",
        "AwsSolutions-IAM5[Resource::*]",
        "cloudwatch:PutMetricData has no resource-level permissions; the condition limits the "
        "boxes to the ProStudio/Box namespace.",
    ),
    Accepted(
        "Web/PublicWeb",
        "AwsSolutions-EC23",
        "Without the ALB increment the box is the public web server: port 80 must be open "
        "to the internet (this rule exists only then). With the ALB on, the box admits the "
        "ALB only.",
    ),
    Accepted(
        _AGENT_POLICY,
        "AwsSolutions-IAM5[Resource::*]",
        "The SSM agent's message channels (ec2messages, ssmmessages), inventory, patch "
        "snapshot and manifest calls, and logs:DescribeLogGroups (how the agent finds the Run "
        "Command output group) have no resource-level permissions in the service authorization "
        "reference; every action that takes a resource is in the statement scoped below.",
    ),
    Accepted(
        _AGENT_POLICY,
        "AwsSolutions-IAM5[Resource::arn:{partition}:ec2:{region}:<AWS::AccountId>:instance/*]",
        "The agent reports for the instance it runs on (UpdateInstanceInformation, association "
        "status, compliance); the role exists before its boxes, so it cannot name their ids.",
    ),
    Accepted(
        _AGENT_POLICY,
        "AwsSolutions-IAM5[Resource::arn:{partition}:ssm:{region}:<AWS::AccountId>:association/*]",
        "The agent reads and reports the State Manager associations targeting its instance; "
        "their ids are generated by SSM.",
    ),
    Accepted(
        _AGENT_POLICY,
        "AwsSolutions-IAM5[Resource::arn:{partition}:ssm:{region}::document/*]",
        "The associations run AWS-owned documents (AWS-RunShellScript, AWS-RunPatchBaseline); "
        "the agent reads them, and only AWS's documents, which hold no data of ours.",
    ),
    Accepted(
        "Web/RedisPassword/Resource",
        "AwsSolutions-SMG4",
        "The box's requirepass is written into redis.conf at boot; rotating it needs a "
        "coordinated Redis and service restart that the single box does not run.",
    ),
    Accepted("Web/Box/Resource", "AwsSolutions-EC28", _EC28),
    Accepted("Web/Box2/Resource", "AwsSolutions-EC28", _EC28),
    Accepted("Web/Box/Resource", "AwsSolutions-EC29", _EC29),
    Accepted("Web/Box2/Resource", "AwsSolutions-EC29", _EC29),
    Accepted("Web/Box/Resource", "CloudFormation-Validate::E1152", _E1152),
    Accepted("Web/Box2/Resource", "CloudFormation-Validate::E1152", _E1152),
    Accepted(
        "Cache/AuthToken/Resource",
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
        "LoadBalancer/Alb/SecurityGroup/Resource",
        "AwsSolutions-EC23",
        "The internet-facing ALB must accept 443 (and 80, redirected to 443) from anyone.",
    ),
    *(
        Accepted(
            f"Web/{box}/Resource",
            "checkov::CKV_AWS_88",
            "With no NAT gateway (free tier) the box reaches AWS APIs and package mirrors "
            "through its public address; behind the ALB its security group admits the ALB only.",
        )
        for box in ("Box", "Box2")
    ),
    Accepted(
        "Web/PublicWeb",
        "checkov::CKV_AWS_260",
        "Without the ALB increment the box itself serves the site over HTTP: port 80 must "
        "stay open to the internet (this rule exists only then).",
    ),
    *(
        Accepted(
            path,
            "checkov::CKV_AWS_149",
            "A customer-managed KMS key costs a monthly fee the zero-cost stack does not "
            "spend; this secret stays on the AWS managed Secrets Manager key.",
        )
        for path in ("Web/RedisPassword/Resource", "Cache/AuthToken/Resource")
    ),
    Accepted(
        "BoxAlarms/Topic/Resource",
        "checkov::CKV_AWS_26",
        "Alarm notifications carry alarm names and states only; CloudWatch publishes to an "
        "encrypted topic only with a customer key, a monthly fee the zero-cost stack does not "
        "spend.",
    ),
    Accepted(
        "Network/FlowLogs/Resource",
        "checkov::CKV_AWS_158",
        "A customer-managed KMS key costs a monthly fee the zero-cost stack does not spend; "
        "rejected-traffic flow logs hold no customer data.",
    ),
    *(
        Accepted(
            "Custom::VpcRestrictDefaultSGCustomResourceProvider/Handler",
            f"checkov::{check}",
            f"CDK's own handler that strips the default security group's rules once per "
            f"deploy; it touches no data ({what}).",
        )
        for check, what in (
            ("CKV_AWS_115", "no concurrency reservation needed for one call per deploy"),
            ("CKV_AWS_116", "CloudFormation reports its failure, so no event is lost"),
            ("CKV_AWS_117", "it calls only the EC2 API, which needs no VPC"),
        )
    ),
)


def _drill(stack: Any) -> bool:
    return bool(stack.settings.prod.restore_drill)


PROD: tuple[Accepted, ...] = (
    *_cache_users(None),
    Accepted(
        "RestoreDrill/AuthToken/Resource",
        "AwsSolutions-SMG4",
        "The drill group lives for one restore drill and is deleted with its token; nothing "
        "but the copy host that verifies it ever uses the token.",
        when=_drill,
    ),
    Accepted(
        "RestoreDrill/ReplicationGroup",
        "AwsSolutions-AEC4",
        "The restore drill proves a snapshot restores and verifies; one node is enough for "
        "that, and production's three-node Multi-AZ group is untouched.",
        when=_drill,
    ),
    Accepted(
        "Cache/AuthToken/Resource",
        "AwsSolutions-SMG4",
        "An ElastiCache AUTH token changes through ModifyReplicationGroup (ROTATE, then SET "
        "once every client has the new token); a Secrets Manager rotation alone would lock the "
        "tasks out. The rotation is the runbook step in docs/production.md.",
    ),
    Accepted(
        "LoadBalancer/Alb/SecurityGroup/Resource",
        "AwsSolutions-EC23",
        "The internet-facing production ALB must accept 443 (and 80, redirected to 443) from "
        "anyone; the tasks behind it admit the ALB only.",
    ),
    Accepted(
        "Service/Task/Resource",
        "AwsSolutions-ECS2",
        "The plain variables are non-secret tuning (API_WORKERS, MAX_MEMORY_MB, REDIS_PORT, "
        "REDIS_TLS); REDIS_HOST and REDIS_AUTH_TOKEN are injected as ECS secrets.",
    ),
    Accepted(
        "Service/Task/ExecutionRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken has no resource-level permissions; every other statement of "
        "the execution role names the assets repository, the log group or the two secrets.",
    ),
)

# Applied by each construct that builds a polled Provider, to itself.
_INVOKE = (
    "The Provider framework invokes this resource's own two handler functions; CDK's grant "
    "adds each ARN with :* for its versions and aliases, and no other function."
)
_RUNTIME = (
    "The handlers' runtime is pinned (polled_provider.RUNTIME) on purpose, so a runtime "
    "change is a reviewed edit tested with the handlers, not a side effect of a CDK upgrade."
)
_WAITER_POLICY = "Provider/waiter-state-machine/Role/DefaultPolicy/Resource"
POLLED_PROVIDER: tuple[Accepted, ...] = (
    *(
        Accepted(
            f"{role}/DefaultPolicy/Resource",
            f"AwsSolutions-IAM5[Resource::<{{{fn}}}.Arn>:*]",
            _INVOKE,
        )
        for role in ("FrameworkOnEventRole", "FrameworkWaiterRole")
        for fn in ("OnEvent", "IsComplete")
    ),
    Accepted(
        _WAITER_POLICY,
        "AwsSolutions-IAM5[Resource::*]",
        "Step Functions delivers its logs through CloudWatch Logs' vended log delivery: "
        "logs:CreateLogDelivery and the other delivery actions have no resource-level "
        "permissions, and the Step Functions guide grants them with logs:CreateLogStream and "
        "logs:PutLogEvents on * for that delivery; CDK adds exactly that statement.",
    ),
    *(
        Accepted(
            _WAITER_POLICY,
            f"AwsSolutions-IAM5[Resource::<{{Provider/{fn}}}.Arn>:*]",
            f"The waiter state machine invokes the framework's {fn} function; CDK's grant "
            "adds :* for its versions and aliases.",
        )
        for fn in ("framework-isComplete", "framework-onTimeout")
    ),
    Accepted(
        "Provider/waiter-state-machine/Resource",
        "AwsSolutions-SF2",
        "The waiter is CDK's fixed Wait/Invoke loop and logs its errors to its own log group; "
        "X-Ray traces of it would add nothing the handlers' own logs do not hold.",
    ),
    Accepted(
        "Provider/waiter-state-machine/Resource",
        "AwsSolutions-SF1",
        "The waiter logs errors only, without execution data: its input carries "
        "CloudFormation's pre-signed response URL, with which anyone reading the log could "
        "answer for the resource. Its successful Wait/Invoke events say nothing the handlers' "
        "own logs do not.",
    ),
    Accepted("OnEvent/Resource", "AwsSolutions-L1", _RUNTIME),
    Accepted("IsComplete/Resource", "AwsSolutions-L1", _RUNTIME),
    *(
        Accepted(
            f"{handler}/Resource",
            "checkov::CKV_AWS_116",
            "The Provider framework invokes this handler synchronously and reports its failure "
            "to CloudFormation: there is no asynchronous event to lose.",
        )
        for handler in ("OnEvent", "IsComplete")
    ),
    *(
        Accepted(
            f"{handler}/Resource",
            "checkov::CKV_AWS_115",
            "Lambda refuses any reservation that leaves an account under 10 unreserved "
            "(a new account's whole limit), which would fail the first deploy; the Provider "
            "calls this handler once at a time for its one resource anyway.",
        )
        for handler in ("OnEvent", "IsComplete")
    ),
    *(
        Accepted(
            f"Provider/{fn}/Resource",
            "checkov::CKV_AWS_116",
            "The waiter state machine invokes this framework function synchronously; its "
            "execution history keeps every failed call.",
        )
        for fn in ("framework-isComplete", "framework-onTimeout")
    ),
    *(
        Accepted(
            f"Provider/{fn}/Resource",
            f"checkov::{check}",
            reason,
        )
        for fn in ("framework-onEvent", "framework-isComplete", "framework-onTimeout")
        for check, reason in (
            (
                "CKV_AWS_115",
                "A CDK framework function called once per poll of one resource; reserving "
                "concurrency for all five functions of each Provider would take it from the "
                "account for no protection.",
            ),
            (
                "CKV_AWS_117",
                "A CDK framework function that only invokes the handlers and the waiter; "
                "outside the VPC it needs no NAT gateway or Lambda endpoint.",
            ),
            (
                "CKV_AWS_173",
                "A CDK framework function whose variables are function and state machine "
                "ARNs, none of them secret.",
            ),
        )
    ),
    Accepted(
        _WAITER_POLICY,
        "checkov::CKV_AWS_111",
        "The log-delivery actions CDK grants the waiter for its logging (logs:CreateLogDelivery "
        "and friends) have no resource-level scope.",
    ),
)

_BOX_STEPS_POLICY = "HandlerRole/DefaultPolicy/Resource"
BOX_STEPS: tuple[Accepted, ...] = (
    Accepted(
        _BOX_STEPS_POLICY,
        "AwsSolutions-IAM5[Resource::*]",
        "ssm:GetCommandInvocation and ssm:CancelCommand have no resource-level permissions and "
        "no condition keys (service authorization reference); SendCommand, which has, is scoped "
        "to the project's own documents and the boxes.",
    ),
    Accepted(
        _BOX_STEPS_POLICY,
        "AwsSolutions-IAM5[Resource::arn:{partition}:ec2:{region}:<AWS::AccountId>:instance/*]",
        "The boxes belong to another stack, whose instance ids reach this one only through a "
        "writable parameter: SendCommand is allowed on the instances whose "
        "aws:cloudformation:stack-name tag names the zero-cost stack, a tag only CloudFormation "
        "can set.",
        when=lambda steps: steps.commands_by_stack_tag,
    ),
    Accepted(
        _BOX_STEPS_POLICY,
        "AwsSolutions-IAM5[Resource::arn:{partition}:ssm:{region}:<AWS::AccountId>:"
        "parameter{state_prefix}/*]",
        "One progress parameter per CloudFormation request, named by its request id, under "
        "this resource's own prefix.",
    ),
    *(
        Accepted(
            f"{handler}/Resource",
            check,
            reason,
        )
        for handler in ("OnEvent", "IsComplete")
        for check, reason in (
            (
                "checkov::CKV_AWS_117",
                "The box-steps handlers call only the SSM API (and, for the cutover, SNS and "
                "EventBridge to publish its notices); outside the VPC they need no NAT gateway "
                "or interface endpoints, and they never touch Redis.",
            ),
            (
                "checkov::CKV_AWS_173",
                "The variables are the prefix of the handler's progress parameters and, for "
                "the cutover, the notice topic's ARN, the event bus name and a title: none is "
                "a secret.",
            ),
        )
    ),
)

_SHIFT_POLICY = "HandlerRole/DefaultPolicy/Resource"
TRAFFIC_SHIFT: tuple[Accepted, ...] = (
    Accepted(
        _SHIFT_POLICY,
        "AwsSolutions-IAM5[Resource::arn:{partition}:route53:::change/*]",
        "route53:GetChange is called with the id Route53 returns for each batch; change ids "
        "do not exist before the change is submitted.",
    ),
    Accepted(
        _SHIFT_POLICY,
        "AwsSolutions-IAM5[Resource::arn:{partition}:route53:::healthcheck/*]",
        "The health gate reads the HealthCheckId attached to the new record at run time; "
        "GetHealthCheck and GetHealthCheckStatus are read-only.",
        when=lambda shift: shift.uses_health_check,
    ),
    Accepted(
        _SHIFT_POLICY,
        "AwsSolutions-IAM5[Resource::*]",
        "Read-only CloudWatch actions that accept no narrower resource: GetMetricStatistics "
        "(the new record's Route53 HealthCheckStatus, when the health check is a gate) and "
        "DescribeAlarms, which returns composite alarms only when scoped to * (when a gate "
        "alarm is composite).",
        when=lambda shift: shift.uses_health_check or shift.reads_composite_alarms,
    ),
    *(
        Accepted(
            f"{handler}/Resource",
            "checkov::CKV_AWS_117",
            "The shift handlers call only the Route53, CloudWatch, SNS and EventBridge APIs; "
            "outside the VPC they need no NAT gateway or interface endpoints.",
        )
        for handler in ("OnEvent", "IsComplete")
    ),
    *(
        Accepted(
            f"{handler}/Resource",
            "checkov::CKV_AWS_173",
            "The variables are the notice topic's ARN and the event bus name: not secrets.",
            when=lambda shift: shift.publishes_notices,
        )
        for handler in ("OnEvent", "IsComplete")
    ),
)

LOAD_BALANCER: tuple[Accepted, ...] = (
    Accepted(
        "AccessLogs/Resource",
        "AwsSolutions-S1",
        "This bucket is the ALB access-log sink; logging its own access would need a further "
        "bucket for no added audit value.",
    ),
    Accepted(
        "AccessLogs/Resource",
        "checkov::CKV_AWS_18",
        "The ALB's access-log sink: its own server access logs would go to yet another bucket "
        "and add no audit value; it blocks public access and enforces TLS.",
    ),
    Accepted(
        "Alb/SecurityGroup/Resource",
        "checkov::CKV_AWS_260",
        "Port 80 stays open to the internet only to answer with a redirect to HTTPS on 443.",
    ),
)

TEARDOWN_GUARD: tuple[Accepted, ...] = (
    Accepted("Handler/Resource", "AwsSolutions-L1", _RUNTIME),
    Accepted(
        "Handler/Resource",
        "checkov::CKV_AWS_115",
        "Lambda refuses any reservation that leaves an account under 10 unreserved (a new "
        "account's whole limit), which would fail the first deploy; CloudFormation calls the "
        "guard once per deploy.",
    ),
    Accepted(
        "Handler/Resource",
        "checkov::CKV_AWS_116",
        "CloudFormation waits for the guard's answer (at most its 5-minute service timeout) and "
        "fails the deploy without one; the stack event is the record, there is nothing to "
        "replay later.",
    ),
    Accepted(
        "Handler/Resource",
        "checkov::CKV_AWS_117",
        "It calls only the CloudFormation API and CloudFormation's response URL; in the VPC, "
        "which has no NAT gateway, it could reach neither.",
    ),
    Accepted(
        "Logs/Resource",
        "checkov::CKV_AWS_158",
        "The guard logs logical IDs and its verdict only; a customer-managed key would add a "
        "monthly fee to a stack that below phase 3 holds nothing else.",
    ),
)
REGISTRY: dict[str, tuple[Accepted, ...]] = {
    "ZERO_COST": ZERO_COST,
    "PROD": PROD,
    "POLLED_PROVIDER": POLLED_PROVIDER,
    "TRAFFIC_SHIFT": TRAFFIC_SHIFT,
    "BOX_STEPS": BOX_STEPS,
    "LOAD_BALANCER": LOAD_BALANCER,
    "TEARDOWN_GUARD": TEARDOWN_GUARD,
}


def all_entries() -> Iterable[Accepted]:
    for table in REGISTRY.values():
        yield from table


def acknowledge(scope: IConstruct, table: tuple[Accepted, ...]) -> None:
    """Acknowledge each entry of `table` that applies, on its construct below `scope`."""
    for entry in table:
        if entry.when is not None and not entry.when(scope):
            continue
        target = _find(scope, entry.path)
        if target is None:
            continue
        resource = target if isinstance(target, CfnElement) else target.node.default_child
        logical_id = (
            Stack.of(target).get_logical_id(resource) if isinstance(resource, CfnElement) else ""
        )
        rule = _resolve(scope, entry.rule)
        _apply(target, Acknowledged(entry, rule, target.node.path, logical_id))


def _apply(target: IConstruct, acknowledged: Acknowledged) -> None:
    if acknowledged.scanner == CHECKOV:
        # checkov reads skips from the resource's Metadata, each with its comment.
        assert isinstance(target, CfnResource), acknowledged
        metadata = target.get_metadata(CHECKOV) or {"skip": []}
        metadata["skip"].append(
            {"id": acknowledged.rule.split("::")[1], "comment": acknowledged.entry.reason}
        )
        target.add_metadata(CHECKOV, metadata)
        return
    Validations.of(target).acknowledge(
        Acknowledgment(id=acknowledged.rule, reason=acknowledged.entry.reason)
    )


def _find(scope: IConstruct, path: str) -> IConstruct | None:
    target: IConstruct | None = scope
    for part in path.split("/"):
        target = target.node.try_find_child(part) if target else None
    return target


def _resolve(scope: IConstruct, rule: str) -> str:
    stack = Stack.of(scope)

    def name(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "path":
            return scope.node.path
        if isinstance(getattr(scope, key, None), str):
            return str(getattr(scope, key))
        if key in ("region", "partition"):
            value = getattr(stack, key)
            return f"<AWS::{key.title()}>" if Token.is_unresolved(value) else str(value)
        target = _find(scope, key)
        if target is None or target.node.default_child is None:
            raise ValueError(f"acknowledgement {rule!r}: no resource at {key!r}")
        return stack.get_logical_id(target.node.default_child)  # type: ignore[arg-type]

    return _PLACEHOLDER.sub(name, rule)
