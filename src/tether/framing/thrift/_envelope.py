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
from typing import Final, NoReturn

from ..._exceptions import RemoteProtocolError
from ._binary import (
    I32,
    MESSAGE_HEAD,
    NEED_MORE,
    PROTOBUF_V1,
    VERSION_1,
    VERSION_MASK,
    StructWalker,
)
from ._theader import THeader, decode_theader
from ._ttheader import FLAG_STREAMING, MAGIC_WORD, HeaderMemo, TTHeader, decode_ttheader_bytes

_WORDS: Final = MESSAGE_HEAD  # two big-endian 32-bit words (the second signed is fine)
_THEADER_MAGIC_HIGH: Final = 0x0FFF
_MESH_MAGIC: Final = 0xFFAF0000
#: A message's head (everything before its payload) is parsed from a copy of at most
#: this many bytes of it, unless the head is longer.
HEAD_COPY: Final = 16 * 1024
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


# Enum members as module constants: an Enum class attribute lookup is a Python call.
_BUFFERED: Final = Transport.BUFFERED
_FRAMED: Final = Transport.FRAMED
_TTHEADER: Final = Transport.TTHEADER
_TTHEADER_FRAMED: Final = Transport.TTHEADER_FRAMED
_THEADER: Final = Transport.THEADER


class Envelope:
    """One received message, parsed.

    A TTHeader ``header`` read by :func:`read_envelope` shares its ``str_info`` and
    ``int_info`` dicts with the header decode cache: read them, never mutate them.
    ``payload`` is ``bytes``, or for a payload of :data:`LEND_AT` bytes or more (except in
    Apache THeader) a ``memoryview`` of the bytes parsed, which ends where the message
    ends; it is only valid as long as they are (the codec replaces it with a lent view).
    """

    __slots__ = (
        "encoding",
        "header",
        "message_type",
        "method",
        "name",
        "payload",
        "seq_id",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        header: TTHeader | THeader | None,
        encoding: str,
        message_type: int,
        method: str,
        seq_id: int,
        payload: bytes | memoryview,
        name: bytes = b"",
    ) -> None:
        self.transport = transport
        self.header = header
        self.encoding = encoding
        self.message_type = message_type
        self.method = method
        self.seq_id = seq_id
        self.payload = payload
        #: The method name as it was on the wire (empty if not kept).
        self.name = name

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
    return total, _from_view(view, total, False, version)


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
    head = bytes(view[: min(end, HEAD_COPY)])
    try:
        encoding, message_type, method, seq_id, start, name = read_message(head, 0, end, VERSION_1)
    except IndexError:  # a head longer than the copy (a huge method name)
        head = bytes(view[:end])
        encoding, message_type, method, seq_id, start, name = read_message(head, 0, end, VERSION_1)
    payload = head[start:] if end <= len(head) else _payload(view, start, end)
    envelope = Envelope(_BUFFERED, None, encoding, message_type, method, seq_id, payload, name)
    return end, envelope


def _ttheader(
    view: memoryview, size: int, length: int, w1: int, max_frame: int
) -> tuple[int, Envelope | None]:
    if w1 & FLAG_STREAMING:
        _streaming()
    if length > max_frame:
        _check_frame(length, max_frame)
    total = length + 4
    if size < total:
        return total, None
    return total, _from_view(view, total, True, VERSION_1)


def _from_view(view: memoryview, total: int, ttheader: bool, version: int) -> Envelope:
    """The Framed or TTHeader message ``view[:total]``, its head parsed from a copy of at
    most :data:`HEAD_COPY` bytes (all of it if the head is longer); a payload past that
    copy is copied on its own, or from :data:`LEND_AT` bytes on returned as a view."""
    head = bytes(view[: min(total, HEAD_COPY)])
    try:
        envelope, body = _parse(head, total, ttheader, version)
    except IndexError:  # a head longer than the copy (huge header or method name)
        head = bytes(view[:total])
        envelope, body = _parse(head, total, ttheader, version)
    if total > len(head):
        envelope.payload = _payload(view, body, total)
    return envelope


def _payload(view: memoryview, start: int, end: int) -> bytes | memoryview:
    """The payload at ``view[start:end]``: a copy, or a view when it is large."""
    if end - start < LEND_AT:
        return bytes(view[start:end])
    return view[start:end]


def _parse(head: bytes, total: int, ttheader: bool, version: int) -> tuple[Envelope, int]:
    if ttheader:
        return parse_ttheader(head, 0, total)
    return parse_framed(head, 0, total, version)


def _theader(
    view: memoryview, size: int, length: int, max_frame: int
) -> tuple[int, Envelope | None]:
    _check_frame(length, max_frame)
    total = length + 4
    if size < total:
        return total, None
    header, payload = decode_theader(view, 0, total, max_frame)
    if len(payload) < 4 or read_u32(payload, 0) & VERSION_MASK != VERSION_1:
        raise RemoteProtocolError("THeader payload is not a strict binary Thrift message")
    encoding, message_type, method, seq_id, body, name = read_message(
        payload, 0, len(payload), VERSION_1
    )
    envelope = Envelope(
        _THEADER, header, encoding, message_type, method, seq_id, payload[body:], name
    )
    return total, envelope


def _streaming() -> NoReturn:
    raise RemoteProtocolError("TTHeader Streaming (flag 0x0002) is not supported")


# -- parsing from bytes ------------------------------------------------------------------
#
# The codec parses Framed and TTHeader messages from a ``bytes`` copy of its buffer (see
# ThriftCodec.receive_from): compiled, indexing and slicing ``bytes`` are native
# operations, where a memoryview or ``struct`` goes through Python calls. The copy may
# hold just the first part of a large message (``end`` past ``len(data)``): reading past
# its end raises IndexError, and the caller then copies the whole message.

#: Method names decoded recently, by their bytes (peers repeat theirs).
_NAMES: Final[dict[bytes, str]] = {}
_NAMES_SIZE: Final = 256


class _LastName:
    """The method name decoded last, with its bytes (one tuple: replaced at once, so
    threads never see a name with another's method): compared first, it saves hashing
    the name's bytes (a fresh slice per message) for the common run of one method."""

    __slots__ = ("pair",)

    def __init__(self) -> None:
        self.pair: tuple[bytes, str] = (b"", "")


_LAST_NAME: Final = _LastName()


def read_u32(data: bytes, at: int) -> int:
    """The big-endian u32 at ``data[at]``."""
    return data[at] << 24 | data[at + 1] << 16 | data[at + 2] << 8 | data[at + 3]


def read_i32(data: bytes, at: int) -> int:
    """The big-endian i32 at ``data[at]``."""
    value = data[at] << 24 | data[at + 1] << 16 | data[at + 2] << 8 | data[at + 3]
    return value - 0x100000000 if value >= 0x80000000 else value


def parse_framed(data: bytes, at: int, end: int, version: int) -> tuple[Envelope, int]:
    """The Framed message ``data[at:end]`` (``version``: its version word, masked) and
    where its body starts; the envelope's payload is the body when ``data`` holds it all,
    else empty (the caller fills it in).

    Raises:
        RemoteProtocolError: the message inside is malformed.
        IndexError: ``data`` ends before the message head does (see above).
    """
    encoding, message_type, method, seq_id, body, name = read_message(data, at + 4, end, version)
    payload = data[body:end] if end <= len(data) else b""
    return Envelope(_FRAMED, None, encoding, message_type, method, seq_id, payload, name), body


def parse_ttheader(
    data: bytes, at: int, end: int, memo: HeaderMemo | None = None
) -> tuple[Envelope, int]:
    """The TTHeader or TTHeaderFramed message ``data[at:end]``, as :func:`parse_framed`
    (``memo``: the caller's last decoded header, see :func:`decode_ttheader_bytes`).

    Raises:
        RemoteProtocolError: the header or the message inside is malformed.
        IndexError: ``data`` ends before the message head does.
    """
    header, start = decode_ttheader_bytes(data, at, end, True, memo)
    left = end - start
    if left >= 4 and read_u32(data, start) & VERSION_MASK == VERSION_1:
        transport = _TTHEADER
        encoding, message_type, method, seq_id, body, name = read_message(
            data, start, end, VERSION_1
        )
    elif left >= 8:
        inner = read_u32(data, start)
        version = read_u32(data, start + 4) & VERSION_MASK
        if version != VERSION_1 and version != PROTOBUF_V1:
            raise RemoteProtocolError(
                f"unrecognised TTHeader payload (first bytes {data[start : start + 8].hex(' ')})"
            )
        if inner != left - 4:
            raise RemoteProtocolError(
                f"TTHeaderFramed inner length {inner} disagrees with the {left - 4} bytes left"
            )
        transport = _TTHEADER_FRAMED
        encoding, message_type, method, seq_id, body, name = read_message(
            data, start + 4, end, version
        )
    else:
        raise RemoteProtocolError(f"TTHeader payload of {left} bytes holds no message")
    payload = data[body:end] if end <= len(data) else b""
    return Envelope(transport, header, encoding, message_type, method, seq_id, payload, name), body


def read_message(
    data: bytes, pos: int, end: int, version: int
) -> tuple[str, int, str, int, int, bytes]:
    """``(encoding, type, method, seq id, body offset, method bytes)`` of the message at
    ``data[pos:end]``.

    Raises:
        RemoteProtocolError: the message header is malformed.
        IndexError: ``data`` ends before the message header does.
    """
    if end - pos < 12:
        raise RemoteProtocolError("message shorter than its 12-byte header")
    message_type = data[pos + 3]
    name_length = read_i32(data, pos + 4)
    if data[pos + 2] or not 1 <= message_type <= 4:
        raise RemoteProtocolError(f"invalid message type {data[pos + 2] << 8 | message_type}")
    name_start = pos + 8
    name_end = name_start + name_length
    if name_length < 0 or name_end + 4 > end:
        raise RemoteProtocolError(f"method name of {name_length} bytes does not fit the message")
    seq_id = read_i32(data, name_end)  # first: IndexError if data ends before the name
    encoding = THRIFT if version != PROTOBUF_V1 else PROTO
    if name_length == 0 and encoding is PROTO:
        raise RemoteProtocolError("Kitex Protobuf message with an empty method name")
    name = data[name_start:name_end]
    last = _LAST_NAME.pair
    if name == last[0]:
        return encoding, message_type, last[1], seq_id, name_end + 4, name
    method = _NAMES.get(name)
    if method is None:
        try:
            method = name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(f"method name is not UTF-8: {exc}") from exc
        if len(_NAMES) >= _NAMES_SIZE:
            _NAMES.clear()
        _NAMES[name] = method
    _LAST_NAME.pair = (name, method)
    return encoding, message_type, method, seq_id, name_end + 4, name
