"""Which committed environment file a deploy reads, and how `-c` is laid over it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.config.cdk_keys import is_cdk_key
from infra.config.flags import COMMAND_LINE_ONLY, DEFAULTS, reject_unknown
from infra.config.parsing import ConfigError

ENVIRONMENTS_DIR = Path(__file__).resolve().parents[2] / "environments"
_ENVIRONMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def environment_file(name: str, directory: Path = ENVIRONMENTS_DIR) -> Path:
    if not _ENVIRONMENT_NAME.match(name):
        raise ConfigError(f"environment={name!r} is not a name such as production or staging")
    return directory / f"{name}.json"


def with_environment(
    context: Mapping[str, Any], directory: Path = ENVIRONMENTS_DIR
) -> dict[str, Any]:
    """The committed environment file's flags under `context` (`-c` wins): what the app loads.

    The environment is `-c environment=NAME` (default production): environments/NAME.json.
    """
    name = str(context.get("environment", DEFAULTS["environment"])).strip()
    path = environment_file(name, directory)
    shown = f"{path.parent.name}/{path.name}"
    try:
        committed = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"environment={name}: {shown} does not exist; copy environments/production.json"
        ) from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{shown} is not readable JSON: {error}") from None
    if not isinstance(committed, dict):
        raise ConfigError(f"{shown} must hold one JSON object of flags")
    for key in committed:
        if key in COMMAND_LINE_ONLY:
            raise ConfigError(
                f"{shown} sets {key}; pass it with -c for one deploy, never commit it"
            )
    try:
        reject_unknown({key: value for key, value in committed.items() if not is_cdk_key(key)})
    except ConfigError as error:
        raise ConfigError(f"{shown}: {error}") from None
    merged = {**committed, **context, "environment": name}
    _refuse_a_shared_public_name(name, merged, directory)
    return merged


def _refuse_a_shared_public_name(name: str, context: Mapping[str, Any], directory: Path) -> None:
    """Each environment's weighted records are its public name's: two environments serving one
    name would overwrite each other's records (same name, type and set identifiers)."""
    domain = str(context.get("domain_name", DEFAULTS["domain_name"])).strip()
    for other in sorted(directory.glob("*.json")):
        if other.stem == name:
            continue
        try:
            committed = json.loads(other.read_text())
        except (OSError, ValueError):
            continue
        theirs = (
            committed.get("domain_name", DEFAULTS["domain_name"])
            if isinstance(committed, dict)
            else None
        )
        if str(theirs).strip() == domain:
            raise ConfigError(
                f"environment={name}: domain_name={domain} is also {other.parent.name}/"
                f"{other.name}'s; give each environment its own public name"
            )
