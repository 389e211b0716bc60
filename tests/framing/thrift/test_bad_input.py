"""The issue's bad-input list, at the codec: each case is a clear RemoteProtocolError,
after which that codec (connection) refuses everything; other codecs are unaffected."""

from __future__ import annotations

import pytest

from tether import LocalProtocolError, RemoteProtocolError
from tether.framing import CallStarted, CodecConfig, Message, Role, Trailers
from tether.framing.thrift import ThriftCodec, Transport

PING = bytes.fromhex("800100010000000470696e670000000100")
SMALL = CodecConfig(max_frame_size=16 * 1024)


def ttheader(body: str, payload: bytes = PING, words: int | None = None) -> bytes:
    raw = bytes.fromhex(body)
    raw += b"\x00" * (-len(raw) % 4)
    size = len(raw) // 4 if words is None else words
    rest = bytes.fromhex("1000000000000001") + size.to_bytes(2, "big") + raw + payload
    return len(rest).to_bytes(4, "big") + rest


BAD_INPUT = {
    "wrong magic": (bytes.fromhex("0000001120010000") + PING[8:], "not a Thrift/Kitex message"),
    "wrong TTHeader version bits": (
        ttheader("0000")[:4] + b"\x10\x00\x00\x02" + b"\x00" * 40,
        "Streaming",
    ),
    "MeshHeader": (bytes.fromhex("ffaf000000000000"), "MeshHeader"),
    "header size past the frame": (ttheader("0000", words=40), "runs past the frame"),
    "unknown info id": (ttheader("000099"), "unknown TTHeader info id 0x99"),
    "string past the header (over its length)": (
        ttheader("0000010001ffff6b"),
        "runs past the header",
    ),
    "frame over max_frame_size": (bytes.fromhex("00004001") + PING[:4], "exceeds the 16384-byte"),
    "THeader compact protocol": (
        bytes.fromhex("000000140fff000000000001000102000000") + b"\x00" * 6,
        "protocol id 2",
    ),
    "payload that is no message": (
        ttheader("0000", b"\x12\x34\x56\x78\x00\x00\x00\x00"),
        "unrecognised TTHeader payload",
    ),
    "TTHeaderFramed length disagreeing": (
        ttheader("0000", b"\x00\x00\x00\x99" + PING),
        "disagrees",
    ),
    "invalid message type": (
        bytes.fromhex("00000011800100090000000470696e670000000100"),
        "invalid message type",
    ),
    "method name longer than the frame": (
        bytes.fromhex("0000001180010001000000ff70696e670000000100"),
        "does not fit",
    ),
    "method name not UTF-8": (
        bytes.fromhex("000000118001000100000004ff696e670000000100"),
        "not UTF-8",
    ),
    "a REPLY sent to a server": (
        bytes.fromhex("00000011800100020000000470696e670000000100"),
        "a client sent a REPLY",
    ),
    "Kitex Protobuf with no method name": (
        bytes.fromhex("0000000c900100010000000000000001"),
        "empty method name",
    ),
    "buffered struct with an unknown type": (
        PING[:-1] + b"\x63\x00\x01",
        "unknown thrift type id 99",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_clear_protocol_error(case: str) -> None:
    """Each malformed input raises RemoteProtocolError naming the problem; the codec then
    refuses more input and EOF, while a fresh codec still serves a good request."""
    data, match = BAD_INPUT[case]
    codec = ThriftCodec(Role.SERVER, SMALL)
    with pytest.raises(RemoteProtocolError, match=match):
        codec.receive_data(data)
    with pytest.raises(RemoteProtocolError, match="already failed"):
        codec.receive_data(b"\x00" * 8)
    with pytest.raises(RemoteProtocolError, match="already failed"):
        codec.receive_eof()
    with pytest.raises(LocalProtocolError, match="already failed"):
        codec.send(Trailers(stream_id=1))
    assert len(ThriftCodec(Role.SERVER, SMALL).receive_data(PING)) == 2


def test_truncated_buffered_struct_fails_at_eof() -> None:
    """A Buffered message cut short waits for more; EOF then is a protocol error."""
    codec = ThriftCodec(Role.SERVER)
    assert codec.receive_data(PING[:-1]) == []
    with pytest.raises(RemoteProtocolError, match="middle of a message"):
        codec.receive_eof()


def test_buffered_message_over_the_limit_fails_before_it_ends() -> None:
    """A Buffered struct still open past max_frame_size is refused without waiting."""
    codec = ThriftCodec(Role.SERVER, SMALL)
    huge = PING[:-1] + b"\x0b\x00\x01" + (100000).to_bytes(4, "big") + b"x" * 17000
    with pytest.raises(RemoteProtocolError, match="buffered message longer"):
        codec.receive_data(huge)


def test_frame_over_the_limit_fails_on_its_length_alone() -> None:
    """The length field alone is enough to refuse an oversized frame."""
    codec = ThriftCodec(Role.CLIENT, SMALL)
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        codec.receive_data(bytes.fromhex("7fffffff80010002"))


def test_reply_with_unknown_seq_id_is_refused() -> None:
    """A reply matching no pending call fails the client connection."""
    client = ThriftCodec(Role.CLIENT)
    client.send(CallStarted(stream_id=1, service="s", method="ping"))
    client.send(Message(stream_id=1, data=b"\x00", end_stream=True))
    reply = bytes.fromhex("00000011800100020000000470696e670000000200")
    with pytest.raises(RemoteProtocolError, match="seq id 2"):
        client.receive_data(reply)


def test_a_call_message_sent_to_a_client_is_refused() -> None:
    """A server that sends a CALL breaks the protocol."""
    client = ThriftCodec(Role.CLIENT)
    client.send(CallStarted(stream_id=1, service="s", method="ping"))
    client.send(Message(stream_id=1, data=b"\x00", end_stream=True))
    with pytest.raises(RemoteProtocolError, match="a server sent a CALL"):
        client.receive_data(bytes.fromhex("00000011800100010000000470696e670000000100"))


def test_bad_application_exception_is_refused() -> None:
    """An EXCEPTION whose TApplicationException is truncated is a protocol error."""
    client = ThriftCodec(Role.CLIENT)
    client.send(CallStarted(stream_id=1, service="s", method="ping"))
    client.send(Message(stream_id=1, data=b"\x00", end_stream=True))
    with pytest.raises(RemoteProtocolError, match="truncated TApplicationException"):
        client.receive_data(bytes.fromhex("00000012800100030000000470696e67000000010b00"))


def test_oversized_header_string_is_refused_when_sending() -> None:
    """Metadata values over 65,535 bytes cannot be written into a TTHeader."""
    client = ThriftCodec(Role.CLIENT, transport=Transport.TTHEADER)
    client.send(CallStarted(stream_id=1, service="s", method="m", metadata=(("k", "v" * 70000),)))
    with pytest.raises(LocalProtocolError, match="65535"):
        client.send(Message(stream_id=1, data=b"\x00", end_stream=True))


def test_a_trickled_buffered_message_is_walked_once() -> None:
    """A Buffered message arriving a byte at a time is walked incrementally (the walk
    resumes) and yields the same call as when it arrives whole."""
    body = b"\x0f\x00\x01\x0b" + (300).to_bytes(4, "big") + b"\x00\x00\x00\x01x" * 300 + b"\x00"
    request = PING[:-1] + body
    codec = ThriftCodec(Role.SERVER)
    events = []
    for index in range(len(request)):
        events += codec.receive_data(request[index : index + 1])
        walker = codec._progress.walker
        if index > len(PING) and index < len(request) - 1:
            assert walker is not None  # the walk kept its place
    assert events == ThriftCodec(Role.SERVER).receive_data(request)
    assert codec._progress.walker is None
