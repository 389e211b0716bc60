"""Helpers that run an ``h2`` connection (the reference HTTP/2 implementation) against a
GrpcCodec in memory, and small gRPC wire helpers for the tests."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TypeVar

import h2.config
import h2.connection
import h2.events
import h2.settings

from tether.framing import Event, Message, Role
from tether.framing.grpc import GrpcCodec

T = TypeVar("T")


def lpm(data: bytes, compressed: bool = False) -> bytes:
    """A gRPC Length-Prefixed-Message."""
    return struct.pack(">BL", int(compressed), len(data)) + data


def split_lpms(buffer: bytes) -> list[bytes]:
    """Every complete Length-Prefixed-Message in ``buffer`` (which must hold only those)."""
    out = []
    pos = 0
    while pos < len(buffer):
        flag, length = struct.unpack_from(">BL", buffer, pos)
        assert flag == 0
        out.append(buffer[pos + 5 : pos + 5 + length])
        pos += 5 + length
    assert pos == len(buffer)
    return out


def header_list(event: h2.events.Event) -> list[tuple[str, str]]:
    """An h2 headers event's fields (text: the connections decode headers as UTF-8)."""
    return [(str(k), str(v)) for k, v in getattr(event, "headers", None) or []]


def text_headers(event: h2.events.Event) -> dict[str, str]:
    """An h2 headers event's fields as a dict."""
    return dict(header_list(event))


def h2_connection(
    *, client: bool, initial_window: int | None = None, max_frame: int | None = None
) -> h2.connection.H2Connection:
    """An h2 connection with its preface queued; optionally small windows/frames."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=client, header_encoding="utf-8")
    )
    values = {}
    if initial_window is not None:
        values[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = initial_window
    if max_frame is not None:
        values[h2.settings.SettingCodes.MAX_FRAME_SIZE] = max_frame
    if values:
        conn.local_settings = h2.settings.Settings(client=client, initial_values=values)
    conn.initiate_connection()
    return conn


@dataclass
class Session:
    """One GrpcCodec and one h2 connection joined by an in-memory byte pipe.

    ``pump()`` moves bytes both ways until both are quiet, collecting events. When
    ``auto_ack`` is on, h2 acknowledges every DATA frame and our messages are
    acknowledged as if the application consumed them.
    """

    ours: GrpcCodec
    theirs: h2.connection.H2Connection
    auto_ack: bool = True
    our_events: list[Event] = field(default_factory=list)
    their_events: list[h2.events.Event] = field(default_factory=list)
    data: dict[int, bytearray] = field(default_factory=dict)

    def pump(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            moved = False
            out = self.ours.data_to_send()
            if out:
                moved = True
                for event in self.theirs.receive_data(out):
                    self.their_events.append(event)
                    if isinstance(event, h2.events.DataReceived):
                        self.data.setdefault(event.stream_id, bytearray()).extend(event.data)
                        if self.auto_ack and event.flow_controlled_length:
                            self.theirs.acknowledge_received_data(
                                event.flow_controlled_length, event.stream_id
                            )
            back = self.theirs.data_to_send()
            if back:
                moved = True
                for ev in self.ours.receive_data(back):
                    self.our_events.append(ev)
                    if self.auto_ack and isinstance(ev, Message):
                        self.ours.acknowledge_received(ev.stream_id, len(ev.data))
            if not moved:
                return
        raise AssertionError("the connection never went quiet")

    def ours_of(self, kind: type[T]) -> list[T]:
        return [e for e in self.our_events if isinstance(e, kind)]

    def theirs_of(self, kind: type[T]) -> list[T]:
        return [e for e in self.their_events if isinstance(e, kind)]


def client_session(**h2_options: int) -> Session:
    """Our client against an h2 server, handshake done."""
    session = Session(GrpcCodec(Role.CLIENT), h2_connection(client=False, **h2_options))
    session.pump()
    session.our_events.clear()
    session.their_events.clear()
    return session


def server_session(ours: GrpcCodec | None = None, **h2_options: int) -> Session:
    """An h2 client against our server, handshake done."""
    session = Session(
        ours if ours is not None else GrpcCodec(Role.SERVER),
        h2_connection(client=True, **h2_options),
    )
    # the client speaks first: move its preface before ours
    session.ours.receive_data(session.theirs.data_to_send())
    session.pump()
    session.our_events.clear()
    session.their_events.clear()
    return session
