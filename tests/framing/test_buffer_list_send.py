"""Codecs that cut payloads into frames (native, gRPC) take a BufferList too: it is
joined, and the peer receives exactly the joined bytes."""

from __future__ import annotations

import pytest

from tether.buffer import BufferList
from tether.framing import CallStarted, CodecConfig, Message, Role, get_framing
from tether.testing import CodecPair

PIECES = (b"head", b"\xab" * (300 * 1024), b"tail")


@pytest.mark.parametrize("name", ["tether", "grpc"])
def test_a_buffer_list_request_arrives_as_its_joined_bytes(name: str) -> None:
    """send_message(BufferList) delivers one message equal to the joined pieces."""
    framing = get_framing(name)
    p = CodecPair(
        framing.create(Role.CLIENT, CodecConfig()), framing.create(Role.SERVER, CodecConfig())
    )
    sid = p.client.next_stream_id()
    p.client.send(CallStarted(stream_id=sid, service="S", method="M", encoding="raw"))
    p.client.send_message(sid, BufferList(PIECES), True)
    events = p.transfer(Role.CLIENT)
    data = b"".join(bytes(e.data) for e in events if isinstance(e, Message))
    assert data == b"".join(PIECES)
