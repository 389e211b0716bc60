"""How the command reports failures: usage errors exit 2, failed calls exit 1."""

from __future__ import annotations

from .._exceptions import StatusError

#: Exit status of a call that failed (a non-OK status, a connection failure).
EXIT_FAILED = 1
#: Exit status of bad usage (argparse's convention).
EXIT_USAGE = 2


class UsageError(Exception):
    """The command line is wrong: bad JSON, an unknown method, a bad flag combination."""


def describe_status(exc: StatusError) -> str:
    """``STATUS_NAME: message``, as ``tether call`` prints a failed call."""
    return f"{exc.status.name}: {exc.message}" if exc.message else exc.status.name
