"""Sans-I/O wire protocols: frame codecs, their events and the framing registry.

Nothing in this package performs I/O or imports asyncio, socket or ssl (enforced by
import-linter in ``make test``).
"""

from __future__ import annotations

from ._base import CodecConfig as CodecConfig
from ._base import Detection as Detection
from ._base import FrameCodec as FrameCodec
from ._base import Framing as Framing
from ._base import Role as Role
from ._base import detect_framing as detect_framing
from ._base import get_framing as get_framing
from ._base import register_framing as register_framing
from ._base import registered_framings as registered_framings
from ._events import CallStarted as CallStarted
from ._events import ConnectionClosed as ConnectionClosed
from ._events import EndOfStream as EndOfStream
from ._events import Event as Event
from ._events import GoAway as GoAway
from ._events import Headers as Headers
from ._events import Message as Message
from ._events import Ping as Ping
from ._events import SettingsChanged as SettingsChanged
from ._events import StreamReset as StreamReset
from ._events import Trailers as Trailers
from ._events import WindowUpdated as WindowUpdated
from ._native import NativeCodec as NativeCodec
from ._native import create_native_codec, detect_native

__all__ = [
    "CallStarted",
    "CodecConfig",
    "ConnectionClosed",
    "Detection",
    "EndOfStream",
    "Event",
    "FrameCodec",
    "Framing",
    "GoAway",
    "Headers",
    "Message",
    "NativeCodec",
    "Ping",
    "Role",
    "SettingsChanged",
    "StreamReset",
    "Trailers",
    "WindowUpdated",
    "detect_framing",
    "get_framing",
    "register_framing",
    "registered_framings",
]

register_framing(
    Framing(name="tether", create=create_native_codec, detect=detect_native, priority=10)
)
