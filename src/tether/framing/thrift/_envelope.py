"""One Kitex-family message on the wire: which transport carried it, its header, and the
Thrift / Kitex Protobuf message inside; parsed per message, as Kitex's default codec does
(``kitex:pkg/remote/codec/default_codec.go`` DecodeMeta + checkPayload).

With ``w0``, ``w1`` the first two big-endian words of a message:

==========================================  =============================================
``w1 & 0xFFFF0000 == 0x10000000``           TTHeader; then the payload is sniffed again:
                                            ``0x8001`` first → TTHeader, a 4-byte length
                                            then ``0x8001``/``0x9001`` → TTHeaderFramed
``w1 >> 16 == 0x0FFF``                      Apache THeader
``w0 & 0xFFFF0000 == 0x80010000``           Buffered (PurePayload): the struct is walked
``w1 & 0xFFFF0000 == 0x80010000``           Framed Thrift
``w1 & 0xFFFF0000 == 0x90010000``           Framed Kitex Protobuf
anything else                               an error
==========================================  =============================================
"""

from __future__ import annotations

import enum
from typing import Final

from ..._exceptions import RemoteProtocolError
from ._binary import (
    I32,
    MESSAGE_HEAD,
    NEED_MORE,
    PROTOBUF_V1,
    U32,
    VERSION_1,
    VERSION_MASK,
    StructWalker,
)
from ._theader import THeader, decode_theader
from ._ttheader import FLAG_STREAMING, MAGIC_WORD, TTHeader, decode_ttheader

_WORDS: Final = MESSAGE_HEAD  # two big-endian 32-bit words (the second signed is fine)
_THEADER_MAGIC_HIGH: Final = 0x0FFF
_MESH_MAGIC: Final = 0xFFAF0000
#: A payload of at least this many bytes is returned as a view of the received bytes
#: (the codec then lends it, see :meth:`tether.buffer.ReadBuffer.detach`), not copied.
LEND_AT: Final = 64 * 1024

THRIFT: Final = "thrift"
PROTO: Final = "proto"


class Transport(enum.Enum):
    """How a message was framed (Kitex's transport protocol, plus Apache THeader)."""

    BUFFERED = "buffered"
    FRAMED = "framed"
    TTHEADER = "ttheader"
    TTHEADER_FRAMED = "ttheader_framed"
    THEADER = "theader"

    @property
    def is_framed(self) -> bool:
        """True when the message itself carries a 4-byte length (Kitex's Framed bit)."""
        return self in (Transport.FRAMED, Transport.TTHEADER_FRAMED)


class Envelope:
    """One received message, parsed.

    A TTHeader ``header`` read by :func:`read_envelope` shares its ``str_info`` and
    ``int_info`` dicts with the header decode cache: read them, never mutate them.
    ``payload`` is ``bytes``, or for a payload of :data:`LEND_AT` bytes or more (except in
    Apache THeader) a ``memoryview`` of the bytes parsed, which ends where the message
    ends; it is only valid as long as they are (the codec replaces it with a lent view).
    """

    __slots__ = ("encoding", "header", "message_type", "method", "payload", "seq_id", "transport")

    def __init__(
        self,
        transport: Transport,
        header: TTHeader | THeader | None,
        encoding: str,
        message_type: int,
        method: str,
        seq_id: int,
        payload: bytes | memoryview,
    ) -> None:
        self.transport = transport
        self.header = header
        self.encoding = encoding
        self.message_type = message_type
        self.method = method
        self.seq_id = seq_id
        self.payload = payload

    def __repr__(self) -> str:
        return (
            f"Envelope({self.transport.value}, {self.encoding}, type={self.message_type}, "
            f"method={self.method!r}, seq_id={self.seq_id}, header={self.header!r}, "
            f"payload={self.payload!r})"
        )


class BufferedProgress:
    """Where the walk of an incomplete Buffered message stopped (one per connection), so
    the next :func:`read_envelope` call with more bytes of the same message resumes it."""

    __slots__ = ("walker",)

    def __init__(self) -> None:
        self.walker: StructWalker | None = None


def read_envelope(
    view: memoryview, size: int, max_frame: int, progress: BufferedProgress | None = None
) -> tuple[int, Envelope | None]:
    """Parse the message at the start of ``view[:size]``.

    ``progress`` (optional) keeps an incomplete Buffered message's walk between calls;
    pass the same object, with the buffer still starting at that message, every time.

    Returns:
        ``(consumed, envelope)`` for a complete message; ``(needed, None)`` when more
        bytes are needed (``needed`` is the whole message's size when known, else 0).

    Raises:
        RemoteProtocolError: the bytes are no known format, a frame is over
            ``max_frame`` bytes, or the message inside is malformed.
    """
    if size < 8:
        # A length starts with a byte < 0x80; a strict message with 0x80 0x01.
        if size and view[0] >= 0x80 and (view[0] != 0x80 or (size > 1 and view[1] != 0x01)):
            _unknown(view, size)
        return 0, None
    w0, w1 = _WORDS.unpack_from(view, 0)
    w1 &= 0xFFFFFFFF
    high = w1 & VERSION_MASK
    if high in (VERSION_1, PROTOBUF_V1):
        return _framed(view, size, w0, high, max_frame)
    if w0 & VERSION_MASK == VERSION_1:
        return _buffered(view, size, max_frame, progress)
    if high == MAGIC_WORD:
        return _ttheader(view, size, w0, w1, max_frame)
    if w1 >> 16 == _THEADER_MAGIC_HIGH:
        return _theader(view, size, w0, max_frame)
    if w0 & 0xFFFF0000 == _MESH_MAGIC:
        raise RemoteProtocolError("MeshHeader (0xFFAF) framing is not supported")
    return _unknown(view, size)


def _unknown(view: memoryview, size: int) -> tuple[int, None]:
    raise RemoteProtocolError(
        f"not a Thrift/Kitex message (first bytes {bytes(view[: min(size, 16)]).hex(' ')})"
    )


def _check_frame(length: int, max_frame: int) -> None:
    if length > max_frame:
        raise RemoteProtocolError(
            f"frame of {length} bytes exceeds the {max_frame}-byte limit (max_frame_size)"
        )


def _framed(
    view: memoryview, size: int, length: int, version: int, max_frame: int
) -> tuple[int, Envelope | None]:
    if length > max_frame:
        _check_frame(length, max_frame)
    total = length + 4
    if size < total:
        return total, None
    encoding, message_type, method, seq_id, start = _message(view, 4, total, version)
    envelope = Envelope(
        Transport.FRAMED,
        None,
        encoding,
        message_type,
        method,
        seq_id,
        _payload(view, start, total),
    )
    return total, envelope


def _buffered(
    view: memoryview, size: int, max_frame: int, progress: BufferedProgress | None
) -> tuple[int, Envelope | None]:
    # The struct must be walked to find the end; the name must be there first.
    walker = progress.walker if progress is not None else None
    if walker is None:
        name_length = I32.unpack_from(view, 4)[0]
        if not 0 <= name_length <= max_frame:
            raise RemoteProtocolError(f"thrift method name of {name_length} bytes")
        start = 12 + name_length
        if size > start:
            walker = StructWalker(start)
    end = NEED_MORE if walker is None else walker.walk(view, size)
    if end == NEED_MORE:
        if size > max_frame:
            raise RemoteProtocolError(
                f"buffered message longer than the {max_frame}-byte limit (max_frame_size)"
            )
        if progress is not None:
            progress.walker = walker
        return 0, None
    if progress is not None:
        progress.walker = None
    encoding, message_type, method, seq_id, start = _message(view, 0, end, VERSION_1)
    envelope = Envelope(
        Transport.BUFFERED, None, encoding, message_type, method, seq_id, _payload(view, start, end)
    )
    return end, envelope


def _ttheader(
    view: memoryview, size: int, length: int, w1: int, max_frame: int
) -> tuple[int, Envelope | None]:
    if w1 & FLAG_STREAMING:
        raise RemoteProtocolError("TTHeader Streaming (flag 0x0002) is not supported")
    if length > max_frame:
        _check_frame(length, max_frame)
    total = length + 4
    if size < total:
        return total, None
    header, start = decode_ttheader(view, 0, total, shared=True)
    left = total - start
    if left >= 4 and U32.unpack_from(view, start)[0] & VERSION_MASK == VERSION_1:
        transport = Transport.TTHEADER
        encoding, message_type, method, seq_id, body = _message(view, start, total, VERSION_1)
    elif left >= 8:
        inner, version = _WORDS.unpack_from(view, start)
        version &= VERSION_MASK
        if version not in (VERSION_1, PROTOBUF_V1):
            raise RemoteProtocolError(
                f"unrecognised TTHeader payload (first bytes {bytes(view[start : start + 8]).hex(' ')})"
            )
        if inner != left - 4:
            raise RemoteProtocolError(
                f"TTHeaderFramed inner length {inner} disagrees with the {left - 4} bytes left"
            )
        transport = Transport.TTHEADER_FRAMED
        encoding, message_type, method, seq_id, body = _message(view, start + 4, total, version)
    else:
        raise RemoteProtocolError(f"TTHeader payload of {left} bytes holds no message")
    envelope = Envelope(
        transport, header, encoding, message_type, method, seq_id, _payload(view, body, total)
    )
    return total, envelope


def _theader(
    view: memoryview, size: int, length: int, max_frame: int
) -> tuple[int, Envelope | None]:
    _check_frame(length, max_frame)
    total = length + 4
    if size < total:
        return total, None
    header, payload = decode_theader(view, 0, total, max_frame)
    inner = memoryview(payload)
    if len(payload) < 4 or U32.unpack_from(inner, 0)[0] & VERSION_MASK != VERSION_1:
        raise RemoteProtocolError("THeader payload is not a strict binary Thrift message")
    encoding, message_type, method, seq_id, body = _message(inner, 0, len(payload), VERSION_1)
    envelope = Envelope(
        Transport.THEADER, header, encoding, message_type, method, seq_id, payload[body:]
    )
    return total, envelope


def _payload(view: memoryview, start: int, end: int) -> bytes | memoryview:
    """The payload at ``view[start:end]``: a copy, or a view when it is large."""
    if end - start < LEND_AT:
        return bytes(view[start:end])
    return view[start:end]


def _message(view: memoryview, pos: int, end: int, version: int) -> tuple[str, int, str, int, int]:
    """``(encoding, type, method, seq id, body offset)`` of the message at ``view[pos:end]``."""
    if end - pos < 12:
        raise RemoteProtocolError("message shorter than its 12-byte header")
    word, name_length = MESSAGE_HEAD.unpack_from(view, pos)
    message_type = word & 0xFF
    if word & 0xFF00 or not 1 <= message_type <= 4:
        raise RemoteProtocolError(f"invalid message type {word & 0xFFFF}")
    name_start = pos + 8
    name_end = name_start + name_length
    if name_length < 0 or name_end + 4 > end:
        raise RemoteProtocolError(f"method name of {name_length} bytes does not fit the message")
    encoding = THRIFT if version != PROTOBUF_V1 else PROTO
    if encoding is PROTO and name_length == 0:
        raise RemoteProtocolError("Kitex Protobuf message with an empty method name")
    try:
        method = str(view[name_start:name_end], "utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"method name is not UTF-8: {exc}") from exc
    (seq_id,) = I32.unpack_from(view, name_end)
    return encoding, message_type, method, seq_id, name_end + 4
