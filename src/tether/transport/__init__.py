"""Transports: the only place that touches sockets, ssl and asyncio transports."""

from __future__ import annotations

from ._base import Address as Address
from ._base import Connection as Connection
from ._base import ConnectionHandler as ConnectionHandler
from ._base import Listener as Listener
from ._base import Transport as Transport
from ._base import get_transport as get_transport
from ._base import parse_address as parse_address
from ._base import register_transport as register_transport
from ._base import registered_schemes as registered_schemes

__all__ = [
    "Address",
    "Connection",
    "ConnectionHandler",
    "Listener",
    "Transport",
    "get_transport",
    "parse_address",
    "register_transport",
    "registered_schemes",
]
