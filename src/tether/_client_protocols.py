"""What a client does differently per wire protocol: gRPC's ALPN, ``:authority`` and
transparent retry, and the keys under which Kitex-style protocols carry the caller."""

from __future__ import annotations

import dataclasses

from ._config import TLSConfig
from ._exceptions import ErrorCode, StatusError, StreamResetError
from .framing.grpc import GrpcOptions
from .transport import Address

#: ALPN offered over TLS when the caller's TLSConfig names none (gRPC needs ``h2``).
DEFAULT_ALPN = {"grpc": ("h2",)}

#: How often a unary call the server refused unprocessed is sent again.
MAX_TRANSPARENT_RETRIES = 10
#: The pause before the second and later transparent retries doubles from this, up to
#: RETRY_PAUSE_MAX (seconds), so a server still releasing finished streams (grpcio
#: refuses them for a moment) gets time to do so: about 0.2 s over all ten retries.
RETRY_PAUSE_MIN = 0.001
RETRY_PAUSE_MAX = 0.05


def retry_pause(attempt: int) -> float:
    """Seconds to wait before transparent retry number ``attempt`` (1 for the first,
    which goes at once)."""
    if attempt <= 1:
        return 0.0
    return min(RETRY_PAUSE_MIN * float(1 << (attempt - 2)), RETRY_PAUSE_MAX)


def not_processed(error: StatusError) -> bool:
    """Whether the server refused the call before any of it ran, so sending it again is
    safe (gRPC's transparent retry): an HTTP/2 REFUSED_STREAM reset (grpcio refuses
    streams beyond its limit for a moment after they end on our side), or a stream
    above the last stream id of the server's GOAWAY (the dispatcher fails those with
    REFUSED_STREAM too, RFC 9113 §8.7)."""
    return isinstance(error, StreamResetError) and error.error_code == ErrorCode.REFUSED_STREAM


def default_authority(address: Address) -> str:
    """HTTP/2 ``:authority`` for an address: ``host:port`` (IPv6 in brackets), or
    ``localhost`` for addresses without a host and port (unix sockets, memory)."""
    if not address.host or address.port is None:
        return "localhost"
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"


def client_authority(authority: str | None, options: object, address: Address) -> str:
    """A client's gRPC ``:authority``: its ``authority=`` argument, else the
    ``authority`` of its :class:`GrpcOptions`, else :func:`default_authority`."""
    if authority is not None:
        return authority
    if isinstance(options, GrpcOptions) and options.authority is not None:
        return options.authority
    return default_authority(address)


def with_alpn(tls: TLSConfig | None, protocol: str) -> TLSConfig | None:
    """``tls`` with the protocol's default ALPN when it names none (gRPC: ``h2``)."""
    alpn = DEFAULT_ALPN.get(protocol)
    if alpn is None or (tls is not None and tls.alpn):
        return tls
    return dataclasses.replace(tls or TLSConfig(), alpn=alpn)


#: protocol -> (key for the caller's service, key for the caller's method), as Kitex sends
#: them: TTHeader int keys 3 / 20 (the Thrift codec's pseudo-keys), gRPC headers.
_KITEX_CALLER = (":from-service", ":from-method")
CALLER_KEYS: dict[str, tuple[str, str]] = {
    "ttheader": _KITEX_CALLER,
    "ttheader_framed": _KITEX_CALLER,
    "kitex_protobuf": _KITEX_CALLER,
    "theader": _KITEX_CALLER,
    "grpc": ("source-service", "source-method"),
}
