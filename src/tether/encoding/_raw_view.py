"""The identity codec for handlers that take and return views: no copy of a large payload."""

from __future__ import annotations

from typing import Final, final

from .._types import BufferLike
from ..buffer import Payload
from ._base import PayloadCodec
from ._raw import raw_bytes

#: The type, as a module constant: the compiled build checks it without a lookup by name.
_MEMORYVIEW: Final = memoryview


@final
class RawViewCodec(PayloadCodec[memoryview]):
    """Raw payloads as read-only ``memoryview``s (content subtype ``raw``, as :class:`RawCodec`).

    Selected for a handler or call whose request/response type is ``memoryview``
    (``codec_for_type(memoryview)``, e.g. ``async def Echo(request: memoryview) ->
    memoryview``, or ``client.unary(..., response_type=memoryview)``). On the wire it is
    exactly :class:`~tether.encoding.RawCodec`; the peer cannot tell them apart.

    :meth:`decode` returns a read-only view without copying. For a large payload (64 KiB
    or more, in one frame) that is the received frame itself, lent for good: over
    ``shm://`` a region of the shared ring, over other transports the receive buffer's
    array (:meth:`tether.buffer.ReadBuffer.detach`). The contract of such a view:

    * it stays valid for as long as it, or any slice or view made from it, is
      referenced; nothing else is ever written into it while it is (no use after
      release is possible: the memory is handed back only once no view is left);
    * it is read-only (writing raises ``TypeError``). The peer could in principle still
      write into its own shared mapping; a well-behaved peer does not;
    * while it is held, its memory stays taken. Over ``shm://`` that is ring space the
      peer cannot write into: a handler that keeps views for long makes the connection
      fall back to copying (beyond half the ring nothing more is lent) and then to the
      socket path, slower but never stuck. Drop the view (or call its ``release()``)
      as soon as you are done; copy (``bytes(view)``) what must be kept.

    Small payloads arrive as views of a ``bytes`` object. Cancellation and connection
    loss need no care: dropping the references releases the memory, and a view of an
    ``shm://`` ring keeps the mapping alive after the connection is closed.

    :meth:`encode_payload` sends a ``memoryview`` (or ``bytes``) by reference, so a
    handler returning its request view echoes it with one copy (into the socket or the
    peer's ring); do not modify what a returned view shows until the call is complete.
    :meth:`encode` returns a ``bytes`` copy. Stateless and thread-safe.
    """

    name = "raw"

    def encode(self, message: BufferLike) -> bytes:
        """Return ``message`` as ``bytes`` (a copy unless it is ``bytes``).

        Raises:
            EncodeError: ``message`` is not ``bytes``, ``bytearray`` or ``memoryview``.
        """
        return raw_bytes(message)

    def encode_payload(self, message: BufferLike) -> Payload:
        """``message`` for sending, without a copy when it is a view or ``bytes``.

        A view of a whole ``bytes`` object is sent as that object; other views by
        reference (cast to bytes when they have another format; copied if not contiguous);
        a ``bytearray`` is copied (it could change before it is sent).

        Raises:
            EncodeError: ``message`` is not ``bytes``, ``bytearray`` or ``memoryview``.
        """
        value: object = message
        if type(value) is _MEMORYVIEW:
            view: memoryview = value
            obj = view.obj
            if type(obj) is bytes and len(obj) == len(view):
                return obj  # all of a bytes object (no format spans more items than bytes)
            if view.format == "B" and view.ndim == 1 and view.c_contiguous:
                return view
            if view.c_contiguous:
                return view.cast("B")
            return view.tobytes()
        return self.encode(message)

    def decode(self, data: BufferLike) -> memoryview:
        """Return ``data`` as a read-only ``memoryview``, without a copy (see the class doc)."""
        if type(data) is bytes:
            return _MEMORYVIEW(data)
        if type(data) is _MEMORYVIEW:
            view: memoryview = data
            return view if view.readonly else view.toreadonly()
        return _MEMORYVIEW(bytes(data))  # a bytearray could change

    def __repr__(self) -> str:
        return "RawViewCodec()"
