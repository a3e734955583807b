"""Custom-resource properties: CloudFormation hands every value over as a string."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import UsageError


class PropertyError(UsageError):
    """A resource property that is missing or malformed."""


def flag(
    properties: Mapping[str, Any],
    key: str,
    *,
    default: bool = False,
    error: type[Exception] = PropertyError,
) -> bool:
    """ "true" or "false" (any case); `default` when the property is absent."""
    text = str(properties.get(key, "true" if default else "false")).strip().lower()
    if text not in {"true", "false"}:
        raise error(f"property {key}={properties.get(key)!r} must be true or false")
    return text == "true"


def whole_number(
    properties: Mapping[str, Any], key: str, *, error: type[Exception] = PropertyError
) -> int:
    try:
        return int(str(properties[key]).strip())
    except (KeyError, ValueError):
        raise error(f"property {key}={properties.get(key)!r} is not a whole number") from None


def text(
    properties: Mapping[str, Any],
    key: str,
    *,
    required: bool = False,
    error: type[Exception] = PropertyError,
) -> str:
    value = str(properties.get(key, "")).strip()
    if required and not value:
        raise error(f"property {key} is missing")
    return value
