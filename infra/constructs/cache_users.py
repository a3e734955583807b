"""ElastiCache users (RBAC) of one cache group: `default` switched off, and one user per client
with only the commands that client sends, each with its own Secrets Manager password.

The access strings are Redis ACL rules (ElastiCache passes them to the engine); the tests
load them into a local server with ACL SETUSER and run each client through them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

# ElastiCache requires a user named `default` in every user group: this one may do nothing.
DEFAULT_ACCESS = "off -@all"
# The service (Fargate tasks, switched boxes; runtime/service/prostudio/redis_cache.py): cache
# reads and writes, the readiness PING, and the connection's name.
SERVICE_ACCESS = "on ~* resetchannels -@all +ping +mget +set +client|setname"
# The cutover's copy, follow and verification (runtime/redis_copy), on either side: INFO and
# DBSIZE (preflight), SCAN/TIME/PTTL/DUMP/RESTORE/DEL (copy), the keyspace channel and the
# target's invalidation channel with CLIENT ID/TRACKING (follow), EVAL and the reads its
# scripts and the stream comparison make (verification). No CONFIG: ElastiCache refuses it
# (an access string naming it is rejected); keyspace notifications come from the parameter
# group, and SET writes the probe key that proves them (copy_preflight.ensure_notifications).
FOLLOW_ACCESS = (
    "on ~* resetchannels &__keyspace@0__:* &__redis__:invalidate -@all "
    "+ping +info +dbsize +randomkey +scan +time +pttl +dump +restore +set +del +type +exists "
    "+eval +get +hgetall +lrange +smembers +zrange +xrange +xinfo|groups "
    "+psubscribe +subscribe +client|id +client|tracking"
)
ACCESS = {"default": DEFAULT_ACCESS, "service": SERVICE_ACCESS, "follow": FOLLOW_ACCESS}
# ElastiCache's RBAC guide: users and groups of a Valkey cache still take the engine "redis".
USER_ENGINE = "redis"


@dataclass(frozen=True)
class RedisLogin:
    """What one client sends to log in: a username (None: the AUTH token's default user)
    and the secret holding its password."""

    username: str | None
    secret: secretsmanager.ISecret


class CacheUsers(Construct):
    """A user group of three users; `service` and `follow` are the logins clients use."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        group_id: str,
        user_id: dict[str, str],
        description: str,
        encryption_key: kms.IKey | None,
    ) -> None:
        super().__init__(scope, id_)
        self.secrets: dict[str, secretsmanager.Secret] = {}
        users = []
        for name, access in ACCESS.items():
            secret = secretsmanager.Secret(
                self,
                f"{name.title()}Password",
                description=f"password of ElastiCache user {name} of {description}",
                encryption_key=encryption_key,
                # 16-128 printable characters, none of , " / @ (ElastiCache RBAC passwords).
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=64, exclude_punctuation=True
                ),
            )
            user = elasticache.CfnUser(
                self,
                f"{name.title()}User",
                engine=USER_ENGINE,
                user_id=user_id[name],
                user_name=name,
                access_string=access,
                authentication_mode={
                    "Type": "password",
                    "Passwords": [secret.secret_value.unsafe_unwrap()],
                },
            )
            self.secrets[name] = secret
            users.append(user)
        self.group = elasticache.CfnUserGroup(
            self,
            "Group",
            engine=USER_ENGINE,
            user_group_id=group_id,
            user_ids=[user.ref for user in users],
        )
        self.service = RedisLogin("service", self.secrets["service"])
        self.follow = RedisLogin("follow", self.secrets["follow"])
