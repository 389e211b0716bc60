"""The state one gRPC HTTP/2 connection shares between its receiving and sending halves
(:mod:`._receive`, :mod:`._send`): settings, windows, stream records, stream-id
bookkeeping, GOAWAY and failure state, the header-block writer and the stream and
flow-control queries of the :class:`~tether.framing.FrameCodec` contract.
"""

from __future__ import annotations

from ..._exceptions import ErrorCode, LocalProtocolError, RemoteProtocolError
from ...buffer import ReadBuffer
from .._base import CodecConfig, FrameCodec, Role
from . import _frames as wire
from ._frames import (
    CONTINUATION,
    FLAG_END_HEADERS,
    FLAG_END_STREAM,
    HEADER,
    HEADERS,
    MAX_MAX_FRAME_SIZE,
    MIN_MAX_FRAME_SIZE,
    Settings,
    frame_header,
)
from ._hpack import ENCODER_TABLE_SIZE, EncoderTable, HeaderDecoder
from ._options import DEFAULT_USER_AGENT as DEFAULT_USER_AGENT, GrpcOptions as GrpcOptions
from ._streams import CLOSED, H2Stream

#: Receive window of the whole connection (credit is returned as frames are parsed; the
#: per-stream windows are what bound buffering).
CONNECTION_WINDOW = 16 * 1024 * 1024
#: Connection credit is returned once this much is due.
CONNECTION_CREDIT_BATCH = CONNECTION_WINDOW // 4
#: Rapid-reset defence (CVE-2023-44487): at most this many streams reset by the client
#: while they were still running (75%: an attack resets nearly all) ...
RESET_LIMIT = 192
#: ... per this many streams it opens.
RESET_WINDOW = 256
#: How many recently reset stream ids a server remembers.
RESET_MEMORY = 256
#: Most recent request/response heads kept encoded.
HEAD_CACHE_SIZE = 256
_pack_header = HEADER.pack
#: The frame kinds the flood defence counts (indexes of GrpcCore._flood_counts).
PING_FLOOD, SETTINGS_FLOOD, EMPTY_FLOOD = 0, 1, 2
_FLOOD_NAMES = ("PING", "SETTINGS", "empty frame")
_FLOOD_FRAMES = ("PINGs", "SETTINGS frames", "frames carrying nothing")


class GrpcCore(FrameCodec):
    """Shared state and bookkeeping; :class:`~tether.framing.grpc.GrpcCodec` is the codec."""

    def __init__(
        self, role: Role, config: CodecConfig | None = None, options: GrpcOptions | None = None
    ) -> None:
        super().__init__()
        cfg = config if config is not None else CodecConfig()
        opts = options if options is not None else GrpcOptions()
        self.role = role
        self.options = opts
        self._client = role is Role.CLIENT
        self._write = self._out.write_binary
        self._local = Settings(
            enable_push=False,
            max_concurrent_streams=None if self._client else cfg.max_concurrent_streams,
            initial_window_size=cfg.initial_window,
            max_frame_size=min(cfg.max_frame_size, MAX_MAX_FRAME_SIZE),
            max_header_list_size=cfg.max_metadata_size,
        )
        self._peer = Settings()  # protocol defaults until the peer's SETTINGS
        #: The peer's MAX_HEADER_LIST_SIZE (or "unlimited"), for the header fast path.
        self._peer_list_limit = 1 << 62
        self._decoder = HeaderDecoder(cfg.max_metadata_size)
        self._max_message = cfg.max_message_size
        #: DATA frames carry at most a chunk_size message and its 5-byte prefix (so a
        #: chunk_size message travels in one frame), within the peer's MAX_FRAME_SIZE.
        self._chunk_size = cfg.chunk_size + 5
        self._chunk = min(self._chunk_size, self._peer.max_frame_size)
        self._stream_window = cfg.initial_window
        self._credit_threshold = cfg.initial_window // 4
        self._streams: dict[int, H2Stream] = {}
        #: Streams with DATA queued for credit, in the order they started waiting.
        self._blocked: dict[int, H2Stream] = {}
        self._next_local = 1
        self._last_local = 0  # highest stream id we opened
        self._last_remote = 0  # highest stream id the peer opened (accepted or refused)
        self._last_accepted = 0  # highest stream id the peer opened that we accepted
        self._remote_active = 0  # peer-opened streams we have not ended yet
        self._conn_send = wire.DEFAULT_WINDOW
        #: Received DATA bytes whose connection credit is not yet returned (batched).
        self._conn_unreturned = 0
        self._awaiting_preface = not self._client
        self._settings_received = False
        self._dead: RemoteProtocolError | None = None
        self._local_goaway: int | None = None
        self._remote_goaway: int | None = None
        self._buffer: ReadBuffer | None = None
        self._needed = 0
        #: CONTINUATION in progress: stream id (0: none), block so far, END_STREAM.
        self._cont_sid = 0
        self._cont_block = bytearray()
        self._cont_end = False
        self._window_streams = 0
        self._window_resets = 0
        #: Stream ids a server recently reset (bounded; see :meth:`_rst_frame`).
        self._reset_ids: dict[int, None] = {}
        #: Prefix for our next header block (a table size update), or empty.
        self._table_update = b""
        #: Our model of the peer's HPACK dynamic table (indexed header fields), and the
        #: blocks built from it that insert nothing (valid until the table changes):
        #: request heads (pseudo-headers, the rest), response heads, OK trailers.
        self._table = EncoderTable(ENCODER_TABLE_SIZE if opts.header_indexing else 0)
        self._request_heads: dict[tuple[str, str, str, str], tuple[bytes, bytes]] = {}
        self._indexed_response_heads: dict[bytes, bytes] = {}
        self._indexed_trailers_ok = b""
        self.handshake_timeout = opts.settings_timeout
        self._settings_acked = False
        #: Flood defence: frames of each kind (PING, SETTINGS, empty) received since the
        #: connection last made progress, the limits, and the progress seen last.
        self._flood_counts = [0, 0, 0]
        self._flood_limits = (
            opts.ping_flood_limit,
            opts.settings_flood_limit,
            opts.empty_frame_limit,
        )
        self._flood_mark = self._progress_mark()
        preface = wire.PREFACE if self._client else b""
        self._write(
            preface
            + wire.settings_frame(self._local, client=self._client)
            + wire.window_update_frame(0, CONNECTION_WINDOW - wire.DEFAULT_WINDOW)
        )

    def __repr__(self) -> str:
        if self._dead is not None:
            state = "dead"
        else:
            state = "ready" if self._settings_received else "handshake"
        return f"<{type(self).__name__} {self.role.value} {state} streams={len(self._streams)}>"

    # -- helpers shared by both halves -------------------------------------------------

    def _header_frames(self, sid: int, block: bytes, end_stream: bool) -> bytes:
        """HEADERS (+ CONTINUATION) frames carrying ``block``."""
        n = len(block)
        if n <= MIN_MAX_FRAME_SIZE and not self._table_update and n <= self._peer_list_limit:
            # The common case: one frame, whatever the peer's settings.
            flags = FLAG_END_STREAM | FLAG_END_HEADERS if end_stream else FLAG_END_HEADERS
            return _pack_header(0, n, HEADERS, flags, sid) + block
        if self._table_update:
            block = self._table_update + block
            self._table_update = b""
            n = len(block)
        flags = FLAG_END_STREAM if end_stream else 0
        limit = self._peer.max_frame_size
        peer_list = self._peer.max_header_list_size
        if peer_list is not None and n > peer_list:
            raise LocalProtocolError(
                f"header block of {n} bytes exceeds the peer's MAX_HEADER_LIST_SIZE ({peer_list})"
            )
        if n <= limit:
            return frame_header(n, HEADERS, flags | FLAG_END_HEADERS, sid) + block
        parts = [frame_header(limit, HEADERS, flags, sid), block[:limit]]
        pos = limit
        while pos < n:
            take = min(limit, n - pos)
            last = FLAG_END_HEADERS if pos + take == n else 0
            parts.append(frame_header(take, CONTINUATION, last, sid))
            parts.append(block[pos : pos + take])
            pos += take
        return b"".join(parts)

    def _rst_frame(self, sid: int, code: ErrorCode) -> bytes:
        """An RST_STREAM frame; a server remembers the last ids it reset, because the
        client may still send on them (its frames crossed ours) and must not be taken
        for a client reusing a closed stream id."""
        if not self._client:
            reset = self._reset_ids
            if len(reset) >= RESET_MEMORY:
                del reset[next(iter(reset))]
            reset[sid] = None
        return wire.rst_stream_frame(sid, code)

    def _emit(self, stream: H2Stream, frame: bytes) -> None:
        """Write a frame that takes no credit, behind any DATA still queued on the stream."""
        if stream.pending is None:
            self._write(frame)
        else:
            stream.queue(frame)

    def _flush(self, stream: H2Stream) -> None:
        """Release what the windows allow; forget a closed stream once drained."""
        self._conn_send = stream.flush(self._write, self._chunk, self._conn_send)
        if stream.pending is None:
            self._blocked.pop(stream.id, None)
            if stream.state is CLOSED:
                self._streams.pop(stream.id, None)
        else:
            self._blocked[stream.id] = stream

    def _flush_blocked(self) -> None:
        """Connection credit arrived: let every waiting stream send, in waiting order."""
        for stream in list(self._blocked.values()):
            if self._conn_send <= 0:
                break
            self._flush(stream)

    def _end_remote_stream(self, stream: H2Stream) -> None:
        """A peer-opened stream stopped counting against our MAX_CONCURRENT_STREAMS."""
        if not stream.local:
            self._remote_active -= 1

    def _discard(self, stream: H2Stream) -> None:
        """The stream is over for good (reset, or ended both ways): drop what is queued."""
        if stream.state is not CLOSED:
            stream.state = CLOSED
            self._end_remote_stream(stream)
        stream.drop()
        self._streams.pop(stream.id, None)
        self._blocked.pop(stream.id, None)

    def _close_local(self, stream: H2Stream) -> None:
        """We ended the stream (trailers sent, or a reset): forget it once drained."""
        if stream.state is not CLOSED:
            stream.state = CLOSED
            self._end_remote_stream(stream)
        stream.partial = None
        stream.owed = None
        if stream.pending is None:
            self._streams.pop(stream.id, None)

    def _forget_indexed(self) -> None:
        """The table changed (an insertion moves every index): drop the blocks built
        from it."""
        self._request_heads.clear()
        self._indexed_response_heads.clear()
        self._indexed_trailers_ok = b""

    def _count_reset(self) -> None:
        """Rapid-reset defence: too many client resets of running streams (or streams
        refused for exceeding our MAX_CONCURRENT_STREAMS) per window of opened streams
        is an attack (CVE-2023-44487, CVE-2019-9514), not cancellation."""
        self._window_resets += 1
        if self._window_resets > RESET_LIMIT:
            raise RemoteProtocolError(
                f"more than {RESET_LIMIT} streams reset or refused within {RESET_WINDOW} "
                "new streams (rapid reset)",
                error_code=ErrorCode.ENHANCE_YOUR_CALM,
            )

    def _progress_mark(self) -> tuple[int, int, int, int]:
        """Changes whenever the connection makes progress: a stream opened (by either
        side), DATA payload received, DATA sent or connection send credit granted."""
        return (self._last_accepted, self._last_local, self._conn_unreturned, self._conn_send)

    def _count_idle_frame(self, kind: int) -> None:
        """Flood defence (PING, SETTINGS and empty-frame floods, CVE-2019-9512/9515/9518,
        CVE-2024-27316): count a frame that makes no progress; too many in a row is an
        attack. Only frames of those kinds pay for this check."""
        counts = self._flood_counts
        mark = self._progress_mark()
        if mark != self._flood_mark:
            self._flood_mark = mark
            counts[0] = counts[1] = counts[2] = 0
        counts[kind] += 1
        limit = self._flood_limits[kind]
        if counts[kind] > limit:
            raise RemoteProtocolError(
                f"{_FLOOD_NAMES[kind]} flood: more than {limit} {_FLOOD_FRAMES[kind]} "
                "without any progress on the connection",
                error_code=ErrorCode.ENHANCE_YOUR_CALM,
            )

    def check_handshake(self) -> None:
        """Our SETTINGS must be acknowledged within ``GrpcOptions.settings_timeout``.

        Raises:
            RemoteProtocolError: SETTINGS_TIMEOUT; GOAWAY is queued, the codec is dead.
        """
        if self._settings_acked or self._dead is not None:
            return
        exc = RemoteProtocolError(
            f"the peer did not acknowledge our SETTINGS within {self.handshake_timeout:g}s",
            error_code=ErrorCode.SETTINGS_TIMEOUT,
        )
        self._die(exc)
        raise exc

    def _die(self, exc: RemoteProtocolError) -> None:
        self._dead = exc
        self._streams.clear()
        self._blocked.clear()
        self._write(wire.goaway_frame(self._last_accepted, exc.error_code, str(exc)))

    def _dead_error(self) -> RemoteProtocolError:
        dead = self._dead
        code = dead.error_code if dead is not None else ErrorCode.INTERNAL_ERROR
        return RemoteProtocolError(f"the connection already failed: {dead}", error_code=code)

    # -- streams and flow control (FrameCodec) ----------------------------------------

    def next_stream_id(self) -> int:
        """Allocate the id for a new call (client role: odd ids, increasing).

        Raises:
            LocalProtocolError: server role, the peer sent GOAWAY, the ids are used up,
                or the codec is dead.
        """
        if self._dead is not None:
            raise LocalProtocolError(f"cannot open a stream: the connection failed ({self._dead})")
        if not self._client:
            raise LocalProtocolError("a gRPC server does not open streams")
        if self._remote_goaway is not None:
            raise LocalProtocolError("cannot open a stream: the peer sent GOAWAY")
        sid = self._next_local
        if sid > wire.MAX_STREAM_ID:
            raise LocalProtocolError("stream ids exhausted: open a new connection")
        self._next_local = sid + 2
        return sid

    def acknowledge_received(self, stream_id: int, nbytes: int) -> None:
        """The application consumed ``nbytes`` of ``stream_id``'s delivered messages.

        Messages are acknowledged in delivery order (one call per message with
        ``len(message.data)``). Once a message is fully acknowledged its credit goes back
        to the peer (batched, see :mod:`._streams`). Unknown or finished streams and a
        dead codec make this a no-op.
        """
        stream = self._streams.get(stream_id)
        if stream is None or stream.owed is None:
            return
        stream.unreturned += stream.acknowledge(nbytes)
        frame = stream.credit_frame(self._credit_threshold, self._stream_window)
        if frame is not None:
            self._write(frame)

    def pending_send(self, stream_id: int) -> int:
        """DATA payload bytes of ``stream_id`` queued here, waiting for the peer's credit."""
        stream = self._streams.get(stream_id)
        return stream.pending_bytes if stream is not None else 0

    @property
    def max_outbound_streams(self) -> int | None:
        """The peer's SETTINGS_MAX_CONCURRENT_STREAMS (``None``: unlimited or unknown)."""
        return self._peer.max_concurrent_streams

    def bytes_needed(self) -> int:
        """Total size of the frame (or preface) the buffer holds part of; 0 between frames."""
        return self._needed
