"""Per-stream state of the gRPC HTTP/2 codec: the state machine, flow-control windows,
the send queue, message reassembly and the receive credit owed to the peer.

State (RFC 9113 §5.1, without the push states): a stream is OPEN once its HEADERS went
or came; END_STREAM in one direction half-closes it; END_STREAM both ways or
RST_STREAM closes it. :data:`AFTER_LOCAL_END` / :data:`AFTER_REMOTE_END` are the
transition table; a missing entry means that side already ended.

Flow control on receive (the same rule as the native protocol): bytes of a message that
is not complete yet are credited back at once, so a message larger than the window can
always complete; the bytes of a *delivered* message are owed until the application
acknowledges it, so a reader that stalls stops the sender once a window of messages
waits unread. Credit goes back in batches (a quarter of the window).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Final

from ..._types import BufferLike
from .._credit import CreditLedger
from ._frames import DATA, FLAG_END_STREAM, HEADER, window_update_frame


class StreamState(enum.IntEnum):
    """Where a stream is in its life, seen from this end."""

    OPEN = 1
    #: We sent END_STREAM; the peer may still send.
    HALF_CLOSED_LOCAL = 2
    #: The peer sent END_STREAM; we may still send.
    HALF_CLOSED_REMOTE = 3
    CLOSED = 4


OPEN: Final = StreamState.OPEN
HALF_CLOSED_LOCAL: Final = StreamState.HALF_CLOSED_LOCAL
HALF_CLOSED_REMOTE: Final = StreamState.HALF_CLOSED_REMOTE
CLOSED: Final = StreamState.CLOSED

#: The state after we send END_STREAM (missing: we already ended our side).
AFTER_LOCAL_END: Final = {OPEN: HALF_CLOSED_LOCAL, HALF_CLOSED_REMOTE: CLOSED}
#: The state after the peer's END_STREAM (missing: the peer already ended its side).
AFTER_REMOTE_END: Final = {OPEN: HALF_CLOSED_REMOTE, HALF_CLOSED_LOCAL: CLOSED}
#: States in which the peer may still send DATA.
PEER_MAY_SEND: Final = frozenset({OPEN, HALF_CLOSED_LOCAL})
#: States in which we may still send DATA.
WE_MAY_SEND: Final = frozenset({OPEN, HALF_CLOSED_REMOTE})

_pack = HEADER.pack


class PendingData:
    """One outgoing gRPC message (prefix + payload), or what is left of it."""

    __slots__ = ("end_stream", "head", "pos", "view")

    def __init__(self, head: bytes, view: memoryview, end_stream: bool) -> None:
        #: The unsent part of the 5-byte message prefix.
        self.head = head
        self.view = view
        self.pos = 0
        self.end_stream = end_stream


class H2Stream(CreditLedger):
    """Everything the codec tracks for one live stream.

    A record lives from HEADERS until the stream is closed *and* its send queue is
    empty (trailers may wait behind flow-controlled DATA).
    """

    __slots__ = (
        "content_type",
        "head",
        "headers_done",
        "id",
        "local",
        "message_flag",
        "partial",
        "pending",
        "pending_bytes",
        "recv_compression",
        "recv_window",
        "remaining",
        "send_compression",
        "send_window",
        "state",
        "unreturned",
    )

    # Set only while a split message is being reassembled (see ``partial``).
    head: bytes
    message_flag: int
    remaining: int

    def __init__(self, sid: int, local: bool, state: StreamState, send: int, recv: int) -> None:
        self.id = sid
        #: True when we opened the stream (client side).
        self.local = local
        self.state = state
        self.send_window = send
        self.recv_window = recv
        #: Server: response HEADERS sent; client: response HEADERS received.
        self.headers_done = False
        #: The content type of the call (server: echoed in the response).
        self.content_type = b""
        #: ``grpc-encoding`` of messages we send / the peer sends (``""``: identity).
        self.send_compression = ""
        self.recv_compression = ""
        #: Payload chunks of an incomplete incoming message, or ``None`` between messages.
        #: While there is one, ``head`` holds the part of its 5-byte prefix received so
        #: far (while incomplete), then ``message_flag`` and ``remaining`` (payload bytes
        #: still missing) are set; they are read only then, so they start unset.
        self.partial: list[bytes] | None = None
        #: Received bytes whose credit is due but not yet sent back (batched).
        self.unreturned = 0
        #: ``(delivered length, credit)`` of delivered messages not yet acknowledged.
        self.owed: deque[tuple[int, int]] | None = None
        self.unacked = 0
        self.ack_carry = 0
        #: Outgoing DATA waiting for credit, and credit-free frames queued behind it.
        self.pending: deque[PendingData | bytes] | None = None
        #: DATA payload bytes in ``pending``.
        self.pending_bytes = 0

    # -- sending ---------------------------------------------------------------------

    def queue(self, item: PendingData | bytes) -> None:
        """Queue a message (or a ready frame) behind anything already queued."""
        pending = self.pending
        if pending is None:
            pending = self.pending = deque()
        pending.append(item)
        if isinstance(item, PendingData):
            self.pending_bytes += len(item.head) + len(item.view)

    def flush(self, write: Callable[[BufferLike], int], max_frame: int, conn_window: int) -> int:
        """Write as much of the queue as both windows allow, in DATA frames of at most
        ``max_frame`` bytes (a frame is cut to fit the window rather than wait).

        Returns:
            The connection window left (the caller stores it).
        """
        pending = self.pending
        if pending is None:
            return conn_window
        sid = self.id
        window = self.send_window
        while pending:
            item = pending[0]
            if isinstance(item, bytes):
                write(item)
                pending.popleft()
                continue
            view = item.view
            head = item.head
            pos = item.pos
            left = len(head) + len(view) - pos
            if not left:
                write(_pack(0, 0, DATA, FLAG_END_STREAM if item.end_stream else 0, sid))
            while left > 0:
                take = min(left, max_frame, window, conn_window)
                if take <= 0:
                    item.pos = pos
                    item.head = head
                    self.send_window = window
                    return conn_window
                flags = FLAG_END_STREAM if take == left and item.end_stream else 0
                write(_pack(take >> 16, take & 0xFFFF, DATA, flags, sid))
                body = take
                if head:
                    cut = min(len(head), take)
                    write(head[:cut])
                    head = head[cut:]
                    body -= cut
                if body:
                    write(view[pos : pos + body])  # large slices are kept by reference
                    pos += body
                window -= take
                conn_window -= take
                self.pending_bytes -= take
                left -= take
            pending.popleft()
        self.send_window = window
        self.pending = None
        return conn_window

    def drop(self) -> None:
        """Forget everything queued and half-received (the stream is over)."""
        self.pending = None
        self.pending_bytes = 0
        self.partial = None
        self.owed = None
        self.unacked = 0

    # -- receiving -------------------------------------------------------------------

    def credit_frame(self, threshold: int, window: int) -> bytes | None:
        """The WINDOW_UPDATE returning the unreturned credit when it is due (a quarter of
        the window, or at once when the peer is nearly out), else ``None``. Nothing is
        returned while a window of delivered messages waits unread."""
        unreturned = self.unreturned
        if not unreturned or self.unacked >= window:
            return None
        if unreturned >= threshold or self.recv_window < threshold:
            self.recv_window += unreturned
            self.unreturned = 0
            return window_update_frame(self.id, unreturned)
        return None
