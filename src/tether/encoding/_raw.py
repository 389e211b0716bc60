"""The identity codec: the payload is the message."""

from __future__ import annotations

from typing import final

from .._types import BufferLike
from ._base import EncodeError, PayloadCodec


@final
class RawCodec(PayloadCodec[bytes]):
    """Passes bytes through unchanged (content subtype ``raw``).

    :meth:`encode` accepts ``bytes``, ``bytearray`` or ``memoryview`` and returns
    ``bytes``: a ``bytes`` argument is returned as is, the others are copied once.
    :meth:`decode` never fails; it returns ``bytes``. Stateless and thread-safe.
    """

    name = "raw"

    def encode(self, message: BufferLike) -> bytes:
        """Return ``message`` as ``bytes``.

        Raises:
            EncodeError: ``message`` is not ``bytes``, ``bytearray`` or ``memoryview``.
        """
        return raw_bytes(message)

    def decode(self, data: BufferLike) -> bytes:
        """Return ``data`` as ``bytes`` (no copy when it already is, or is a view of all
        of a ``bytes`` object, such as a payload the transport copied out for us)."""
        if type(data) is bytes:
            return data
        if type(data) is memoryview:
            whole = data.obj
            if type(whole) is bytes and data.nbytes == len(whole) and data.contiguous:
                return whole
        return bytes(data)

    def __repr__(self) -> str:
        return "RawCodec()"


def raw_bytes(message: BufferLike) -> bytes:
    """``message`` as ``bytes`` (itself when it is ``bytes``, else one copy).

    Raises:
        EncodeError: ``message`` is not ``bytes``, ``bytearray`` or ``memoryview``.
    """
    if type(message) is bytes:
        return message
    value: object = message  # callers are not always type-checked
    if isinstance(value, (bytearray, memoryview, bytes)):
        return bytes(value)
    raise EncodeError(
        f"raw payloads are bytes, bytearray or memoryview, not {type(message).__name__}"
    )
