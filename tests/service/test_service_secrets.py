"""No secret reaches a log: a worker that fails to boot and a request that fails, each with a
known Redis password and credentials in the request, through real gunicorn and nginx.
"""

from __future__ import annotations

import http.client
import io
import json
import os
from pathlib import Path

import pytest
from local_service import local_service
from prostudio.logs import LineBuffer, build_logger
from prostudio.settings import load_settings
from service_helpers import wait_until

from devtools.processes import TopologyError

TESTS_DIR = str(Path(__file__).parent)
BEARER = "bearer-secret-4f1c9a7e"
COOKIE = "session-secret-9d2b7c31"


def every_output(workdir: Path) -> str:
    """Everything the topology's processes wrote."""
    return "\n".join(path.read_text(errors="replace") for path in (workdir / "logs").glob("*"))


def test_settings_never_print_their_secrets() -> None:
    settings = load_settings(
        {
            "REDIS_PASSWORD": "box-password-0123456789",
            "REDIS_SENTINEL_HOSTS": "10.0.0.5:26379",
            "REDIS_SENTINEL_PASSWORD": "sentinel-password-0123",
        }
    )

    shown = repr(settings) + str(settings) + repr(settings.redis) + f"{settings!s}"

    assert "box-password-0123456789" not in shown
    assert "sentinel-password-0123" not in shown
    assert "10.0.0.5" in shown


def test_an_exception_is_logged_without_local_variables() -> None:
    stream = io.StringIO()
    logger = build_logger("info", LineBuffer(stream))

    def fail(password: str) -> None:
        raise ValueError("refused")

    try:
        fail("local-secret-7a7a7a")
    except ValueError:
        logger.exception("failed")

    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record["exception"][0]["exc_value"] == "refused"
    assert "local-secret-7a7a7a" not in stream.getvalue()
    assert all("locals" not in frame for frame in record["exception"][0]["frames"])


def test_a_worker_that_fails_to_boot_logs_no_secret(tmp_path: Path) -> None:
    topology = local_service(
        tmp_path, app="failing_apps:boot()", extra_env={"PYTHONPATH": TESTS_DIR}
    )

    with pytest.raises(TopologyError) as failure:
        topology.start()

    output = every_output(tmp_path)
    assert "the origin refused the start-up check" in output
    assert topology.redis_password not in output
    assert topology.redis_password not in str(failure.value)


def test_a_request_that_fails_logs_no_credentials_or_secret(tmp_path: Path) -> None:
    topology = local_service(
        tmp_path, app="failing_apps:failing_requests()", extra_env={"PYTHONPATH": TESTS_DIR}
    )
    topology.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", topology.nginx_port, timeout=5)
        connection.request(
            "GET",
            "/api/v1/tracks/t1/waveform",
            headers={"Authorization": f"Bearer {BEARER}", "Cookie": f"session={COOKIE}"},
        )
        response = connection.getresponse()
        body = response.read().decode()
        connection.close()
        assert response.status == 500
        wait_until(lambda: "unhandled_error" in every_output(tmp_path), what="the error's log line")
    finally:
        topology.stop()

    output = every_output(tmp_path) + body
    assert "render failed for t1" in output
    for secret in (BEARER, COOKIE, topology.redis_password):
        assert secret not in output
    assert os.environ.get("REDIS_PASSWORD", "") not in {BEARER, COOKIE}
