"""How a Redis client (the boxes, the Fargate tasks) finds an ElastiCache group."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_secretsmanager as secretsmanager


@dataclass(frozen=True)
class RedisEndpoint:
    """Host and port (CDK tokens allowed), reached over TLS, and the client's login: its
    ElastiCache user name (None for a group's AUTH token) and the secret of its password."""

    host: str
    port: int
    auth_token: secretsmanager.ISecret
    username: str | None = None
