"""Every operator CLI answers bad input with one line and a documented exit code, never a
traceback and never a password; Ctrl-C while starting is one line too; the scripts run from
any shell. Each command's `main` judged in this process with an operator's bare environment,
and each installed command run as an operator types it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from test_cost import load_script

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PASSWORD = "operator-secret-91c4e2"
# The interpreter the venv was made from: Python without the CLIs' dependencies.
BASE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")
COMMANDS = ("migrate-redis", "monitor-migration", "shift-traffic", "prostudio-cost")
migrate = load_script("migrate_redis")
monitor = load_script("monitor_migration")
cost = load_script("cost")
shift = load_script("shift_traffic")
MAINS = {
    "migrate-redis": migrate.main,
    "monitor-migration": monitor.main,
    "shift-traffic": shift.main,
    "prostudio-cost": cost.main,
}


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port held by this test and never listening: every connection is refused."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    yield holder.getsockname()[1]
    holder.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("inputs")
    made = {
        "binary": base / "binary.jsonl",
        "array": base / "array.jsonl",
        "assembly": base / "assembly",
        "unreadable-json": base / "notjson",
    }
    made["binary"].write_bytes(b"\x00\xff\xfe\n\x80")
    made["array"].write_text("[1, 2]\n")
    made["assembly"].mkdir()
    (made["assembly"] / "ZeroCostStack.template.json").write_text('{"Resources": 5}')
    (made["assembly"] / "ProdStack.template.json").write_text('{"Resources": {}}')
    made["unreadable-json"].mkdir()
    (made["unreadable-json"] / "ZeroCostStack.template.json").write_bytes(b"\xff\xfe")
    (made["unreadable-json"] / "ProdStack.template.json").write_text("{}")
    return made


def cli_environment(home: Path) -> dict[str, str]:
    """No AWS credentials or configuration, no instance metadata, nothing from the caller."""
    return {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def run(command: str, *argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / command), *argv],
        capture_output=True,
        text=True,
        env=cli_environment(home),
        cwd=home,
        timeout=60,
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("warning:")]


def bad_inputs(port: int, files: dict[str, Path]) -> list[tuple[str, list[str], int, str]]:
    """(command, arguments, exit code, a fragment of the one error line)."""
    source = ["--source", f"redis://127.0.0.1:{port}/0"]
    target = ["--target", f"redis://127.0.0.1:{port}/0"]
    shift = ["status", "--zone-id", "Z1", "--name", "api.example.com"]
    return [
        ("migrate-redis", [*source, "--target", "redis://host:0"], 2, "port 0 is outside"),
        ("migrate-redis", [*source, "--target", "redis://127.0.0.1:1/\u00b2"], 2, "database"),
        ("migrate-redis", [*source, "--target", "redis://[::1"], 2, "is not a valid URL"),
        ("migrate-redis", [*source, "--target", "not-a-url"], 2, "redis:// or rediss://"),
        ("migrate-redis", [*source, "--target", f"http://:{PASSWORD}@h:1"], 2, "'http://h:1'"),
        ("migrate-redis", [*source, "--target", f"redis://:{PASSWORD}@h:99999"], 2, "99999"),
        ("migrate-redis", [*source, *target, "--scan-count", str(10**20)], 2, "--scan-count"),
        ("migrate-redis", [*source, *target, "--scan-count", "0"], 2, "--scan-count"),
        ("migrate-redis", [*source, *target, "--sample-size", "-5"], 2, "--sample-size"),
        ("migrate-redis", [*source, *target, "--checkpoint", "/tmp"], 2, "is a directory"),
        ("migrate-redis", [*source, *target, "--checkpoint", "/proc/nope/c.json"], 2,
         "cannot create"),
        ("migrate-redis", [*source, *target, "--checkpoint", "/proc/self/c.json"], 2,
         "is not writable"),
        ("migrate-redis", [*source, *target, "--source-password-file", "/nonexistent"], 2,
         "--source-password-file"),
        ("migrate-redis", [*source, *target, "--target-ca", "/nonexistent"], 2, "--target-ca"),
        ("migrate-redis", [*source], 2, "--target"),
        ("monitor-migration", ["--once"], 2, "nothing to watch"),
        ("monitor-migration", ["--once", "--json"], 2, "nothing to watch"),
        ("monitor-migration", ["--once", "--old-url", "not-a-url"], 2, "--old-url must be"),
        ("monitor-migration", ["--once", "--old-url", "http://[::1/"], 2, "not a valid URL"),
        ("monitor-migration", ["--interval", "-1", "--old-url", "http://h/"], 2, "--interval"),
        ("monitor-migration", ["--interval", "nan", "--old-url", "http://h/"], 2, "--interval"),
        ("monitor-migration", ["--interval", "inf", "--old-url", "http://h/"], 2, "--interval"),
        ("monitor-migration", ["--once", "--alarm-prefix", ""], 2, "non-empty"),
        ("monitor-migration", ["--once", "--old-redis", "redis://[::1"], 2, "not a valid URL"),
        ("monitor-migration", ["--once", "--old-redis", "redis://h:0/\u00b2"], 2, "port 0"),
        ("monitor-migration", ["--once", "--new-redis", f"http://:{PASSWORD}@h"], 2, "'http://h'"),
        ("monitor-migration", ["--once", "--alarm", "a", "--region", "/etc/passwd"], 2,
         "not an AWS region"),
        ("monitor-migration", ["--once", "--max-lag-keys", "x", "--old-url", "http://h/"], 2,
         "--max-lag-keys"),
        ("shift-traffic", [*shift, "--endpoint-url", "not a url"], 2, "--endpoint-url"),
        ("shift-traffic", [*shift, "--region", "/etc/passwd"], 2, "not an AWS region"),
        ("shift-traffic", ["shift", *shift[1:], "--to", "50", "--interval", str(10**14)], 2,
         "outside 0 to 3600s"),
        ("shift-traffic", ["shift", *shift[1:], "--to", "50", "--health-url",
                           f"ftp://u:{PASSWORD}@x/"], 2, "'ftp://x/'"),
        ("shift-traffic", [*shift, "--to", "many"], 2, "--to"),
        ("shift-traffic", ["status"], 2, "required"),
        ("prostudio-cost", ["--assembly", str(files["assembly"])], 2, "is not a template"),
        ("prostudio-cost", ["--assembly", str(files["unreadable-json"])], 2, "not UTF-8 JSON"),
        ("prostudio-cost", ["--assembly", "/nonexistent"], 2, "is missing"),
        ("prostudio-cost", ["--region", "/etc/passwd"], 2, "not an AWS region"),
        ("prostudio-cost", ["--region", "eu-south-9", "--assembly", "/x"], 2, "no price table"),
        ("prostudio-cost", ["--compare", "/x"], 2, "--compare"),
        ("prostudio-cost", ["--refresh-prices"], 3, "needs AWS credentials"),
    ]  # fmt: skip


def run_in_process(
    command: str,
    argv: list[str],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> subprocess.CompletedProcess[str]:
    """The command's main(argv) here, in the environment `run` gives the installed command."""
    with monkeypatch.context() as patched:
        for name in set(os.environ) - {"PYTHONPATH"}:
            patched.delenv(name)
        for name, value in cli_environment(home).items():
            patched.setenv(name, value)
        patched.chdir(home)
        try:
            code = MAINS[command](argv)
        except SystemExit as exited:
            code = exited.code
        except Exception as error:  # where the process would end with a traceback
            sys.stderr.write(f"Traceback: {error!r}\n")
            code = 1
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess([command, *argv], code, out, err)


def wrong_answer(done: subprocess.CompletedProcess[str], code: int, fragment: str) -> str | None:
    lines = error_lines(done.stderr)
    shown = done.stdout + done.stderr
    if (
        done.returncode != code
        or len(lines) != 1
        or fragment not in lines[0]
        or "Traceback" in shown
        or PASSWORD in shown
    ):
        return f"{done.args}: exit {done.returncode}: {done.stderr[-300:]!r}"
    return None


def test_every_bad_input_is_one_line_with_its_exit_code_and_no_password(
    closed_port: int,
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cases = bad_inputs(closed_port, files)
    answers = [
        (run_in_process(command, argv, tmp_path, monkeypatch, capsys), code, fragment)
        for command, argv, code, fragment in cases
    ]
    wrong = [problem for answer in answers if (problem := wrong_answer(*answer))]
    assert not wrong, "\n".join(wrong)
    assert len(cases) > 40


@pytest.mark.parametrize("command", COMMANDS)
def test_each_installed_command_answers_bad_input_the_same_way(
    command: str, closed_port: int, files: dict[str, Path], tmp_path: Path
) -> None:
    """The first bad input of each command, as a process: the entry point takes the same path."""
    _, argv, code, fragment = next(
        case for case in bad_inputs(closed_port, files) if case[0] == command
    )
    assert wrong_answer(run(command, *argv, home=tmp_path), code, fragment) is None


def test_monitor_reads_a_binary_or_non_object_status_as_unhealthy(
    files: dict[str, Path], tmp_path: Path
) -> None:
    for name in ("binary", "array"):
        done = run(
            "monitor-migration", "--once", "--json", "--follow-status", str(files[name]),
            home=tmp_path,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert done.stderr == ""
        shown = json.loads(done.stdout)
        assert "no JSON status line yet" in shown["problems"][0]
        assert "None" not in done.stdout


def test_monitor_shows_health_urls_without_their_credentials(
    closed_port: int, tmp_path: Path
) -> None:
    done = run(
        "monitor-migration", "--once", "--json",
        "--old-url", f"http://watcher:{PASSWORD}@127.0.0.1:{closed_port}/health",
        home=tmp_path,
    )  # fmt: skip

    assert done.returncode == 1
    shown = json.loads(done.stdout)
    assert shown["endpoints"]["old"]["url"] == f"http://127.0.0.1:{closed_port}/health"
    assert PASSWORD not in done.stdout + done.stderr
    assert done.stderr.startswith("warning: --old-url carries a password")


def test_a_password_from_a_file_is_used_and_never_shown(closed_port: int, tmp_path: Path) -> None:
    secret = tmp_path / "target.password"
    secret.write_text(PASSWORD + "\n")
    target = f"redis://127.0.0.1:{closed_port}/0"
    assert migrate.parse_endpoint("--target", target, "NO_SUCH_VARIABLE", secret).password == (
        PASSWORD
    )

    done = run(
        "migrate-redis", "--source", target, "--target", target,
        "--target-password-file", str(secret), "--checkpoint", str(tmp_path / "c.json"),
        home=tmp_path,
    )  # fmt: skip

    assert done.returncode == 1
    assert len(error_lines(done.stderr)) == 1
    assert "warning" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


def test_the_copy_checkpoint_defaults_to_a_state_directory(
    closed_port: int, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{closed_port}/0"
    done = run("migrate-redis", "--source", url, "--target", url, home=tmp_path)

    assert done.returncode == 1
    assert list(tmp_path.glob("redis-copy*")) == []
    assert (tmp_path / ".local" / "state" / "prostudio").is_dir()
    assert "--checkpoint" in run("migrate-redis", "--help", home=tmp_path).stdout


def interrupt_while_importing(command: str, home: Path) -> tuple[int, list[str]]:
    """Start `command --help` and send SIGINT as soon as it imports its first module after
    the start-up guard (the imports' progress read from -X importtime). Exit status and the
    stderr lines that are not import timings."""
    process = subprocess.Popen(
        [str(BIN / "python"), "-X", "importtime", str(BIN / command), "--help"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environment(home),
    )
    assert process.stderr is not None
    guarded = False
    for line in process.stderr:
        if "cli_launch" in line:
            guarded = True
        elif guarded and line.startswith("import time:"):
            process.send_signal(signal.SIGINT)
            break
    rest = process.stderr.read()
    process.wait(timeout=30)
    return process.returncode, [
        line for line in rest.splitlines() if not line.startswith("import time:")
    ]


@pytest.mark.parametrize("command", COMMANDS)
def test_ctrl_c_while_starting_is_one_line(command: str, tmp_path: Path) -> None:
    outcomes = [interrupt_while_importing(command, tmp_path) for _ in range(3)]

    assert (130, ["interrupted while starting; nothing was done"]) in outcomes
    for code, lines in outcomes:
        assert code in (0, 130) and len(lines) <= 1, lines


@pytest.mark.parametrize("script", ["shift_traffic", "migrate_redis", "monitor_migration", "cost"])
def test_the_scripts_run_from_any_shell(script: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    path = ROOT / "scripts" / f"{script}.py"
    direct = subprocess.run(
        [str(path), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path, check=False
    )
    bare = subprocess.run(
        [BASE_PYTHON, "-S", str(path), "--help"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip

    for done in (direct, bare):
        assert done.returncode == 0, done.stderr
        assert "usage:" in done.stdout


def test_a_script_without_a_venv_says_how_to_set_up_in_one_line(tmp_path: Path) -> None:
    checkout = tmp_path / "fresh"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("shift_traffic.py", "cli_launch.py"):
        shutil.copy(ROOT / "scripts" / name, checkout / "scripts")
    done = subprocess.run(
        [BASE_PYTHON, "-S", str(checkout / "scripts" / "shift_traffic.py"), "status"],
        capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: boto3 not installed for {BASE_PYTHON}; run `make synth` in the checkout "
        "once, then run `shift-traffic` (or .venv/bin/shift-traffic)"
    ]


URL_PARTS = st.tuples(
    st.sampled_from(["redis://", "rediss://", "http://", "", "redis:/"]),
    st.sampled_from(["", ":pw@", "user:pw@", "@", "u@"]),
    st.sampled_from(["127.0.0.1", "[::1]", "[::1", "", "bad host", "127.0.0.1:"]),
    st.one_of(st.just("PORT"), st.text(alphabet="0123456789:\u00b2-", max_size=7)),
    st.one_of(st.just(""), st.text(max_size=6).map(lambda text: "/" + text)),
)


def url_from(parts: tuple[str, str, str, str, str], port: int) -> str:
    scheme, credentials, host, port_text, path = parts
    port_text = f":{port}" if port_text == "PORT" else port_text
    return f"{scheme}{credentials}{host}{port_text}{path}"


def answered(
    main: object, argv: list[str], capsys: pytest.CaptureFixture[str], verdict: int | None = None
) -> None:
    """main(argv) returns an exit code; a non-zero one comes with one error line, except the
    `verdict` code, which comes with the JSON report on stdout."""
    try:
        code = main(argv)  # type: ignore[operator]
    except SystemExit as exited:
        code = exited.code
    out, err = capsys.readouterr()
    assert isinstance(code, int), code
    assert "Traceback" not in err
    if code == verdict:
        assert json.loads(out.splitlines()[-1])["healthy"] is False
        assert error_lines(err) == []
    elif code != 0:
        assert len(error_lines(err)) == 1, err


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    source=URL_PARTS,
    target=URL_PARTS,
    extra=st.lists(
        st.tuples(
            st.sampled_from(["--scan-count", "--sample-size", "--policy", "--verify"]),
            st.one_of(st.integers(-(10**20), 10**20).map(str), st.text(max_size=5)),
        ),
        max_size=2,
    ),
)
def test_migrate_redis_answers_any_arguments_in_one_line(
    closed_port: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    source: tuple[str, str, str, str, str],
    target: tuple[str, str, str, str, str],
    extra: list[tuple[str, str]],
) -> None:
    argv = ["--source", url_from(source, closed_port), "--target", url_from(target, closed_port)]
    argv += ["--checkpoint", str(tmp_path / "c.json")]
    for option, value in extra:
        argv += [option, value]
    answered(migrate.main, argv, capsys)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    redis_url=st.one_of(st.none(), URL_PARTS),
    health=st.one_of(st.none(), st.sampled_from(["http://", "https://", "ftp://", ""])),
    numbers=st.lists(
        st.tuples(
            st.sampled_from(
                ["--interval", "--max-latency-ms", "--max-status-age", "--max-lag-keys"]
            ),
            st.one_of(st.floats(allow_nan=True).map(str), st.text(max_size=5)),
        ),
        max_size=2,
    ),
    region=st.one_of(st.none(), st.text(max_size=12)),
    prefix=st.one_of(st.none(), st.text(max_size=3)),
)
def test_monitor_answers_any_arguments_in_one_line(
    closed_port: int,
    capsys: pytest.CaptureFixture[str],
    redis_url: tuple[str, str, str, str, str] | None,
    health: str | None,
    numbers: list[tuple[str, str]],
    region: str | None,
    prefix: str | None,
) -> None:
    argv = ["--once", "--json"]
    if redis_url is not None:
        argv += ["--old-redis", url_from(redis_url, closed_port)]
    if health is not None:
        argv += ["--new-url", f"{health}127.0.0.1:{closed_port}/health"]
    for option, value in numbers:
        argv += [option, value]
    if region is not None:
        argv += ["--region", region]
    if prefix is not None:
        argv += ["--alarm-prefix", prefix]
    with mock_aws():
        answered(monitor.main, argv, capsys, verdict=1)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    region=st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["us-east-1", "eu-x-1"])),
    source=st.sampled_from(["assembly", "unreadable-json", "missing", "compare"]),
)
def test_cost_answers_any_arguments_in_one_line(
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    region: str | None,
    source: str,
) -> None:
    argv = [] if region is None else ["--region", region]
    if source == "compare":
        argv += ["--compare", str(files["assembly"]), str(files["unreadable-json"])]
    elif source == "missing":
        argv += ["--assembly", "/nonexistent"]
    else:
        argv += ["--assembly", str(files[source])]
    answered(cost.main, argv, capsys)


def test_every_cli_documents_its_exit_codes() -> None:
    for script in ("migrate_redis", "monitor_migration", "shift_traffic", "cost"):
        text = (ROOT / "scripts" / f"{script}.py").read_text()
        assert "Exit codes: 0 " in text, script
        assert os.access(ROOT / "scripts" / f"{script}.py", os.X_OK), script
