"""The Provider-framework handlers, driven the way the framework drives them."""

from __future__ import annotations

from typing import Any

import pytest
import shift_handler
from shift_engine import POLL_SECONDS, LockHeld, ShiftError, ShiftFailed, start
from shift_handler import check_event, handle_event
from shift_support import NEW_ID, OLD_ID, RECORD_NAME, Env

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/ProdStack/0f1e2d3c"
MAX_POLLS = 400


def properties(env: Env, **overrides: Any) -> dict[str, Any]:
    # CloudFormation delivers every property as a string.
    props: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
        "ZoneId": env.zone_id,
        "RecordName": RECORD_NAME,
        "OldSetId": OLD_ID,
        "NewSetId": NEW_ID,
        "TargetWeight": "100",
        "Step": "25",
        "IntervalSeconds": "60",
        "Alarms": [],
        "HealthUrl": "",
        "UseHealthCheck": "true",
    }
    props.update(
        {key: str(value) if key != "Alarms" else value for key, value in overrides.items()}
    )
    return props


def event(
    request_type: str,
    request_id: str,
    props: dict[str, Any],
    old_props: dict[str, Any] | None = None,
    physical_id: str | None = None,
) -> dict[str, Any]:
    built: dict[str, Any] = {
        "RequestType": request_type,
        "RequestId": request_id,
        "StackId": STACK_ID,
        "LogicalResourceId": "TrafficShift",
        "ResourceType": "Custom::TrafficShift",
        "ResourceProperties": props,
    }
    if old_props is not None:
        built["OldResourceProperties"] = old_props
    if physical_id is not None:
        built["PhysicalResourceId"] = physical_id
    return built


def provider(env: Env, cfn_event: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """on_event once, then is_complete every POLL_SECONDS (virtual) until complete."""
    ctx = env.context()
    result = handle_event(cfn_event, ctx)
    merged = {**cfn_event, **result}
    for polls in range(1, MAX_POLLS):
        env.clock.sleep(POLL_SECONDS)
        answer = check_event(merged, ctx)
        if answer["IsComplete"]:
            return {**result, **answer}, polls
    raise AssertionError("never completed")


def test_create_walks_to_the_target_and_update_walks_on(env: Env) -> None:
    created, _ = provider(env, event("Create", "req-1", properties(env, TargetWeight=50)))
    assert env.recorder.pairs == [(75, 25), (50, 50)]
    assert created["Data"] == {"OldWeight": 50, "NewWeight": 50}
    physical_id = created["PhysicalResourceId"]

    updated, _ = provider(
        env,
        event(
            "Update",
            "req-2",
            properties(env, TargetWeight=100),
            old_props=properties(env, TargetWeight=50),
            physical_id=physical_id,
        ),
    )
    # The same physical id: CloudFormation does not delete anything after an Update
    assert updated["PhysicalResourceId"] == physical_id
    assert env.recorder.pairs == [(75, 25), (50, 50), (25, 75), (0, 100)]
    assert env.lock_values() == []


def test_each_poll_advances_at_most_one_phase(env: Env) -> None:
    _, polls = provider(env, event("Create", "req-1", properties(env, IntervalSeconds=60)))
    # 4 steps: each takes the poll that steps, then one poll per 10 s until its 60 s soak
    # (counted from the in-sync poll) ends; the final poll releases the lock
    assert polls == 4 * (1 + 60 // POLL_SECONDS) + 1
    assert env.recorder.pairs == [(75, 25), (50, 50), (25, 75), (0, 100)]


def test_alarm_fails_the_update_and_the_rollback_update_walks_back(env: Env) -> None:
    # Given the shift sits at 50 and an Update asks for 100 with a gate alarm
    env.put_alarm("api-5xx")
    old_props = properties(env, TargetWeight=50, Alarms=["api-5xx"])
    provider(env, event("Create", "req-1", old_props))
    new_props = properties(env, TargetWeight=100, Alarms=["api-5xx"])
    update = event("Update", "req-2", new_props, old_props, physical_id="traffic-shift")
    ctx = env.context()
    merged = {**update, **handle_event(update, ctx)}
    check_event(merged, ctx)  # steps to 75
    assert env.weights() == (25, 75)
    # When the alarm fires, Then the next poll fails the Update after rolling back to 50
    env.cloudwatch.set_alarm_state(AlarmName="api-5xx", StateValue="ALARM", StateReason="5xx")
    with pytest.raises(ShiftFailed, match="alarm api-5xx is ALARM; rolled back to old 50 new 50"):
        check_event(merged, ctx)
    # And CloudFormation's rollback Update (old and new properties swapped) completes at 50
    env.cloudwatch.set_alarm_state(AlarmName="api-5xx", StateValue="OK", StateReason="ok")
    rollback = event("Update", "req-3", old_props, new_props, physical_id="traffic-shift")
    provider(env, rollback)
    assert env.weights() == (50, 50)
    assert env.lock_values() == []


def test_rollback_update_takes_over_the_lock_of_a_run_cloudformation_gave_up_on(
    env: Env,
) -> None:
    # Given an Update that was still walking when the Provider timed out
    old_props = properties(env, TargetWeight=0)
    new_props = properties(env, TargetWeight=100)
    update = event("Update", "req-2", new_props, old_props, physical_id="traffic-shift")
    ctx = env.context()
    merged = {**update, **handle_event(update, ctx)}
    check_event(merged, ctx)
    assert env.weights() == (75, 25)
    assert env.lock_values()
    # When the rollback Update arrives for the same resource, Then it walks back to old
    provider(env, event("Update", "req-3", old_props, new_props, physical_id="traffic-shift"))
    assert env.weights() == (100, 0)
    assert env.lock_values() == []
    # And the abandoned run cannot move anything any more
    with pytest.raises(ShiftError):
        check_event(merged, ctx)


def test_delete_restores_all_traffic_to_old_in_one_step(env: Env) -> None:
    provider(env, event("Create", "req-1", properties(env, TargetWeight=75)))
    env.recorder.pairs.clear()
    deleted, polls = provider(
        env, event("Delete", "req-9", properties(env, TargetWeight=75), physical_id="pid")
    )
    assert env.recorder.pairs == [(100, 0)]
    assert env.weights() == (100, 0)
    assert deleted["PhysicalResourceId"] == "pid"
    assert polls <= 3
    assert env.lock_values() == []
    # Delete is safe to repeat
    provider(env, event("Delete", "req-10", properties(env, TargetWeight=75), physical_id="pid"))
    assert env.recorder.pairs == [(100, 0)]


def test_delete_succeeds_when_the_records_are_gone(env: Env) -> None:
    env.route53.change_resource_record_sets(
        HostedZoneId=env.zone_id,
        ChangeBatch={
            "Changes": [
                {"Action": "DELETE", "ResourceRecordSet": record}
                for record in env.records().values()
            ]
        },
    )
    result, polls = provider(env, event("Delete", "req-9", properties(env), physical_id="pid"))
    assert result["PhysicalResourceId"] == "pid"
    assert polls == 1


def test_delete_after_a_create_with_unusable_properties_succeeds(env: Env) -> None:
    broken = properties(env, Step="ten")
    with pytest.raises(ShiftError, match="property Step='ten' is not a whole number"):
        handle_event(event("Create", "req-1", broken), env.context())
    provider(env, event("Delete", "req-2", broken, physical_id="req-1"))
    assert env.weights() == (100, 0)


def test_create_with_bad_input_fails_before_any_change(env: Env) -> None:
    with pytest.raises(ShiftError, match="step 30 does not divide the distance"):
        handle_event(event("Create", "req-1", properties(env, Step=30)), env.context())
    with pytest.raises(ShiftError, match="health alarm\\(s\\) nope do not exist"):
        handle_event(event("Create", "req-1", properties(env, Alarms=["nope"])), env.context())
    assert env.recorder.batches == []


def test_create_refuses_while_an_operator_shift_runs(env: Env) -> None:
    start(env.request(target=50), env.context(), run_id="cli-run", owner="cli:alice")
    with pytest.raises(LockHeld, match="held by cli:alice"):
        handle_event(event("Create", "req-1", properties(env)), env.context())


def test_lambda_entry_points_build_their_own_clients(env: Env) -> None:
    # Given the real entry points (clients created inside the call, under moto)
    cfn_event = event("Create", "req-1", properties(env, TargetWeight=25, IntervalSeconds=0))
    result = shift_handler.on_event(cfn_event, None)
    merged = {**cfn_event, **result}
    answers = [shift_handler.is_complete(merged, None) for _ in range(4)]
    assert answers[-1]["IsComplete"] is True
    assert env.weights() == (75, 25)
