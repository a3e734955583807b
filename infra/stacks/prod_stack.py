"""ProdStack: the production topology (ALB -> ECS Fargate -> ElastiCache), built at phase 3."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.config import Settings


class ProdStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, id_, **kwargs)
        ssm.StringParameter(
            self,
            "Phase",
            parameter_name="/prostudio/prod/phase",
            string_value=str(settings.phase),
        )
