"""What the transport conformance suite cannot learn through the public contract: the
capabilities a transport's author declares for it, and ways to make a peer die abruptly."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..transport import Connection

#: How a test makes one end of a connection die abruptly, as a crashed peer would.
Kill = Callable[[Connection], None]


def abort(conn: Connection) -> None:
    """The default :data:`Kill`: :meth:`Connection.abort`."""
    conn.abort()


def abort_with_reset(conn: Connection) -> None:
    """A :data:`Kill` for TCP-based connections: abort with a TCP reset (RST), not a FIN.

    Sets ``SO_LINGER`` to zero on ``conn.extra("socket")`` before :meth:`Connection.abort`,
    so the kernel discards the connection and resets the peer, which is what the peer of a
    crashed host sees. A connection without a TCP socket is simply aborted.
    """
    sock = conn.extra("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.abort()


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportAdapter:
    """Capabilities of the transport under test, declared by its test (not discovered).

    Attributes:
        reports_loss: the transport tells a lost connection from a closed one: when the
            peer dies (``kill``), our handler gets ``on_inactive`` with a
            :class:`~tether.BrokenResourceError` and never ``on_eof``. Leave it false
            for a byte stream that honestly cannot tell (a Unix socket whose peer dies
            sends EOF, like a close); the ``loss_is_not_eof`` check is then skipped
            with ``no_loss_reason``.
        kill: how to make one end die abruptly (default :func:`abort`); e.g.
            :func:`abort_with_reset` for TCP, where a plain abort sends a FIN.
        no_loss_reason: why ``reports_loss`` is false, shown in the report's skips.
    """

    reports_loss: bool = False
    kill: Kill = abort
    no_loss_reason: str = (
        "the adapter does not declare reports_loss: a peer's death may look like a close"
    )
