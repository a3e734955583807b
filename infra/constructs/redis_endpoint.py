"""How a Redis client (the boxes, the Fargate tasks, the cutover's follow) finds a Redis."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_secretsmanager as secretsmanager


@dataclass(frozen=True)
class RedisEndpoint:
    """Host and port (CDK tokens allowed, e.g. read from SSM), whether it speaks TLS (every
    ElastiCache group does; the box's Redis not), and the client's login: its ElastiCache user
    name (None for the default user: an AUTH token or the box's password) and the secret of
    that token or password."""

    host: str
    port: str | int
    auth_token: secretsmanager.ISecret
    tls: bool = True
    username: str | None = None
