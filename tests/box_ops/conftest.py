"""Fixtures of the box-operations tests (helpers live in box_ops_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from box_ops_support import REGION, STATE_PREFIX, Boxes
from moto import mock_aws


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("STATE_PARAMETER_PREFIX", STATE_PREFIX)
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)


@pytest.fixture
def logs(ssm: Any) -> Any:
    return boto3.client("logs", region_name=REGION)


@pytest.fixture
def boxes(ssm: Any) -> Boxes:
    return Boxes(ssm)
