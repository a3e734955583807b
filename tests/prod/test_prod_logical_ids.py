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
    "CacheAuthToken04672416": "AWS::SecretsManager::Secret",
    "DnsNewRecord42878D63": "AWS::Route53::RecordSet",
    "LoadBalancerAccessLogsB27DFC85": "AWS::S3::Bucket",
}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"phase": "3"}, IN_PRODUCTION),
        ({"phase": "3", "migrate_data": "true", "shift_traffic": "true"}, IN_PRODUCTION),
    ],
    ids=["phase3", "phase3-migration"],
)
def test_stateful_logical_ids_are_pinned(flags: dict[str, str], expected: dict[str, str]) -> None:
    resources = synthesize(**flags).template("ProdStack")["Resources"]
    actual = {
        logical_id: resources[logical_id]["Type"]
        for logical_id in expected
        if logical_id in resources
    }
    assert actual == expected
