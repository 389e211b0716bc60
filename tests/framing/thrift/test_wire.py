"""The wire pieces on their own: the Thrift struct walker, TApplicationException and
Kitex ErrorProto, TTHeader and Apache THeader encoders and decoders (byte vectors derived
from the specs, and Apache Thrift's own THeaderTransport as an independent peer)."""

from __future__ import annotations

import pytest

from tether import LocalProtocolError, RemoteProtocolError, Status
from tether.framing import CallStarted, Message, Role, Trailers
from tether.framing.thrift import (
    THeader,
    ThriftCodec,
    decode_application_exception,
    decode_theader,
    decode_ttheader,
    encode_application_exception,
    encode_theader,
    encode_ttheader,
    skip_struct,
    status_for_type,
    type_for_status,
)
from tether.framing.thrift._binary import NEED_MORE, StructWalker, message_head
from tether.framing.thrift._exception import decode_error_proto, encode_error_proto
from tether.framing.thrift._ttheader import CACHEABLE_SIZE

# struct {1: i32 7, 2: string "ab", 3: map<string,string>{"a": "1"}, 4: list<i64>[1, 2],
#         5: struct {1: bool true}, 6: set<struct>{ {} }, 7: double, 8: i16, 9: byte, 10: uuid}
NESTED = bytes.fromhex(
    "08000100000007"
    "0b0002000000026162"
    "0d00030b0b00000001000000016100000001"
    "31"
    "0f00040a00000002"
    "0000000000000001"
    "0000000000000002"
    "0c0005"
    "020001"
    "01"
    "00"
    "0e00060c00000001"
    "00"
    "040007"
    "0000000000000000"
    "060008"
    "0001"
    "030009"
    "05"
    "10000a"
    "00112233445566778899aabbccddeeff"
    "00"
)


def test_skip_struct_finds_the_end_of_every_type() -> None:
    """The walker steps over every Thrift type, nested, to the byte after STOP."""
    data = NESTED + b"trailing"
    assert skip_struct(memoryview(data), 0, len(data)) == len(NESTED)


def test_struct_walker_keeps_its_place() -> None:
    """A walker fed a growing prefix resumes where it stopped instead of starting over:
    its position only moves forward, and whole values are never half-consumed."""
    data = bytes.fromhex("0f00010b0000000300000001610000000162000000016300")
    view = memoryview(data)
    walker = StructWalker(0)
    positions = []
    for cut in range(len(data)):
        assert walker.walk(view, cut) == NEED_MORE
        positions.append(walker.pos)
    assert positions == sorted(positions)
    assert set(positions) == {0, 8, 13, 18, 23}  # list header, then each whole string
    assert walker.walk(view, len(data)) == len(data)


def test_skip_struct_needs_more_at_every_truncation() -> None:
    """Any prefix of a struct reports NEED_MORE, never a wrong end or an error."""
    view = memoryview(NESTED)
    for cut in range(len(NESTED)):
        assert skip_struct(view, 0, cut) == NEED_MORE


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (bytes.fromhex("11000100"), "unknown thrift type id 17"),
        (bytes.fromhex("0b0001ffffffff"), "negative length"),
        (bytes.fromhex("0f00010bffffffff"), "negative size"),
        (bytes.fromhex("0d00010b1300000001"), "unknown thrift type id 19"),
        (b"\x0c\x00\x01" * 70, "deeper than 64"),
        (b"\x0f\x00\x01" + b"\x0f\x00\x00\x00\x01" * 70, "deeper than 64"),
    ],
)
def test_skip_struct_rejects_malformed_structs(data: bytes, match: str) -> None:
    """Unknown types, negative sizes and too-deep nesting are protocol errors."""
    with pytest.raises(RemoteProtocolError, match=match):
        skip_struct(memoryview(data), 0, len(data))


def test_message_head_is_the_strict_binary_header() -> None:
    """The message header is version|type, length-prefixed name, seq id."""
    assert message_head(0x80010000, 1, b"ping", 1).hex() == "800100010000000470696e6700000001"


def test_application_exception_round_trip_and_kitex_bytes() -> None:
    """TApplicationException encodes as Kitex does (field 1 then 2) and decodes back;
    unknown fields are skipped and fields may come in any order."""
    data = encode_application_exception("unknown service , method nope", 20)
    assert data.hex() == (
        "0b00010000001d756e6b6e6f776e2073657276696365202c206d6574686f64206e6f70650800020000001400"
    )
    assert decode_application_exception(data) == (20, "unknown service , method nope")
    reordered = bytes.fromhex("080002000000060a000300000000000000ff0b0001000000017800")
    assert decode_application_exception(reordered) == (6, "x")
    for cut in range(len(data)):
        with pytest.raises(RemoteProtocolError):
            decode_application_exception(data[:cut])


def test_error_proto_round_trip_and_kitex_bytes() -> None:
    """Kitex's ErrorProto is {1: varint type, 2: string message}; negative types survive."""
    data = encode_error_proto("biz error: pb handler error", 6)
    assert data.hex() == "0806121b62697a206572726f723a2070622068616e646c6572206572726f72"
    assert decode_error_proto(data) == (6, "biz error: pb handler error")
    assert decode_error_proto(encode_error_proto("m", -1)) == (-1, "m")
    assert decode_error_proto(bytes.fromhex("1d01020304210102030405060708")) == (0, "")
    for bad in (b"\x12\x05ab", b"\x08", b"\x0b", b"\x1d\x00"):
        with pytest.raises(RemoteProtocolError):
            decode_error_proto(bad)


def test_status_type_tables() -> None:
    """Statuses map to TApplicationException types and back as documented."""
    assert type_for_status(Status.UNIMPLEMENTED) == 20
    assert type_for_status(Status.INVALID_ARGUMENT) == 7
    assert type_for_status(Status.DEADLINE_EXCEEDED) == 6
    assert [status_for_type(t) for t in (1, 20, 7, 6, 0, 99)] == [
        Status.UNIMPLEMENTED,
        Status.UNIMPLEMENTED,
        Status.INVALID_ARGUMENT,
        Status.INTERNAL,
        Status.UNKNOWN,
        Status.UNKNOWN,
    ]


# -- TTHeader -----------------------------------------------------------------------

PING = bytes.fromhex("800100010000000470696e670000000100")  # ping(), seq 1


def test_ttheader_minimal_vector() -> None:
    """The smallest TTHeader (protocols.md 1.6): header size 1 word, no info blocks."""
    prefix = encode_ttheader(
        flags=0, seq_id=1, protocol_id=0, str_info={}, int_info={}, payload_size=len(PING)
    )
    assert (
        prefix + PING
    ).hex() == "0000001f1000000000000001000100000000800100010000000470696e670000000100"


def test_ttheader_info_vector() -> None:
    """One str entry and two int entries, padded to 4 bytes (protocols.md 1.6)."""
    prefix = encode_ttheader(
        flags=0,
        seq_id=1,
        protocol_id=0,
        str_info={"RPC_TRANSIT_K": "v"},
        int_info={3: "a", 9: "ping"},
        payload_size=len(PING),
    )
    assert prefix.hex() == (
        "00000043"
        "1000"
        "0000"
        "00000001"
        "000a"
        "0000"
        "010001000d5250435f5452414e5349545f4b000176"
        "1000020003000161000900047069"
        "6e67"
        "00"
    )
    header, start = decode_ttheader(memoryview(prefix + PING), 0, len(prefix + PING))
    assert start == len(prefix)
    assert header.str_info == {"RPC_TRANSIT_K": "v"}
    assert header.int_info == {3: "a", 9: "ping"}


def test_ttheader_acl_token_block() -> None:
    """The ACL token travels in block 0x11, first, and decodes under its str key."""
    prefix = encode_ttheader(
        flags=0,
        seq_id=3,
        protocol_id=0,
        str_info={"RPC_TRANSIT_gdpr-token": "tok", "a": "b"},
        int_info={},
        payload_size=0,
    )
    assert prefix[16:22].hex() == "110003746f6b"
    header, _ = decode_ttheader(memoryview(prefix), 0, len(prefix))
    assert header.str_info == {"RPC_TRANSIT_gdpr-token": "tok", "a": "b"}


def test_ttheader_decode_tolerates_order_padding_and_transforms() -> None:
    """Blocks in any order, padding bytes between them and transform ids all decode."""
    body = bytes.fromhex(
        "00"
        "02"
        "0103"  # protocol 0, two transform ids (ignored)
        "10000100160001"
        "31"  # int block first
        "0000"  # padding between blocks
        "0100010001"
        "6b"
        "0001"
        "76"  # str block
        "000000"
    )
    body += b"\x00" * (-len(body) % 4)
    frame = (10 + len(body)).to_bytes(4, "big") + bytes.fromhex("1000000000000009")
    frame += (len(body) // 4).to_bytes(2, "big") + body
    header, start = decode_ttheader(memoryview(frame), 0, len(frame))
    assert (header.seq_id, header.str_info, header.int_info) == (9, {"k": "v"}, {22: "1"})
    assert start == len(frame)


def ttheader_frame(body: bytes, words: int | None = None, payload: bytes = b"") -> bytes:
    words = len(body) // 4 if words is None else words
    rest = bytes.fromhex("1000000000000001") + words.to_bytes(2, "big") + body + payload
    return len(rest).to_bytes(4, "big") + rest


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (ttheader_frame(bytes.fromhex("00002000")), "unknown TTHeader info id 0x20"),
        (ttheader_frame(bytes.fromhex("00000000"), words=9), "runs past the frame"),
        (ttheader_frame(b"", words=0), "header size is 0"),
        (ttheader_frame(bytes.fromhex("02000000")), "unsupported TTHeader protocol id 0x02"),
        (ttheader_frame(bytes.fromhex("00000100")), "truncated TTHeader str KV"),
        (ttheader_frame(bytes.fromhex("0000010001ff00ff")), "runs past the header"),
        (ttheader_frame(bytes.fromhex("00001000")), "truncated TTHeader int KV"),
        (ttheader_frame(bytes.fromhex("0000100001000100")), "truncated TTHeader string"),
        (ttheader_frame(bytes.fromhex("00ff0000")), "transform ids run past"),
        (ttheader_frame(bytes.fromhex("00000100010001ff0000")), "not UTF-8"),
        (bytes.fromhex("000000000fff0000"), "shorter than its 14-byte prefix"),
    ],
)
def test_ttheader_decode_rejects_bad_headers(frame: bytes, match: str) -> None:
    """Every broken TTHeader rule is a clear protocol error."""
    with pytest.raises(RemoteProtocolError, match=match):
        decode_ttheader(memoryview(frame), 0, len(frame))


def test_ttheader_wrong_magic() -> None:
    """A 0x0FFF frame is not a TTHeader."""
    frame = bytes.fromhex("0000000e0fff000000000001000100000000")
    with pytest.raises(RemoteProtocolError, match="wrong TTHeader magic 0x0fff"):
        decode_ttheader(memoryview(frame), 0, len(frame))


def test_ttheader_encode_limits() -> None:
    """Strings over 65,535 bytes, headers over 262,140 bytes and bad int keys are refused."""
    common = {"flags": 0, "seq_id": 1, "protocol_id": 0, "payload_size": 0}
    with pytest.raises(LocalProtocolError, match="65535"):
        encode_ttheader(str_info={"k": "v" * 65536}, int_info={}, **common)
    ok = encode_ttheader(str_info={"k": b"v" * 65535}, int_info={}, **common)
    assert len(ok) > 65535
    many = {f"k{i}": "v" * 60000 for i in range(5)}
    with pytest.raises(LocalProtocolError, match="262140"):
        encode_ttheader(str_info=many, int_info={}, **common)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="not a u16"):
        encode_ttheader(str_info={}, int_info={70000: "x"}, **common)


# -- Apache THeader -------------------------------------------------------------------

APACHE_PING = bytes.fromhex(  # protocols.md section 2, verified against thrift 0.25.0
    "000000230fff000000000007000200000101016b0176800100010000000470696e670000000700"
)


def test_theader_verified_vector_round_trip() -> None:
    """The Apache THeader vector decodes, and re-encodes to the same bytes."""
    header, payload = decode_theader(memoryview(APACHE_PING), 0, len(APACHE_PING), 1 << 20)
    assert (header.seq_id, header.protocol_id, header.headers) == (7, 0, {"k": "v"})
    assert payload == APACHE_PING[22:]
    assert encode_theader(THeader(seq_id=7), {"k": "v"}, payload) == APACHE_PING


def test_theader_zlib_transform_round_trip() -> None:
    """A zlib-transformed payload is inflated on decode and deflated on encode."""
    frame = encode_theader(THeader(seq_id=2, transforms=(1,)), {}, PING * 10)
    header, payload = decode_theader(memoryview(frame), 0, len(frame), 1 << 20)
    assert (header.transforms, payload) == ((1,), PING * 10)
    with pytest.raises(RemoteProtocolError, match="decompresses past 100"):
        decode_theader(memoryview(frame), 0, len(frame), 100)


def theader_frame(body: bytes, payload: bytes = PING) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    rest = bytes.fromhex("0fff000000000001") + (len(body) // 4).to_bytes(2, "big")
    rest += body + payload
    return len(rest).to_bytes(4, "big") + rest


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (theader_frame(bytes.fromhex("0200")), "unsupported THeader protocol id 2"),
        (theader_frame(bytes.fromhex("000102")), "unsupported THeader transform id 2"),
        (theader_frame(bytes.fromhex("00ffffffffff")), "truncated or overlong varint"),
        (theader_frame(bytes.fromhex("00000101057800")), "runs past the header"),
        (theader_frame(bytes.fromhex("000001"), b"not zlib"), None),
        (theader_frame(bytes.fromhex("000101"), b"x\x9c"), "truncated"),
        (theader_frame(bytes.fromhex("000101"), b"garbage!"), "does not decompress"),
    ],
)
def test_theader_decode_rejects_bad_headers(frame: bytes, match: str | None) -> None:
    """Unsupported protocol ids and transforms, truncated varints and strings, and bad
    zlib data are protocol errors."""
    if match is None:  # an unterminated KV block ending in padding: still parses
        decode_theader(memoryview(frame), 0, len(frame), 1 << 20)
        return
    with pytest.raises(RemoteProtocolError, match=match):
        decode_theader(memoryview(frame), 0, len(frame), 1 << 20)


def test_theader_skips_unknown_info_blocks() -> None:
    """As in Apache's reader, an unknown info id ends the info blocks without an error."""
    frame = theader_frame(bytes.fromhex("0000100101016b0176"))
    header, payload = decode_theader(memoryview(frame), 0, len(frame), 1 << 20)
    assert (header.headers, payload) == ({}, PING)


def test_theader_interoperates_with_apache_thrift() -> None:
    """Apache Thrift's THeaderProtocol (zlib, headers) and our codec read each other."""
    pytest.importorskip("thrift")
    from thrift.protocol.THeaderProtocol import (  # type: ignore[import-untyped]
        THeaderProtocol,
    )
    from thrift.Thrift import TMessageType  # type: ignore[import-untyped]
    from thrift.transport.THeaderTransport import (  # type: ignore[import-untyped]
        THeaderClientType,
        THeaderTransformID,
    )
    from thrift.transport.TTransport import TMemoryBuffer  # type: ignore[import-untyped]

    memory = TMemoryBuffer()
    protocol = THeaderProtocol(memory, [THeaderClientType.HEADERS])
    protocol.trans.set_header(b"k", b"v")
    protocol.trans.add_transform(THeaderTransformID.ZLIB)
    protocol.writeMessageBegin("ping", TMessageType.CALL, 7)
    protocol.writeStructBegin("args")
    protocol.writeFieldStop()
    protocol.writeStructEnd()
    protocol.writeMessageEnd()
    protocol.trans.flush()
    sent = memory.getvalue()
    header, payload = decode_theader(memoryview(sent), 0, len(sent), 1 << 20)
    assert (header.headers, header.transforms, payload) == (
        {"k": "v"},
        (1,),
        PING[:-5] + b"\x00\x00\x00\x07\x00",
    )

    reply = encode_theader(THeader(seq_id=7, transforms=(1,)), {"r": "1"}, payload)
    reader = THeaderProtocol(TMemoryBuffer(reply), [THeaderClientType.HEADERS])
    assert reader.readMessageBegin() == ("ping", TMessageType.CALL, 7)
    assert reader.trans.get_headers() == {b"r": b"1"}


def test_large_ttheader_bodies_are_not_cached() -> None:
    """Headers over CACHEABLE_SIZE decode fully every time and keep no raw bytes, so the
    caches' memory stays bounded whatever a peer sends."""
    big = {"k": "v" * CACHEABLE_SIZE}
    frame = encode_ttheader(
        flags=0, seq_id=1, protocol_id=0, str_info=big, int_info={}, payload_size=0
    )  # type: ignore[arg-type]
    for _ in range(2):
        header, _ = decode_ttheader(memoryview(frame), 0, len(frame))
        assert (header.raw, header.str_info) == (b"", big)
    small = encode_ttheader(
        flags=0, seq_id=1, protocol_id=0, str_info={"k": "v"}, int_info={}, payload_size=0
    )
    header, _ = decode_ttheader(memoryview(small), 0, len(small))
    assert header.raw == small[14:]


@pytest.mark.parametrize("framed", [True, False])
def test_framed_and_buffered_interoperate_with_apache_thrift(framed: bool) -> None:
    """Apache Thrift's TBinaryProtocol over TFramedTransport / a bare buffer and our
    server codec read each other's messages."""
    pytest.importorskip("thrift")
    from thrift.protocol.TBinaryProtocol import TBinaryProtocol  # type: ignore[import-untyped]
    from thrift.Thrift import TMessageType, TType  # type: ignore[import-untyped]
    from thrift.transport.TTransport import (  # type: ignore[import-untyped]
        TFramedTransport,
        TMemoryBuffer,
    )

    memory = TMemoryBuffer()
    transport = TFramedTransport(memory) if framed else memory
    protocol = TBinaryProtocol(transport)
    protocol.writeMessageBegin("say", TMessageType.CALL, 42)
    protocol.writeStructBegin("say_args")
    protocol.writeFieldBegin("text", TType.STRING, 1)
    protocol.writeString("hi")
    protocol.writeFieldEnd()
    protocol.writeFieldStop()
    protocol.writeStructEnd()
    protocol.writeMessageEnd()
    transport.flush()
    server = ThriftCodec(Role.SERVER)
    started, message = server.receive_data(memory.getvalue())
    assert isinstance(started, CallStarted)
    assert (started.stream_id, started.method) == (42, "say")
    assert message == Message(
        stream_id=42, data=bytes.fromhex("0b0001000000026869") + b"\x00", end_stream=True
    )

    server.send(Message(stream_id=42, data=bytes.fromhex("0b0000000000026f6b00")))
    server.send(Trailers(stream_id=42))
    reply = TMemoryBuffer(server.data_to_send())
    reader = TBinaryProtocol(TFramedTransport(reply) if framed else reply)
    assert reader.readMessageBegin() == ("say", TMessageType.REPLY, 42)
    reader.readStructBegin()
    assert reader.readFieldBegin() == (None, TType.STRING, 0)
    assert reader.readString() == "ok"
