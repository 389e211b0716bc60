"""The Kitex-family framings in the registry: names, codecs they create, and which one
claims a connection from its first bytes (after tether-native)."""

from __future__ import annotations

import pytest

from tether import RemoteProtocolError
from tether.framing import (
    CallStarted,
    CodecConfig,
    Detection,
    Message,
    Role,
    Trailers,
    detect_framing,
    get_framing,
)
from tether.framing.thrift import ThriftCodec, Transport

PING = "800100010000000470696e670000000100"
PING_PB = "900100010000000470696e6700000001"
FIRST_BYTES = {
    "buffered": PING,
    "framed": "00000011" + PING,
    "ttheader": "0000001f1000000000000001000100000000" + PING,
    "ttheader_framed": "00000023100000000000000100010000000000000011" + PING,
    "kitex_protobuf": "00000010900100010000000470696e6700000001",
    "theader": "0000001f0fff000000000001000100000000" + PING,
}
NAMES = list(FIRST_BYTES)


@pytest.mark.parametrize("name", NAMES)
def test_each_framing_claims_its_own_format(name: str) -> None:
    """detect_framing picks the framing whose format the first message uses."""
    prefix = bytes.fromhex(FIRST_BYTES[name])
    framing = detect_framing(prefix)
    assert framing is not None
    assert framing.name == name
    for other in NAMES:
        detect = get_framing(other).detect
        assert detect is not None
        assert (detect(prefix) is Detection.MATCH) is (other == name)


def test_kitex_protobuf_in_ttheader_framed_is_claimed_by_kitex_protobuf() -> None:
    """A TTHeaderFramed message whose payload is 0x9001 belongs to kitex_protobuf."""
    prefix = bytes.fromhex("00000022100000000000000100010000000000000010" + PING_PB)
    framing = detect_framing(prefix)
    assert framing is not None
    assert framing.name == "kitex_protobuf"


@pytest.mark.parametrize(
    "prefix",
    ["", "00", "000000", "80", "800100", "00000011800100", "0000001f1000000000000001"],
)
def test_short_prefixes_need_more(prefix: str) -> None:
    """Too few bytes to decide: detection waits instead of guessing."""
    assert detect_framing(bytes.fromhex(prefix)) is None


@pytest.mark.parametrize(
    "prefix",
    [
        b"\xff" * 16,
        b"\x81\x00\x00\x01",
        b"GET / HTTP/1.1\r\n",
        bytes.fromhex("0000001f1000000200000001000100000000"),  # TTHeader Streaming
        bytes.fromhex("ffaf001000000000"),  # MeshHeader
    ],
)
def test_unknown_first_bytes_are_refused(prefix: bytes) -> None:
    """Bytes no framing can claim raise RemoteProtocolError (the connection closes)."""
    with pytest.raises(RemoteProtocolError):
        detect_framing(prefix)


def test_tether_native_still_wins() -> None:
    """The native magic is detected before the Kitex framings."""
    framing = detect_framing(b"TETHER\x01\x00")
    assert framing is not None
    assert framing.name == "tether"


@pytest.mark.parametrize(
    ("name", "transport", "multiplexed"),
    [
        ("buffered", Transport.BUFFERED, False),
        ("framed", Transport.FRAMED, True),
        ("ttheader", Transport.TTHEADER, True),
        ("ttheader_framed", Transport.TTHEADER_FRAMED, True),
        ("kitex_protobuf", Transport.TTHEADER_FRAMED, True),
        ("theader", Transport.THEADER, True),
    ],
)
def test_framings_create_thrift_codecs(name: str, transport: Transport, multiplexed: bool) -> None:
    """Each framing creates a ThriftCodec sending its transport; any server codec serves
    every format."""
    codec = get_framing(name).create(Role.CLIENT, CodecConfig())
    assert isinstance(codec, ThriftCodec)
    assert (codec.transport, codec.multiplexed, codec.supports_streaming) == (
        transport,
        multiplexed,
        False,
    )
    server = get_framing(name).create(Role.SERVER, CodecConfig())
    for other in NAMES:
        events = server.receive_data(bytes.fromhex(FIRST_BYTES[other]))
        assert [type(e) for e in events] == [CallStarted, Message]
        server.send(Message(stream_id=1, data=b"\x00"))
        server.send(Trailers(stream_id=1))
        assert server.has_data_to_send()
        server.data_to_send()
