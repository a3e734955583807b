"""How a Redis client (the boxes, the Fargate tasks) finds an ElastiCache group."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_secretsmanager as secretsmanager


@dataclass(frozen=True)
class RedisEndpoint:
    """Host and port (CDK tokens allowed), reached over TLS, and the AUTH token's secret."""

    host: str
    port: int
    auth_token: secretsmanager.ISecret
