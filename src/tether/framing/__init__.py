"""Sans-I/O wire protocols: frame codecs, their events and the framing registry.

Nothing in this package performs I/O or imports asyncio, socket or ssl (enforced by
import-linter in ``make test``).
"""

from __future__ import annotations

from ._base import (
    CodecConfig as CodecConfig,
    Detection as Detection,
    FrameCodec as FrameCodec,
    Framing as Framing,
    Role as Role,
    detect_framing as detect_framing,
    get_framing as get_framing,
    register_framing as register_framing,
    registered_framings as registered_framings,
)
from ._events import (
    CallStarted as CallStarted,
    ConnectionClosed as ConnectionClosed,
    EndOfStream as EndOfStream,
    Event as Event,
    GoAway as GoAway,
    Headers as Headers,
    Message as Message,
    Ping as Ping,
    SettingsChanged as SettingsChanged,
    StreamReset as StreamReset,
    Trailers as Trailers,
    WindowUpdated as WindowUpdated,
)
from ._native import NativeCodec as NativeCodec, create_native_codec, detect_native
from .grpc import create_grpc_codec, detect_grpc

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

register_framing(Framing(name="grpc", create=create_grpc_codec, detect=detect_grpc, priority=5))

from .thrift import FRAMINGS as _THRIFT_FRAMINGS  # noqa: E402  (registers after the core)

for _framing in _THRIFT_FRAMINGS:
    register_framing(_framing)
