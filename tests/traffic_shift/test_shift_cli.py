"""The operator CLI: in-process with injected moto clients, plus subprocess exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from shift_support import NEW_ID, OLD_ID, RECORD_NAME, ROOT, Env, load_cli

from infra import config
from infra.constructs import weighted_dns

cli = load_cli()
SCRIPT = ROOT / "scripts" / "shift_traffic.py"
# Port 9 (discard) on loopback: nothing listens there, so any AWS call fails to connect.
CLOSED_ENDPOINT = "http://127.0.0.1:9"


def args(zone_id: str, command: str, *extra: str) -> list[str]:
    """The CLI's arguments for the test record's two weighted sets in ``zone_id``."""
    return [
        command,
        "--zone-id",
        zone_id,
        "--name",
        RECORD_NAME,
        "--old-id",
        OLD_ID,
        "--new-id",
        NEW_ID,
        *extra,
    ]


def test_status_prints_current_weights_as_json(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.set_weights(70, 30)
    assert cli.main(args(env.zone_id, "status"), context=env.context()) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["old"] == {"set_id": OLD_ID, "weight": 70}
    assert shown["new"] == {"set_id": NEW_ID, "weight": 30}
    assert shown["shift"] is None


def test_shift_prints_each_step(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        args(env.zone_id, "shift", "--to", "30", "--interval", "30"), context=env.context()
    )
    out = capsys.readouterr().out
    assert code == 0
    for line in (
        "step 1/3: old 90 new 10",
        "step 2/3: old 80 new 20",
        "step 3/3: old 70 new 30",
        "done: old 70 new 30",
    ):
        assert line in out
    assert env.weights() == (70, 30)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--to", "150"], "error: target weight 150 is outside 0..100"),
        (["--to", "100", "--step", "30"], "error: step 30 does not divide the distance"),
        ([], "error: shift needs --to N"),
        (["--to", "50", "--alarm", "missing"], "error: health alarm(s) missing do not exist"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    env: Env, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    code = cli.main(args(env.zone_id, "shift", *extra), context=env.context())
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") == 1
    assert env.recorder.batches == []


def test_failed_gate_exits_non_zero_with_the_reason(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.put_alarm("api-5xx", state="ALARM")
    code = cli.main(
        args(env.zone_id, "shift", "--to", "50", "--alarm", "api-5xx"), context=env.context()
    )
    assert code == 1
    assert "failed: unhealthy: alarm api-5xx is ALARM" in capsys.readouterr().err


def test_ctrl_c_keeps_last_healthy_weights(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = env.context()
    sleeps = 0

    def sleep(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if env.weights() == (80, 20):
            raise KeyboardInterrupt
        env.clock.sleep(seconds)

    ctx.sleep = sleep
    code = cli.main(args(env.zone_id, "shift", "--to", "50", "--interval", "30"), context=ctx)
    captured = capsys.readouterr()
    assert code == 130
    assert "stopped (interrupted): old 90 new 10, lock released" in captured.out
    assert env.weights() == (90, 10)
    assert env.lock_values() == []


def test_abort_restores_and_releases_a_running_shift(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    shift_engine = sys.modules["shift_engine"]
    ctx = env.context()
    request = env.request(target=40)
    shift_engine.start(request, ctx, run_id="other", owner="cli:alice")
    shift_engine.advance(request, ctx, "other")
    assert cli.main(args(env.zone_id, "status"), context=ctx) == 0
    assert json.loads(capsys.readouterr().out)["shift"]["owner"] == "cli:alice"
    assert cli.main(args(env.zone_id, "shift", "--to", "50"), context=ctx) == 2
    assert "already being shifted: held by cli:alice" in capsys.readouterr().err
    assert cli.main(args(env.zone_id, "abort"), context=ctx) == 0
    assert "stopped (aborted): old 100 new 0" in capsys.readouterr().out
    assert env.weights() == (100, 0)
    assert env.lock_values() == []


def _run_script(
    *argv: str, credentials: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("AWS_")},
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **(env or {}),
    }
    if credentials:
        environment.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


def test_script_help_and_bad_input_exit_codes() -> None:
    shown = _run_script("--help")
    assert shown.returncode == 0
    assert "{status,shift,pause,resume,promote,abort}" in shown.stdout

    missing = _run_script("shift", "--zone-id", "Z1")
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: the following arguments are required")
    assert missing.stderr.count("\n") == 1

    # Refused before any call: the endpoint is a closed port and is never contacted
    bad = _run_script(*args("Z1", "shift", "--to", "150", "--endpoint-url", CLOSED_ENDPOINT))
    assert bad.returncode == 2
    assert bad.stderr == "error: target weight 150 is outside 0..100 (percent to new)\n"

    unreachable = _run_script(*args("Z1", "status", "--endpoint-url", CLOSED_ENDPOINT))
    assert unreachable.returncode == cli.EXIT_AWS_ERROR == 4
    assert unreachable.stderr.startswith("error: AWS call failed: Could not connect")
    assert "Traceback" not in unreachable.stderr


def test_missing_credentials_are_one_line_and_not_a_failed_gate() -> None:
    result = _run_script(*args("Z1", "status"), credentials=False)
    assert result.returncode == cli.EXIT_NO_CREDENTIALS == 3
    assert result.returncode != cli.EXIT_FAILED
    assert result.stderr.startswith("error: no usable AWS credentials")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ROUTE_53"])
def test_the_aws_endpoint_variables_redirect_route53(variable: str) -> None:
    # No --endpoint-url: botocore's own endpoint variables send Route53 to the closed port
    result = _run_script(*args("Z1", "status"), env={variable: CLOSED_ENDPOINT})
    assert result.returncode == cli.EXIT_AWS_ERROR
    assert f'Could not connect to the endpoint URL: "{CLOSED_ENDPOINT}/' in result.stderr


def test_defaults_come_from_their_one_home() -> None:
    defaults = cli.build_parser().parse_args(["status", "--zone-id", "Z1", "--name", "a.b.c"])
    # ProdStack's record names, and the deploy-time flags' step and soak
    assert (defaults.old_id, defaults.new_id) == (weighted_dns.OLD, weighted_dns.NEW)
    assert (defaults.old_id, defaults.new_id) == ("old", "new")
    assert defaults.step == int(config.DEFAULTS["shift_step"]) == 10
    assert defaults.interval == int(config.DEFAULTS["shift_interval"]) == 240
