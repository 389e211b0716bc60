"""The kcp:// session packet format and stream messages, without an event loop."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from tether import RemoteProtocolError
from tether.transport._kcp_wire import (
    HEADER_SIZE,
    KCP_MAX_FRAGMENTS,
    MAX_CONV,
    MESSAGE_FRAGMENTS,
    Packet,
    PacketType,
    decode_packet,
    decode_stream_message,
    encode_control,
    encode_header,
    encode_hello,
    encode_welcome,
    fin_message,
    max_stream_payload,
    stream_messages,
    welcome_token,
)

#: The properties are cheap, but a loaded CI machine must not fail them on timing.
no_deadline = settings(deadline=None)
convs = st.integers(1, MAX_CONV)
u64s = st.integers(1, (1 << 64) - 1)
CONTROL = [
    PacketType.READY,
    PacketType.PING,
    PacketType.PONG,
    PacketType.CLOSE,
    PacketType.CLOSE_ACK,
    PacketType.RESET,
]


def kcp_segment(conv: int, body: bytes = b"") -> bytes:
    """A KCP segment header (conv little-endian, cmd PUSH) followed by ``body``."""
    return struct.pack("<IBBHIIII", conv, 81, 0, 128, 0, 0, 0, len(body)) + body


# -- byte vectors ----------------------------------------------------------------------------


def test_hello_bytes() -> None:
    """A HELLO is magic, version 1, type 1, conv 0, the nonce, then 8 zero bytes."""
    assert encode_hello(0x0102030405060708) == (
        b"tK\x01\x01\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08" + bytes(8)
    )


def test_welcome_bytes() -> None:
    """A WELCOME carries the assigned conv, echoes the nonce, then the session token."""
    data = encode_welcome(0x11223344, 7, 0xAABBCCDDEEFF0011)
    assert data == (
        b"tK\x01\x02\x11\x22\x33\x44" + (7).to_bytes(8, "big") + bytes.fromhex("aabbccddeeff0011")
    )
    packet = decode_packet(data)
    assert packet == Packet(PacketType.WELCOME, 0x11223344, 7, data[HEADER_SIZE:])
    assert welcome_token(packet) == 0xAABBCCDDEEFF0011


def test_control_bytes() -> None:
    """Control packets are exactly the 16-byte header."""
    assert encode_control(PacketType.PING, 5, 9) == b"tK\x01\x05\x00\x00\x00\x05" + (9).to_bytes(
        8, "big"
    )


def test_data_packet_round_trip() -> None:
    """A DATA packet is the header plus KCP's bytes, returned untouched."""
    segment = kcp_segment(42, b"hello")
    packet = decode_packet(encode_header(PacketType.DATA, 42, 3) + segment)
    assert packet == Packet(PacketType.DATA, 42, 3, segment)


def test_refusal_reset_has_conv_zero() -> None:
    """A RESET with conv 0 (a refused HELLO) decodes; other types with conv 0 do not."""
    assert decode_packet(encode_control(PacketType.RESET, 0, 5)).conv == 0
    with pytest.raises(RemoteProtocolError, match="conversation id 0"):
        decode_packet(encode_control(PacketType.PING, 0, 5))


def test_hello_is_not_smaller_than_welcome() -> None:
    """A WELCOME never amplifies: it is no larger than the HELLO that causes it."""
    assert len(encode_welcome(1, 1, 1)) <= len(encode_hello(1))


# -- malformed datagrams -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datagram", "message"),
    [
        (b"", "shorter than the header"),
        (encode_hello(1)[:15], "shorter than the header"),
        (b"xK" + encode_hello(1)[2:], "bad magic"),
        (b"tK\x02" + encode_hello(1)[3:], "unsupported version"),
        (b"tK\x01\x63" + encode_hello(1)[4:], "unknown packet type 99"),
        (encode_hello(1)[:-1], "malformed HELLO"),  # truncated handshake
        (encode_hello(1)[:-1] + b"\x01", "malformed HELLO"),  # non-zero padding
        (encode_header(PacketType.HELLO, 3, 1) + bytes(8), "malformed HELLO"),
        (encode_welcome(1, 1, 1)[:-1], "truncated WELCOME"),
        (encode_header(PacketType.WELCOME, 1, 1) + bytes(8), "zero session token"),
        (encode_header(PacketType.PING, 1, 0), "zero token"),
        (encode_header(PacketType.PING, 1, 1) + b"x", "1-byte payload"),
        (encode_header(PacketType.DATA, 1, 1) + bytes(23), "shorter than KCP's header"),
        (encode_header(PacketType.DATA, 1, 1) + kcp_segment(2), "KCP conversation id differs"),
        (encode_header(PacketType.PING, MAX_CONV + 1, 1), "does not fit 31 bits"),
        (encode_header(PacketType.DATA, 1, 1) + bytes(65507), "too large"),
    ],
)
def test_malformed_datagrams(datagram: bytes, message: str) -> None:
    """Every malformed datagram is a RemoteProtocolError that says what is wrong."""
    with pytest.raises(RemoteProtocolError, match=message):
        decode_packet(datagram)


@no_deadline
@given(st.binary(max_size=200))
def test_garbage_never_crashes(data: bytes) -> None:
    """Random bytes either decode to a packet or raise RemoteProtocolError, nothing else."""
    try:
        packet = decode_packet(data)
    except RemoteProtocolError:
        return
    assert isinstance(packet.type, PacketType)


# -- properties ---------------------------------------------------------------------------------


@no_deadline
@given(u64s)
def test_hello_round_trip(nonce: int) -> None:
    """A HELLO decodes to its nonce."""
    assert decode_packet(encode_hello(nonce)) == Packet(PacketType.HELLO, 0, nonce)


@no_deadline
@given(convs, u64s, u64s)
def test_welcome_round_trip(conv: int, nonce: int, token: int) -> None:
    """A WELCOME decodes to its conv, nonce and session token."""
    packet = decode_packet(encode_welcome(conv, nonce, token))
    assert (packet.type, packet.conv, packet.token, welcome_token(packet)) == (
        PacketType.WELCOME,
        conv,
        nonce,
        token,
    )


@no_deadline
@given(st.sampled_from(CONTROL), convs, u64s)
def test_control_round_trip(type_: PacketType, conv: int, token: int) -> None:
    """Every control packet decodes to its type, conv and token, with no payload."""
    assert decode_packet(encode_control(type_, conv, token)) == Packet(type_, conv, token)


@no_deadline
@given(convs, u64s, st.binary(max_size=1400))
def test_data_round_trip(conv: int, token: int, body: bytes) -> None:
    """A DATA packet decodes to the KCP bytes it wraps."""
    segment = kcp_segment(conv, body)
    assert decode_packet(encode_header(PacketType.DATA, conv, token) + segment).payload == segment


def test_encoders_reject_out_of_range() -> None:
    """Encoders refuse zero or oversized ids and payload-carrying control types."""
    with pytest.raises(ValueError):
        encode_hello(0)
    with pytest.raises(ValueError):
        encode_welcome(MAX_CONV + 1, 1, 1)
    with pytest.raises(ValueError):
        encode_welcome(1, 1, 0)
    with pytest.raises(ValueError):
        encode_control(PacketType.DATA, 1, 1)


# -- the byte stream inside KCP -------------------------------------------------------------


def test_stream_message_bytes() -> None:
    """Data messages are tag 0 plus bytes; FIN is the single byte 1."""
    assert list(stream_messages([b"ab", bytearray(b"c"), memoryview(b"de")], 3)) == [
        b"\x00abc",
        b"\x00de",
    ]
    assert fin_message() == b"\x01"
    assert decode_stream_message(fin_message()) is None
    assert bytes(decode_stream_message(b"\x00xyz") or b"") == b"xyz"
    assert list(stream_messages([], 10)) == []


@pytest.mark.parametrize(
    ("message", "error"),
    [(b"", "empty"), (b"\x00", "no bytes"), (b"\x01x", "trailing"), (b"\x07", "unknown")],
)
def test_bad_stream_messages(message: bytes, error: str) -> None:
    """Malformed stream messages are RemoteProtocolErrors."""
    with pytest.raises(RemoteProtocolError, match=error):
        decode_stream_message(message)


@no_deadline
@given(st.lists(st.binary(max_size=3000), max_size=8), st.integers(1, 5000))
def test_stream_split_and_join(chunks: list[bytes], limit: int) -> None:
    """Splitting into messages and decoding them gives back the same bytes, in order,
    with no message above the limit."""
    messages = list(stream_messages(list(chunks), limit))
    assert all(1 < len(m) <= limit + 1 for m in messages)
    joined = b"".join(bytes(decode_stream_message(m) or b"") for m in messages)
    assert joined == b"".join(chunks)


def test_max_stream_payload_respects_kcp_limits() -> None:
    """A message is MESSAGE_FRAGMENTS segments and never reaches KCP's 128-fragment limit."""
    assert max_stream_payload(1376) == MESSAGE_FRAGMENTS * 1376 - 1
    assert max_stream_payload(1376, KCP_MAX_FRAGMENTS - 1) == 127 * 1376 - 1
    for fragments in (0, KCP_MAX_FRAGMENTS):
        with pytest.raises(ValueError):
            max_stream_payload(1376, fragments)
    with pytest.raises(ValueError):
        max_stream_payload(1)
