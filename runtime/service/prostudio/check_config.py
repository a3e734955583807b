"""Validate the environment before the service starts: ``python -m prostudio.check_config``.

Prints one line naming the bad variable and exits 2; prints nothing and exits 0 when valid.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from prostudio.settings import ConfigError, Settings, load_settings


def settings_or_exit(env: Mapping[str, str]) -> Settings:
    """The validated settings, or a one-line error on stderr and exit status 2."""
    try:
        return load_settings(env)
    except ConfigError as error:
        sys.stderr.write(f"prostudio: configuration error: {error}\n")
        raise SystemExit(2) from None


def main() -> int:
    """Entry point for systemd's ExecStartPre and the container."""
    settings_or_exit(os.environ)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
