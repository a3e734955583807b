"""Stateful resources keep their logical IDs: a new ID means CloudFormation replaces them."""

from __future__ import annotations

import pytest
from synth_support import REAL_ZONE, synthesize

PINNED = {
    "NetworkVpc7FB7348F": "AWS::EC2::VPC",
    "NetworkVpcpublicSubnet1Subnet00617657": "AWS::EC2::Subnet",
    "NetworkVpcpublicSubnet2SubnetDCAA7C9A": "AWS::EC2::Subnet",
    "NetworkVpcappSubnet1SubnetE208FB5D": "AWS::EC2::Subnet",
    "NetworkVpcappSubnet2SubnetC46F4198": "AWS::EC2::Subnet",
    "NetworkVpcdataSubnet1SubnetE7C988E9": "AWS::EC2::Subnet",
    "NetworkVpcdataSubnet2Subnet7A99E9BE": "AWS::EC2::Subnet",
    "WebBoxB619B63F": "AWS::EC2::Instance",
    "WebElasticIpB7D40D0A": "AWS::EC2::EIP",
}
PINNED_WHEN_SEPARATE_REDIS = {
    "CacheReplicationGroupBFE59FF3": "AWS::ElastiCache::ReplicationGroup",
    # The users' passwords: a new secret is a new password the clients do not have yet.
    "CacheUsersGroup9DFFF292": "AWS::ElastiCache::UserGroup",
    "CacheUsersServicePassword52D129FD": "AWS::SecretsManager::Secret",
    "CacheUsersFollowPassword7611507D": "AWS::SecretsManager::Secret",
}
PINNED_WHEN_TWO_BOXES = {"WebBox293410087": "AWS::EC2::Instance"}
# The public name's "old" record, once the zone is real (it kept the ID it had in ProdStack).
PINNED_WITH_A_ZONE = {"DnsOldRecord2BEFB3CF": "AWS::Route53::RecordSet"}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"phase": 1}, PINNED),
        ({"phase": 1, "separate_redis": "true"}, PINNED | PINNED_WHEN_SEPARATE_REDIS),
        (
            {"phase": 2},
            PINNED | PINNED_WHEN_SEPARATE_REDIS | PINNED_WHEN_TWO_BOXES,
        ),
        ({"phase": 3}, PINNED | PINNED_WHEN_SEPARATE_REDIS | PINNED_WHEN_TWO_BOXES),
        ({"phase": 1, **REAL_ZONE}, PINNED | PINNED_WITH_A_ZONE),
        (
            {"phase": 3, **REAL_ZONE},
            PINNED | PINNED_WHEN_SEPARATE_REDIS | PINNED_WHEN_TWO_BOXES | PINNED_WITH_A_ZONE,
        ),
    ],
)
def test_stateful_logical_ids_are_pinned(
    flags: dict[str, object], expected: dict[str, str]
) -> None:
    resources = synthesize(**flags).template("ZeroCostStack")["Resources"]
    actual = {
        logical_id: resources[logical_id]["Type"]
        for logical_id in expected
        if logical_id in resources
    }
    assert actual == expected
