"""How one flag's raw value becomes a typed one, or a one-line ConfigError.

Values given with `-c` arrive as strings ("false" is a string, and a truthy one), so every
parser accepts both the committed JSON's types and their text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A context value that cannot be used; the message is one line for the operator."""


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_bool(flag: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{flag}={raw!r} is not a boolean; use true/false (or 1/0)")


def parse_int(flag: str, raw: Any, *, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise ConfigError(f"{flag}={raw!r} is not a whole number; allowed: {low}..{high}")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{flag}={raw!r} is not a whole number; allowed: {low}..{high}") from None
    if not low <= value <= high:
        raise ConfigError(f"{flag}={value} is out of range; allowed: {low}..{high}")
    return value


def parse_choice(flag: str, raw: Any, choices: tuple[int, ...]) -> int:
    allowed = ", ".join(str(c) for c in choices)
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{flag}={raw!r} is not allowed; use one of {allowed}") from None
    if value not in choices:
        raise ConfigError(f"{flag}={value} is not allowed; use one of {allowed}")
    return value


def parse_one_of(flag: str, raw: Any, choices: tuple[str, ...]) -> str:
    value = str(raw).strip().lower()
    if value not in choices:
        raise ConfigError(f"{flag}={raw!r} is not allowed; use one of {', '.join(choices)}")
    return value


def parse_text(flag: str, raw: Any, pattern: re.Pattern[str], meaning: str) -> str:
    text = "" if raw is None else str(raw).strip()
    if text and not pattern.match(text):
        raise ConfigError(f"{flag}={text!r} is not {meaning}")
    return text


def parse_optional(
    context: Mapping[str, Any], key: str, parse: Callable[[Any], T], default: T
) -> T:
    """A flag whose empty or `auto` value means `default`."""
    raw = context.get(key)
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in {"", "auto"}):
        return default
    return parse(raw)
