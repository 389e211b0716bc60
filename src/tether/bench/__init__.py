"""``tether bench``: every transport and protocol against the Python peers, in one run.

The harness lives in the package so the installed ``tether`` command can run it. Each
system (the raw asyncio ceiling, tether on a transport with a protocol, or a peer) gets
its own server process and its own client process; see :mod:`._runner`.
"""

from __future__ import annotations

from ._command import add_arguments as add_arguments, main as main, run as run

__all__ = ["add_arguments", "main", "run"]
