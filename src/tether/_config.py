"""Frozen, validated configuration objects shared by transports, client and server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._exceptions import ConfigError

if TYPE_CHECKING:
    from pathlib import Path  # annotations only: pathlib is not loaded to serve


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """TLS settings for a listener or a connector.

    Attributes:
        cert: PEM certificate chain presented by this side (server: required; client: for mTLS).
        key: PEM private key for ``cert`` (may be the same file).
        ca: PEM CA bundle used to verify the peer. On a server, setting it means
            *require and verify* client certificates (mTLS).
        server_name: the name the client checks the server's certificate against
            (default: the host from the address).
        verify: a client may turn peer verification off (testing only).
        alpn: ALPN protocols to offer / accept.
    """

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    server_name: str | None = None
    verify: bool = True
    alpn: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.key is not None and self.cert is None:
            raise ConfigError("TLS key given without a certificate")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectOptions:
    """How a connector dials: TLS, the connect timeout (separate from call timeouts)."""

    tls: TLSConfig | None = None
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0:
            raise ConfigError("connect_timeout must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenOptions:
    """How a listener binds: TLS, backlog, SO_REUSEPORT."""

    tls: TLSConfig | None = None
    backlog: int = 1024
    reuse_port: bool = False
    tls_handshake_timeout: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepaliveConfig:
    """Keepalive: PING a connection that has gone quiet, and drop it if the peer is gone.

    After ``interval`` seconds without reading anything from the peer, a PING is sent; if
    nothing at all comes back within ``timeout``, the connection is declared dead: its
    calls fail at once with UNAVAILABLE ("keepalive failed") and it is aborted. This
    catches half-open peers (a crashed host, a silent middlebox, a stopped process) that
    TCP alone notices only after minutes.

    The defaults are what a grpcio server accepts out of the box: it allows a PING every
    5 minutes while calls are active, and counts pings on an idle connection (or more
    often) as abuse, answering with GOAWAY ``too_many_pings`` after a few. Pinging more
    often, or with ``without_calls``, needs a server configured to allow it
    (``grpc.http2.min_ping_interval_without_data_ms``,
    ``grpc.keepalive_permit_without_calls``); tether's own servers accept any rate.

    Attributes:
        interval: seconds without reading anything before a PING is sent.
        timeout: seconds to wait for anything from the peer after a PING before the
            connection is considered dead.
        without_calls: also PING while no call is in flight (to keep idle connections
            checked, e.g. through NATs and load balancers).
    """

    interval: float = 300.0
    timeout: float = 20.0
    without_calls: bool = False

    def __post_init__(self) -> None:
        if not self.interval > 0 or not self.timeout > 0:
            raise ConfigError("keepalive interval and timeout must be positive")
