"""Per-stream bookkeeping of the native protocol: flow-control windows, the send queue,
message reassembly and the credit owed for delivered messages.

The rules (``docs/protocol.md``, "Flow control"):

* Sending: DATA payload bytes spend the stream's send window. What does not fit stays
  queued here, by reference, and leaves when the peer returns credit. Frames that take no
  credit (HEADERS, END, an empty END_STREAM DATA) queue behind it, so order is kept.
* Receiving: the chunks of a message that is not complete yet are credited back at once
  (a message larger than the window can always complete), as long as less than a window
  of delivered messages is still unread. The credit of a delivered message's last chunk
  is *owed* until the application acknowledges the message. So a reader that stalls
  stops the sender once a window of messages waits unread, however the sender chunks.
* Credit goes back in batches: once a quarter of the window is due, or at once when the
  peer is down to less than a quarter, so it never waits on credit we are holding.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from .._types import BufferLike
from ._credit import CreditLedger
from ._native_frames import HEADER, WINDOW_UPDATE_FRAME, FrameType

_DATA: Final = int(FrameType.DATA)
_WINDOW_UPDATE: Final = int(FrameType.WINDOW_UPDATE)


class PendingMessage:
    """One outgoing message (or what is left of it) waiting for send credit."""

    __slots__ = ("flags", "pos", "view")

    def __init__(self, view: memoryview, flags: int) -> None:
        self.view = view
        self.pos = 0
        #: Flags of the message's last DATA frame (END_MESSAGE, maybe END_STREAM).
        self.flags = flags


class StreamRecord(CreditLedger):
    """Everything the codec tracks for one live stream.

    A record exists from OPEN until the stream is closed *and* its send queue is empty;
    then the codec forgets it, and may :meth:`reopen` it for a later stream.
    """

    __slots__ = (
        "id",
        "key",
        "parts",
        "pending",
        "pending_bytes",
        "recv_size",
        "recv_window",
        "send_window",
        "side",
        "state",
        "unreturned",
    )

    def __init__(
        self,
        stream_id: int,
        side: int,
        state: int,
        send_window: int,
        recv_window: int,
    ) -> None:
        self.id = stream_id
        #: The id object the codec's table holds this record under (set by the codec).
        self.key: object = None
        #: Our part and the stream's state: values of StreamSide and StreamState.
        self.side = side
        self.state = state
        #: Bytes we may still send before the peer returns credit.
        self.send_window = send_window
        #: Bytes the peer may still send us, as far as we have granted.
        self.recv_window = recv_window
        #: Received bytes whose credit is due but not yet sent back (batched).
        self.unreturned = 0
        #: ``(message length, credit)`` of delivered messages not yet acknowledged.
        self.owed: deque[tuple[int, int]] | None = None
        #: Total length of those messages.
        self.unacked = 0
        #: Acknowledged bytes that do not yet cover the oldest owed message.
        self.ack_carry = 0
        #: Chunks of the message being reassembled (``None``: between messages).
        self.parts: list[bytes] | None = None
        #: Bytes in ``parts``.
        self.recv_size = 0
        #: Outgoing DATA waiting for credit, and credit-free frames queued behind it.
        self.pending: deque[PendingMessage | bytes] | None = None
        #: DATA payload bytes in ``pending``.
        self.pending_bytes = 0

    def reopen(
        self,
        stream_id: int,
        side: int,
        state: int,
        send_window: int,
        recv_window: int,
    ) -> None:
        """Make this forgotten record the record of a new stream, exactly as if it had
        just been built (reusing it saves an allocation and a deallocation per stream)."""
        StreamRecord.__init__(self, stream_id, side, state, send_window, recv_window)

    # -- sending ---------------------------------------------------------------------

    def queue(self, data: BufferLike, flags: int) -> deque[PendingMessage | bytes]:
        """Queue a whole message (by reference) behind anything already queued."""
        pending = self.pending
        if pending is None:
            pending = self.pending = deque()
        pending.append(PendingMessage(memoryview(data), flags))
        self.pending_bytes += len(data)
        return pending

    def flush(self, write: Callable[[BufferLike], int], chunk: int) -> bool:
        """Write as much of the queue as the send window allows, in DATA frames of at
        most ``chunk`` bytes; a frame is cut to fit the window rather than wait.

        Returns:
            True when the queue is now empty.
        """
        pending = self.pending
        if pending is None:
            return True
        pack = HEADER.pack
        sid = self.id
        window = self.send_window
        while pending:
            item = pending[0]
            if isinstance(item, bytes):
                write(item)
                pending.popleft()
                continue
            view = item.view
            pos = item.pos
            total = len(view)
            if not total:
                write(pack(0, _DATA, item.flags, sid))
            while pos < total:
                take = min(total - pos, chunk, window)
                if take <= 0:
                    item.pos = pos
                    self.send_window = window
                    return False
                nxt = pos + take
                write(pack(take, _DATA, item.flags if nxt == total else 0, sid))
                write(view[pos:nxt])  # large slices are kept by reference, not copied
                window -= take
                self.pending_bytes -= take
                pos = nxt
            pending.popleft()
        self.send_window = window
        self.pending = None
        return True

    def drop(self) -> None:
        """Forget everything queued and half-received (the stream is over)."""
        self.pending = None
        self.pending_bytes = 0
        self.parts = None
        self.owed = None
        self.unacked = 0

    # -- receiving -------------------------------------------------------------------

    def credit_frame(self, threshold: int, window: int) -> bytes | None:
        """The WINDOW_UPDATE returning the unreturned credit, when it is due (see the
        module docstring), with the receive window grown to match; else ``None``.

        ``window`` is our INITIAL_WINDOW; ``threshold`` a quarter of it.
        """
        unreturned = self.unreturned
        if self.unacked >= window:
            return None  # a window of messages waits unread: hold the credit
        if unreturned >= threshold or (unreturned and self.recv_window < threshold):
            self.recv_window += unreturned
            self.unreturned = 0
            return WINDOW_UPDATE_FRAME.pack(4, _WINDOW_UPDATE, 0, self.id, unreturned)
        return None


class SpareRecords:
    """Records of finished streams kept for reuse (at most ``limit``), as a stack.

    The stack lives in a list of fixed length (``count`` entries used, the rest
    ``None``): a list that empties and refills would free and reallocate its storage
    every time, which is what one stream after another would do.
    """

    __slots__ = ("count", "records")

    def __init__(self, limit: int) -> None:
        self.records: list[StreamRecord | None] = [None] * limit
        self.count = 0

    def push(self, record: StreamRecord) -> None:
        """Keep ``record`` for reuse unless the stack is full."""
        count = self.count
        if count < len(self.records):
            self.records[count] = record
            self.count = count + 1

    def pop(self) -> StreamRecord | None:
        """The last record kept, or ``None`` when there is none."""
        count = self.count
        if not count:
            return None
        count -= 1
        self.count = count
        record = self.records[count]
        self.records[count] = None
        return record
