"""Context parsing: strings from -c, phase defaults, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from synth_support import CDK_JSON_CONTEXT, ROOT

import app as entry
from infra import config
from infra.config import ConfigError, load_settings

# A fixed environment file, so these tests never depend on the operator's committed one.
FIXED_ENVIRONMENTS = Path(__file__).resolve().parent / "environments"


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
        "unknown flag seperate_redis=true; did you mean separate_redis?",
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
    "retired copy policy": (
        {"copy_policy": "fail"},
        "copy_policy is gone: the deploy-time cutover fixes its own",
    ),
    "restore drill without production": (
        {"phase": "2", "restore_drill": "drill-1"},
        "restore_drill='drill-1' restores a production snapshot into ProdStack; it needs phase=3",
    ),
    "restore drill snapshot name": (
        {"phase": "3", "restore_drill": "drill--1"},
        "restore_drill='drill--1' is not an ElastiCache snapshot name",
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


def run_app(
    capfd: pytest.CaptureFixture[str],
    overrides: dict[str, str],
    outdir: Path,
    environments: Path = FIXED_ENVIRONMENTS,
) -> tuple[int, str]:
    """app.main's exit code and stderr, in this process, with the context and output folder the
    CDK CLI would give it, reading the environment files in `environments` instead of the
    repository's committed ones (test_cdk_synth_reports_bad_context_end_to_end runs it as the
    CLI's own process)."""
    capfd.readouterr()
    code = entry.main(
        environments, App(context={**CDK_JSON_CONTEXT, **overrides}, outdir=str(outdir))
    )
    return code, capfd.readouterr().err


# Every bad input raises ConfigError from load_settings (test_bad_input_is_one_clear_line), so
# the app's one exit path is shown on one of each kind: a value, a flag, a cross-field rule.
APP_EXIT_CASES = ("phase 7", "misspelled flag", "domain outside its zone")


@pytest.mark.parametrize(
    ("overrides", "message"), [BAD_INPUT[case] for case in APP_EXIT_CASES], ids=APP_EXIT_CASES
)
def test_the_app_exits_non_zero_with_one_line_and_no_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], overrides: dict[str, str], message: str
) -> None:
    code, stderr = run_app(capfd, overrides, tmp_path / "out")
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert message in stderr


@pytest.mark.slow
def test_cdk_synth_reports_bad_context_end_to_end(tmp_path: Any) -> None:
    """The real CLI adds its own keys to the context: they pass, a mistyped flag does not, and
    the app's line reaches the operator (the CLI passes any refusal on alike; the app's exit
    on each kind of bad input is test_the_app_exits_non_zero_with_one_line_and_no_traceback)."""
    result = subprocess.run(
        [
            str(ROOT / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--no-notices",
            "--quiet",
            "-o",
            str(tmp_path / "out"),
            "-c",
            "Phase=3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "error: unknown flag Phase=3; did you mean phase?" in result.stderr
    assert "Traceback" not in result.stderr


MISTYPED = {
    "Phase": ("3", "unknown flag Phase=3; did you mean phase?"),
    "migrateData": ("true", "unknown flag migrateData=true; did you mean migrate_data?"),
    "MIGRATE_DATA": ("true", "unknown flag MIGRATE_DATA=true; did you mean migrate_data?"),
    "Traffic_Weight": ("0", "unknown flag Traffic_Weight=0; did you mean traffic_weight?"),
    "phase ": ("3", "unknown flag phase =3; did you mean phase?"),
    "shift-traffic": ("true", "unknown flag shift-traffic=true; did you mean shift_traffic?"),
}


@pytest.mark.parametrize(("key", "value", "message"), [(k, *v) for k, v in MISTYPED.items()])
def test_a_mistyped_flag_is_refused_with_the_flag_it_resembles(
    key: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        settings_for(**{key: value})
    assert str(error.value) == message


# What the CDK CLI and cx-api really put in context (aws-cdk's contextFromSettings, the
# feature flags, cdk.context.json's settings and lookup cache).
CDK_OWN_KEYS = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:disable-version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
    "aws:cdk:disable-stack-trace": True,
    "aws:cdk:disable-asset-staging": True,
    "@aws-cdk/core:failSynthOnValidationErrors": False,
    "@aws-cdk/aws-ec2:restrictDefaultSecurityGroup": True,
    "acknowledged-issue-numbers": [32775],
    "cli-telemetry": False,
    "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a"],
    "ssm:account=123456789012:parameterName=/x:region=us-east-1": "v",
}


def test_cdks_own_context_keys_pass() -> None:
    assert settings_for(**CDK_OWN_KEYS).phase == 1


def test_cdk_json_holds_only_cdks_own_keys_so_it_cannot_disagree_with_the_defaults() -> None:
    # Every flag's default lives in infra.config.DEFAULTS; cdk.json carries none of them
    assert all(config.is_cdk_key(key) for key in CDK_JSON_CONTEXT), sorted(
        key for key in CDK_JSON_CONTEXT if not config.is_cdk_key(key)
    )


def test_the_committed_environment_file_holds_known_flags_only() -> None:
    for path in config.ENVIRONMENTS_DIR.glob("*.json"):
        committed = json.loads(path.read_text())
        assert set(committed) <= set(config.DEFAULTS) - {"allow_teardown", "environment"}, path
        load_settings(config.with_environment({}, path.parent))


def write_environment(directory: Path, name: str = "production", **flags: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(flags))
    return directory


PRODUCTION_FLAGS: dict[str, Any] = {
    "phase": 3,
    "zone_name": "prostudio.io",
    "domain_name": "api.prostudio.io",
    "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
}


STAGING_NAME = "api.staging.prostudio.io"


class TestCommittedEnvironment:
    def test_the_committed_file_is_what_loads_without_any_flag(self, tmp_path: Path) -> None:
        directory = write_environment(tmp_path, **PRODUCTION_FLAGS)
        settings = load_settings(config.with_environment({}, directory))
        assert settings.prod_enabled
        assert settings.dns.hosted_zone_id == "Z0123456789ABCDEFGHIJ"

    def test_a_flag_on_the_command_line_overrides_it_for_one_deploy(self, tmp_path: Path) -> None:
        directory = write_environment(tmp_path, **PRODUCTION_FLAGS)
        assert load_settings(config.with_environment({"phase": "2"}, directory)).phase == 2

    def test_another_environment_is_chosen_by_name(self, tmp_path: Path) -> None:
        write_environment(tmp_path, **PRODUCTION_FLAGS)
        write_environment(
            tmp_path, "staging", **{**PRODUCTION_FLAGS, "phase": 2, "domain_name": STAGING_NAME}
        )
        merged = config.with_environment({"environment": "staging"}, tmp_path)
        assert load_settings(merged).phase == 2

    def test_two_environments_serving_one_name_are_refused(self, tmp_path: Path) -> None:
        """Their weighted records would be the same records, each deploy overwriting the
        other's; the file or the -c flag that makes them equal is refused in one line."""
        write_environment(tmp_path, **PRODUCTION_FLAGS)
        write_environment(tmp_path, "staging", **{**PRODUCTION_FLAGS, "domain_name": STAGING_NAME})
        shared = (
            r"^environment=staging: domain_name=api\.prostudio\.io is also \S+/production\.json's"
        )
        with pytest.raises(ConfigError, match=shared):
            config.with_environment(
                {"environment": "staging", "domain_name": "api.prostudio.io"}, tmp_path
            )
        write_environment(tmp_path, "qa", **PRODUCTION_FLAGS)
        with pytest.raises(ConfigError, match=r"^environment=qa: domain_name=api"):
            config.with_environment({"environment": "qa"}, tmp_path)

    @pytest.mark.parametrize(
        ("flags", "message"),
        [
            ({"Phase": 3}, "production.json: unknown flag Phase=3; did you mean phase?"),
            ({"allow_teardown": "ProdStack"}, "sets allow_teardown; pass it with -c"),
            (
                {"copy_policy": "fail"},
                "production.json: copy_policy is gone: .* migrate-redis --policy; remove it",
            ),
        ],
    )
    def test_a_bad_committed_file_is_one_line(
        self, tmp_path: Path, flags: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ConfigError, match=message):
            config.with_environment({}, write_environment(tmp_path, **flags))

    def test_a_missing_environment_names_the_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"environments/qa\.json does not exist"):
            config.with_environment({"environment": "qa"}, tmp_path / "environments")


class TestExampleValues:
    def test_the_repositorys_examples_are_recognised(self) -> None:
        assert set(settings_for(phase="2").dns.example_values) == {
            "domain_name",
            "zone_name",
            "hosted_zone_id",
        }

    def test_real_values_are_not(self) -> None:
        flags = {key: str(value) for key, value in PRODUCTION_FLAGS.items()}
        assert settings_for(**flags).dns.example_values == {}

    def test_synth_warns_in_one_line(
        self, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The line is printed before the build (the silent synth below builds for real)
        monkeypatch.setattr(entry, "build", lambda app, settings: None)
        code, stderr = run_app(capfd, {"phase": "2"}, tmp_path / "out")
        warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
        assert code == 0, stderr
        assert len(warnings) == 1
        assert "hosted_zone_id=Z0000000000EXAMPLE" in warnings[0]

    @pytest.mark.slow
    def test_real_values_synthesize_silently(
        self, tmp_path: Path, capfd: pytest.CaptureFixture[str]
    ) -> None:
        environments = write_environment(tmp_path, **PRODUCTION_FLAGS)
        code, stderr = run_app(capfd, {}, tmp_path / "out", environments)
        assert code == 0, stderr
        assert "warning:" not in stderr
        assert (tmp_path / "out" / "ProdStack.template.json").is_file()


def test_allow_teardown_names_a_stack() -> None:
    assert settings_for(allow_teardown="ProdStack,ZeroCostStack").allow_teardown == {
        "ProdStack",
        "ZeroCostStack",
    }
    with pytest.raises(ConfigError, match="allow_teardown=prod names no stack 'prod'"):
        settings_for(allow_teardown="prod")


@pytest.mark.parametrize("engine", ["valkey", "redis"])
def test_a_cutover_that_could_not_be_handed_back_is_refused_at_synth(engine: str) -> None:
    flags = {
        "phase": "3",
        "separate_redis": "false",
        "instances": "1",
        "migrate_data": "true",
        "cache_engine": engine,
        "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
    }
    with pytest.raises(ConfigError) as refused:
        settings_for(**flags)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("migrate_data=true cannot be rolled back here")
    assert "into the box's Redis 6.2" in message
    # Without the cutover, or with the cache the cutover can hand the boxes back to, it passes
    assert settings_for(**{**flags, "migrate_data": "false"}).prod.migrate_data is False
    assert settings_for(**{**flags, "separate_redis": "true"}).prod.migrate_data is True


def test_the_dump_formats_name_the_engines_the_caches_run() -> None:
    from infra.constructs.redis_cluster import ENGINES  # noqa: PLC0415 - CDK import

    for name, engine in ENGINES.items():
        assert config.CACHE_RELEASES[name].name.endswith(f" {engine.version}")
    assert config.BOX_REDIS.dump_format < min(r.dump_format for r in config.CACHE_RELEASES.values())
