"""The migration monitor against the local stand-ins: the box's topology (nginx, gunicorn,
redis-server), a second redis-server as the new cache, and moto for Route53, CloudWatch, ECS."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from local_service import local_service
from moto import mock_aws
from rich.console import Console
from shift_control import Decision, write_decision
from shift_engine import ShiftContext, ShiftRequest, start
from test_cost import load_script

from devtools.redis_servers import RedisServer, start_redis
from devtools.topology import LocalTopology

monitor = load_script("monitor_migration")
NAME = "api.example.com"


@pytest.fixture(scope="module")
def old_tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTopology]:
    topology = local_service(tmp_path_factory.mktemp("old-tier"), api_workers=1)
    topology.start()
    yield topology
    topology.stop()


@pytest.fixture(scope="module")
def new_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("new-redis"))
    yield server
    server.stop()


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        route53 = boto3.client("route53", region_name="us-east-1")
        zone = route53.create_hosted_zone(Name="example.com", CallerReference="monitor")
        zone_id = zone["HostedZone"]["Id"].split("/")[-1]
        changes = [
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": NAME,
                    "Type": "A",
                    "SetIdentifier": set_id,
                    "Weight": weight,
                    "TTL": 60,
                    "ResourceRecords": [{"Value": address}],
                },
            }
            for set_id, weight, address in (("old", 70, "192.0.2.1"), ("new", 30, "192.0.2.2"))
        ]
        route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        for name in ("prostudio-p99", "prostudio-5xx"):
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                MetricName="TargetResponseTime",
                Namespace="AWS/ApplicationELB",
                Statistic="Average",
                Period=60,
                EvaluationPeriods=1,
                Threshold=0.1,
                ComparisonOperator="GreaterThanThreshold",
            )
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(
            family="api", containerDefinitions=[{"name": "api", "image": "api", "memory": 512}]
        )
        ecs.create_service(cluster="prod", serviceName="api", taskDefinition="api", desiredCount=2)
        yield {"zone_id": zone_id, "cloudwatch": cloudwatch}


def arguments(
    old_tier: LocalTopology, new_redis: RedisServer, aws: dict[str, Any], follow: Path
) -> list[str]:
    return [
        "--old-url", f"http://127.0.0.1:{old_tier.nginx_port}/health",
        "--old-redis", f"redis://:{old_tier.redis_password}@127.0.0.1:{old_tier.redis_port}/0",
        "--new-redis", new_redis.url,
        "--follow-status", str(follow),
        "--zone-id", aws["zone_id"], "--name", NAME,
        "--alarm-prefix", "prostudio-",
        "--cluster", "prod", "--service", "api",
        "--region", "us-east-1",
    ]  # fmt: skip


def follow_line(path: Path, **fields: Any) -> None:
    status = {"state": "following", "lag_keys": 0, "applied": 10, "lag_ms": 3, "resyncs": 0}
    path.write_text(json.dumps({**status, **fields}) + "\n")


def test_once_reports_every_section_and_exits_0_when_all_is_well(
    old_tier: LocalTopology,
    new_redis: RedisServer,
    aws: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new_redis.client().flushall()
    new_redis.client().set("k1", "v")
    new_redis.client().set("k2", "v")
    new_redis.client().get("k1")
    follow = tmp_path / "follow.jsonl"
    follow_line(follow, lag_keys=4)
    code = monitor.main([*arguments(old_tier, new_redis, aws, follow), "--once", "--json"])
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ecs = shown["ecs"]
    expected_ok = ecs["running"] >= ecs["desired"]
    assert shown["endpoints"]["old"]["status"] == 200
    assert shown["endpoints"]["old"]["latency_ms"] > 0
    assert shown["redis"]["new"]["keys"] == 2
    assert shown["redis"]["new"]["hit_rate"] is not None
    assert shown["redis"]["old"]["up"] is True
    assert shown["follow"]["lag_keys"] == 4 and shown["follow"]["state"] == "following"
    assert shown["dns"]["old"]["weight"] == 70 and shown["dns"]["new"]["weight"] == 30
    assert set(shown["alarms"]) == {"prostudio-p99", "prostudio-5xx"}
    assert ecs["desired"] == 2
    assert shown["healthy"] is expected_ok
    assert code == (0 if expected_ok else 1)


def test_an_alarm_a_lagging_follow_and_a_dead_endpoint_make_once_exit_1(
    old_tier: LocalTopology,
    new_redis: RedisServer,
    aws: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws["cloudwatch"].set_alarm_state(
        AlarmName="prostudio-p99", StateValue="ALARM", StateReason="test"
    )
    follow = tmp_path / "follow.jsonl"
    follow_line(follow, lag_keys=50_000)
    argv = arguments(old_tier, new_redis, aws, follow)
    argv += ["--new-url", "http://127.0.0.1:9/health", "--once", "--json"]
    assert monitor.main(argv) == 1
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    problems = " | ".join(shown["problems"])
    assert "alarm prostudio-p99: ALARM" in problems
    assert "lag 50000 keys" in problems
    assert "http://127.0.0.1:9/health: unreachable" in problems
    assert shown["healthy"] is False


def test_a_stale_follow_status_is_unhealthy(tmp_path: Path) -> None:
    follow = tmp_path / "follow.jsonl"
    follow_line(follow)
    stale = time.time() - 120
    os.utime(follow, (stale, stale))
    problems: list[str] = []
    monitor.check_follow(follow, 1000, 30, problems)
    assert problems and "no status line for" in problems[0]


def test_the_terminal_view_shows_both_sides(
    old_tier: LocalTopology, new_redis: RedisServer, aws: dict[str, Any], tmp_path: Path
) -> None:
    follow = tmp_path / "follow.jsonl"
    follow_line(follow)
    args = monitor.parse_args(arguments(old_tier, new_redis, aws, follow))
    watcher = monitor.Monitor(args, lambda service: boto3.client(service, region_name="us-east-1"))
    console = Console(width=120, record=True)
    console.print(monitor.render(watcher.round()))
    text = console.export_text()
    for expected in ("health", "hit_rate", "weight", "follow", "ECS tasks", "prostudio-p99"):
        assert expected in text


def test_bad_options_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        monitor.parse_args(["--zone-id", "Z1"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("error: --zone-id and --name go together")
    assert monitor.main(["--old-redis", "http://nope", "--once"]) == 2


def test_the_view_shows_an_operators_decision_and_who_made_it(aws: dict[str, Any]) -> None:
    # Given a shift in flight that an operator paused through the control record
    route53 = boto3.client("route53", region_name="us-east-1")
    request = ShiftRequest(aws["zone_id"], NAME, "old", "new", target=50, step=10,
                           interval_seconds=60, use_health_check=False)  # fmt: skip
    ctx = ShiftContext(route53=route53)
    start(request, ctx, run_id="run-7", owner="cfn:ProdStack/TrafficShift")
    by = "arn:aws:sts::123456789012:assumed-role/Operators/alice"
    write_decision(ctx.records(request), Decision("pause", "run-7", by, 1_700_000_000))
    # When the monitor looks at the records
    args = monitor.parse_args(["--zone-id", aws["zone_id"], "--name", NAME, "--json", "--once"])
    watcher = monitor.Monitor(args, lambda service: boto3.client(service, region_name="us-east-1"))
    result = watcher.round()
    # Then the JSON and the terminal view name the decision, its run and who made it
    control = result.to_dict()["dns"]["control"]
    assert control == {"decision": "pause", "run": "run-7", "by": by, "at": 1_700_000_000,
                       "applies": True}  # fmt: skip
    console = Console(width=200, record=True)
    console.print(monitor.render(result))
    assert f"pause by {by} at 2023-11-14 22:13:20Z" in console.export_text()
