"""Public test helpers: in-memory connections and conformance suites."""

from __future__ import annotations

from ..transport import memory_connection_pair as memory_connection_pair
from ._client_for import client_for as client_for
from ._codec import CodecPair as CodecPair, check_frame_codec as check_frame_codec
from ._transport import (
    TRANSPORT_CHECKS as TRANSPORT_CHECKS,
    TransportAdapter as TransportAdapter,
    TransportChecks as TransportChecks,
    TransportReport as TransportReport,
    check_transport as check_transport,
)
from ._transport_adapter import abort_with_reset as abort_with_reset

__all__ = [
    "TRANSPORT_CHECKS",
    "CodecPair",
    "TransportAdapter",
    "TransportChecks",
    "TransportReport",
    "abort_with_reset",
    "check_frame_codec",
    "check_transport",
    "client_for",
    "memory_connection_pair",
]
