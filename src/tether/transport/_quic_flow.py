"""aioquic's sans-I/O QUIC connection, with receive windows that follow the application.

aioquic raises a stream's MAX_STREAM_DATA whenever half of the window has *arrived*,
whether or not anybody read it, so a peer is never slowed down by a receiver that stops
reading, and it buffers every byte written to a stream until the peer acknowledges it,
without limit. :class:`FlowControlledQuic` changes the first rule for the stream tether
uses: the window is ``consumed + window`` where ``consumed`` counts bytes the
application took (:meth:`FlowControlledQuic.consume`), so a paused reader stops the
peer's sender after one window. :meth:`FlowControlledQuic.send_queue` measures the
second (bytes waiting for the peer's credit), which the connection bounds with a
high-water mark; what was sent but not yet acknowledged is bounded by the peer's window.

This module reaches into aioquic internals (``_streams``, ``_write_stream_limits``,
stream limits); ``pyproject.toml`` pins the aioquic major version it was written for.
"""

from __future__ import annotations

from typing import Any

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import (
    MAX_STREAM_DATA_FRAME_CAPACITY,
    QuicConnection,
    QuicConnectionState,
)
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.stream import QuicStream


class FlowControlledQuic(QuicConnection):
    """A :class:`~aioquic.quic.connection.QuicConnection` for one application stream.

    Args:
        configuration: aioquic settings; ``max_stream_data`` is the receive window of the
            application stream.
        peer_bidi_streams: how many bidirectional streams the peer may open (the server
            allows one, the client none); the peer may open no unidirectional streams.
        kwargs: passed to ``QuicConnection`` (server: ``original_destination_connection_id``).

    :meth:`track` names the stream whose window follows :meth:`consume`; other streams keep
    aioquic's rules (the connection resets them, so their data is never buffered).
    """

    def __init__(
        self, *, configuration: QuicConfiguration, peer_bidi_streams: int, **kwargs: Any
    ) -> None:
        super().__init__(configuration=configuration, **kwargs)
        self._tracked: int | None = None
        self._consumed = 0
        self._window = configuration.max_stream_data
        # Sent in the transport parameters during the handshake, so settable here.
        self._local_max_streams_bidi.value = peer_bidi_streams
        self._local_max_streams_bidi.sent = peer_bidi_streams
        self._local_max_streams_uni.value = 0
        self._local_max_streams_uni.sent = 0

    def track(self, stream_id: int) -> None:
        """Make ``stream_id``'s receive window follow :meth:`consume`."""
        self._tracked = stream_id

    def consume(self, n: int) -> None:
        """The application took ``n`` more bytes of the tracked stream."""
        self._consumed += n

    def send_queue(self, stream_id: int) -> int:
        """Bytes written to ``stream_id`` that wait for the peer rather than the network.

        That is the larger of the bytes beyond the peer's credit (its MAX_STREAM_DATA,
        which a tether peer raises only as its application reads) and the unsent bytes
        beyond one window (for a peer whose credit grows regardless, the congestion
        window then holds them back). It is stable while the peer does not read, so a
        writer paused on it stays paused; what is in flight is bounded by one window.
        """
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        sender = stream.sender
        beyond_credit = sender._buffer_stop - stream.max_stream_data_remote
        unsent = sender._buffer_stop - sender.highest_offset
        return int(max(beyond_credit, unsent - self._window, 0))

    def unacked(self, stream_id: int) -> int:
        """Bytes written to ``stream_id`` that the peer has not acknowledged yet."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        sender = stream.sender
        return int(sender._buffer_stop - sender._buffer_start)

    def _write_stream_limits(self, builder: Any, space: Any, stream: QuicStream) -> None:
        if stream.stream_id != self._tracked or not stream.max_stream_data_local:
            super()._write_stream_limits(builder=builder, space=space, stream=stream)
            return
        # Raise the window to consumed + window, in steps of half a window.
        target = self._consumed + self._window
        if target - stream.max_stream_data_local >= self._window // 2:
            stream.max_stream_data_local = target
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            buf = builder.start_frame(
                QuicFrameType.MAX_STREAM_DATA,
                capacity=MAX_STREAM_DATA_FRAME_CAPACITY,
                handler=self._on_max_stream_data_delivery,
                handler_args=(stream,),
            )
            buf.push_uint_var(stream.stream_id)
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local

    def peer_closed(self) -> ConnectionTerminated | None:
        """The peer's CONNECTION_CLOSE, as soon as it arrived.

        aioquic reports it only after the draining period (three probe timeouts); the
        connection has nothing left to do by then, so callers act on it at once.
        """
        if self._state is QuicConnectionState.DRAINING:
            return self._close_event
        return None

    def sent_all(self, stream_id: int) -> bool:
        """Whether every byte written to ``stream_id``, and its FIN, was acknowledged."""
        stream = self._streams.get(stream_id)
        return stream is None or stream.sender.is_finished
