"""The public name as two weighted records, each in the stack that owns the entry it points at.

"old" lives in ZeroCostStack beside the zero-cost entry (the box's Elastic IP, or the zero-cost
ALB), so turning an increment on or off moves the record in the same deploy that moves the
entry. "new" lives in ProdStack beside the production ALB. Each stack imports the hosted zone
from the committed settings (`public_zone`); neither reads the other's record or entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from constructs import Construct, IDependable

from infra import parameters
from infra.config import DnsSettings
from infra.thresholds import INITIAL_NEW_WEIGHT, INITIAL_OLD_WEIGHT, RECORD_TTL_SECONDS

OLD = parameters.OLD_SET_ID
NEW = parameters.NEW_SET_ID
# Construct ids: the records' logical IDs (DnsOldRecord..., DnsNewRecord...) are pinned.
DNS_ID = "Dns"
OLD_RECORD_ID = "OldRecord"
NEW_RECORD_ID = "NewRecord"


@dataclass(frozen=True)
class AliasEntry:
    """An entry reached by alias (a load balancer): its DNS name and canonical zone id."""

    dns_name: str
    hosted_zone_id: str


def public_zone(scope: Construct, dns: DnsSettings) -> route53.IHostedZone:
    """The hosted zone of the public name, as the committed settings name it."""
    return route53.HostedZone.from_hosted_zone_attributes(
        scope, "Zone", hosted_zone_id=dns.hosted_zone_id, zone_name=dns.zone_name
    )


class WeightedDns(Construct):
    """One stack's weighted record of the public name.

    Records are created with weights 100 ("old") and 0 ("new") and those numbers never change
    in the template. CloudFormation rewrites a record only when its template properties change,
    so weights set later by the traffic shift survive every ordinary deploy.
    """

    def __init__(
        self, scope: Construct, id_: str, *, zone: route53.IHostedZone, domain_name: str
    ) -> None:
        super().__init__(scope, id_)
        self.domain_name = domain_name
        self.zone = zone
        self.old_record: route53.CfnRecordSet | None = None
        self.new_record: route53.CfnRecordSet | None = None

    def add_old(
        self, *, alias: AliasEntry | None, address: str | None, after: list[IDependable]
    ) -> route53.CfnRecordSet:
        """The zero-cost entry's record: by alias to its ALB, or an A record of the box's
        address. It changes only once everything in `after` (the path that admits the
        internet to the entry) is in place."""
        self.old_record = self._record(
            OLD_RECORD_ID, OLD, INITIAL_OLD_WEIGHT, alias=alias, address=address
        )
        self.old_record.node.add_dependency(*after)
        return self.old_record

    def add_new(
        self, load_balancer: elbv2.IApplicationLoadBalancer, *, after: list[IDependable]
    ) -> route53.CfnRecordSet:
        """The production record, by alias to its load balancer, created at weight 0 once
        everything in `after` (the listener and the service behind it) is in place."""
        self.new_record = self._record(
            NEW_RECORD_ID,
            NEW,
            INITIAL_NEW_WEIGHT,
            alias=AliasEntry(
                dns_name=load_balancer.load_balancer_dns_name,
                hosted_zone_id=load_balancer.load_balancer_canonical_hosted_zone_id,
            ),
            address=None,
        )
        self.new_record.node.add_dependency(*after)
        return self.new_record

    def _record(
        self,
        id_: str,
        set_identifier: str,
        weight: int,
        *,
        alias: AliasEntry | None,
        address: str | None,
    ) -> route53.CfnRecordSet:
        return route53.CfnRecordSet(
            self,
            id_,
            hosted_zone_id=self.zone.hosted_zone_id,
            name=self.domain_name + ".",
            type="A",
            set_identifier=set_identifier,
            weight=weight,
            alias_target=(
                route53.CfnRecordSet.AliasTargetProperty(
                    dns_name=alias.dns_name,
                    hosted_zone_id=alias.hosted_zone_id,
                    evaluate_target_health=True,
                )
                if alias
                else None
            ),
            resource_records=[address] if address else None,
            ttl=None if alias else str(RECORD_TTL_SECONDS),
        )
