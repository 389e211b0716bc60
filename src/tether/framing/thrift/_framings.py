"""The Kitex-family framings: registry entries with their detectors.

Every framing's server codec detects each message's format on its own, so the detector
only decides which registry entry claims a connection; each claims its own format, after
tether-native (priority 10) and gRPC's HTTP/2 preface (about 5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from .._base import CodecConfig, Detection, FrameCodec, Framing, Role
from ._binary import PROTOBUF_V1, U32, VERSION_1, VERSION_MASK
from ._codec import ThriftCodec
from ._envelope import PROTO, Transport
from ._ttheader import FLAG_STREAMING, MAGIC_WORD

_TWO_WORDS: Final = ">II"
_THEADER_HIGH: Final = 0x0FFF


def classify(prefix: bytes) -> str | None:
    """The framing name of the message that starts with ``prefix`` (``None``: unknown).

    Kitex Protobuf (Framed, or TTHeaderFramed when the inner magic is within ``prefix``)
    is ``kitex_protobuf``; TTHeader Streaming and MeshHeader are not served (``None``).
    Needs at least 8 bytes.
    """
    w0, w1 = U32.unpack_from(prefix, 0)[0], U32.unpack_from(prefix, 4)[0]
    high = w1 & VERSION_MASK
    if high == VERSION_1:
        return "framed"
    if high == PROTOBUF_V1:
        return "kitex_protobuf"
    if w0 & VERSION_MASK == VERSION_1:
        return "buffered"
    if high == MAGIC_WORD:
        if w1 & FLAG_STREAMING or len(prefix) < 14:
            return None
        start = 14 + 4 * int.from_bytes(prefix[12:14], "big")
        if len(prefix) >= start + 8:
            inner = U32.unpack_from(prefix, start + 4)[0] & VERSION_MASK
            if inner == PROTOBUF_V1:
                return "kitex_protobuf"
            if inner == VERSION_1:
                return "ttheader_framed"
        return "ttheader"
    if w1 >> 16 == _THEADER_HIGH:
        return "theader"
    return None


def _detector(name: str) -> Callable[[bytes], Detection]:
    def detect(prefix: bytes) -> Detection:
        if len(prefix) < 8:
            if prefix[:1] and prefix[0] >= 0x80 and prefix[:2] != b"\x80\x01"[: len(prefix)]:
                return Detection.NO_MATCH
            return Detection.NEED_MORE
        if len(prefix) < 14 and U32.unpack_from(prefix, 4)[0] & VERSION_MASK == MAGIC_WORD:
            return Detection.NEED_MORE
        return Detection.MATCH if classify(prefix) == name else Detection.NO_MATCH

    detect.__name__ = f"detect_{name}"
    detect.__doc__ = f"MATCH when a connection's first message is {name}."
    return detect


def _creator(transport: Transport, encoding: str = "") -> Callable[[Role, CodecConfig], FrameCodec]:
    def create(role: Role, config: CodecConfig) -> FrameCodec:
        return ThriftCodec(role, config, transport=transport, encoding=encoding)

    return create


#: (name, client transport, forced encoding, detection priority)
_TABLE: Final = (
    ("kitex_protobuf", Transport.TTHEADER_FRAMED, PROTO, 20),
    ("ttheader_framed", Transport.TTHEADER_FRAMED, "", 21),
    ("ttheader", Transport.TTHEADER, "", 22),
    ("framed", Transport.FRAMED, "", 23),
    ("buffered", Transport.BUFFERED, "", 24),
    ("theader", Transport.THEADER, "", 25),
)

FRAMINGS: Final = tuple(
    Framing(
        name=name,
        create=_creator(transport, encoding),
        detect=_detector(name),
        priority=priority,
    )
    for name, transport, encoding, priority in _TABLE
)
