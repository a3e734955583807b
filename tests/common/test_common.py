"""runtime/common: what the Lambdas and scripts share, and that both Lambda assets carry it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from synth_support import FLAG_COMBINATIONS, synthesize

from runtime.common import aws, properties
from runtime.common.errors import ExitCode, OperatorError, UsageError, exit_code_for
from runtime.common.json_logs import lambda_logger


class HandlerError(Exception):
    pass


def test_properties_parse_cloudformation_strings() -> None:
    given = {"Tls": "TRUE", "Port": " 6379 ", "Host": " redis.internal "}
    assert properties.flag(given, "Tls") is True
    assert properties.flag({}, "Tls") is False
    assert properties.whole_number(given, "Port") == 6379
    assert properties.text(given, "Host", required=True) == "redis.internal"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: properties.flag({"Tls": "yes"}, "Tls"),
            "Tls='yes' must be true or false",
        ),
        (lambda: properties.whole_number({"Port": "63x"}, "Port"), "Port='63x' is not a whole"),
        (lambda: properties.whole_number({}, "Port"), "property Port=None is not a whole number"),
        (lambda: properties.text({}, "Host", required=True), "property Host is missing"),
    ],
)
def test_bad_properties_are_usage_errors_naming_the_property(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(properties.PropertyError, match=message) as raised:
        call()
    assert exit_code_for(raised.value) == ExitCode.USAGE


def test_a_handler_keeps_its_own_error_class() -> None:
    with pytest.raises(HandlerError, match="property Step='x' is not a whole number"):
        properties.whole_number({"Step": "x"}, "Step", error=HandlerError)


def test_clients_wait_bounded_and_retry_in_one_layer() -> None:
    client = aws.client("dynamodb", region_name="us-east-1")
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (5, 15)
    assert config.retries == {"mode": "standard", "total_max_attempts": aws.STANDARD_ATTEMPTS}
    single = aws.client_config(botocore_attempts=1)
    assert single.retries == {"mode": "standard", "total_max_attempts": 1}


def test_lambda_logs_are_one_json_object_per_line() -> None:
    stream = io.StringIO()
    log = lambda_logger("traffic_shift", stream=stream)
    log.info("weight 30 -> new", done=False)
    log.warning("slice interrupted", error="Connection reset")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "weight 30 -> new" and first["done"] is False
    assert (first["level"], first["logger"]) == ("info", "traffic_shift")
    assert first["timestamp"].endswith("Z")
    assert (second["level"], second["error"]) == ("warning", "Connection reset")


def test_exit_codes() -> None:
    assert exit_code_for(UsageError("bad flag")) == 2
    assert exit_code_for(OperatorError("target differs")) == 1
    assert exit_code_for(KeyboardInterrupt()) == 130
    assert exit_code_for(RuntimeError("bug")) == 1


def _asset_of(handler_module: str) -> Path:
    synthesis = synthesize(**FLAG_COMBINATIONS["phase3-migration"])
    (asset,) = {path.parent for path in synthesis.outdir.glob(f"asset.*/{handler_module}.py")}
    return asset


@pytest.mark.parametrize(
    ("handler", "bundled"),
    [("shift_handler", ("structlog",)), ("teardown_guard_handler", ())],
)
def test_each_lambda_asset_imports_common_and_its_packages_from_itself(
    handler: str, bundled: tuple[str, ...]
) -> None:
    asset = _asset_of(handler)
    assert not list(asset.rglob("__pycache__")) and not list(asset.rglob("*.so"))
    # As Lambda loads it: the asset first on the path, then the runtime's boto3.
    modules = ("runtime.common.json_logs", *bundled)
    script = (
        f"import sys, json, importlib; sys.path.insert(0, {str(asset)!r}); import {handler}; "
        f"print(json.dumps([importlib.import_module(m).__file__ for m in {modules!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-B", "-c", script], capture_output=True, text=True, check=True
    )
    files = [Path(path) for path in json.loads(result.stdout)]
    assert all(asset in path.parents for path in files), files
