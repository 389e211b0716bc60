"""QUIC settings for ``quic://``: the knobs (from the URL's query) and aioquic's
configuration built from them and tether's :class:`~tether.TLSConfig`."""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any

from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .._config import TLSConfig
from .._exceptions import ConfigError
from ._base import Address

#: The ALPN protocol tether speaks over QUIC unless told otherwise.
DEFAULT_ALPN = "tether"

CID_LENGTH = 8
#: The largest UDP payload over IPv4.
MAX_UDP_PAYLOAD = 65507


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QuicSettings:
    """QUIC knobs of one endpoint (see the module docstring for the URL form).

    Attributes:
        idle_timeout: seconds of silence from the peer before the connection fails.
        keepalive: seconds between PINGs; ``None``: a third of ``idle_timeout``; ``0``: off.
        alpn: ALPN protocols, used when ``TLSConfig.alpn`` is empty.
        window: receive window of the stream and the connection, in bytes.
        high_water: bytes waiting unsent (peer or congestion window full) above which
            writers wait in ``drain()``.
        linger: seconds ``close()`` waits for the peer to acknowledge everything.
        max_datagram_size: the largest UDP payload sent (>= 1200, QUIC's minimum).
    """

    idle_timeout: float = 30.0
    keepalive: float | None = None
    alpn: tuple[str, ...] = (DEFAULT_ALPN,)
    window: int = 1 << 20
    high_water: int = 1 << 20
    linger: float = 10.0
    max_datagram_size: int = SMALLEST_MAX_DATAGRAM_SIZE

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0:
            raise ConfigError("QUIC idle_timeout must be positive")
        if self.keepalive is not None and self.keepalive < 0:
            raise ConfigError("QUIC keepalive must be 0 (off) or positive")
        if not self.alpn or not all(self.alpn):
            raise ConfigError("QUIC needs at least one non-empty ALPN protocol")
        if self.window < SMALLEST_MAX_DATAGRAM_SIZE or self.high_water <= 0:
            raise ConfigError("QUIC window and high_water must be positive (window >= 1200)")
        if not SMALLEST_MAX_DATAGRAM_SIZE <= self.max_datagram_size <= MAX_UDP_PAYLOAD:
            raise ConfigError(
                f"QUIC max_datagram_size must be {SMALLEST_MAX_DATAGRAM_SIZE}..{MAX_UDP_PAYLOAD}"
            )

    @property
    def keepalive_interval(self) -> float | None:
        """Seconds between PINGs, or ``None`` for none."""
        if self.keepalive is None:
            return self.idle_timeout / 3
        return self.keepalive or None

    def with_query(self, address: Address) -> QuicSettings:
        """These settings overridden by ``address``'s query parameters.

        Raises:
            ConfigError: a parameter is not a number, or out of range.
        """
        changes: dict[str, Any] = {}
        for name in ("idle_timeout", "keepalive", "linger"):
            value = address.param(name)
            if value is not None:
                try:
                    changes[name] = float(value)
                except ValueError:
                    raise ConfigError(f"{address.url}: {name}={value!r} is not a number") from None
        value = address.param("max_datagram_size")
        if value is not None:
            try:
                changes["max_datagram_size"] = int(value)
            except ValueError:
                raise ConfigError(
                    f"{address.url}: max_datagram_size={value!r} is not an integer"
                ) from None
        alpn = address.query.get("alpn")
        if alpn:
            changes["alpn"] = tuple(alpn)
        return dataclasses.replace(self, **changes) if changes else self


def quic_configuration(
    tls: TLSConfig | None, settings: QuicSettings, *, is_client: bool, host: str = ""
) -> QuicConfiguration:
    """aioquic's configuration for one side, from tether's TLS settings.

    Server: ``cert`` (and ``key``, or a key inside the cert file) is required. Client:
    verifies the server against ``ca`` (default: the system store) and ``server_name``
    (default: ``host``) unless ``verify`` is false. Client certificates (mTLS) are not
    supported: aioquic's server cannot verify them.

    Raises:
        ConfigError: a missing or unreadable certificate, or client certificates.
    """
    tls = tls if tls is not None else TLSConfig()
    if is_client and tls.cert is not None:
        raise ConfigError("quic:// does not support client certificates (mTLS)")
    if not is_client and tls.ca is not None:
        raise ConfigError("quic:// listeners cannot require client certificates (mTLS)")
    config = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=list(tls.alpn or settings.alpn),
        idle_timeout=settings.idle_timeout,
        max_stream_data=settings.window,
        max_data=2 * settings.window,
        connection_id_length=CID_LENGTH,
        max_datagram_size=settings.max_datagram_size,
    )
    try:
        if is_client:
            config.server_name = tls.server_name or host or None
            if not tls.verify:
                config.verify_mode = ssl.CERT_NONE
            elif tls.ca is not None:
                config.load_verify_locations(cafile=str(tls.ca))
        else:
            if tls.cert is None:
                raise ConfigError("a quic:// listener needs TLSConfig.cert (and key)")
            chain = x509.load_pem_x509_certificates(tls.cert.read_bytes())
            key_pem = (tls.key or tls.cert).read_bytes()
            config.certificate = chain[0]
            config.certificate_chain = chain[1:]
            config.private_key = load_pem_private_key(key_pem, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"invalid TLS configuration for QUIC: {exc}") from exc
    return config
