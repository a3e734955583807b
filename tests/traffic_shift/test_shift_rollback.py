"""Back to old is fast from any weight: no soak, no gate, a step clamped to the distance left,
and with a step of 100 one Route53 change plus its INSYNC, through the CLI and the handler."""

from __future__ import annotations

from typing import Any

import pytest
from shift_support import Env, load_cli
from test_shift_cli import args
from test_shift_handler import event, properties, provider

from infra import config
from runtime.common.shift_rules import POLL_SECONDS, SYNC_TIMEOUT_SECONDS

cli = load_cli()
# Route53 documents INSYNC within 60 s; the tests make every change take all of it.
SYNC_SECONDS = SYNC_TIMEOUT_SECONDS
STARTS = [(50, 50), (30, 70)]


def start_at(env: Env, old: int, new: int) -> None:
    env.set_weights(old, new)
    env.recorder.pairs.clear()
    env.recorder.batches.clear()


def slow_route53(env: Env) -> None:
    """GetChange answers PENDING until SYNC_SECONDS after the last weight change."""
    changed_at: list[float] = []
    seen = 0

    def pending(parsed: dict[str, Any], **_: Any) -> None:
        nonlocal seen
        if len(env.recorder.pairs) > seen:
            seen = len(env.recorder.pairs)
            changed_at.append(env.clock.now)
        if changed_at and env.clock.now < changed_at[-1] + SYNC_SECONDS:
            parsed["ChangeInfo"]["Status"] = "PENDING"

    env.inject("after-call.route53.GetChange", pending)


@pytest.mark.parametrize(("old", "new"), STARTS)
def test_cli_puts_everything_back_on_old_in_one_change(env: Env, old: int, new: int) -> None:
    start_at(env, old, new)
    env.put_alarm("api-5xx", state="ALARM")
    slow_route53(env)
    began = env.clock.now
    # A long soak and a firing alarm change nothing: neither applies toward old
    code = cli.main(
        [
            *args(env.zone_id, "shift", "--to", "0", "--step", "100", "--interval", "3600"),
            "--alarm",
            "api-5xx",
        ],
        context=env.context(),
    )
    assert code == 0
    assert env.recorder.pairs == [(100, 0)]
    assert env.weights() == (100, 0)
    assert env.lock_values() == []
    assert env.clock.now - began <= config.ROLLBACK_SECONDS


@pytest.mark.parametrize(("old", "new"), [*STARTS, (55, 45)])
def test_cli_step_toward_old_is_clamped_and_never_soaks(env: Env, old: int, new: int) -> None:
    start_at(env, old, new)
    code = cli.main(
        args(env.zone_id, "shift", "--to", "0", "--step", "20", "--interval", "600"),
        context=env.context(),
    )
    assert code == 0
    walked = [pair[1] for pair in env.recorder.pairs]
    expected = [*list(range(new - 20, 0, -20)), 0]
    assert walked == expected
    assert 600 not in env.clock.sleeps
    assert max(env.clock.sleeps) <= POLL_SECONDS


@pytest.mark.parametrize(("old", "new"), STARTS)
def test_handler_walk_to_old_is_one_change_whatever_the_step(env: Env, old: int, new: int) -> None:
    start_at(env, old, new)
    slow_route53(env)
    began = env.clock.now
    # traffic_weight=0 deployed with the default shift_step and a long soak
    done, _ = provider(
        env,
        event(
            "Update",
            "req-back",
            properties(env, TargetWeight=0, Step=10, IntervalSeconds=3000),
            old_props=properties(env, TargetWeight=new, Step=10, IntervalSeconds=3000),
            physical_id="traffic-shift",
        ),
    )
    assert done["Data"] == {"OldWeight": 100, "NewWeight": 0}
    assert env.recorder.pairs == [(100, 0)]
    assert env.clock.now - began <= config.ROLLBACK_SECONDS
    assert env.lock_values() == []


def test_a_walk_toward_new_still_soaks_and_moves_in_whole_steps(env: Env) -> None:
    code = cli.main(
        args(env.zone_id, "shift", "--to", "20", "--step", "10", "--interval", "120"),
        context=env.context(),
    )
    assert code == 0
    assert [pair[1] for pair in env.recorder.pairs] == [10, 20]
    assert sum(env.clock.sleeps) >= 2 * 120
