"""Receive credit held back until the application consumes what was delivered.

Shared by the stream records of every flow-controlled codec (tether's native protocol and
gRPC's HTTP/2): a delivered message's window credit is returned to the peer only when
the dispatcher reports it consumed (``FrameCodec.acknowledge_received``), so a reader
that stops reading stops the sender after one window.
"""

from __future__ import annotations

from collections import deque

from mypy_extensions import mypyc_attr


@mypyc_attr(allow_interpreted_subclasses=True)
class CreditLedger:
    """Base of a slotted stream record: the credit owed for delivered messages.

    Attributes (set by the subclass's ``__init__``):
        owed: ``(length, credit)`` of each delivered, unacknowledged message, in order.
        unacked: bytes delivered but not yet acknowledged.
        ack_carry: acknowledged bytes that do not yet cover the oldest message.
    """

    __slots__ = ("ack_carry", "owed", "unacked")

    owed: deque[tuple[int, int]] | None
    unacked: int
    ack_carry: int

    def owe(self, length: int, credit: int) -> None:
        """A message of ``length`` bytes was delivered; ``credit`` waits for its ack."""
        owed = self.owed
        if owed is None:
            owed = self.owed = deque()
        owed.append((length, credit))
        self.unacked += length

    def acknowledge(self, nbytes: int) -> int:
        """The application consumed ``nbytes`` of delivered messages, in order.

        Returns:
            The credit released: that of every message now fully acknowledged.
        """
        owed = self.owed
        if not owed or nbytes <= 0:
            return 0
        nbytes += self.ack_carry
        released = 0
        while owed and nbytes >= owed[0][0]:
            length, credit = owed.popleft()
            nbytes -= length
            released += credit
            self.unacked -= length
        self.ack_carry = nbytes if owed else 0
        return released
