"""Start-up shared by the operator CLIs, in the standard library only so that it runs before
anything else is imported.

- Ctrl-C while a CLI is still starting (importing boto3, redis, rich) ends it with one line
  and exit status 130 instead of a traceback.
- A checkout's script run by an interpreter that lacks the CLIs' dependencies (`python3
  scripts/shift_traffic.py` outside the venv) runs itself again with the checkout's
  `.venv/bin/python`; without one it says, in one line, how to set it up.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

CHECKOUT = Path(__file__).resolve().parents[1]
CHECKOUT_VENV = CHECKOUT / ".venv"
CHECKOUT_PYTHON = CHECKOUT_VENV / "bin" / "python"
EXIT_INTERRUPTED = 130
EXIT_SETUP = 2


def _interrupted_while_starting(number: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted while starting; nothing was done\n")
    os._exit(EXIT_INTERRUPTED)


def begin(command: str, needs: Sequence[str]) -> None:
    """Call before any other import: guard the start-up against Ctrl-C and make sure the
    modules in `needs` can be imported (re-running with the checkout's venv if need be)."""
    signal.signal(signal.SIGINT, _interrupted_while_starting)
    missing = [name for name in needs if importlib.util.find_spec(name) is None]
    if not missing:
        return
    script = Path(sys.argv[0]).resolve()
    if (
        CHECKOUT_PYTHON.is_file()
        and script.parent == CHECKOUT / "scripts"
        and Path(sys.prefix).resolve() != CHECKOUT_VENV.resolve()
    ):
        # The same script and arguments, under the checkout's own interpreter.
        os.execv(CHECKOUT_PYTHON, [str(CHECKOUT_PYTHON), str(script), *sys.argv[1:]])  # noqa: S606
    sys.stderr.write(
        f"error: {', '.join(missing)} not installed for {sys.executable}; run `make synth` in "
        f"the checkout once, then run `{command}` (or .venv/bin/{command})\n"
    )
    raise SystemExit(EXIT_SETUP)


def ready() -> None:
    """The imports are done: Ctrl-C raises KeyboardInterrupt again, for the CLI to handle."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
