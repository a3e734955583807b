"""The ElastiCache users' access strings (infra/constructs/cache_users.py) loaded into a real
Valkey 9 (ElastiCache's default engine) with ACL SETUSER: each client does its whole job as
its own user, through its real code path, and is refused what it has no business doing.

Like ElastiCache's groups, the servers have `default` switched off and publish keyspace
notifications from their configuration; an `admin` user stands in for the test's own view.
"""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from copy_scale import FollowProcess, PacedWriter
from copy_testdata import keyspace_differences, populate_every_type, snapshot_keyspace
from local_service import local_service
from redis.exceptions import AuthenticationError, NoPermissionError
from test_redis_copy_cli import cli_env

from devtools.redis_servers import RedisServer, connect, start_redis, valkey_binary
from infra.constructs.cache_users import ACCESS

ADMIN = "admin"
PASSWORDS = {name: secrets.token_hex(24) for name in (ADMIN, *ACCESS)}
# ElastiCache refuses these for every user (its "restricted commands"); an access string that
# names one is rejected when the user is created.
ELASTICACHE_RESTRICTED = {
    "bgrewriteaof", "bgsave", "config", "debug", "migrate", "replicaof", "save", "slaveof",
    "shutdown", "sync", "psync",
}  # fmt: skip
# Access-string keywords ElastiCache does not take: passwords are set by its API.
ELASTICACHE_REFUSED_RULES = {"reset", "nopass", "resetpass"}
PASSWORD_RULE_PREFIXES = (">", "<", "#", "!")
KEYS = 100_000

pytestmark = pytest.mark.xdist_group("cache-users")


@dataclass
class Group:
    """Two Valkey servers holding the group's users: the copy's source and target."""

    source: RedisServer
    target: RedisServer
    workdir: Path

    def admin(self, server: RedisServer) -> redis.Redis:
        return connect(server.port, username=ADMIN, password=PASSWORDS[ADMIN])

    def login(self, server: RedisServer, user: str) -> redis.Redis:
        return connect(server.port, username=user, password=PASSWORDS[user])


def load_users(server: RedisServer) -> None:
    """An admin for the test, then the group's users exactly as the construct writes them;
    `default` last, since switching it off ends what the setup connection may do."""
    setup = server.client()
    setup.execute_command(
        "ACL", "SETUSER", ADMIN, "on", f">{PASSWORDS[ADMIN]}", "~*", "&*", "+@all"
    )
    for name in ("service", "follow", "default"):
        setup.execute_command(
            "ACL", "SETUSER", name, "reset", f">{PASSWORDS[name]}", *ACCESS[name].split()
        )


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    workdir = tmp_path_factory.mktemp("cache-users")
    servers = [
        start_redis(
            workdir / role,
            binary=valkey_binary(),
            # DEBUG left enabled, so that the ACL is what refuses it.
            extra_args=("--notify-keyspace-events", "AKE", "--enable-debug-command", "yes"),
        )
        for role in ("source", "target")
    ]
    try:
        for server in servers:
            load_users(server)
        yield Group(servers[0], servers[1], workdir)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def clean(group: Group) -> Iterator[Group]:
    for server in (group.source, group.target):
        admin = group.admin(server)
        admin.flushall()
        admin.acl_log_reset()
    yield group


def refusals(server: RedisServer, user: str) -> list[dict[str, Any]]:
    """The server's ACL log entries for `user`, other than redis-py's optional CLIENT SETINFO
    (sent on every connection, its refusal ignored by design)."""
    admin = connect(server.port, username=ADMIN, password=PASSWORDS[ADMIN])
    return [
        entry
        for entry in admin.acl_log(count=1000)
        if entry["username"] == user and entry["object"] != "client|setinfo"
    ]


def test_the_access_strings_are_ones_elasticache_takes() -> None:
    for name, access in ACCESS.items():
        rules = access.split()
        assert rules[0] == ("off" if name == "default" else "on"), name
        assert not set(rules) & ELASTICACHE_REFUSED_RULES, name
        assert not [rule for rule in rules if rule.startswith(PASSWORD_RULE_PREFIXES)], name
        named = {rule[1:].split("|")[0] for rule in rules if rule.startswith("+")}
        assert not named & ELASTICACHE_RESTRICTED, (name, named & ELASTICACHE_RESTRICTED)
        assert "+@all" not in rules and "allcommands" not in rules, name


def test_default_is_off_so_neither_its_password_nor_no_password_gets_in(clean: Group) -> None:
    with pytest.raises(AuthenticationError):
        clean.login(clean.target, "default").ping()
    with pytest.raises(AuthenticationError):
        connect(clean.target.port, password=PASSWORDS["default"]).ping()
    anonymous = connect(clean.target.port)
    with pytest.raises(redis.RedisError, match=r"(?i)auth"):
        anonymous.set("anonymous", "1")
    assert clean.admin(clean.target).exists("anonymous") == 0


def test_the_service_serves_through_nginx_and_gunicorn_as_its_user(
    clean: Group, tmp_path: Path
) -> None:
    """The real service (redis_cache.py's MGET/SET/PING and its connection name) behind nginx,
    pointed at the group as `service`: the readiness check, a miss that fills the cache, a hit."""
    environment = {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(clean.target.port),
        "REDIS_SOCKET": "",
        "REDIS_TLS": "false",
        "REDIS_USERNAME": "service",
        "REDIS_PASSWORD": PASSWORDS["service"],
    }
    with local_service(tmp_path / "service", extra_env=environment) as service:
        status, _, body = service.get("/health/ready")
        assert (status, body) == (200, b'{"status":"ready","redis":"ok"}')
        first = service.get("/api/v1/tracks/acl-track/waveform")
        second = service.get("/api/v1/tracks/acl-track/waveform")
        admin = clean.admin(clean.target)
        names = {client["name"] for client in admin.client_list() if client["user"] == "service"}
    assert first[0] == second[0] == 200
    assert first[2] == second[2]
    cached = [key for key in admin.keys("*") if b"acl-track" in key]
    assert cached, "the service wrote no cache entry"
    assert all(admin.ttl(key) > 0 for key in cached)
    assert names == {"prostudio"}, names
    assert refusals(clean.target, "service") == []


SERVICE_REFUSED = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "SET", "maxmemory", "1"),
    ("CONFIG", "GET", "*"),
    ("KEYS", "*"),
    ("SCAN", "0"),
    ("DEBUG", "SLEEP", "0"),
    ("DEL", "kept"),
    ("UNLINK", "kept"),
    ("EXPIRE", "kept", "1"),
    ("DUMP", "kept"),
    ("EVAL", "return redis.call('DEL', KEYS[1])", "1", "kept"),
    ("SUBSCRIBE", "anything"),
    ("PSUBSCRIBE", "__keyspace@0__:*"),
    ("PUBLISH", "anything", "x"),
    ("ACL", "SETUSER", "service", "+@all"),
    ("MODULE", "LIST"),
    ("REPLICAOF", "127.0.0.1", "1"),
    ("SHUTDOWN", "NOSAVE"),
    ("INFO",),
    ("CLIENT", "KILL", "TYPE", "normal"),
    ("MONITOR",),
]

FOLLOW_REFUSED = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "SET", "notify-keyspace-events", ""),
    ("CONFIG", "GET", "*"),
    ("KEYS", "*"),
    ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"),
    ("ACL", "SETUSER", "follow", "+@all"),
    ("MODULE", "LIST"),
    ("REPLICAOF", "127.0.0.1", "1"),
    ("MIGRATE", "127.0.0.1", "1", "kept", "0", "1"),
    ("SWAPDB", "0", "1"),
    ("MOVE", "kept", "1"),
    ("SCRIPT", "FLUSH"),
    ("FUNCTION", "FLUSH"),
    ("EXPIRE", "kept", "1"),
    ("SUBSCRIBE", "anything"),
    ("PUBLISH", "__keyspace@0__:kept", "del"),
    ("CLIENT", "KILL", "TYPE", "normal"),
    ("MONITOR",),
]


@pytest.mark.parametrize(
    ("user", "refused"), [("service", SERVICE_REFUSED), ("follow", FOLLOW_REFUSED)]
)
def test_each_user_is_refused_what_its_client_never_sends(
    clean: Group, user: str, refused: list[tuple[str, ...]]
) -> None:
    admin = clean.admin(clean.target)
    admin.set("kept", "value")
    client = clean.login(clean.target, user)
    client.ping()
    allowed = []
    for command in refused:
        try:
            client.execute_command(*command)
        except NoPermissionError:
            continue
        allowed.append(command)
    assert allowed == [], f"{user} may run {allowed}"
    assert admin.get("kept") == b"value" and admin.ttl("kept") == -1
    assert admin.dbsize() == 1
    assert len(refusals(clean.target, user)) == len(refused)


@pytest.mark.slow
def test_the_follow_copies_follows_and_verifies_as_its_user_on_both_sides(
    clean: Group,
) -> None:
    """migrate-redis --follow as `follow` on both servers, 100,000 keys of every type under
    live writes on the source and a switched box writing the target as `service`."""
    # Given 100,000 keys of every type on the source
    source, target = clean.admin(clean.source), clean.admin(clean.target)
    populate_every_type(source, KEYS)
    environment = cli_env() | {
        "SOURCE_REDIS_PASSWORD": PASSWORDS["follow"],
        "TARGET_REDIS_PASSWORD": PASSWORDS["follow"],
    }
    writer = PacedWriter(source, KEYS, rate=2000)
    switched = clean.login(clean.target, "service")
    box_writes: dict[str, str] = {}

    # When the follow runs as `follow`, the source keeps changing and a box writes the target
    run = FollowProcess(
        clean.workdir / "follow",
        "--source", clean.source.url, "--target", clean.target.url,
        "--source-user", "follow", "--target-user", "follow",
        env=environment,
    )  # fmt: skip
    try:
        writer.start()
        run.wait_for(lambda s: s["state"] == "following", "following")
        for n in range(50):
            box_writes[f"box:{n}"] = f"written by a switched box {n}"
            switched.set(f"box:{n}", box_writes[f"box:{n}"], ex=3600)
        time.sleep(1)
        writer.halt.set()
        writer.join(30)
        run.wait_for(
            lambda s: s["state"] == "following" and s["lag_keys"] == 0, "caught up", timeout=120
        )
        run.signal(signal.SIGTERM)
        code = run.wait(timeout=300)
    finally:
        writer.halt.set()
        run.kill()

    # Then it drained and verified, and the target is the source key by key, plus the box's
    assert writer.error is None, writer.error
    assert writer.writes > 0
    assert code == 0, run.stderr
    summary = run.statuses[-1][1]
    assert summary["ok"] is True and summary["mismatched"] == 0, summary
    expected = snapshot_keyspace(source)
    actual = snapshot_keyspace(target)
    assert len(expected) >= KEYS
    for key, value in box_writes.items():
        assert actual.pop(key.encode())[1] == value.encode()
    assert keyspace_differences(expected, actual) == []
    assert not [key for key in source.scan_iter("prostudio:follow-probe:*")]
    # And the servers refused the follow nothing but CONFIG GET, whose refusal (ElastiCache
    # blocks CONFIG) sends it to its probe key
    assert {entry["object"] for entry in refusals(clean.source, "follow")} == {"config|get"}
    assert refusals(clean.target, "follow") == []
    assert refusals(clean.target, "service") == []


def test_the_follow_subscribes_only_to_its_two_channels(clean: Group) -> None:
    follow = clean.login(clean.source, "follow")
    pubsub = follow.pubsub()
    pubsub.psubscribe("__keyspace@0__:*")
    pubsub.subscribe("__redis__:invalidate")
    pubsub.close()
    for channel in ("*", "__keyspace@1__:*", "__keyevent@0__:*"):
        other = clean.login(clean.source, "follow").pubsub()
        other.psubscribe(channel)
        with pytest.raises(NoPermissionError):
            other.get_message(timeout=2)
        other.close()


def test_a_password_the_user_does_not_have_is_refused(clean: Group) -> None:
    with pytest.raises(AuthenticationError):
        connect(clean.target.port, username="follow", password=PASSWORDS["service"]).ping()
