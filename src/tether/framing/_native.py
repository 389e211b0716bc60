"""tether's native multiplexed binary protocol as a sans-I/O :class:`FrameCodec`.

``docs/protocol.md`` is the specification. The codec is assembled from:

* :mod:`._native_frames`: frame layouts, constants, payload encoders and decoders;
* :mod:`._native_state`: the per-stream state enum and transition table;
* :mod:`._native_streams`: per-stream flow control, send queue and reassembly;
* :mod:`._native_core`: state shared by both directions, and the stream queries;
* :mod:`._native_receive` / :mod:`._native_send`: bytes → events, events → bytes.

None of them performs I/O, reads a clock or creates tasks.
"""

from __future__ import annotations

from typing import final

from ._base import CodecConfig, Detection, FrameCodec, Role
from ._native_frames import MAGIC
from ._native_receive import NativeReceiver


def detect_native(prefix: bytes) -> Detection:
    """Server-side detection: does a connection that starts with ``prefix`` speak tether?

    Returns:
        MATCH when ``prefix`` starts with ``b"TETHER"``, whatever the version byte (the
        codec answers an unsupported version with a GOAWAY); NEED_MORE while ``prefix``
        is a shorter prefix of ``b"TETHER"``; NO_MATCH otherwise.
    """
    if prefix[:6] == MAGIC:
        return Detection.MATCH
    if len(prefix) < 6 and MAGIC.startswith(prefix):
        return Detection.NEED_MORE
    return Detection.NO_MATCH


@final
class NativeCodec(NativeReceiver):
    """tether's native protocol for one connection, in one role.

    ``NativeCodec(role, config)``: construction queues our preface and SETTINGS. A server
    codec is created once detection has seen the client's preface, and parses that
    preface itself. Until the peer's SETTINGS arrive we assume the protocol defaults
    (16 KiB frames, 64 KiB windows, 8 KiB metadata, unlimited streams), which every peer
    must accept.

    Streams: the client opens odd ids and the server even ids, each strictly increasing;
    either side may open streams. The opener sends :class:`~tether.framing.CallStarted`,
    :class:`~tether.framing.Message` and :class:`~tether.framing.EndOfStream`; the
    acceptor sends :class:`~tether.framing.Headers`, :class:`~tether.framing.Message` and
    :class:`~tether.framing.Trailers`; either sends :class:`~tether.framing.StreamReset`.
    Closed streams are forgotten (only the highest ids are kept) and late frames for
    them are ignored. Peer streams beyond our MAX_CONCURRENT_STREAMS, or above the
    ``last_stream_id`` of a GOAWAY we sent, are refused with CANCEL(UNAVAILABLE) and never
    reported. After the peer's GOAWAY, our streams above its ``last_stream_id`` are
    forgotten and no new stream may be opened.

    Flow control is per stream: message bytes beyond the peer's credit stay queued here
    (:meth:`pending_send`) and leave when a WINDOW_UPDATE arrives, reported as
    :class:`~tether.framing.WindowUpdated`. Credit for the chunks of an unfinished
    message is returned automatically (while less than a window of delivered messages is
    unread); the credit for a delivered message's last chunk waits for
    :meth:`acknowledge_received`.

    Errors: after a :class:`~tether.RemoteProtocolError` the codec is dead. A GOAWAY is
    queued; :meth:`receive_from`, :meth:`receive_data`, :meth:`receive_eof`, :meth:`send`
    and :meth:`next_stream_id` raise; :meth:`data_to_send` still returns the GOAWAY,
    queries still answer and :meth:`acknowledge_received` is a no-op.

    Buffers: :meth:`receive_from` copies what it parses out of the buffer and keeps no
    view of it (the caller may still ``buffer.release()``, as :meth:`receive_data` does);
    events never reference the buffer's memory. Large outgoing messages are queued by reference: do
    not mutate ``Message.data`` until it has been flushed.

    Concurrency: not thread-safe; one dispatcher drives it. Nothing to cancel.
    """


def create_native_codec(role: Role, config: CodecConfig) -> FrameCodec:
    """The :class:`~tether.framing.Framing` factory for the ``tether`` protocol."""
    return NativeCodec(role, config)
