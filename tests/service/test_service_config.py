"""Configuration from the environment: valid values parse, bad ones stop the service with one
line naming the variable, both in ``python -m prostudio.check_config`` and in gunicorn.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prostudio.settings import ConfigError, load_settings
from service_helpers import SERVICE_ROOT

BAD_VALUES = [
    ({"API_WORKERS": "two"}, "API_WORKERS"),
    ({"API_WORKERS": "0"}, "API_WORKERS"),
    ({"MAX_MEMORY_MB": "-5"}, "MAX_MEMORY_MB"),
    ({"MAX_MEMORY_MB": "1gb"}, "MAX_MEMORY_MB"),
    ({"METRICS_BIND": "9100"}, "METRICS_BIND"),
    ({"METRICS_BIND": "127.0.0.1:99999"}, "METRICS_BIND"),
    ({"METRICS_BIND": "127.0.0.1:\u00b2"}, "METRICS_BIND"),
    ({"REDIS_PORT": "70000"}, "REDIS_PORT"),
    ({"REDIS_MAX_CONNECTIONS": "4"}, "REDIS_MAX_CONNECTIONS"),
    ({"REDIS_HOST": "bad host!"}, "REDIS_HOST"),
    ({"REDIS_TLS": "maybe"}, "REDIS_TLS"),
    ({"REDIS_AUTH_TOKEN": "token-without-tls-1234"}, "REDIS_TLS"),
    ({"REDIS_PASSWORD": "a", "REDIS_AUTH_TOKEN": "b", "REDIS_TLS": "true"}, "REDIS_PASSWORD"),
    ({"REDIS_SENTINEL_HOSTS": "10.0.0.5"}, "REDIS_SENTINEL_HOSTS"),
    ({"REDIS_TIMEOUT_MS": "5"}, "REDIS_TIMEOUT_MS"),
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
    ({"CACHE_TTL_SECONDS": "0"}, "CACHE_TTL_SECONDS"),
    ({"REDIS_SOCKET": "redis.sock"}, "REDIS_SOCKET"),
    ({"REDIS_SOCKET": "/run/r.sock", "REDIS_TLS": "true"}, "REDIS_SOCKET"),
]


def clean_environment(**values: str) -> dict[str, str]:
    """The current environment without any service variable, plus the given ones."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REDIS_", "API_", "MAX_MEMORY", "LOG_LEVEL", "CACHE_TTL"))
    }
    return {**env, **values}


def test_defaults_are_the_zero_cost_box() -> None:
    settings = load_settings({})

    assert settings.api_workers == 1
    assert settings.max_memory_mb == 1024
    assert (settings.redis.host, settings.redis.port, settings.redis.tls) == (
        "127.0.0.1",
        6379,
        False,
    )
    assert not settings.redis.uses_sentinel


def test_production_values_parse() -> None:
    settings = load_settings(
        {
            "REDIS_HOST": "master.prostudio.abc123.use1.cache.amazonaws.com",
            "REDIS_PORT": "6380",
            "REDIS_TLS": "true",
            "REDIS_AUTH_TOKEN": "t" * 32,
            "API_WORKERS": "4",
            "MAX_MEMORY_MB": "3072",
        }
    )

    assert settings.api_workers == 4
    assert settings.max_memory_mb == 3072
    assert settings.redis.tls
    assert settings.redis.password == "t" * 32


def test_sentinel_hosts_parse() -> None:
    settings = load_settings(
        {"REDIS_SENTINEL_HOSTS": "10.0.0.5:26379, 10.0.0.6:26380", "REDIS_SENTINEL_MASTER": "ps"}
    )

    assert settings.redis.sentinel_hosts == (("10.0.0.5", 26379), ("10.0.0.6", 26380))
    assert settings.redis.sentinel_master == "ps"


@pytest.mark.parametrize(("values", "variable"), BAD_VALUES)
def test_bad_values_name_the_variable(values: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(values)

    assert variable in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("values", "variable"), BAD_VALUES[:3])
def test_check_config_prints_one_line_and_exits_non_zero(
    values: dict[str, str], variable: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "prostudio.check_config"],
        check=False,
        cwd=SERVICE_ROOT,
        env=clean_environment(**values),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert lines[0].startswith("prostudio: configuration error:")


def test_check_config_accepts_a_valid_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "prostudio.check_config"],
        check=False,
        cwd=SERVICE_ROOT,
        env=clean_environment(API_WORKERS="4", MAX_MEMORY_MB="3072"),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_gunicorn_refuses_to_start_on_a_bad_value() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py"],
        check=False,
        cwd=SERVICE_ROOT,
        env=clean_environment(REDIS_PORT="not-a-port", GUNICORN_BIND="127.0.0.1:1"),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "prostudio: configuration error: REDIS_PORT='not-a-port' is not an integer; "
        "set a whole number from 1 to 65535"
    ]
