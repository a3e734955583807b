"""Dashboard and alarms for the migration guide's success criteria, notified to SNS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.thresholds import P99_LATENCY_SECONDS, SERVER_ERROR_PERCENT

ERROR_METRIC = "ServiceErrors"
MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)
# The guide's success criteria: p99 and 5xx in infra/thresholds.py, Redis hit rate over 90%.
CACHE_HIT_RATE_PERCENT = 90
CPU_PERCENT = 80
MEMORY_PERCENT = 80
REPLICATION_LAG_SECONDS = 1


@dataclass(frozen=True)
class RedisNodes:
    """The cache nodes of a replication group: ElastiCache reports per node, by the member
    cluster ids `<group id>-001`, `-002`, ... of a group without shards."""

    replication_group_id: str
    node_count: int

    def cluster_ids(self) -> list[str]:
        return [
            f"{self.replication_group_id}-{index:03d}" for index in range(1, self.node_count + 1)
        ]


class Monitoring(Construct):
    """Alarms (to a KMS-encrypted SNS topic) and one dashboard.

    Every alarm treats missing data as not breaching: a weight-0 production has no traffic,
    and the latency, 5xx and unhealthy-target alarms are the traffic shift's health gates,
    which read INSUFFICIENT_DATA as unhealthy.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        service: ecs.FargateService,
        log_group: logs.ILogGroup,
        redis: RedisNodes,
        alarm_email: str,
        metric_namespace: str,
    ) -> None:
        super().__init__(scope, id_)
        self._namespace = metric_namespace
        self._redis = redis
        self.topic = self._topic(alarm_email)
        self._action = actions.SnsAction(self.topic)
        # The gate alarms by their literal names (what ECS's deployment alarms take).
        self.named_alarms: dict[str, cloudwatch.Alarm] = {}
        alb = load_balancer.metrics
        self.latency_alarm = self._alarm(
            "P99Latency",
            alb.target_response_time(statistic="p99", period=MINUTE),
            threshold=P99_LATENCY_SECONDS,
            description=f"ALB target p99 latency above {P99_LATENCY_SECONDS * 1000:.0f} ms",
            named=True,
        )
        self.server_errors_alarm = self._alarm(
            "ServerErrorRate",
            cloudwatch.MathExpression(
                expression="100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests",
                using_metrics={
                    "target5xx": alb.http_code_target(
                        elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=MINUTE
                    ),
                    "elb5xx": alb.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=MINUTE),
                    "requests": alb.request_count(period=MINUTE),
                },
                label="5xx % of requests",
                period=MINUTE,
            ),
            threshold=SERVER_ERROR_PERCENT,
            description=f"More than {SERVER_ERROR_PERCENT}% of requests answered 5xx",
            named=True,
        )
        self.unhealthy_targets_alarm = self._alarm(
            "UnhealthyTargets",
            target_group.metrics.unhealthy_host_count(statistic="Maximum", period=MINUTE),
            threshold=0,
            description="A service task fails its /health check",
            named=True,
        )
        self.service_cpu_alarm = self._alarm(
            "ServiceCpu",
            service.metric_cpu_utilization(period=MINUTE),
            threshold=CPU_PERCENT,
            description=f"Service CPU above {CPU_PERCENT}% (autoscaling is at its maximum?)",
        )
        self.service_memory_alarm = self._alarm(
            "ServiceMemory",
            service.metric_memory_utilization(period=MINUTE),
            threshold=MEMORY_PERCENT,
            description=f"Service memory above {MEMORY_PERCENT}%",
        )
        self.error_logs_alarm = self._alarm(
            "ErrorLogs",
            self._error_metric(log_group),
            threshold=0,
            periods=(1, 1),
            description="The service logged an ERROR line (the guide asks for none in 24 h)",
        )
        self.cache_alarms = self._cache_alarms()
        self.gate_alarms: tuple[cloudwatch.Alarm, ...] = (
            self.latency_alarm,
            self.server_errors_alarm,
            self.unhealthy_targets_alarm,
        )
        self.alarms = [
            self.latency_alarm,
            self.server_errors_alarm,
            self.unhealthy_targets_alarm,
            self.service_cpu_alarm,
            self.service_memory_alarm,
            self.error_logs_alarm,
            *self.cache_alarms,
        ]
        self.dashboard = self._dashboard()

    def _topic(self, alarm_email: str) -> sns.Topic:
        key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the ProStudio production alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # CloudWatch publishes to an encrypted topic only when the key lets it.
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        topic = sns.Topic(
            self,
            "Topic",
            display_name="ProStudio production alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _alarm(
        self,
        id_: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        periods: tuple[int, int] = (3, 5),
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        ),
        named: bool = False,
    ) -> cloudwatch.Alarm:
        """Alarm when `periods[0]` of the last `periods[1]` datapoints breach. A `named` alarm
        gets `<stack name>-<id>`: the service's deployment alarms name it, and a generated name
        (a reference to the alarm) there draws CDK's circular-dependency notice on every synth."""
        datapoints, evaluation_periods = periods
        name = f"{Stack.of(self).stack_name}-{id_}" if named else None
        alarm = cloudwatch.Alarm(
            self,
            id_,
            alarm_name=name,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            datapoints_to_alarm=datapoints,
            evaluation_periods=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        if name:
            self.named_alarms[name] = alarm
        alarm.add_ok_action(self._action)
        return alarm

    def _error_metric(self, log_group: logs.ILogGroup) -> cloudwatch.Metric:
        """structlog writes one JSON object per line; errors carry "level": "error"."""
        errors = logs.MetricFilter(
            self,
            "ErrorFilter",
            log_group=log_group,
            filter_pattern=logs.FilterPattern.string_value("$.level", "=", "error"),
            metric_namespace=self._namespace,
            metric_name=ERROR_METRIC,
            metric_value="1",
            default_value=0,
        )
        return errors.metric(statistic="Sum", period=FIVE_MINUTES)

    def _cache_alarms(self) -> list[cloudwatch.Alarm]:
        hits = self._redis_metrics("CacheHits", "Sum", prefix="hits")
        misses = self._redis_metrics("CacheMisses", "Sum", prefix="misses")
        hit_rate = cloudwatch.MathExpression(
            expression=f"100 * ({_total(hits)}) / ({_total(hits)} + {_total(misses)})",
            using_metrics={**hits, **misses},
            label="Cache hit rate % (all nodes)",
            period=FIVE_MINUTES,
        )
        return [
            self._alarm(
                "CacheHitRate",
                hit_rate,
                threshold=CACHE_HIT_RATE_PERCENT,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                periods=(3, 3),
                description=f"Redis hit rate below {CACHE_HIT_RATE_PERCENT}% for 15 minutes",
            ),
            self._alarm(
                "CacheCpu",
                self._redis_max("EngineCPUUtilization"),
                threshold=CPU_PERCENT,
                description=f"Redis engine CPU above {CPU_PERCENT}% on a node",
            ),
            self._alarm(
                "CacheMemory",
                self._redis_max("DatabaseMemoryUsagePercentage"),
                threshold=MEMORY_PERCENT,
                description=f"Redis memory above {MEMORY_PERCENT}% of maxmemory on a node",
            ),
            self._alarm(
                "CacheEvictions",
                self._redis_total("Evictions"),
                threshold=0,
                periods=(1, 1),
                description="Redis evicted keys: the cache is too small for the data",
            ),
            self._alarm(
                "CacheReplicationLag",
                self._redis_max("ReplicationLag"),
                threshold=REPLICATION_LAG_SECONDS,
                description=f"A replica lags the primary by over {REPLICATION_LAG_SECONDS} s",
            ),
        ]

    def _redis_metrics(
        self, name: str, statistic: str, prefix: str = "node"
    ) -> dict[str, cloudwatch.IMetric]:
        return {
            f"{prefix}{index}": cloudwatch.Metric(
                namespace="AWS/ElastiCache",
                metric_name=name,
                dimensions_map={"CacheClusterId": cluster_id},
                statistic=statistic,
                period=FIVE_MINUTES,
            )
            for index, cluster_id in enumerate(self._redis.cluster_ids(), start=1)
        }

    def _redis_max(self, name: str) -> cloudwatch.MathExpression:
        """The worst node: the primary moves on failover, so every node is watched."""
        nodes = self._redis_metrics(name, "Maximum")
        return cloudwatch.MathExpression(
            expression=f"MAX([{', '.join(nodes)}])",
            using_metrics=nodes,
            label=f"{name} (max over nodes)",
            period=FIVE_MINUTES,
        )

    def _redis_total(self, name: str) -> cloudwatch.MathExpression:
        nodes = self._redis_metrics(name, "Sum")
        return cloudwatch.MathExpression(
            expression=_total(nodes),
            using_metrics=nodes,
            label=f"{name} (all nodes)",
            period=FIVE_MINUTES,
        )

    def _dashboard(self) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24)
        )
        dashboard.add_widgets(
            *self._graphs(
                [
                    ("ALB p99 latency (s)", self.latency_alarm),
                    ("5xx % of requests", self.server_errors_alarm),
                    ("Unhealthy tasks", self.unhealthy_targets_alarm),
                    ("Service CPU %", self.service_cpu_alarm),
                    ("Service memory %", self.service_memory_alarm),
                    ("ERROR log lines", self.error_logs_alarm),
                ]
            )
        )
        dashboard.add_widgets(
            *self._graphs([(alarm.node.id, alarm) for alarm in self.cache_alarms])
        )
        return dashboard

    def show(self, title: str, alarms: Sequence[cloudwatch.IAlarm]) -> None:
        """A row of the dashboard for alarms built elsewhere."""
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title=title, alarms=list(alarms), width=24)
        )

    @staticmethod
    def _graphs(
        panels: Sequence[tuple[str, cloudwatch.Alarm]],
    ) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.AlarmWidget(title=title, alarm=alarm, width=8) for title, alarm in panels
        ]


def _total(metrics: dict[str, cloudwatch.IMetric]) -> str:
    """The sum over nodes, a node without data counting as zero."""
    return " + ".join(f"FILL({metric_id}, 0)" for metric_id in metrics)
