"""An end of the Redis copy that the deploy-time cutover runs on the boxes: the old Redis
(the box's own, or the phase-2 ElastiCache group) or the production group."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_secretsmanager as secretsmanager


@dataclass(frozen=True)
class RedisEndpoint:
    """One side of the copy; values may be CDK tokens (e.g. from SSM or another construct).
    `username` is the ElastiCache user the follow logs in as (None: the default user)."""

    host: str
    port: str | int
    tls: bool
    secret: secretsmanager.ISecret
    username: str | None = None
