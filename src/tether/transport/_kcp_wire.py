"""The ``kcp://`` session wire format: pure bytes in, bytes out (no sockets, no event loop).

Every UDP datagram of a ``kcp://`` session is one *packet*: a 16-byte header, then a
payload whose meaning depends on the type::

    0        2      3      4             8                     16
    | magic  | ver  | type | conv (u32)  | token (u64)         | payload ...
      b"tK"    1

All integers are big-endian. ``conv`` is the conversation id the server assigned (0 in a
HELLO; at most 2**31-1, as the ``kcp`` binding takes a C int), ``token`` the session's random 64-bit secret: a datagram whose (address, conv,
token) does not name a live session is dropped, so a stray or off-path spoofed packet
cannot reach or end a session.

==========  =====================  ==========================================================
type        direction              payload
==========  =====================  ==========================================================
HELLO       client -> server       8 zero bytes (padding: a WELCOME is never larger than the
                                   HELLO that caused it); ``conv`` 0, ``token`` the client's
                                   random nonce
WELCOME     server -> client       the session token (u64, non-zero); ``conv`` the assigned
                                   id, ``token`` the client's nonce echoed
READY       client -> server       empty: completes the three-way handshake
DATA        both                   KCP segments (what ``ikcp_output`` produced; the first
                                   four bytes are KCP's own conv, little-endian, = ``conv``)
PING, PONG  both                   empty: heartbeat (a PONG also confirms a READY)
CLOSE       both                   empty: "everything I sent, FIN included, was acknowledged;
                                   I am gone"
CLOSE_ACK   both                   empty: answers CLOSE
RESET       both                   empty: the session is aborted (or unknown to the sender);
                                   ``conv`` 0 and the nonce as ``token``: a HELLO refused
==========  =====================  ==========================================================

Inside the KCP byte stream (KCP runs in message mode), each KCP message starts with a
one-byte tag: :data:`STREAM_DATA` followed by at least one byte of the connection's byte
stream, or :data:`STREAM_FIN` alone (the sender half-closed; in order with the data).
Messages are at most :func:`max_stream_payload` bytes (:data:`MESSAGE_FRAGMENTS`
segments) so that one never needs more fragments than KCP accepts (fewer than 128) or
than the peer's receive window holds.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .._exceptions import RemoteProtocolError
from .._types import BufferLike

MAGIC = b"tK"
VERSION = 1
HEADER = struct.Struct(">2sBBIQ")
HEADER_SIZE = HEADER.size  # 16
#: HELLO's padding, and WELCOME's payload size (the session token).
HANDSHAKE_PAYLOAD = 8
#: KCP's own segment header (conv, cmd, frg, wnd, ts, sn, una, len).
KCP_OVERHEAD = 24
#: KCP refuses a message of this many fragments or more (``ikcp_send`` returns -2).
KCP_MAX_FRAGMENTS = 128
#: Conversation ids are 31-bit: the ``kcp`` binding takes a C ``int`` (u32 on the wire).
MAX_CONV = (1 << 31) - 1
#: The biggest datagram we accept at all (a sane UDP payload, far above any MTU we use).
MAX_DATAGRAM = 65507

#: Fragments per stream message; every session's windows hold at least this many.
MESSAGE_FRAGMENTS = 16

STREAM_DATA = 0
STREAM_FIN = 1
_FIN_MESSAGE = bytes([STREAM_FIN])
_DATA_TAG = bytes([STREAM_DATA])
_TOKEN = struct.Struct(">Q")
_KCP_CONV = struct.Struct("<I")


class PacketType(enum.IntEnum):
    """What a datagram means (the header's type byte)."""

    HELLO = 1
    WELCOME = 2
    READY = 3
    DATA = 4
    PING = 5
    PONG = 6
    CLOSE = 7
    CLOSE_ACK = 8
    RESET = 9


_TYPES = {t.value: t for t in PacketType}

#: Types whose payload must be empty.
_EMPTY = frozenset(
    {
        PacketType.READY,
        PacketType.PING,
        PacketType.PONG,
        PacketType.CLOSE,
        PacketType.CLOSE_ACK,
        PacketType.RESET,
    }
)


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded datagram. ``payload`` is a slice of the datagram (DATA, WELCOME)."""

    type: PacketType
    conv: int
    token: int
    payload: bytes = b""


def encode_header(type_: PacketType, conv: int, token: int) -> bytes:
    """The 16-byte header; DATA packets are this header followed by KCP's bytes."""
    return HEADER.pack(MAGIC, VERSION, type_, conv, token)


def encode_hello(nonce: int) -> bytes:
    """A HELLO carrying the client's nonce (non-zero), padded to a WELCOME's size."""
    _check_u64(nonce, "nonce")
    return encode_header(PacketType.HELLO, 0, nonce) + bytes(HANDSHAKE_PAYLOAD)


def encode_welcome(conv: int, nonce: int, session_token: int) -> bytes:
    """A WELCOME: the assigned ``conv`` and ``session_token``, echoing the client's nonce."""
    _check_conv(conv)
    _check_u64(nonce, "nonce")
    _check_u64(session_token, "session token")
    return encode_header(PacketType.WELCOME, conv, nonce) + _TOKEN.pack(session_token)


def encode_control(type_: PacketType, conv: int, token: int) -> bytes:
    """A packet with an empty payload (READY, PING, PONG, CLOSE, CLOSE_ACK, RESET)."""
    if type_ not in _EMPTY:
        raise ValueError(f"{type_.name} packets carry a payload")
    return encode_header(type_, conv, token)


def decode_packet(datagram: BufferLike) -> Packet:
    """Parse one datagram.

    Raises:
        RemoteProtocolError: too short or too long, wrong magic or version, unknown type,
            or a payload that does not fit the type (including a DATA packet whose KCP
            conv differs from the header's, or a truncated handshake).
    """
    n = len(datagram)
    if n < HEADER_SIZE:
        raise RemoteProtocolError(f"datagram of {n} bytes is shorter than the header")
    if n > MAX_DATAGRAM:
        raise RemoteProtocolError(f"datagram of {n} bytes is too large")
    magic, version, type_byte, conv, token = HEADER.unpack_from(datagram)
    if magic != MAGIC:
        raise RemoteProtocolError(f"bad magic {magic!r}")
    if version != VERSION:
        raise RemoteProtocolError(f"unsupported version {version}")
    type_ = _TYPES.get(type_byte)
    if type_ is None:
        raise RemoteProtocolError(f"unknown packet type {type_byte}")
    size = n - HEADER_SIZE
    if token == 0:
        raise RemoteProtocolError(f"{type_.name} with a zero token")
    if type_ is PacketType.HELLO:
        if conv != 0 or size != HANDSHAKE_PAYLOAD or any(datagram[HEADER_SIZE:]):
            raise RemoteProtocolError("malformed HELLO")
        return Packet(type_, 0, token)
    if conv == 0 and type_ is not PacketType.RESET:  # RESET with conv 0 refuses a HELLO
        raise RemoteProtocolError(f"{type_.name} with conversation id 0")
    if conv > MAX_CONV:
        raise RemoteProtocolError(f"conversation id {conv} does not fit 31 bits")
    if type_ is PacketType.WELCOME:
        if size != HANDSHAKE_PAYLOAD:
            raise RemoteProtocolError("truncated WELCOME")
        (session_token,) = _TOKEN.unpack_from(datagram, HEADER_SIZE)
        if session_token == 0:
            raise RemoteProtocolError("WELCOME with a zero session token")
        return Packet(type_, conv, token, bytes(datagram[HEADER_SIZE:]))
    if type_ is PacketType.DATA:
        if size < KCP_OVERHEAD:
            raise RemoteProtocolError(f"DATA payload of {size} bytes is shorter than KCP's header")
        if _KCP_CONV.unpack_from(datagram, HEADER_SIZE)[0] != conv:
            raise RemoteProtocolError("DATA whose KCP conversation id differs from the header's")
        return Packet(type_, conv, token, bytes(datagram[HEADER_SIZE:]))
    if size:
        raise RemoteProtocolError(f"{type_.name} with a {size}-byte payload")
    return Packet(type_, conv, token)


def welcome_token(packet: Packet) -> int:
    """The session token a decoded WELCOME carries."""
    if packet.type is not PacketType.WELCOME:
        raise ValueError("not a WELCOME")
    token: int = _TOKEN.unpack(packet.payload)[0]
    return token


# -- the byte stream inside KCP ------------------------------------------------------------


def max_stream_payload(mss: int, fragments: int = MESSAGE_FRAGMENTS) -> int:
    """Stream bytes per KCP message: ``fragments`` segments of ``mss`` bytes, less the tag.

    A message must need fewer than KCP's 128 fragments, and no more than the *peer's*
    receive window (else it could never be reassembled there). Windows are not exchanged,
    so every session uses :data:`MESSAGE_FRAGMENTS` and requires windows at least that big.
    """
    if mss <= 1:
        raise ValueError("mss must exceed 1")
    if not 1 <= fragments < KCP_MAX_FRAGMENTS:
        raise ValueError(f"a KCP message needs 1..{KCP_MAX_FRAGMENTS - 1} fragments")
    return fragments * mss - 1


def stream_messages(chunks: list[BufferLike], limit: int) -> Iterator[bytes]:
    """Split the stream bytes in ``chunks`` into tagged KCP messages of at most ``limit``
    stream bytes each (plus the tag); nothing for empty input."""
    if limit < 1:
        raise ValueError("limit must be positive")
    if not chunks:
        return
    joined = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    view = memoryview(joined).cast("B")
    total = len(view)
    join = b"".join
    for start in range(0, total, limit):
        yield join((_DATA_TAG, view[start : start + limit]))


def fin_message() -> bytes:
    """The KCP message that half-closes the stream."""
    return _FIN_MESSAGE


def decode_stream_message(message: BufferLike) -> memoryview | None:
    """The stream bytes a KCP message carries, or ``None`` for FIN.

    Raises:
        RemoteProtocolError: an empty message, an unknown tag, data with no bytes or a FIN
            with bytes after it.
    """
    if not len(message):
        raise RemoteProtocolError("empty stream message")
    tag = message[0]
    if tag == STREAM_DATA:
        if len(message) == 1:
            raise RemoteProtocolError("stream DATA message with no bytes")
        return memoryview(message)[1:]
    if tag == STREAM_FIN:
        if len(message) != 1:
            raise RemoteProtocolError("FIN message with trailing bytes")
        return None
    raise RemoteProtocolError(f"unknown stream message tag {tag}")


def _check_conv(conv: int) -> None:
    if not 0 < conv <= MAX_CONV:
        raise ValueError(f"conversation id {conv} is not in 1..2**31-1")


def _check_u64(value: int, what: str) -> None:
    if not 0 < value < 1 << 64:
        raise ValueError(f"{what} {value} is not a non-zero u64")
