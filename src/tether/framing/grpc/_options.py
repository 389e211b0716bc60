"""The options of the gRPC framing (:class:`GrpcOptions`), kept apart from the codec so
that naming them (a :class:`~tether.framing.Framing`'s ``options_type``, a server's or
client's ``protocol_options``) loads neither the codec nor ``hpack``."""

from __future__ import annotations

from dataclasses import dataclass

from ..._exceptions import ConfigError

DEFAULT_USER_AGENT = "tether-grpc/1"
#: ``grpc-encoding`` values we can send (``None``: identity).
COMPRESSIONS = (None, "identity", "gzip", "deflate")


@dataclass(frozen=True, slots=True, kw_only=True)
class GrpcOptions:
    """Per-connection choices of the gRPC codec beyond :class:`CodecConfig`.

    Give them to one server or client (``Server(protocol_options={"grpc": options})``,
    ``Client(url, protocol="grpc", protocol_options=options)``), or to a codec directly
    (``GrpcCodec(role, config, options)``). The client fields (``authority``,
    ``scheme``, ``user_agent``) mean nothing to a server codec.

    Attributes:
        authority: the client's ``:authority`` (``None``: the called service's name,
            as Kitex does; a :class:`~tether.Client` fills in its URL's ``host:port``
            unless its ``authority=`` argument or this field names one). A call may override it with an ``:authority`` metadata entry.
        scheme: the client's ``:scheme`` (a :class:`~tether.Client` sets it from its
            transport: ``https`` over TLS, else ``http``).
        user_agent: the client's ``user-agent``.
        compression: ``grpc-encoding`` for the messages we send (``None``: identity).
            A call may choose its own with a ``grpc-encoding`` metadata entry.
        settings_timeout: seconds the peer has to acknowledge our SETTINGS once the
            connection is up; then GOAWAY SETTINGS_TIMEOUT and close (``None``: wait
            forever).
        ping_flood_limit: PINGs the peer may send while the connection makes no
            progress (see below); one more is a flood.
        settings_flood_limit: SETTINGS frames the peer may send without progress.
        empty_frame_limit: frames carrying nothing the peer may send without progress:
            empty DATA without END_STREAM, empty HEADERS / CONTINUATION fragments of an
            unfinished header block, PRIORITY, frames of unknown types.
        header_indexing: insert the constant fields of our header blocks (a method's
            request head, the response head, ``grpc-status``) into the peer's HPACK
            dynamic table once and send references afterwards (``False``: every block
            stateless).

    *Progress* is a new stream, DATA with a payload in either direction, or new
    connection send credit; each resets the three counts. A peer above a limit gets
    GOAWAY ENHANCE_YOUR_CALM naming the flood, and only its connection closes.
    """

    authority: str | None = None
    scheme: str = "http"
    user_agent: str = DEFAULT_USER_AGENT
    compression: str | None = None
    settings_timeout: float | None = 10.0
    ping_flood_limit: int = 1000
    settings_flood_limit: int = 100
    empty_frame_limit: int = 1000
    header_indexing: bool = True

    def __post_init__(self) -> None:
        if self.settings_timeout is not None and self.settings_timeout <= 0:
            raise ConfigError("settings_timeout must be positive (or None: no limit)")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(
                f"unsupported grpc-encoding {self.compression!r} "
                "(supported: identity, gzip, deflate)"
            )
        for name in ("ping_flood_limit", "settings_flood_limit", "empty_frame_limit"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
