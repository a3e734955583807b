"""Context parsing: strings from -c, phase defaults, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from synth_support import CDK_JSON_CONTEXT, ROOT

from infra.config import ConfigError, load_settings


def settings_for(**overrides: Any) -> Any:
    return load_settings({**CDK_JSON_CONTEXT, **overrides})


class TestParsing:
    def test_defaults_are_phase_one_with_every_increment_off(self) -> None:
        settings = settings_for()
        assert settings.phase == 1
        assert not settings.zero_cost.separate_redis
        assert not settings.zero_cost.alb
        assert settings.zero_cost.instances == 1

    def test_phase_two_turns_every_increment_on(self) -> None:
        flags = settings_for(phase="2").zero_cost
        assert (flags.separate_redis, flags.alb, flags.instances) == (True, True, 2)

    @pytest.mark.parametrize(("raw", "expected"), [("false", False), ("0", False), ("true", True)])
    def test_strings_from_the_command_line_are_parsed(self, raw: str, expected: bool) -> None:
        assert settings_for(phase="1", alb=raw).zero_cost.alb is expected

    def test_an_increment_can_be_turned_off_inside_phase_two(self) -> None:
        flags = settings_for(phase="2", instances="1", alb="false").zero_cost
        assert (flags.separate_redis, flags.alb, flags.instances) == (True, False, 1)

    def test_settings_are_frozen(self) -> None:
        settings = settings_for()
        with pytest.raises(AttributeError):
            settings.phase = 3


BAD_INPUT = {
    "phase 7": ({"phase": "7"}, "phase=7 is not allowed; use one of 1, 2, 3"),
    "phase not a number": ({"phase": "two"}, "phase='two' is not allowed"),
    "no instances": ({"instances": "0"}, "instances=0 is out of range; allowed: 1..2"),
    "two boxes with their own redis": (
        {"instances": "2", "alb": "true"},
        "instances=2 needs separate_redis=true",
    ),
    "two boxes without alb": (
        {"instances": "2", "separate_redis": "true"},
        "instances=2 needs alb=true",
    ),
    "misspelled flag": (
        {"seperate_redis": "true"},
        "unknown flag seperate_redis='true'; did you mean separate_redis?",
    ),
    "not a boolean": ({"alb": "maybe"}, "alb='maybe' is not a boolean"),
    "alb without any certificate": (
        {"alb": "true", "hosted_zone_id": ""},
        "alb=true needs an HTTPS certificate",
    ),
    "malformed certificate arn": (
        {"certificate_arn": "arn:nope"},
        "certificate_arn='arn:nope' is not an ACM certificate ARN",
    ),
    "traffic weight over 100": (
        {"traffic_weight": "150"},
        "traffic_weight=150 is out of range; allowed: 0..100",
    ),
    "traffic weight not a whole number of steps": (
        {"shift_traffic": "true", "traffic_weight": "55"},
        "traffic_weight=55 is not a multiple of shift_step=10",
    ),
    "shift schedule over the one-hour limit": (
        {"phase": "3", "shift_traffic": "true", "shift_interval": "600"},
        "over CloudFormation's one-hour custom-resource limit",
    ),
    "unknown copy policy": (
        {"copy_policy": "merge"},
        "copy_policy='merge' is not allowed; use fail",
    ),
    "domain outside its zone": (
        {"domain_name": "api.other.com"},
        "domain_name='api.other.com' is not inside zone_name",
    ),
}


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_clear_line(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_for(**overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def run_app(overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run app.py the way the CDK CLI does: context as CDK_CONTEXT_JSON."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({**CDK_JSON_CONTEXT, **overrides}),
        "CDK_OUTDIR": "/nonexistent-never-written",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_the_app_exits_non_zero_with_one_line_and_no_traceback(
    overrides: dict[str, str], message: str
) -> None:
    result = run_app(overrides)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_cdk_synth_reports_bad_context_end_to_end(tmp_path: Any) -> None:
    result = subprocess.run(
        [
            str(ROOT / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--no-notices",
            "--quiet",
            "-o",
            str(tmp_path / "out"),
            "-c",
            "phase=7",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "error: phase=7 is not allowed; use one of 1, 2, 3" in result.stderr
    assert "Traceback" not in result.stderr
