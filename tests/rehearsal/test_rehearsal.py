"""The short rehearsal (a few seconds per phase, no faults) end to end, and the harness's own
measuring pieces against real servers: the key-by-key comparison and the alarm evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, ReadOnlyError
from redis.retry import Retry
from rehearsal.alarms import ALARM_5XX, ALARM_P99, ALARM_UNHEALTHY, AlarmBridge
from rehearsal.compare import compare
from rehearsal.redis_group import PrimaryEndpoint, RedisGroup
from rehearsal.stands import wait_until

from devtools.redis_servers import start_redis

ROOT = Path(__file__).resolve().parents[2]

REQUIRED_FIELDS = {
    "ok", "requests", "failed", "keys_differing", "hit_rate_after", "rolled_back_on_5xx",
    "report",
}  # fmt: skip


@pytest.mark.slow
def test_short_rehearsal_reports_what_it_measured(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "rehearse.py"), "--short",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary.keys() >= REQUIRED_FIELDS, result.stderr[-2000:]
    assert result.returncode == (0 if summary["ok"] else 1)
    assert summary["requests"] > 500
    assert summary["failed"] == 0, (summary["failure_examples"], summary["phases"])
    weights = [step["new_weight"] for step in summary["steps"]]
    assert weights[0] == 0 and 100 in weights
    after_cutover = weights[weights.index(100) :]
    assert 0 in after_cutover and after_cutover[-1] == 100, (summary["steps"], summary["notes"])
    page = Path(summary["report"]).read_text()
    assert "plotly" in page and "Route53 weight of new" in page
    assert summary["hit_rate_after"] > 0.9
    assert summary["ok"] == (not summary["missed"])
    assert summary["not_exercised"] == {}, summary["not_exercised"]
    phases = [phase["phase"] for phase in summary["phases"]]
    assert "boxes' Redis switch" in phases
    shown = [line.split("] ", 1)[1] for line in result.stderr.splitlines() if " done " in line]
    assert [line.split(" done ")[0].strip() for line in shown] == phases, "live progress"
    assert all("requests" in line and "failed" in line for line in shown)
    assert "Redis switch rolled back under traffic" in phases
    notes = "\n".join(summary["notes"])
    assert "after switch-to-new the old tier writes to the new Redis" in notes
    assert "after switch-to-old the old tier writes to the old Redis" in notes
    assert summary["keys_compared"] > 0
    assert summary["keys_differing"] == 0, summary["key_examples"]
    assert summary["follow_exits"] == {"copy": 0, "reverse-follow": 0}, summary["notes"]
    # After the shift to 100%, a production fault with no shift running went to old by the
    # health check alone (the weights never moved) and came back once production recovered
    failback = summary["failback"]
    assert failback["new_weight_unchanged"] is True, failback
    assert failback["served_by_old"] > 0, failback
    assert "failback: production fails, no shift running" in phases


def test_comparison_finds_lost_and_stale_keys(tmp_path: Path) -> None:
    old = start_redis(tmp_path / "old")
    new = start_redis(tmp_path / "new")
    try:
        source, target = old.client(), new.client()
        source.set("same", b"v", ex=300)
        target.set("same", b"v", ex=400)
        source.set("lost", b"v", ex=300)
        source.set("stale", b"v2")
        target.set("stale", b"v1")
        source.set("short", b"v", ex=300)
        target.set("short", b"v", ex=30)
        target.set("only-on-new", b"v")
        # The same set written in another order: other DUMP bytes, the same value
        members = [f"member-{n}" for n in range(300)]
        source.sadd("set-same", *members)
        target.sadd("set-same", *reversed(members))
        assert source.dump("set-same") != target.dump("set-same")
        source.sadd("set-stale", *members)
        target.sadd("set-stale", *members[1:])
        result = compare(source, target)
        assert (result.compared, result.missing, result.value_differs, result.ttl_shorter) == (
            6, 1, 2, 1,
        )  # fmt: skip
        assert result.differing == 4
    finally:
        old.stop()
        new.stop()


def test_gate_alarm_needs_three_breaching_periods_of_five(tmp_path: Path) -> None:
    log = tmp_path / "alb.log"
    log.write_text("")
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        bridge = AlarmBridge(cloudwatch, log, lambda: 0, time_scale=1, clock=lambda: 0.0)
        bridge.create_alarms()

        def period(status: int) -> dict[str, str]:
            line = {"time": 0, "status": status, "upstream_status": "", "request_time": 0.01,
                    "upstream_time": "0.010", "uri": "/api/v1/tracks/a/waveform"}  # fmt: skip
            with log.open("a") as output:
                output.write((json.dumps(line) + "\n") * 10)
            bridge.collect()
            return bridge.evaluate()

        def state(name: str) -> str:
            alarms = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
            return str(alarms[0]["StateValue"])

        assert period(200)[ALARM_5XX] == "OK"
        assert period(500)[ALARM_5XX] == "OK"
        assert period(500)[ALARM_5XX] == "OK"
        assert state(ALARM_5XX) == "OK"
        assert period(500)[ALARM_5XX] == "ALARM"
        assert state(ALARM_5XX) == "ALARM"
        assert state(ALARM_P99) == state(ALARM_UNHEALTHY) == "OK"
        for _ in range(3):
            period(200)
        assert state(ALARM_5XX) == "OK"


def test_primary_endpoint_follows_a_failover(tmp_path: Path) -> None:
    group = RedisGroup(tmp_path)
    group.start()
    endpoint = PrimaryEndpoint(group)
    endpoint.start()
    try:
        before = group.primary_port()
        through = group.client(endpoint.port, retry=Retry(ExponentialBackoff(), 10),
                               retry_on_error=[ConnectionError, ReadOnlyError])  # fmt: skip
        through.set("k", "v1")
        assert group.client(before).get("k") == b"v1"
        old, new = group.failover()
        assert (old, new) == (before, group.primary_port()) and new != old
        wait_until(lambda: group.client(new).info("replication")["role"] == "master", "master")
        # The endpoint drops its links to the old primary on its next look (every 0.2 s);
        # until then the old primary, not yet demoted, may still take a write.
        wait_until(lambda: old not in endpoint.links, "the endpoint to leave the old primary")
        through.set("k", "v2")
        assert group.client(new).get("k") == b"v2"
    finally:
        endpoint.stop()
        group.stop()


def test_without_the_test_tools_it_says_how_to_get_them() -> None:
    hide_plotly = (
        "import runpy, sys; sys.modules['plotly'] = None; sys.argv = ['rehearse.py', '--help'];"
        f" runpy.run_path({str(ROOT / 'scripts' / 'rehearse.py')!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_plotly], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the rehearsal needs the test tools (plotly is not installed); "
        "run `make rehearse`, which installs them"
    )
