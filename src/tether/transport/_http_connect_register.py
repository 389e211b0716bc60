"""Registers ``http-connect://`` and ``tls+http-connect://`` through the public registry."""

from __future__ import annotations

from ._base import register_transport
from ._http_connect import HTTPConnectTransport
from ._tls import TLSTransport

_http_connect = HTTPConnectTransport()
register_transport("http-connect", _http_connect)
register_transport("tls+http-connect", TLSTransport(_http_connect))
