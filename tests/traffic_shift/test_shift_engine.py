"""The shift engine against moto: walks, health gates, rollbacks, retries, locking."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from shift_engine import (
    SYNC_TIMEOUT_SECONDS,
    LockHeld,
    Progress,
    ShiftError,
    ShiftFailed,
    advance,
    run,
    start,
    stop,
)
from shift_records import LockState, safe_owner
from shift_retry import MAX_ATTEMPTS, call_with_retry
from shift_support import ALB_DNS, NEW_ID, OLD_ID, Env, FlakyRoute53, route53_error

FULL_WALK = [(100 - new, new) for new in range(10, 101, 10)]


def drive(env: Env, **request_overrides: Any) -> list[Progress]:
    seen: list[Progress] = []
    run(
        env.request(**request_overrides),
        env.context(),
        run_id="run-1",
        owner="test",
        report=seen.append,
    )
    return seen


def test_full_walk_writes_every_intermediate_pair_and_releases_the_lock(env: Env) -> None:
    # Given old at 100 and new at 0
    started = env.clock.now
    # When walking to 100 in steps of 10 with 60 s soaks
    progress = drive(env)
    # Then each step wrote the next pair, in order, and nothing else
    assert env.recorder.pairs == FULL_WALK
    assert env.weights() == (0, 100)
    assert progress[-1].done and progress[-1].kind == "done"
    assert [p.new_weight for p in progress if p.kind == "step"] == list(range(10, 101, 10))
    assert env.lock_values() == []
    # And every step soaked its interval in (virtual) time
    assert env.clock.now - started >= 10 * 60


def test_upsert_keeps_alias_ttl_and_values_of_each_record(env: Env) -> None:
    drive(env, target=20)
    records = env.records()
    assert records[OLD_ID]["TTL"] == 60
    assert records[OLD_ID]["ResourceRecords"] == [{"Value": "192.0.2.10"}]
    assert records[NEW_ID]["AliasTarget"]["DNSName"] == ALB_DNS
    assert records[NEW_ID]["AliasTarget"]["EvaluateTargetHealth"] is True
    assert "TTL" not in records[NEW_ID]
    # Both weights and the lock travel in one atomic batch per step
    step_batch = next(b for b in env.recorder.batches if any(c["Action"] == "UPSERT" for c in b))
    actions = sorted(c["Action"] for c in step_batch)
    assert actions == ["CREATE", "DELETE", "UPSERT", "UPSERT"]


def test_walk_back_to_old_steps_down(env: Env) -> None:
    env.set_weights(0, 100)
    env.recorder.pairs.clear()
    drive(env, target=0, step=25)
    assert env.recorder.pairs == [(25, 75), (50, 50), (75, 25), (100, 0)]


def test_alarm_at_step_k_rolls_back_within_one_poll(env: Env) -> None:
    # Given a gate alarm that turns ALARM right after the step to new=40
    env.put_alarm("api-5xx")
    ctx = env.context()
    request = env.request(alarms=("api-5xx",))
    polls_after_alarm: list[Progress] = []
    alarm_set = False

    def report(progress: Progress) -> None:
        nonlocal alarm_set
        if alarm_set:
            polls_after_alarm.append(progress)
        if progress.kind == "step" and progress.new_weight == 40:
            env.cloudwatch.set_alarm_state(
                AlarmName="api-5xx", StateValue="ALARM", StateReason="5xx burst"
            )
            alarm_set = True

    # When the shift runs
    with pytest.raises(ShiftFailed) as failure:
        run(request, ctx, run_id="run-2", owner="test", report=report)
    # Then the very next poll rolled back to the last healthy weights, and the lock is gone
    assert polls_after_alarm == []
    assert "alarm api-5xx is ALARM" in str(failure.value)
    assert (failure.value.old_weight, failure.value.new_weight) == (70, 30)
    assert env.weights() == (70, 30)
    assert env.recorder.pairs[-2:] == [(60, 40), (70, 30)]
    assert env.lock_values() == []


def test_rollback_to_old_when_configured(env: Env) -> None:
    env.put_alarm("api-p99")
    ctx = env.context()
    request = env.request(alarms=("api-p99",), rollback_to="old")

    def report(progress: Progress) -> None:
        if progress.kind == "step" and progress.new_weight == 30:
            env.cloudwatch.set_alarm_state(AlarmName="api-p99", StateValue="ALARM", StateReason="x")

    with pytest.raises(ShiftFailed, match="rolled back to old 100 new 0"):
        run(request, ctx, run_id="run-3", owner="test", report=report)
    assert env.weights() == (100, 0)


def test_insufficient_data_counts_as_unhealthy_before_any_change(env: Env) -> None:
    env.put_alarm("api-5xx", state="INSUFFICIENT_DATA")
    with pytest.raises(ShiftFailed, match="INSUFFICIENT_DATA; left at old 100 new 0"):
        drive(env, alarms=("api-5xx",))
    assert env.recorder.pairs == []
    assert env.lock_values() == []


def test_walk_back_is_not_gated_by_the_new_targets_health(env: Env) -> None:
    env.set_weights(50, 50)
    env.put_alarm("api-5xx", state="ALARM")
    env.recorder.pairs.clear()
    drive(env, target=0, alarms=("api-5xx",))
    assert env.recorder.pairs[-1] == (100, 0)


def test_unreadable_route53_health_check_fails_the_gate(env: Env) -> None:
    records = env.records()
    env.route53.change_resource_record_sets(
        HostedZoneId=env.zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {**records[NEW_ID], "HealthCheckId": "missing-check"},
                }
            ]
        },
    )
    with pytest.raises(ShiftFailed, match="health check missing-check cannot be read"):
        drive(env)
    assert env.weights() == (100, 0)


def test_passing_route53_health_check_lets_the_walk_finish(env: Env) -> None:
    check = env.route53.create_health_check(
        CallerReference="prod-alb",
        HealthCheckConfig={
            "Type": "HTTPS",
            "FullyQualifiedDomainName": ALB_DNS.rstrip("."),
            "ResourcePath": "/health",
        },
    )["HealthCheck"]["Id"]
    records = env.records()
    env.route53.change_resource_record_sets(
        HostedZoneId=env.zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {**records[NEW_ID], "HealthCheckId": check},
                }
            ]
        },
    )
    drive(env, target=50, step=25)
    assert env.weights() == (50, 50)
    assert env.records()[NEW_ID]["HealthCheckId"] == check


def test_shift_completes_with_30_percent_of_route53_calls_throttled(env: Env) -> None:
    flaky = FlakyRoute53(rate=0.3, rng=random.Random(1234))
    env.inject("before-call.route53", flaky)
    drive(env)
    assert env.weights() == (0, 100)
    assert env.recorder.pairs[-len(FULL_WALK) :] == FULL_WALK
    assert flaky.injected >= 0.2 * flaky.sent > 0
    assert env.lock_values() == []


def test_retry_gives_up_after_the_attempt_cap() -> None:
    error = ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "GetChange")
    calls: list[int] = []
    delays: list[float] = []

    def always_throttled() -> None:
        calls.append(1)
        raise error

    with pytest.raises(ClientError):
        call_with_retry(always_throttled, sleep=delays.append, rng=random.Random(3))
    assert len(calls) == MAX_ATTEMPTS
    assert len(delays) == MAX_ATTEMPTS - 1
    assert all(0 <= delay <= 8 for delay in delays)


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def denied() -> None:
        calls.append(1)
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetChange")

    with pytest.raises(ClientError):
        call_with_retry(denied, sleep=lambda _: None, rng=random.Random(3))
    assert len(calls) == 1


def test_slow_propagation_rolls_back_a_rising_step(env: Env) -> None:
    def pending(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChangeInfo"]["Status"] = "PENDING"

    env.inject("after-call.route53.GetChange", pending)
    with pytest.raises(ShiftFailed, match=f"not INSYNC after {SYNC_TIMEOUT_SECONDS + 10}s"):
        drive(env)
    assert env.weights() == (100, 0)


def test_ctrl_c_keeps_the_last_healthy_weights_and_releases_the_lock(env: Env) -> None:
    ctx = env.context()
    request = env.request(target=50)
    real_sleep = ctx.sleep

    def sleep(seconds: float) -> None:
        if env.weights() == (70, 30) and env.lock_values() and "phase=soak" in env.lock_values()[0]:
            raise KeyboardInterrupt
        real_sleep(seconds)

    ctx.sleep = sleep
    with pytest.raises(KeyboardInterrupt):
        run(request, ctx, run_id="run-4", owner="test", report=lambda _: None)
    assert env.weights() == (80, 20)
    assert env.lock_values() == []


def test_second_shift_on_the_same_record_is_refused(env: Env) -> None:
    ctx = env.context()
    first = start(env.request(), ctx, run_id="first", owner="cli:alice")
    assert not first.done
    with pytest.raises(LockHeld, match="already being shifted: held by cli:alice"):
        start(env.request(target=50), ctx, run_id="second", owner="cli:bob")
    # the first carries on untouched
    advance(env.request(), ctx, "first")
    assert env.weights() == (90, 10)
    assert "run=first" in env.lock_values()[0]


def test_lock_lost_race_on_create_is_reported_as_held(env: Env) -> None:
    # Given another shift whose CREATE of the lock lands between our read and our CREATE
    def already_exists(**_: Any) -> Any:
        return route53_error(
            "InvalidChangeBatch",
            "[Tried to create resource record set [name='_shift.api.example.com.', "
            "type='TXT'] but it already exists]",
        )

    env.inject("before-call.route53.ChangeResourceRecordSets", already_exists)
    with pytest.raises(LockHeld, match="another shift took the lock first"):
        start(env.request(), env.context(), run_id="late", owner="cli:carol")


def test_abort_breaks_a_lock_and_restores_last_healthy(env: Env) -> None:
    ctx = env.context()
    request = env.request(target=30)
    start(request, ctx, run_id="gone", owner="cli:alice")
    advance(request, ctx, "gone")  # step to 10
    env.clock.now += 100
    advance(request, ctx, "gone")  # in sync
    env.clock.now += 100
    advance(request, ctx, "gone")  # soaked: step to 20
    assert env.weights() == (80, 20)
    stopped = stop(request, ctx, None, "aborted")
    assert stopped.new_weight == 10
    assert env.weights() == (90, 10)
    assert env.lock_values() == []


def test_weights_changed_by_hand_stop_the_shift(env: Env) -> None:
    ctx = env.context()
    request = env.request()
    start(request, ctx, run_id="r", owner="cli:alice")
    advance(request, ctx, "r")
    env.set_weights(50, 50)
    with pytest.raises(ShiftFailed, match="weights changed outside the shift"):
        advance(request, ctx, "r")
    assert env.weights() == (50, 50)
    assert env.lock_values() == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target": 100, "step": 30}, "step 30 does not divide the distance"),
        ({"target": 101}, "target weight 101 is outside 0..100"),
        ({"target": -1}, "target weight -1 is outside 0..100"),
        ({"step": 0}, "step 0 is outside 1..100"),
        ({"new_id": "nope"}, "no record api.example.com. with set identifier 'nope' (new)"),
        ({"old_id": "gone"}, "set identifier 'gone' (old)"),
        ({"alarms": ("no-such-alarm",)}, "health alarm(s) no-such-alarm do not exist"),
        ({"health_url": "file:///etc/passwd"}, "is not an http:// or https:// URL"),
        ({"zone_id": "ZNOSUCHZONE"}, "hosted zone ZNOSUCHZONE cannot be read"),
        ({"old_id": "prod"}, "old and new set identifiers are both 'prod'"),
    ],
)
def test_bad_input_is_refused_before_any_change(
    env: Env, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ShiftError) as error:
        start(env.request(**overrides), env.context(), run_id="r", owner="test")
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert env.recorder.batches == []
    assert env.weights() == (100, 0)


def test_step_not_dividing_the_distance_names_usable_steps(env: Env) -> None:
    env.set_weights(70, 30)
    with pytest.raises(ShiftError, match=r"\(70 points\); use a step among 1, 2, 5, 7, 10, 14"):
        start(env.request(step=20), env.context(), run_id="r", owner="test")


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ((200, 0), "has weight 200, outside 0..100"),
        ((60, 30), "do not add up to 100"),
    ],
)
def test_weights_that_are_not_percentages_are_refused(
    env: Env, weights: tuple[int, int], message: str
) -> None:
    env.set_weights(*weights)
    env.recorder.batches.clear()
    with pytest.raises(ShiftError, match=message):
        start(env.request(), env.context(), run_id="r", owner="test")
    assert env.recorder.batches == []


def test_alias_record_with_a_ttl_is_refused(env: Env) -> None:
    records = env.records()
    env.route53.change_resource_record_sets(
        HostedZoneId=env.zone_id,
        ChangeBatch={
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {**records[NEW_ID], "TTL": 300}}]
        },
    )
    assert env.records()[NEW_ID]["TTL"] == 300  # moto stores what Route53 would refuse
    env.recorder.batches.clear()
    with pytest.raises(ShiftError, match="is an alias with a TTL \\(300\\)"):
        start(env.request(), env.context(), run_id="r", owner="test")
    assert env.recorder.batches == []


def test_lock_state_longer_than_one_txt_string_round_trips(env: Env) -> None:
    # Given a CloudFormation-sized owner and run id, and a long change id
    state = LockState(
        run="9f0c3e1a-1111-2222-3333-444455556666",
        owner=safe_owner("cfn:" + "P" * 120),
        started=1_700_000_000,
        target=100,
        step=10,
        interval=300,
        rising=True,
        phase="sync",
        since=1_700_000_123,
        origin=0,
        weight=40,
        healthy=30,
        change="/change/C" + "X" * 40,
    )
    value = state.encode()
    strings = re.findall(r'"([^"]*)"', value)
    assert len(strings) > 1
    assert all(len(text) <= 255 for text in strings)
    assert LockState.decode(value) == state
    # And Route53 (moto) stores and lists it as a lock the engine can read back
    records = env.context().records(env.request())
    records.acquire(state)
    lock = records.read_lock()
    assert lock is not None and lock.state == state


def test_nothing_to_do_when_already_at_target(env: Env) -> None:
    progress = start(env.request(target=0), env.context(), run_id="r", owner="test")
    assert progress.done
    assert env.recorder.batches == []


def _calculated_check_on_new(env: Env) -> str:
    """The new record carries a calculated check, as production's does."""
    check = str(
        env.route53.create_health_check(
            CallerReference="prod-tier",
            HealthCheckConfig={
                "Type": "CALCULATED",
                "ChildHealthChecks": [],
                "HealthThreshold": 1,
            },
        )["HealthCheck"]["Id"]
    )
    records = env.records()
    env.route53.change_resource_record_sets(
        HostedZoneId=env.zone_id,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            **records[NEW_ID], "HealthCheckId": check}}]},
    )  # fmt: skip
    return check


def _publish_status(env: Env, check: str, value: float) -> None:
    """Route53's HealthCheckStatus for `check`, stamped on the test's clock."""
    env.cloudwatch.put_metric_data(
        Namespace="AWS/Route53",
        MetricData=[{
            "MetricName": "HealthCheckStatus",
            "Dimensions": [{"Name": "HealthCheckId", "Value": check}],
            "Timestamp": datetime.fromtimestamp(env.clock() - 30, UTC),
            "Value": value,
        }],
    )  # fmt: skip


def test_a_calculated_health_check_is_read_from_its_status_metric(env: Env) -> None:
    # Given production's calculated check, which GetHealthCheckStatus cannot read, reported
    # healthy by Route53's HealthCheckStatus metric
    check = _calculated_check_on_new(env)
    ctx = env.context(route53_metrics=env.cloudwatch)
    request = env.request(target=50, step=25, interval_seconds=60)
    start(request, ctx, run_id="run-1", owner="test")
    _publish_status(env, check, 1)
    advance(request, ctx, "run-1")
    assert env.weights() == (75, 25)
    # When Route53 reports it unhealthy, Then the next poll rolls back
    env.clock.sleep(60)
    _publish_status(env, check, 0)
    with pytest.raises(ShiftFailed, match=f"health check {check} is unhealthy; rolled back"):
        advance(request, ctx, "run-1")
    assert env.weights() == (100, 0)


def test_a_calculated_health_check_without_a_status_fails_the_gate(env: Env) -> None:
    _calculated_check_on_new(env)
    with pytest.raises(ShiftFailed, match="reported no status for 180s"):
        run(env.request(), env.context(route53_metrics=env.cloudwatch), run_id="r",
            owner="test", report=lambda _: None)  # fmt: skip
    assert env.weights() == (100, 0)
