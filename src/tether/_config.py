"""Frozen, validated configuration objects shared by transports, client and server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._exceptions import ConfigError


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
