"""A :class:`~tether.buffer.ReadBuffer` that can lend shared memory to the codec in place.

The receive path of ``shm://`` copies ring bytes into the reader, and the codec then
copies each message payload out of the reader (``tobytes``): two copies of every large
payload. When the reader is empty and a whole run of ring bytes is contiguous, the
connection instead *lends* that run: the reader's storage temporarily *is* the shared
mapping, the handler parses (and copies payloads out of) it in place, and afterwards
:meth:`LendingReadBuffer.take_back` restores the reader's own storage, copying only an
unconsumed tail (a partial frame) into it. That saves one copy per byte received.

The one rule this adds to the ReadBuffer contract: a view from :meth:`peek` taken while
bytes are lent is valid only until ``on_read`` returns (the dispatcher releases its views
before that anyway); :meth:`take_back` releases any left over, because the ring space
behind them is handed back to the peer right after.

:meth:`detach` (a codec keeping a large payload) goes one step further while bytes are
lent: the view it returns is a region of the ring itself, lent for good by
:class:`~._shm_loans.RingLoans` (valid as long as referenced; the ring space stays taken
until then). When the loans refuse (too much of the ring already pinned) it copies.
"""

from __future__ import annotations

from ..buffer import _EMPTY, _EMPTY_VIEW, ReadBuffer
from ._shm_loans import RingLoans


class LendingReadBuffer(ReadBuffer):
    """A ReadBuffer with :meth:`lend` / :meth:`take_back` (one loan at a time)."""

    __slots__ = ("_floor", "_lent_at", "_loans", "_own")

    def __init__(self, read_size: int) -> None:
        super().__init__(read_size)
        self._own: tuple[bytearray | memoryview, memoryview] | None = None
        # The inbound ring's stream position of the lent view's first byte; -1 when the
        # lent bytes are not the inbound ring's (then detach copies).
        self._lent_at = 0
        self._floor = 0  # where the lent view's data-free bytes start (after the last loan)
        self._loans: RingLoans | None = None

    def attach_loans(self, loans: RingLoans) -> None:
        """Let :meth:`detach` lend ring regions for good through ``loans``."""
        self._loans = loans

    def detach(self, offset: int, n: int) -> memoryview:
        """:meth:`ReadBuffer.detach`; while ring bytes are lent, a region of the ring itself.

        The view is read-only and stays valid while referenced (see ``_shm_loans.py``);
        the ring space under it is handed back to the writer when the last view of it
        dies. Falls back to a copy (as a ``memoryview``) when the loans refuse.
        """
        loans = self._loans
        start = self._start + offset
        if (
            self._own is not None
            and loans is not None
            and self._lent_at >= 0
            and offset >= 0
            and n >= 0
            and start + n <= self._end
        ):
            # The parsed bytes since the last loan (the frame header) are pinned with it
            # as slack: they hold no data any more (see RingLoans.region_of).
            view = loans.lend(self._lent_at + start, n, max(0, start - self._floor))
            if view is not None:
                self._floor = start + n
                return view
        return super().detach(offset, n)

    def can_lend(self) -> bool:
        """Whether a loan may start: nothing unread and no view outstanding."""
        return self._own is None and self._start == self._end and not self._views

    def can_lend_after(self, k: int) -> bool:
        """Whether a loan may start once the ``k`` unread bytes are skipped (no view out)."""
        return self._own is None and self._end - self._start == k and not self._views

    def lend(self, view: memoryview, position: int = 0) -> None:
        """Make ``view`` (bytes owned by someone else) the readable bytes, without copying.

        ``position``: the inbound ring's stream position of ``view``'s first byte (for
        :meth:`detach`); -1 for bytes from elsewhere, which :meth:`detach` copies.
        """
        if not self.can_lend():
            raise RuntimeError("lend() needs an empty reader with no views outstanding")
        if self._detached:
            # Our (empty) array was given up to a view (detach()): it must never come
            # back as our storage, so the loan ends with a fresh one instead.
            self._detached = False
            self._buf = _EMPTY
            self._whole = _EMPTY_VIEW
        self._own = (self._buf, self._whole)
        self._lent_at = position
        self._floor = 0
        self._buf = view  # as good as the bytearray for every consumer-side method
        self._whole = view
        self._region = None
        self._start, self._end = 0, len(view)

    def take_back(self) -> None:
        """End the loan: release leftover views, restore our storage, keep unread bytes (copied)."""
        own = self._own
        if own is None:
            return
        lent = self._whole
        start, end = self._start, self._end
        for view in self._views:
            view.release()
        self._views.clear()
        self._own = None
        self._buf, self._whole = own
        self._region = None
        self._start = self._end = 0
        if start < end:
            self.feed(lent[start:end])  # a partial frame: copied, the loan ends now
