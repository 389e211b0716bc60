"""MessagePack payloads: plain Python values, no schema."""

from __future__ import annotations

import threading
from typing import Any, final

import msgpack

from .._types import BufferLike
from ._base import DecodeError, EncodeError, PayloadCodec

#: A cached packer whose buffer grew past this many bytes is dropped after use, so one
#: large message does not pin its buffer for the thread's lifetime.
_KEEP_PACKER_BELOW = 256 * 1024

_local = threading.local()


def _new_packer() -> Any:
    return msgpack.Packer(use_bin_type=True, datetime=False, autoreset=True)


@final
class MsgpackCodec(PayloadCodec[Any]):
    """MessagePack (content subtype ``msgpack``) for plain Python values.

    Encodes ``None``, ``bool``, ``int`` (64-bit range), ``float``, ``str``, ``bytes``
    (also ``bytearray`` / ``memoryview``), ``list`` / ``tuple`` and ``dict``, nested
    freely. ``str`` and ``bytes`` stay distinct on the wire (msgpack ``str`` vs ``bin``).
    Decoding gives ``list`` for every array (a tuple comes back as a list), ``str`` for
    ``str`` and ``bytes`` for ``bin``; map keys may be any hashable decoded value.

    Stateless and thread-safe: each thread reuses its own packer.
    """

    name = "msgpack"

    def encode(self, message: Any) -> bytes:
        """Serialise ``message``.

        Raises:
            EncodeError: a value has no msgpack form (an arbitrary object, an ``int``
                outside the 64-bit range, a ``str`` with lone surrogates, nesting
                deeper than msgpack allows).
        """
        packer = getattr(_local, "packer", None)
        # Take the packer out while it works, so a re-entrant call cannot share it.
        _local.packer = None
        if packer is None:
            packer = _new_packer()
        try:
            data: bytes = packer.pack(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"cannot encode as msgpack: {exc}") from exc
        if len(data) < _KEEP_PACKER_BELOW:
            _local.packer = packer
        return data

    def decode(self, data: BufferLike) -> Any:
        """Parse exactly one msgpack value from ``data``.

        Raises:
            DecodeError: ``data`` is truncated, malformed, has trailing bytes, or a
                map key is unhashable.
        """
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise DecodeError(f"invalid msgpack payload: {exc}") from exc

    def __repr__(self) -> str:
        return "MsgpackCodec()"
