"""Outgoing Kitex-family messages: a client's request and a server's reply, written into
a codec's :class:`~tether.buffer.WriteBuffer` as header pieces plus the payload, which
is queued by reference (never joined with its header).

A payload may be a :class:`~tether.buffer.BufferList` (a struct whose big field is its
own buffer): its pieces are queued as they are, so a 1 MiB field is never copied here.
Apache THeader joins it (its body is one buffer, possibly transformed).

Request: the call's method, seq id and payload in the client's transport (Kitex Protobuf
needs a length, so Buffered becomes Framed and TTHeader TTHeaderFramed). Reply: the
request's transport and header kind; no payload and a non-OK status (unless a
``biz-status`` says the call succeeded at the RPC level) is a TApplicationException
(Thrift) or an error message (Kitex Protobuf).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from ..._exceptions import LocalProtocolError
from ..._status import Status
from ..._types import MetadataPairs, MetadataValue
from ...buffer import Payload, WriteBuffer, payload_bytes
from .._events import CallStarted
from ._binary import I32, MESSAGE_HEAD, PROTOBUF_V1, VERSION_1
from ._envelope import PROTO, Envelope, Transport
from ._exception import encode_application_exception, encode_error_proto, type_for_status
from ._header_meta import HeaderMeta
from ._meta import CONNECTION_RESET
from ._theader import THeader, encode_theader
from ._ttheader import MAGIC as _TTHEADER_MAGIC, TTHeader

_BIZ_STATUS: Final = "biz-status"
#: The metadata of a reply without a header: never read nor written (see write_reply).
_NO_METADATA: Final[list[tuple[str, MetadataValue]]] = []
_EMPTY_STRUCT: Final = b"\x00"
# Enum members as plain module constants: compiled, ``MessageType.CALL`` or
# ``Status.OK`` is a Python attribute lookup (~700 instructions through
# ``EnumType.__getattr__``), and comparing an IntEnum member with an int a generic call.
_CALL: Final = 1  # MessageType.CALL
_REPLY: Final = 2  # MessageType.REPLY
_EXCEPTION: Final = 3  # MessageType.EXCEPTION
_ONEWAY: Final = 4  # MessageType.ONEWAY
_OK: Final = Status.OK
_UNAVAILABLE: Final = Status.UNAVAILABLE
_BUFFERED: Final = Transport.BUFFERED
_FRAMED: Final = Transport.FRAMED
_TTHEADER: Final = Transport.TTHEADER
_TTHEADER_FRAMED: Final = Transport.TTHEADER_FRAMED
_THEADER: Final = Transport.THEADER
# Bound ``pack`` functions as module constants: compiled, calling one is a direct call,
# where ``STRUCT.pack(...)`` looks the method up first.
_pack_message_head: Final = MESSAGE_HEAD.pack
_pack_i32: Final = I32.pack
_U16: Final = struct.Struct(">H")
_MAGIC_FLAGS: Final = struct.Struct(">HH")


#: A payload smaller than this is joined to its head (one small write, not two).
_JOIN_BELOW: Final = 4096


class FramedHeads:
    """The last Framed message head layout a codec wrote in one direction: the method's
    constant middle (version word, name length, name) and the packer of
    ``LENGTH, middle, SEQ ID``, so that call after call of one method costs one
    three-argument pack (no name encoding, no packer lookup). Not thread-safe (one codec).
    """

    __slots__ = ("method", "middle", "name", "pack", "word")

    def __init__(self) -> None:
        #: The method (requests: the ``str``, compared by identity) or its name bytes
        #: (replies, compared by value) the cached head is for.
        self.method: object = None
        self.word = -1
        self.name = b""
        self.middle = b""
        self.pack: Callable[..., bytes] | None = None

    def update(self, method: object, name: bytes, word: int) -> Callable[..., bytes]:
        """Cache ``method``'s head (its encoded ``name``, version ``word``); the packer."""
        middle = _pack_message_head(word, len(name)) + name
        pack = struct.Struct(f">I{len(middle)}si").pack
        self.method = method
        self.word = word
        self.name = name
        self.middle = middle
        self.pack = pack
        return pack


class TTHeaderHeads:
    """The last TTHeader message head layout a codec wrote in one direction: everything
    of it that does not change from message to message of one method with one header
    body (magic and flags, header size and body, the message's version word, name
    length and name) as three constant pieces, and the packer that puts ``LENGTH``, the
    seq id (twice) and TTHeaderFramed's inner length between them: one pack of five or
    seven arguments instead of eleven. Not thread-safe (one codec)."""

    __slots__ = ("body", "flags", "framed", "key", "name", "pack", "rest", "start", "tail", "word")

    def __init__(self) -> None:
        #: The method ``str`` (requests) or name bytes (replies) the head is for.
        self.key: object = None
        #: The method name's bytes.
        self.name = b""
        self.body = b""
        self.word = -1
        self.flags = -1
        self.framed = False
        #: MAGIC and FLAGS.
        self.start = b""
        #: Header size and body, then (not framed) the message up to its seq id.
        self.rest = b""
        #: Framed only: the message up to its seq id (after the inner length).
        self.tail = b""
        self.pack: Callable[..., bytes] | None = None

    def head(
        self,
        key: object,
        name: bytes,
        body: bytes,
        word: int,
        flags: int,
        framed: bool,
        length: int,
        seq_id: int,
    ) -> bytes:
        """Everything before the payload: ``length`` is the frame's LENGTH; the inner
        length of TTHeaderFramed follows from it."""
        pack = self.pack
        if (
            pack is None
            or (body is not self.body and body != self.body)
            or (key is not self.key and key != self.key)
            or word != self.word
            or flags != self.flags
            or framed != self.framed
        ):
            pack = self._update(key, name, body, word, flags, framed)
        sid: object = seq_id  # boxed once for its two uses
        if framed:
            inner = length - 14 - len(body)
            return pack(length, self.start, sid, self.rest, inner, self.tail, sid)
        return pack(length, self.start, sid, self.rest, sid)

    def _update(
        self, key: object, name: bytes, body: bytes, word: int, flags: int, framed: bool
    ) -> Callable[..., bytes]:
        message = _pack_message_head(word, len(name)) + name
        sized = _U16.pack(len(body) >> 2) + body
        self.start = _MAGIC_FLAGS.pack(_TTHEADER_MAGIC, flags)
        if framed:
            self.rest = sized
            self.tail = message
            layout = f">I4si{len(sized)}sI{len(message)}si"
        else:
            self.rest = sized + message
            self.tail = b""
            layout = f">I4si{len(sized) + len(message)}si"
        pack = struct.Struct(layout).pack
        self.key = key
        self.name = name
        self.body = body
        self.word = word
        self.flags = flags
        self.framed = framed
        self.pack = pack
        return pack


class ServerCall:
    """What a server codec keeps about a received call until it replies."""

    __slots__ = ("envelope", "metadata", "name", "payload")

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.name = envelope.name or envelope.method.encode("utf-8")
        #: Reply metadata gathered so far (Headers, then Trailers; ``None``: none yet).
        self.metadata: list[tuple[str, MetadataValue]] | None = None
        #: The reply message, once the server sent it (a BufferList: by reference).
        self.payload: Payload | None = None


def check_size(size: int, max_frame: int) -> None:
    """Raise LocalProtocolError when a message of ``size`` bytes exceeds ``max_frame``."""
    if size > max_frame:
        raise LocalProtocolError(f"message of {size} bytes exceeds the {max_frame}-byte limit")


def _write(out: WriteBuffer, head: bytes, payload: Payload = b"") -> None:
    size = len(payload)
    if type(payload) is bytes and size < _JOIN_BELOW:
        out.write_binary(head + payload if size else head)
        return
    out.write_binary(head)
    if size:
        out.write_binary(payload)  # large ones (a BufferList's pieces) by reference


def write_request(
    out: WriteBuffer,
    call: CallStarted,
    payload: Payload,
    transport: Transport,
    proto: bool,
    max_frame: int,
    meta: HeaderMeta,
    heads: FramedHeads,
    tt_heads: TTHeaderHeads,
) -> None:
    """Queue ``call``'s request message carrying ``payload``.

    ``proto``: Kitex Protobuf instead of Thrift binary. ``heads`` / ``tt_heads``: the
    codec's request head caches (Framed / TTHeader).

    Raises:
        LocalProtocolError: the message would exceed ``max_frame``, or Kitex Protobuf was
            asked of Apache THeader.
    """
    if proto and transport is _THEADER:
        raise LocalProtocolError("Kitex Protobuf cannot travel in Apache THeader")
    if proto and not transport.is_framed:
        transport = _FRAMED if transport is _BUFFERED else _TTHEADER_FRAMED
    word = (PROTOBUF_V1 if proto else VERSION_1) | (_ONEWAY if call.oneway else _CALL)
    if transport is _FRAMED:  # the common case, in one pack
        method = call.method
        pack = heads.pack
        if pack is None or method is not heads.method or word != heads.word:
            pack = heads.update(method, method.encode("utf-8"), word)
        middle = heads.middle
        size = 4 + len(middle) + len(payload)
        check_size(size, max_frame)
        _write(out, pack(size, middle, call.stream_id), payload)
        return
    method = call.method
    name = tt_heads.name if method is tt_heads.key else method.encode("utf-8")
    message_size = 12 + len(name) + len(payload)
    if message_size > max_frame:
        check_size(message_size, max_frame)
    if transport is _TTHEADER or transport is _TTHEADER_FRAMED:
        framed = transport is _TTHEADER_FRAMED
        size = message_size + (4 if framed else 0)
        body = meta.request_body(call, framed)
        length = 10 + len(body) + size
        if length > max_frame:
            check_size(length, max_frame)
        head = tt_heads.head(method, name, body, word, 0, framed, length, call.stream_id)
        _write(out, head, payload)
        return
    head = b"".join((_pack_message_head(word, len(name)), name, _pack_i32(call.stream_id)))
    if transport is _THEADER:
        headers = {k: v for k, v in call.metadata if k[:1] != ":"}
        frame = encode_theader(
            THeader(seq_id=call.stream_id), headers, head + payload_bytes(payload)
        )
        check_size(len(frame) - 4, max_frame)
        _write(out, frame)
        return
    _write(out, head, payload)


def write_reply(
    out: WriteBuffer,
    call: ServerCall,
    status: Status,
    text: str,
    metadata: MetadataPairs,
    going_away: bool,
    meta: HeaderMeta,
    heads: FramedHeads,
    tt_heads: TTHeaderHeads,
) -> bool:
    """Queue the reply to ``call``: its payload, or an exception for ``status``.

    ``going_away``: the server sent GoAway, so a TTHeader reply says ``crrst=1``.
    ``heads`` / ``tt_heads``: the codec's reply head caches (Framed / TTHeader).
    Returns whether the reply told the client to drop the connection (``crrst``).
    """
    envelope = call.envelope
    proto = envelope.encoding is PROTO
    body = call.payload
    transport = envelope.transport
    has_header = envelope.header is not None
    # Only a reply with a header carries metadata (Buffered and Framed have none).
    all_metadata: list[tuple[str, MetadataValue]] = _NO_METADATA
    if has_header:
        gathered = call.metadata
        all_metadata = list(metadata) if gathered is None else gathered + list(metadata)
    message_type = _REPLY
    if body is None:
        if status is _OK or (has_header and any(key == _BIZ_STATUS for key, _ in all_metadata)):
            body = b"" if proto else _EMPTY_STRUCT
        else:
            message_type = _EXCEPTION
            error_type = type_for_status(status)
            body = (
                encode_error_proto(text, error_type)
                if proto
                else encode_application_exception(text, error_type)
            )
    word = (PROTOBUF_V1 if proto else VERSION_1) | message_type
    name = call.name
    if transport is _FRAMED:  # the common case, in one pack
        pack = heads.pack
        if pack is None or word != heads.word or name != heads.name:
            pack = heads.update(name, name, word)
        middle = heads.middle
        _write(out, pack(4 + len(middle) + len(body), middle, envelope.seq_id), body)
        return False
    header = envelope.header
    if isinstance(header, TTHeader):
        framed = transport is _TTHEADER_FRAMED
        size = 12 + len(name) + len(body) + (4 if framed else 0)
        if going_away:
            all_metadata.append((CONNECTION_RESET, "1"))
        header_body, reset = meta.response_body(
            header.protocol_id, message_type, status, text, all_metadata
        )
        length = 10 + len(header_body) + size
        head = tt_heads.head(
            name, name, header_body, word, header.flags, framed, length, envelope.seq_id
        )
        _write(out, head, body)
        return reset
    head = b"".join((_pack_message_head(word, len(name)), name, _pack_i32(envelope.seq_id)))
    if isinstance(header, THeader):
        headers = {k: v for k, v in all_metadata if k[:1] != ":"}
        reply = THeader(
            flags=header.flags,
            seq_id=header.seq_id,
            protocol_id=header.protocol_id,
            transforms=header.transforms,
        )
        _write(out, encode_theader(reply, headers, head + payload_bytes(body)))
        return False
    _write(out, head, body)
    return False
