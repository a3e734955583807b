"""The operator-error base class and the exit codes every CLI uses."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # The work ran and did not succeed (a verification mismatch, an unhealthy target).
    FAILED = 1
    # Bad input: nothing was changed; the message says what to fix.
    USAGE = 2
    # No usable AWS credentials: nothing was called.
    NO_CREDENTIALS = 3
    # An AWS call failed (an unreachable endpoint, a refused request): not a gate's verdict.
    AWS_ERROR = 4
    # SIGINT/SIGTERM: stopped cleanly, as shells report a Ctrl-C.
    INTERRUPTED = 130


class OperatorError(Exception):
    """A problem the operator can fix, told in one line; never shown with a traceback."""

    exit_code = ExitCode.FAILED


class UsageError(OperatorError):
    """Bad input (a flag, a property, an argument); raised before anything changes."""

    exit_code = ExitCode.USAGE


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit status a CLI returns for `error`."""
    if isinstance(error, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(error, OperatorError):
        return error.exit_code
    return ExitCode.FAILED
