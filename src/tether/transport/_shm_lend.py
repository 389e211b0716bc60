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
"""

from __future__ import annotations

from ..buffer import _EMPTY, _EMPTY_VIEW, ReadBuffer


class LendingReadBuffer(ReadBuffer):
    """A ReadBuffer with :meth:`lend` / :meth:`take_back` (one loan at a time)."""

    __slots__ = ("_own",)

    def __init__(self, read_size: int) -> None:
        super().__init__(read_size)
        self._own: tuple[bytearray | memoryview, memoryview] | None = None

    def can_lend(self) -> bool:
        """Whether a loan may start: nothing unread and no view outstanding."""
        return self._own is None and self._start == self._end and not self._views

    def lend(self, view: memoryview) -> None:
        """Make ``view`` (bytes owned by someone else) the readable bytes, without copying."""
        if not self.can_lend():
            raise RuntimeError("lend() needs an empty reader with no views outstanding")
        if self._detached:
            # Our (empty) array was given up to a view (detach()): it must never come
            # back as our storage, so the loan ends with a fresh one instead.
            self._detached = False
            self._buf = _EMPTY
            self._whole = _EMPTY_VIEW
        self._own = (self._buf, self._whole)
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
