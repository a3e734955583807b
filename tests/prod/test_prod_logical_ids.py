"""ProdStack's stateful resources keep their logical IDs: a new ID means CloudFormation
creates a new resource and deletes the old one (the cache's data, the key that encrypts its
snapshots, the public name's "new" record). A snapshot update would accept such a rename;
this test names each ID on purpose. (The "old" record lives in ZeroCostStack: its pin is in
tests/zero_cost/test_logical_ids.py.)"""

from __future__ import annotations

import pytest
from synth_support import synthesize

IN_PRODUCTION = {
    "CacheReplicationGroupBFE59FF3": "AWS::ElastiCache::ReplicationGroup",
    "CacheKeyA9E311EC": "AWS::KMS::Key",
    # The users and their passwords: a new secret is a new password the clients lack.
    "CacheUsersGroup9DFFF292": "AWS::ElastiCache::UserGroup",
    "CacheUsersDefaultUserD287F8B2": "AWS::ElastiCache::User",
    "CacheUsersServiceUser1C8CE385": "AWS::ElastiCache::User",
    "CacheUsersFollowUser828C0B2A": "AWS::ElastiCache::User",
    "CacheUsersDefaultPassword2B26DAA8": "AWS::SecretsManager::Secret",
    "CacheUsersServicePassword52D129FD": "AWS::SecretsManager::Secret",
    "CacheUsersFollowPassword7611507D": "AWS::SecretsManager::Secret",
    "DnsNewRecord42878D63": "AWS::Route53::RecordSet",
    "LoadBalancerAccessLogsB27DFC85": "AWS::S3::Bucket",
}
# A group created before ElastiCache users keeps its AUTH token and the token's secret.
WITH_AUTH_TOKEN = {
    **{k: v for k, v in IN_PRODUCTION.items() if not k.startswith("CacheUsers")},
    "CacheAuthToken04672416": "AWS::SecretsManager::Secret",
}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"phase": "3"}, IN_PRODUCTION),
        ({"phase": "3", "migrate_data": "true", "shift_traffic": "true"}, IN_PRODUCTION),
        ({"phase": "3", "cache_auth_token": "ProdStack"}, WITH_AUTH_TOKEN),
    ],
    ids=["phase3", "phase3-migration", "phase3-auth-token"],
)
def test_stateful_logical_ids_are_pinned(flags: dict[str, str], expected: dict[str, str]) -> None:
    resources = synthesize(**flags).template("ProdStack")["Resources"]
    actual = {
        logical_id: resources[logical_id]["Type"]
        for logical_id in expected
        if logical_id in resources
    }
    assert actual == expected
