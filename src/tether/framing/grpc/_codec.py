"""The gRPC framing's codec class: HTTP/2 specialised for gRPC, assembled from
:mod:`._core` (shared state), :mod:`._receive` + :mod:`._messages` + :mod:`._calls`
(bytes → events) and :mod:`._send` (events → bytes)."""

from __future__ import annotations

from typing import final

from .._base import CodecConfig, Role
from ._core import GrpcOptions
from ._heads import Refusal, Request, Response
from ._hpack import HeaderList
from ._send import GrpcSender


@final
class GrpcCodec(GrpcSender):
    """gRPC over HTTP/2 (h2c prior knowledge, or h2 after ALPN) for one connection.

    ``GrpcCodec(role, config, options)``: construction queues our side of the
    connection preface (client: the magic + SETTINGS; server: SETTINGS), plus a
    WINDOW_UPDATE that opens the connection window. A server codec expects the client's
    magic first. Until the peer's SETTINGS arrive we assume HTTP/2's defaults.

    Events (tether's, as the native codec uses them):

    * client sends :class:`~tether.framing.CallStarted` (request HEADERS: ``:path
      /service/method``, content type from ``encoding``, ``grpc-timeout``, metadata with
      ``-bin`` values base64; a ``:authority`` or ``grpc-encoding`` metadata entry sets
      that header instead), :class:`~tether.framing.Message` (a Length-Prefixed-Message
      in DATA) and :class:`~tether.framing.EndOfStream` (an empty END_STREAM DATA);
    * server sends :class:`~tether.framing.Headers` (``:status 200``), messages, and
      :class:`~tether.framing.Trailers` (``grpc-status``, percent-encoded
      ``grpc-message``; Trailers-Only when no headers went yet). A server
      :class:`~tether.framing.StreamReset` with a status other than CANCELLED ends the
      call with that status in trailers (RST_STREAM cannot carry one);
    * either side: :class:`~tether.framing.StreamReset` ↔ RST_STREAM (CANCEL),
      :class:`~tether.framing.Ping` ↔ PING (received pings are acknowledged
      automatically), :class:`~tether.framing.GoAway` ↔ GOAWAY.

    Received only: :class:`~tether.framing.SettingsChanged`,
    :class:`~tether.framing.WindowUpdated`, :class:`~tether.framing.ConnectionClosed`.
    Requests the codec answers itself are never reported: a foreign content type (HTTP
    415), a malformed path, timeout or unsupported ``grpc-encoding`` (Trailers-Only),
    a stream past our SETTINGS_MAX_CONCURRENT_STREAMS or our GOAWAY (REFUSED_STREAM).
    On the client, an HTTP error, a missing ``grpc-status`` and a server that ends
    without trailers become :class:`~tether.framing.Trailers` with the status gRPC
    prescribes; RST_STREAM codes become :class:`~tether.framing.StreamReset` statuses.

    Flow control: both windows (stream and connection) in both directions. Message
    bytes beyond the peer's credit stay queued here (:meth:`pending_send`) and leave
    when WINDOW_UPDATE arrives (reported as :class:`~tether.framing.WindowUpdated`).
    Stream credit for a delivered message goes back only after
    :meth:`acknowledge_received`; connection credit goes back as frames are parsed.

    Limits: CodecConfig.max_frame_size (capped at 2**24-1) is our MAX_FRAME_SIZE,
    initial_window our INITIAL_WINDOW_SIZE, max_concurrent_streams (server) our
    MAX_CONCURRENT_STREAMS, max_metadata_size our MAX_HEADER_LIST_SIZE (enforced on the
    decoded list: an HPACK bomb fails the connection), max_message_size the largest
    message (also after decompression: RESOURCE_EXHAUSTED on that stream). A client
    resetting more than 192 running streams per 256 it opens fails the connection with
    ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487); so do PING, SETTINGS and
    empty-frame floods beyond the :class:`GrpcOptions` limits. Our SETTINGS must be
    acknowledged within ``GrpcOptions.settings_timeout`` (:attr:`handshake_timeout`;
    the driver calls :meth:`check_handshake`), else GOAWAY SETTINGS_TIMEOUT.

    Header blocks: constant fields are indexed in the peer's HPACK dynamic table once and
    referenced afterwards, in blocks written at once only (a block queued behind DATA is
    stateless); literals are Huffman-coded where shorter, per-call values excepted.

    Errors: after a :class:`~tether.RemoteProtocolError` the codec is dead: a GOAWAY
    with the error code is queued; receive methods, :meth:`send` and
    :meth:`next_stream_id` raise; :meth:`data_to_send` still returns the GOAWAY.

    Buffers: :meth:`receive_from` peeks at the buffer and leaves releasing the views to
    the caller; events never reference the buffer's memory. Large outgoing messages are
    queued by reference: do not mutate ``Message.data`` until it has been flushed.

    Concurrency: not thread-safe; one dispatcher drives it. Nothing to cancel.
    """

    def __init__(
        self, role: Role, config: CodecConfig | None = None, options: GrpcOptions | None = None
    ) -> None:
        super().__init__(role, config, options)
        self._requests: dict[HeaderList, Request | Refusal] = {}
        self._responses: dict[HeaderList, Response] = {}
        self._response_heads: dict[bytes, bytes] = {}
