"""Registers ``quic://`` through the public registry, as a third-party transport would."""

from __future__ import annotations

from ._base import register_transport
from ._quic import QuicSettings as QuicSettings, QuicTransport as QuicTransport

register_transport("quic", QuicTransport())
