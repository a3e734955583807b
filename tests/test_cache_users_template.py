"""Both cache groups' ElastiCache users in the synthesized templates: one user group per
group with `default` off, `service` and `follow` with the access strings the real-server
tests prove (tests/redis_copy/test_cache_users.py), each with its own generated password,
and every client sending its own user."""

from __future__ import annotations

import json
from typing import Any

import pytest
from synth_support import FLAG_COMBINATIONS, resources_of_type, synthesize

from infra.constructs.cache_users import ACCESS
from infra.parameters import PRODUCTION_NAMES

Template = dict[str, Any]
GROUPS = {"ZeroCostStack": "zero-cost-cache", "ProdStack": "prod-cache"}
# ElastiCache RBAC passwords: 16-128 printable characters, none of , " / @ (NOTES).
FORBIDDEN_IN_PASSWORDS = ',"/@'


@pytest.fixture(scope="module")
def migration() -> dict[str, Template]:
    synthesis = synthesize(**FLAG_COMBINATIONS["phase3-migration"])
    assert synthesis.error is None, synthesis.error
    return synthesis.templates


def _one(template: Template, kind: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = resources_of_type(template, kind).items()
    return logical_id, resource


@pytest.mark.parametrize("stack", sorted(GROUPS))
def test_each_group_authenticates_with_its_own_users_default_off(
    migration: dict[str, Template], stack: str
) -> None:
    template = migration[stack]
    group_id, group = _one(template, "AWS::ElastiCache::UserGroup")
    _, replication_group = _one(template, "AWS::ElastiCache::ReplicationGroup")
    properties = replication_group["Properties"]
    assert properties["UserGroupIds"] == [{"Ref": group_id}]
    assert "AuthToken" not in properties
    assert properties["TransitEncryptionEnabled"] is True
    assert group["Properties"]["UserGroupId"] == PRODUCTION_NAMES.cache_user_group(GROUPS[stack])

    users = resources_of_type(template, "AWS::ElastiCache::User")
    assert sorted(group["Properties"]["UserIds"], key=json.dumps) == sorted(
        ({"Ref": logical_id} for logical_id in users), key=json.dumps
    )
    by_name = {user["Properties"]["UserName"]: user["Properties"] for user in users.values()}
    assert set(by_name) == {"default", "service", "follow"}
    secrets = resources_of_type(template, "AWS::SecretsManager::Secret")
    seen_secrets = set()
    for name, user in by_name.items():
        assert user["AccessString"] == ACCESS[name]
        assert user["UserId"] == PRODUCTION_NAMES.cache_user(GROUPS[stack], name)
        assert user["Engine"] == "redis"
        assert user["AuthenticationMode"]["Type"] == "password"
        (password,) = user["AuthenticationMode"]["Passwords"]
        (secret,) = [
            logical_id
            for logical_id in secrets
            if json.dumps({"Ref": logical_id}) in json.dumps(password)
        ]
        seen_secrets.add(secret)
        generator = secrets[secret]["Properties"]["GenerateSecretString"]
        assert generator["ExcludePunctuation"] is True
        assert 16 <= generator["PasswordLength"] <= 128
    assert len(seen_secrets) == 3, "each user has a password of its own"
    assert by_name["default"]["AccessString"].split()[0] == "off"


def test_the_clients_send_their_own_user(migration: dict[str, Template]) -> None:
    prod, zero_cost = migration["ProdStack"], migration["ZeroCostStack"]
    service_password = next(
        logical_id
        for logical_id in resources_of_type(prod, "AWS::SecretsManager::Secret")
        if logical_id.startswith("CacheUsersServicePassword")
    )
    follow_password = service_password.replace("Service", "Follow").split("Password")[0]
    _, task = _one(prod, "AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    environment = {item["Name"]: item["Value"] for item in container["Environment"]}
    injected = {item["Name"]: item["ValueFrom"] for item in container["Secrets"]}
    assert environment["REDIS_USERNAME"] == "service"
    assert injected["REDIS_AUTH_TOKEN"] == {"Ref": service_password}

    cutover = json.dumps(
        [
            document
            for document in resources_of_type(prod, "AWS::SSM::Document").values()
            if "redis-cutover.sh" in json.dumps(document)
        ]
    )
    for assignment in ("OLD_USER=follow", "NEW_USER=follow", "NEW_SERVICE_USER=service"):
        assert assignment in cutover
    assert f'NEW_SECRET_ARN=\'", {{"Ref": "{follow_password}' in cutover
    assert f'NEW_SERVICE_SECRET_ARN=\'", {{"Ref": "{service_password}"}}' in cutover

    boxes = json.dumps(zero_cost)
    assert '"REDIS_USERNAME": "service"' in boxes


def test_a_group_created_with_an_auth_token_keeps_it_and_its_clients_send_no_user() -> None:
    synthesis = synthesize(
        **FLAG_COMBINATIONS["phase3-migration"], cache_auth_token="ZeroCostStack,ProdStack"
    )
    assert synthesis.error is None, synthesis.error
    for template in synthesis.templates.values():
        assert resources_of_type(template, "AWS::ElastiCache::User") == {}
        _, replication_group = _one(template, "AWS::ElastiCache::ReplicationGroup")
        assert "AuthToken" in replication_group["Properties"]
        assert "UserGroupIds" not in replication_group["Properties"]
        assert "REDIS_USERNAME" not in json.dumps(template)
    cutover = json.dumps(synthesis.template("ProdStack"))
    assert "OLD_USER='' NEW_USER='' NEW_SERVICE_USER='' " in cutover
