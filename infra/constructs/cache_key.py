"""The customer-managed key of production's caches."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct


class CacheKey(Construct):
    """Encrypts the production Redis, its snapshots and its AUTH token (and the restore drill,
    which restores those snapshots). Retained when removed: a kept snapshot stays readable."""

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        # "Default" is left out of logical IDs: the key keeps the one it was first deployed with.
        self.key = kms.Key(
            self,
            "Default",
            description="Encrypts the production Redis, its snapshots and its AUTH token",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
            pending_window=Duration.days(30),
        )
