"""Transports: the only place that touches sockets, ssl and asyncio transports.

Built-in schemes (registered at import through the public :func:`register_transport`,
exactly as a third-party transport would be):

==================  =========================================================
``tcp://``          TCP, ``tcp://127.0.0.1:8972``, ``tcp://[::1]:8972``
``unix://``         Unix sockets, ``unix:///run/app.sock``, ``unix://@abstract``
``tls://``          TLS over TCP with asyncio's native ssl (alias ``tls+tcp://``)
``tls+unix://``     TLS over a Unix socket, native ssl
``memory://``       in-process, no sockets, ``memory://name``
``tls+memory://``   :class:`TLSTransport` (TLS over any connection) over memory
``http-connect://`` TCP opened with an HTTP ``CONNECT`` (``?proxy=http://...``)
``tls+http-...``    ``tls+http-connect://``: the TLS wrapper inside the tunnel
==================  =========================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .._config import (
    ConnectOptions as ConnectOptions,
    ListenOptions as ListenOptions,
    TLSConfig as TLSConfig,
)
from ._asyncio import SocketConnection as SocketConnection, SocketListener as SocketListener
from ._base import (
    Address as Address,
    Connection as Connection,
    ConnectionHandler as ConnectionHandler,
    Listener as Listener,
    OnConnection as OnConnection,
    Transport as Transport,
    get_transport as get_transport,
    parse_address as parse_address,
    register_lazy_transport as register_lazy_transport,
    register_transport as register_transport,
    registered_schemes as registered_schemes,
)
from ._memory import (
    MemoryConnection as MemoryConnection,
    MemoryListener as MemoryListener,
    MemoryTransport as MemoryTransport,
    memory_connection_pair as memory_connection_pair,
)
from ._tcp import TCPTransport as TCPTransport
from ._tls import (
    TLSConnection as TLSConnection,
    TLSListener as TLSListener,
    TLSTransport as TLSTransport,
    create_ssl_context as create_ssl_context,
    wrap_tls as wrap_tls,
)
from ._unix import UnixTransport as UnixTransport


def _register_builtins() -> None:
    tls_tcp = TCPTransport(tls=True)
    memory = MemoryTransport()
    register_transport("tcp", TCPTransport())
    register_transport("unix", UnixTransport())
    register_transport("tls", tls_tcp)
    register_transport("tls+tcp", tls_tcp)
    register_transport("tls+unix", UnixTransport(tls=True))
    register_transport("memory", memory)
    register_transport("tls+memory", TLSTransport(memory))

    # Heavier stacks load on first use of their scheme (an RPC server that never dials
    # QUIC keeps aioquic and its crypto out of memory).
    for scheme, module in _LAZY_BUILTINS.items():
        register_lazy_transport(scheme, f"{__name__}.{module}")


#: scheme -> the module (in this package) that registers it.
_LAZY_BUILTINS = {
    "http-connect": "_http_connect_register",
    "tls+http-connect": "_http_connect_register",
    "kcp": "_kcp",
    "tls+kcp": "_kcp",
    "quic": "_quic_register",
    "shm": "_shm",
}
#: Public names of the lazily loaded transports -> their module.
_LAZY_EXPORTS = {
    "KCPTransport": "_kcp",
    "ShmTransport": "_shm",
    "QuicSettings": "_quic_register",
    "QuicTransport": "_quic_register",
}

_register_builtins()

if TYPE_CHECKING:
    from ._kcp import KCPTransport as KCPTransport
    from ._quic_register import QuicSettings as QuicSettings, QuicTransport as QuicTransport
    from ._shm import ShmTransport as ShmTransport


def __getattr__(name: str) -> object:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "Address",
    "ConnectOptions",
    "Connection",
    "ConnectionHandler",
    "ListenOptions",
    "Listener",
    "MemoryConnection",
    "MemoryListener",
    "MemoryTransport",
    "OnConnection",
    "SocketConnection",
    "SocketListener",
    "TCPTransport",
    "TLSConfig",
    "TLSConnection",
    "TLSListener",
    "TLSTransport",
    "Transport",
    "UnixTransport",
    "create_ssl_context",
    "get_transport",
    "memory_connection_pair",
    "parse_address",
    "register_transport",
    "registered_schemes",
    "wrap_tls",
]
