"""``tether bench``: every transport and protocol against the Python peers, in one run.

The harness lives in the package so the installed ``tether`` command can run it. Each
system (the raw asyncio ceiling, tether on a transport with a protocol, or a peer) gets
its own server process and its own client process; see :mod:`._runner`. Importing this
package is cheap (the server processes import only what their system needs, because
their memory is a reported figure); :func:`add_arguments`, :func:`main` and :func:`run`
load the harness on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tether bench`` options to ``parser``."""
    from ._command import add_arguments as add

    add(parser)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed ``args``; returns the exit status."""
    from ._command import run as run_command

    return run_command(args)


def main(argv: list[str] | None = None) -> int:
    """``python -m tether.bench``."""
    from ._command import main as main_command

    return main_command(argv)


__all__ = ["add_arguments", "main", "run"]
