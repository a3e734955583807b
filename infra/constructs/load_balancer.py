"""An internet-facing ALB that serves HTTPS only and redirects HTTP."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.acknowledgements import LOAD_BALANCER, acknowledge

HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
METRICS_RULE_PRIORITY = 1


def site_certificate(
    scope: Construct,
    id_: str,
    *,
    domain_name: str,
    certificate_arn: str,
    zone: route53.IHostedZone | None,
) -> acm.ICertificate:
    """An imported certificate when an ARN is given, else one DNS-validated in the zone."""
    if certificate_arn:
        return acm.Certificate.from_certificate_arn(scope, id_, certificate_arn)
    if zone is None:
        raise ValueError("a certificate needs certificate_arn or a hosted zone to validate in")
    return acm.Certificate(
        scope,
        id_,
        domain_name=domain_name,
        validation=acm.CertificateValidation.from_dns(zone),
    )


class LoadBalancer(Construct):
    """HTTPS on 443 with a TLS 1.2/1.3 policy, HTTP 301 to HTTPS, invalid headers dropped,
    access logs to an encrypted bucket, and targets health-checked on /health."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        certificate: acm.ICertificate,
        deletion_protection: bool,
    ) -> None:
        super().__init__(scope, id_)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(90),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.alb = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=vpc,
            vpc_subnets=subnets,
            internet_facing=True,
            drop_invalid_header_fields=True,
            deletion_protection=deletion_protection,
        )
        self.alb.log_access_logs(self.access_logs)
        self.https = self.alb.add_listener(
            "Https",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            open=True,
        )
        # Prometheus metrics are for scrapers inside the VPC, never for the internet.
        self.https.add_action(
            "RefuseMetrics",
            priority=METRICS_RULE_PRIORITY,
            conditions=[elbv2.ListenerCondition.path_patterns([METRICS_PATH, METRICS_PATH + "/*"])],
            action=elbv2.ListenerAction.fixed_response(
                403, content_type="text/plain", message_body="metrics are private\n"
            ),
        )
        self.alb.add_redirect(
            source_protocol=elbv2.ApplicationProtocol.HTTP,
            source_port=80,
            target_protocol=elbv2.ApplicationProtocol.HTTPS,
            target_port=443,
        )
        self.connections = self.alb.connections
        acknowledge(self, LOAD_BALANCER)

    def forward_to(
        self,
        id_: str,
        *,
        port: int,
        targets: Sequence[elbv2.IApplicationLoadBalancerTarget],
        deregistration_seconds: int = 30,
    ) -> elbv2.ApplicationTargetGroup:
        """Send all HTTPS traffic to these targets, health-checked on /health."""
        return self.https.add_targets(
            id_,
            port=port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=list(targets),
            deregistration_delay=Duration.seconds(deregistration_seconds),
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
        )
