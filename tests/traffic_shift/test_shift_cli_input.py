"""shift-traffic's input: the health URL never echoed with its password, values out of range
refused, every suggested command one that works, and any argument list answered with one line.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shift_support import NEW_ID, OLD_ID, RECORD_NAME, Env, load_cli

cli = load_cli()
PASSWORD = "health-password-5e1f"
CLOSED_HEALTH = f"http://probe:{PASSWORD}@127.0.0.1:9/health"


def args(zone_id: str, command: str, *extra: str) -> list[str]:
    return [command, "--zone-id", zone_id, "--name", RECORD_NAME,
            "--old-id", OLD_ID, "--new-id", NEW_ID, *extra]  # fmt: skip


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if not line.startswith("warning:")]


def test_a_failing_health_url_is_reported_without_its_password(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        args(env.zone_id, "shift", "--to", "20", "--health-url", CLOSED_HEALTH),
        context=env.context(),
    )

    out, err = capsys.readouterr()
    assert code == 1
    assert "GET http://127.0.0.1:9/health failed" in out + err
    assert PASSWORD not in out + err
    assert err.startswith("warning: --health-url carries a password")
    assert env.weights() == (100, 0)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--health-url", f"ftp://u:{PASSWORD}@x/"], "is not an http:// or https:// URL"),
        (["--health-url", f"https://u:{PASSWORD}@[x/"], "is not a valid URL"),
        (["--health-url", "http://h:0/health"], "is not an http:// or https:// URL"),
        (["--interval", str(10**14)], "outside 0 to 3600s"),
        (["--interval", "-1"], "outside 0 to 3600s"),
        (["--endpoint-url", "not a url"], "--endpoint-url must be an http:// or https://"),
        (["--region", "/etc/passwd"], "is not an AWS region name"),
    ],
)
def test_bad_values_are_one_line_and_change_nothing(
    env: Env, capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    code = cli.main(args(env.zone_id, "shift", "--to", "50", *extra), context=env.context())

    out, err = capsys.readouterr()
    assert code == 2
    (line,) = error_lines(err)
    assert line.startswith("error: ") and fragment in line
    assert PASSWORD not in out + err
    assert env.weights() == (100, 0)
    assert env.lock_values() == []


def test_the_lock_message_suggests_an_abort_that_works(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a shift another operator started and left holding the lock
    ctx = env.context()
    sys.modules["shift_engine"].start(
        env.request(target=50), ctx, run_id="other", owner="cli:alice"
    )

    assert cli.main(args(env.zone_id, "shift", "--to", "50"), context=ctx) == 2
    err = capsys.readouterr().err
    suggested = err.split("`")[1]
    assert suggested.startswith("shift-traffic abort ")

    assert cli.main(suggested.split()[1:], context=ctx) == 0
    assert env.lock_values() == []


OPTION_VALUES = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(10**16), max_value=10**16).map(str),
    st.sampled_from(["nan", "inf", "-0", "", "http://127.0.0.1:9/health", "ftp://x", "[::1"]),
)
OPTIONS = st.sampled_from(
    ["--to", "--step", "--interval", "--alarm", "--health-url", "--rollback-to", "--region",
     "--endpoint-url", "--old-id", "--new-id"]
)  # fmt: skip


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    command=st.sampled_from(["status", "shift", "abort", "bogus", ""]),
    pairs=st.lists(st.tuples(OPTIONS, OPTION_VALUES), max_size=4),
)
def test_any_arguments_get_an_answer_or_one_line_never_a_traceback(
    env: Env, capsys: pytest.CaptureFixture[str], command: str, pairs: list[tuple[str, str]]
) -> None:
    argv = [command, "--zone-id", env.zone_id, "--name", RECORD_NAME]
    for option, value in pairs:
        argv += [option, value]
    try:
        code = cli.main(argv, context=env.context())
    except SystemExit as exited:
        code = exited.code
    _, err = capsys.readouterr()
    assert isinstance(code, int)
    assert "Traceback" not in err
    if code != 0:
        assert len(error_lines(err)) == 1, err
    env.set_weights(100, 0)
    if env.lock_values():
        assert cli.main(args(env.zone_id, "abort"), context=env.context()) == 0
        capsys.readouterr()
