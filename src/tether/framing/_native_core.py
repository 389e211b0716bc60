"""The state one native-protocol connection shares between its receiving and sending
halves (:mod:`._native_receive`, :mod:`._native_send`): settings, stream records, stream
id bookkeeping, GOAWAY and failure state, and the stream/flow-control queries of the
:class:`~tether.framing.FrameCodec` contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

from .._exceptions import LocalProtocolError, RemoteProtocolError
from ..buffer import ReadBuffer
from . import _native_frames as wire
from ._base import CodecConfig, FrameCodec, Role
from ._native_frames import HEADER, FrameType
from ._native_state import ACCEPTOR, INITIATOR, ST_CLOSED, ST_IDLE
from ._native_streams import SpareRecords, StreamRecord

#: Records of finished streams, reopened for new streams by any codec of the process
#: (saving an allocation and a deallocation per stream). Single-threaded use (one event
#: loop), like the spare arrays of :mod:`tether.buffer`; a spare record holds no
#: references to buffers or messages.
_SPARE: Final = SpareRecords(256)  # at most a few tens of KiB


class NativeCore(FrameCodec):
    """Shared state and bookkeeping; :class:`~tether.framing.NativeCodec` is the codec."""

    def __init__(self, role: Role, config: CodecConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else CodecConfig()
        self.role = role
        self._write = self._out.write_binary
        self._chunk_size = cfg.chunk_size
        self._local_parity = 1 if role is Role.CLIENT else 0
        self._next_local = 1 if role is Role.CLIENT else 2
        self._last_local = 0  # highest id we opened
        self._last_remote = 0  # highest id the peer opened (accepted or refused)
        self._last_accepted = 0  # highest id the peer opened that we accepted
        self._streams: dict[int, StreamRecord] = {}
        #: The record last looked up or opened (``None`` once forgotten): a call's frames
        #: mostly come in a row, and this saves a dict lookup with a boxed id.
        self._recent: StreamRecord | None = None
        self._remote_active = 0  # peer-opened streams not yet closed
        self._local = wire.Settings(
            cfg.max_frame_size,
            cfg.initial_window,
            cfg.max_concurrent_streams,
            max(cfg.max_metadata_size, wire.MIN_MAX_METADATA_SIZE),
        )
        self._max_message = cfg.max_message_size
        self._credit_threshold = cfg.initial_window // 4
        self._peer = wire.Settings()  # protocol defaults until the peer's SETTINGS
        self._chunk = min(cfg.chunk_size, self._peer.max_frame_size)
        self._awaiting_preface = True
        self._settings_received = False
        self._dead: RemoteProtocolError | None = None
        self._local_goaway: int | None = None  # last_stream_id we announced
        self._remote_goaway: int | None = None  # last_stream_id the peer announced
        self._buffer: ReadBuffer | None = None
        self._needed = 0
        #: Payload length of the second frame of the last whole call or reply found.
        self._fused_size = 0
        #: Encoded service/method/encoding fields of recent OPENs, both ways (bounded).
        self._heads: dict[tuple[str, str, str], bytes] = {}
        #: The last OPEN we sent: (service, method, encoding, encoded head, head + an
        #: empty metadata block).
        empty_head = wire.open_head("", "", "")
        self._last_head: tuple[str, str, str, bytes, bytes] = (
            "",
            "",
            "",
            empty_head,
            empty_head + wire.EMPTY_METADATA,
        )
        self._names = wire.OpenNames()
        #: The last unary request's fixed pieces (``_native_send._unary_pieces``).
        self._last_unary: tuple[bytes, int, bytes, bytes, Callable[..., bytes]] | None = None
        settings = wire.settings_payload(self._local)
        self._write(wire.PREFACE + HEADER.pack(len(settings), FrameType.SETTINGS, 0, 0) + settings)

    def __repr__(self) -> str:
        if self._dead is not None:
            state = "dead"
        else:
            state = "ready" if self._settings_received else "handshake"
        name = type(self).__name__
        return f"<{name} {self.role.value} {state} streams={len(self._streams)}>"

    # -- stream bookkeeping ----------------------------------------------------------

    def _stream(self, sid: int) -> StreamRecord | None:
        """The record of live stream ``sid`` (``None``: no record, idle or closed)."""
        recent = self._recent
        if recent is not None and recent.id == sid:
            return recent
        stream = self._streams.get(sid)
        if stream is not None:
            self._recent = stream
        return stream

    def _open_record(self, sid: int, side: int, state: int) -> StreamRecord:
        """Record a stream that starts now, with the current initial windows."""
        send_window = self._peer.initial_window
        recv_window = self._local.initial_window
        stream = _SPARE.pop()
        if stream is not None:
            stream.reopen(sid, side, state, send_window, recv_window)
        else:
            stream = StreamRecord(sid, side, state, send_window, recv_window)
        key: object = sid  # boxed once: _forget finds it by identity, no new int object
        stream.key = key
        cast("dict[object, StreamRecord]", self._streams)[key] = stream
        self._recent = stream
        return stream

    def _forget(self, stream: StreamRecord) -> None:
        """Drop the record of a stream that is over; it may be reopened for a later one,
        so the caller must not use it afterwards."""
        sid = stream.id
        if not sid:
            return  # forgotten already (0 is never a stream id)
        del cast("dict[object, StreamRecord]", self._streams)[stream.key]
        stream.key = None
        stream.id = 0
        if self._recent is stream:
            self._recent = None
        stream.drop()  # let go of queued and half-received data
        _SPARE.push(stream)

    def _forget_all(self) -> None:
        """Drop every record (the connection failed)."""
        self._streams.clear()
        self._recent = None

    def _idle_or_closed(self, sid: int) -> tuple[int, int]:
        """Side and state of a stream we keep no record of: CLOSED if its id was used."""
        if sid & 1 == self._local_parity:
            return INITIATOR, ST_CLOSED if 0 < sid <= self._last_local else ST_IDLE
        return ACCEPTOR, ST_CLOSED if 0 < sid <= self._last_remote else ST_IDLE

    def _close(self, stream: StreamRecord) -> None:
        """We (the acceptor) ended the call with END; the record stays while frames are
        still queued on it."""
        self._remote_active -= 1
        stream.state = ST_CLOSED
        if stream.pending is None:
            self._forget(stream)
        else:
            stream.parts = stream.owed = None

    def _discard(self, stream: StreamRecord) -> None:
        """The stream is over for good (reset, END received): drop everything queued."""
        if stream.side == ACCEPTOR and stream.state != ST_CLOSED:
            self._remote_active -= 1
        stream.state = ST_CLOSED
        if stream.pending is not None:
            stream.drop()
        self._forget(stream)

    def _flush(self, stream: StreamRecord) -> None:
        """Release what the send window allows; forget a closed stream once drained."""
        if stream.flush(self._write, self._chunk) and stream.state == ST_CLOSED:
            self._forget(stream)

    # -- streams and flow control (FrameCodec) ----------------------------------------

    def next_stream_id(self) -> int:
        """Allocate the id for a new locally opened stream (client odd, server even).

        Raises:
            LocalProtocolError: the peer sent GOAWAY, the 31-bit ids are used up, or the
                codec is dead.
        """
        if self._dead is not None:
            raise LocalProtocolError(f"cannot open a stream: the connection failed ({self._dead})")
        if self._remote_goaway is not None:
            raise LocalProtocolError("cannot open a stream: the peer sent GOAWAY")
        sid = self._next_local
        if sid > wire.MAX_STREAM_ID:
            raise LocalProtocolError("stream ids exhausted: open a new connection")
        self._next_local = sid + 2
        return sid

    def acknowledge_received(self, stream_id: int, nbytes: int) -> None:
        """The application consumed ``nbytes`` of ``stream_id``'s delivered messages.

        Messages are acknowledged in delivery order, normally one call per message with
        ``len(message.data)``. Once a message is fully acknowledged the credit of its last
        chunk is returned (batched, see :mod:`._native_streams`). A stream that is
        unknown, closed or half-closed by the peer, and a dead codec, make this a no-op.
        """
        stream = self._stream(stream_id)
        if stream is None or stream.owed is None:
            return
        stream.unreturned += stream.acknowledge(nbytes)
        frame = stream.credit_frame(self._credit_threshold, self._local.initial_window)
        if frame is not None:
            self._write(frame)

    def pending_send(self, stream_id: int) -> int:
        """DATA payload bytes of ``stream_id`` queued here, waiting for the peer's credit."""
        stream = self._stream(stream_id)
        return stream.pending_bytes if stream is not None else 0

    @property
    def max_outbound_streams(self) -> int | None:
        """The peer's MAX_CONCURRENT_STREAMS (``None``: unlimited or not yet announced)."""
        return self._peer.max_concurrent_streams

    def bytes_needed(self) -> int:
        """Total size of the frame (or preface) the buffer holds part of; 0 between frames."""
        return self._needed
