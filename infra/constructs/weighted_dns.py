"""The public name as two weighted records: "old" (zero-cost entry) and "new" (production)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra import parameters
from infra.parameters import Names

OLD = parameters.OLD_SET_ID
NEW = parameters.NEW_SET_ID
# Route53 answers a weight of 0 only when every non-zero record is unhealthy.
INITIAL_OLD_WEIGHT = 100
INITIAL_NEW_WEIGHT = 0
# Shifted records must expire quickly; alias records have no TTL of their own.
RECORD_TTL_SECONDS = 60


@dataclass(frozen=True)
class AliasEntry:
    """An entry reached by alias (a load balancer): its DNS name and canonical zone id."""

    dns_name: str
    hosted_zone_id: str


class WeightedDns(Construct):
    """The "old" record exists in every phase (so rolling production back never removes the
    name); `add_new` adds the "new" one at phase 3.

    Both records are created with weights 100/0 and those numbers never change in the
    template. CloudFormation rewrites a record only when its template properties change,
    so weights set later by the traffic shift survive every ordinary deploy.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        zone: route53.IHostedZone,
        domain_name: str,
        old_entry_is_alias: bool,
        names: Names,
    ) -> None:
        super().__init__(scope, id_)
        self._names = names
        self.domain_name = domain_name
        self.zone = zone
        self.old_record = self._record(
            "OldRecord",
            OLD,
            INITIAL_OLD_WEIGHT,
            alias=self._old_alias() if old_entry_is_alias else None,
            address=None if old_entry_is_alias else self._read(names.old_entry_ip),
        )
        self.new_record: route53.CfnRecordSet | None = None

    def add_new(self, load_balancer: elbv2.IApplicationLoadBalancer) -> route53.CfnRecordSet:
        """The production record, by alias to its load balancer, created at weight 0."""
        self.new_record = self._record(
            "NewRecord",
            NEW,
            INITIAL_NEW_WEIGHT,
            alias=AliasEntry(
                dns_name=load_balancer.load_balancer_dns_name,
                hosted_zone_id=load_balancer.load_balancer_canonical_hosted_zone_id,
            ),
            address=None,
        )
        return self.new_record

    def _old_alias(self) -> AliasEntry:
        return AliasEntry(
            dns_name=self._read(self._names.old_entry_dns_name),
            hosted_zone_id=self._read(self._names.old_entry_hosted_zone_id),
        )

    def _read(self, name: str) -> str:
        return ssm.StringParameter.value_for_string_parameter(self, name)

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
