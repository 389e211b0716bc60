"""The transport- and codec-agnostic multiplexer (private)."""

from __future__ import annotations

from ._connection import Dispatcher as Dispatcher
from ._detect import DetectingHandler as DetectingHandler
from ._state import ConnectionState as ConnectionState
from ._stream import RPCStream as RPCStream

__all__ = ["ConnectionState", "DetectingHandler", "Dispatcher", "RPCStream"]
