"""The deploy-time Redis cutover: the zero-cost boxes move from their Redis to production's
while they serve traffic, and the old Redis ends with no writers.

Runs on the boxes through BoxSteps (the project's own SSM document, one step at a time, each
checked), with runtime/service/deploy/redis-cutover.sh doing the work on the box. The document
fixes the script and both Redis endpoints; a step chooses only its action, one of ACTIONS:
  apply   follow old -> new on box 1 (copy, then live changes; in the VPC, no Lambda limit)
          -> wait until it follows -> switch each box to the new Redis, checked by
          /health/ready (a box that cannot use it goes back and fails the deploy)
          -> stop the follow: it drains, verifies both ways and exits 0 only when equal;
  revert  (Delete, also CloudFormation's rollback of a failed Create) follow new -> old on
          box 1 if it switched -> switch each box back, last first -> drain, verify, stop.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.box_steps import Boxes, BoxScript, BoxStep, BoxSteps, Parameter
from infra.constructs.redis_copy import RedisEndpoint
from infra.constructs.redis_endpoint import RedisEndpoint as ServiceEndpoint
from infra.constructs.web_hosts import APP_DIR

SCRIPT = f"{APP_DIR}/deploy/redis-cutover.sh"
START_SECONDS = 120
CATCH_UP_SECONDS = 900
SWITCH_SECONDS = 240
DRAIN_SECONDS = 600
ACTIONS = (
    "follow-start forward",
    "follow-start reverse",
    "follow-wait",
    "follow-stop",
    "switch-to-new",
    "switch-to-old",
)


@dataclass(frozen=True)
class Box:
    name: str
    instance_id: str


def _flag(value: bool) -> str:
    return "true" if value else "false"


class RedisCutover(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        boxes: Sequence[Box],
        box_stack_name: str,
        box_role: iam.IRole,
        region: str,
        old: RedisEndpoint,
        new: RedisEndpoint,
        switched: ServiceEndpoint,
        generation: int,
        state_prefix: str,
        notice_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, id_)
        env = {
            "AWS_REGION": region,
            "OLD_HOST": old.host,
            "OLD_PORT": str(old.port),
            "OLD_TLS": _flag(old.tls),
            "OLD_SECRET_ARN": old.secret.secret_arn,
            "NEW_HOST": new.host,
            "NEW_PORT": str(new.port),
            "NEW_TLS": _flag(new.tls),
            "NEW_SECRET_ARN": new.secret.secret_arn,
            # The follow's ElastiCache users ("" for a group's AUTH token, the default user),
            # and the login the switched service uses on the new Redis.
            "OLD_USER": old.username or "",
            "NEW_USER": new.username or "",
            "NEW_SERVICE_USER": switched.username or "",
            "NEW_SERVICE_SECRET_ARN": switched.auth_token.secret_arn,
            "FOLLOW_WAIT_SECONDS": str(CATCH_UP_SECONDS - 60),
            "FOLLOW_STOP_SECONDS": str(DRAIN_SECONDS - 60),
        }
        exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
        script = BoxScript(
            id="Cutover",
            description="ProStudio: one action of the Redis cutover on this box",
            parameters={"Action": Parameter("The cutover action to run", allowed_values=ACTIONS)},
            lines=("set -euo pipefail", f"env {exports} bash {SCRIPT} {{{{ Action }}}}"),
        )

        def step(name: str, box: Box, action: str, timeout: int) -> BoxStep:
            return BoxStep(
                f"{name} ({box.name})", box.instance_id, script, timeout, {"Action": action}
            )

        follower = boxes[0]
        apply = [
            step("start following old -> new", follower, "follow-start forward", START_SECONDS),
            step("wait for the follow", follower, "follow-wait", CATCH_UP_SECONDS),
            *[
                step("switch to the new Redis", box, "switch-to-new", SWITCH_SECONDS)
                for box in boxes
            ],
            step("drain, verify, stop the follow", follower, "follow-stop", DRAIN_SECONDS),
        ]
        revert = [
            step("start following new -> old", follower, "follow-start reverse", START_SECONDS),
            step("wait for the follow", follower, "follow-wait", CATCH_UP_SECONDS),
            *[
                step("switch back to its own Redis", box, "switch-to-old", SWITCH_SECONDS)
                for box in reversed(boxes)
            ],
            step("drain, verify, stop the follow", follower, "follow-stop", DRAIN_SECONDS),
        ]
        self.steps = BoxSteps(
            self,
            "Steps",
            title="Redis cutover",
            resource_type="Custom::RedisCutover",
            boxes=Boxes(stack_name=box_stack_name),
            box_role=box_role,
            state_prefix=state_prefix,
            apply=apply,
            revert=revert,
            extra_properties={"Generation": str(generation)},
            notice_topic=notice_topic,
        )
        self.resource = self.steps.resource

    @property
    def summary(self) -> str:
        """The follow's final JSON summary (a token for outputs)."""
        return self.steps.last_output
