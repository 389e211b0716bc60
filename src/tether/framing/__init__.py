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
    check_protocol_options as check_protocol_options,
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
    HandshakeCompleted as HandshakeCompleted,
    Headers as Headers,
    Message as Message,
    Ping as Ping,
    SettingsChanged as SettingsChanged,
    StreamReset as StreamReset,
    Trailers as Trailers,
    WindowUpdated as WindowUpdated,
)
from ._native import NativeCodec as NativeCodec, create_native_codec, detect_native
from .grpc import GrpcOptions, create_grpc_codec, detect_grpc

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
    "HandshakeCompleted",
    "Headers",
    "Message",
    "NativeCodec",
    "Ping",
    "Role",
    "SettingsChanged",
    "StreamReset",
    "Trailers",
    "WindowUpdated",
    "check_protocol_options",
    "detect_framing",
    "get_framing",
    "register_framing",
    "registered_framings",
]

register_framing(
    Framing(name="tether", create=create_native_codec, detect=detect_native, priority=10)
)

register_framing(
    Framing(
        name="grpc",
        create=create_grpc_codec,
        detect=detect_grpc,
        priority=5,
        options_type=GrpcOptions,
        create_with_options=create_grpc_codec,
    )
)

#: The Kitex-family framings of :mod:`tether.framing.thrift`, by detection priority (the
#: same as their own ``FRAMINGS`` table, which a test pins). Registered as stand-ins that
#: load the real codec and detector on first use: a process that only meets framings of
#: a higher priority (tether's native protocol, gRPC) never imports them (~0.3 MB RSS).
_THRIFT_PRIORITIES = {
    "kitex_protobuf": 20,
    "ttheader_framed": 21,
    "ttheader": 22,
    "framed": 23,
    "buffered": 24,
    "theader": 25,
}


def _thrift_framing(name: str) -> Framing:
    from .thrift import FRAMINGS

    for framing in FRAMINGS:
        if framing.name == name:
            return framing
    raise LookupError(name)  # unreachable while _THRIFT_PRIORITIES matches FRAMINGS


def _thrift_stand_in(name: str, priority: int) -> Framing:
    real: list[Framing] = []

    def load() -> Framing:
        if not real:
            real.append(_thrift_framing(name))
        return real[0]

    def create(role: Role, config: CodecConfig) -> FrameCodec:
        return load().create(role, config)

    def detect(prefix: bytes) -> Detection:
        real_detect = load().detect
        assert real_detect is not None  # every thrift framing detects its format
        return real_detect(prefix)

    detect.__name__ = f"detect_{name}"
    detect.__doc__ = f"MATCH when a connection's first message is {name}."
    return Framing(name=name, create=create, detect=detect, priority=priority)


for _name, _priority in _THRIFT_PRIORITIES.items():
    register_framing(_thrift_stand_in(_name, _priority))
