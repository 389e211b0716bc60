"""gRPC conventions: timeouts, status text, status mappings, content types, metadata,
compression and the stateless HPACK encoder."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from tether import ErrorCode, LocalProtocolError, RemoteProtocolError, Status
from tether.framing import CallStarted, Event, Role
from tether.framing.grpc import GrpcCodec, _hpack, _mapping as m

from .wire import END_HEADERS, END_STREAM, HEADERS, PREFACE, frame, parse_frames, settings


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"1H", 3600.0),
        (b"2M", 120.0),
        (b"3S", 3.0),
        (b"250m", 0.25),
        (b"1500000u", 1.5),
        (b"99999999n", 0.099999999),
    ],
)
def test_timeout_units_decode(value: bytes, seconds: float) -> None:
    """Every grpc-timeout unit (H M S m u n) decodes to seconds."""
    assert m.decode_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [b"", b"1", b"x1S", b"1s", b"123456789S", b"-1S", b"1.5S"])
def test_malformed_timeouts_are_refused(value: bytes) -> None:
    """Anything but 1-8 digits and a known unit is a ValueError."""
    with pytest.raises(ValueError, match="grpc-timeout"):
        m.decode_timeout(value)


@hypothesis_settings(deadline=None)
@given(st.floats(min_value=1e-6, max_value=3600 * 99_999_999, allow_nan=False))
def test_timeout_encoding_round_trips_within_half_a_unit(seconds: float) -> None:
    """Encoded timeouts have at most 8 digits and are within half a unit of the value."""
    value = m.encode_timeout(seconds)
    assert len(value) <= 9
    unit = {b"u": 1e-6, b"m": 1e-3, b"S": 1.0, b"M": 60.0, b"H": 3600.0}[value[-1:]]
    assert abs(m.decode_timeout(value) - seconds) <= unit / 2 * (1 + 1e-9)


def test_timeout_encoding_examples() -> None:
    """Short timeouts go in microseconds; long ones in coarser units; none is negative."""
    assert m.encode_timeout(1.5) == b"1500000u"
    assert m.encode_timeout(0.5999996) == b"600000u"
    assert m.encode_timeout(0.5999994) == b"599999u"
    assert m.encode_timeout(1000.0) == b"1000000m"
    assert m.encode_timeout(0) == b"0n"


def test_status_message_percent_encoding() -> None:
    """grpc-message escapes %, controls and non-ASCII as %XX of the UTF-8 bytes."""
    assert m.encode_status_message("bad input: 100% wrong") == b"bad input: 100%25 wrong"
    assert m.encode_status_message("é\n") == b"%C3%A9%0A"
    assert m.decode_status_message(b"%C3%A9%0A%25") == "é\n%"
    assert m.decode_status_message(b"50%zz off %") == "50%zz off %"  # malformed kept


@hypothesis_settings(deadline=None)
@given(st.text())
def test_status_message_round_trips(text: str) -> None:
    """Any text survives percent-encoding and decoding (as UTF-8)."""
    encoded = m.encode_status_message(text)
    assert all(0x20 <= b < 0x7F for b in encoded)
    assert m.decode_status_message(encoded) == text.encode("utf-8", "replace").decode(
        "utf-8", "replace"
    )


def test_status_mappings() -> None:
    """HTTP statuses and RST_STREAM codes map to gRPC statuses as the spec prescribes."""
    assert m.status_from_http(400) is Status.INTERNAL
    assert m.status_from_http(401) is Status.UNAUTHENTICATED
    assert m.status_from_http(403) is Status.PERMISSION_DENIED
    assert m.status_from_http(404) is Status.UNIMPLEMENTED
    assert {m.status_from_http(c) for c in (429, 502, 503, 504)} == {Status.UNAVAILABLE}
    assert m.status_from_http(418) is Status.UNKNOWN
    assert m.status_from_reset(ErrorCode.CANCEL) is Status.CANCELLED
    assert m.status_from_reset(ErrorCode.REFUSED_STREAM) is Status.UNAVAILABLE
    assert m.status_from_reset(ErrorCode.ENHANCE_YOUR_CALM) is Status.RESOURCE_EXHAUSTED
    assert m.status_from_reset(ErrorCode.INADEQUATE_SECURITY) is Status.PERMISSION_DENIED
    assert m.status_from_reset(ErrorCode.PROTOCOL_ERROR) is Status.INTERNAL
    assert m.status_from_reset(0xFFFF) is Status.INTERNAL
    assert m.status_from_code(b"14") is Status.UNAVAILABLE
    assert m.status_from_code(b"99") is Status.UNKNOWN
    assert m.status_from_code(b"x") is Status.UNKNOWN


def test_content_types() -> None:
    """Content types map to payload encodings and back."""
    assert m.content_type_for("proto") == b"application/grpc"
    assert m.content_type_for("thrift") == b"application/grpc+thrift"
    assert m.encoding_of(b"application/grpc") == ""
    assert m.encoding_of(b"application/grpc+proto") == "proto"
    assert m.encoding_of(b"application/grpc+thrift; charset=x") == "thrift"
    assert m.encoding_of(b"application/grpc;charset=x") == ""
    assert m.encoding_of(b"application/json") is None
    assert m.encoding_of(b"application/grpcx") is None


def test_metadata_conversion() -> None:
    """-bin values are base64 (unpadded out, both in); reserved headers are not metadata."""
    fields = m.headers_from_metadata((("X-Key", "v"), ("k-bin", b"\x00\x01\x02\x03")))
    assert fields == [(b"x-key", b"v"), (b"k-bin", b"AAECAw")]
    decoded = m.metadata_from_headers(
        (
            (b":path", b"/a/b"),
            (b"content-type", b"application/grpc"),
            (b"grpc-timeout", b"1S"),
            (b"k-bin", b"AAECAw=="),
            (b"j-bin", b"AAECAw"),
            (b"x", b"caf\xc3\xa9"),
            (b"y", b"\xff"),
        )
    )
    assert decoded == (
        ("k-bin", b"\x00\x01\x02\x03"),
        ("j-bin", b"\x00\x01\x02\x03"),
        ("x", "café"),
        ("y", "ÿ"),
    )


def test_metadata_the_protocol_owns_or_cannot_carry() -> None:
    """Reserved and pseudo headers are not sent as metadata; CR/LF/NUL values are refused."""
    fields = m.headers_from_metadata(
        (("content-type", "x"), ("te", "y"), ("grpc-status", "0"), (":path", "/x"), ("ok", "1"))
    )
    assert fields == [(b"ok", b"1")]
    for value in ("a\r\nb", "nul\x00"):
        with pytest.raises(LocalProtocolError, match="CR, LF or NUL"):
            m.headers_from_metadata((("x", value),))
    with pytest.raises(LocalProtocolError, match="not ASCII"):
        m.headers_from_metadata((("clé", "v"),))
    assert m.headers_from_metadata((("x-bin", "a\nb"),)) == [(b"x-bin", b"YQpi")]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_round_trip_and_bomb_limit(encoding: str) -> None:
    """Messages compress and decompress; inflating past the limit returns None."""
    data = b"tether " * 1000
    packed = m.compress(data, encoding)
    assert len(packed) < len(data)
    assert m.decompress(packed, encoding, len(data)) == data
    assert m.decompress(packed, encoding, len(data) - 1) is None
    with pytest.raises(ValueError, match=r"corrupt|truncated"):
        m.decompress(packed[:10], encoding, 10_000)
    with pytest.raises(ValueError, match="unsupported"):
        m.decompress(packed, "snappy", 10_000)


@hypothesis_settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b":status", b"content-type", b"user-agent", b"x-custom", b"te"]),
            st.binary(max_size=300),
        ),
        max_size=20,
    )
)
def test_stateless_blocks_decode_with_hpack_and_fast_path(
    fields: list[tuple[bytes, bytes]],
) -> None:
    """Our encoder's blocks decode identically in hpack and in our fast path."""
    block = _hpack.encode_block(fields)
    assert [tuple(f) for f in hpack.Decoder().decode(block, raw=True)] == fields
    assert list(_hpack.HeaderDecoder(1 << 20).decode(block)) == fields


def test_encoder_never_touches_the_dynamic_table() -> None:
    """Decoding our blocks leaves a peer's dynamic table empty (blocks are order-free)."""
    decoder = hpack.Decoder()
    decoder.decode(_hpack.encode_block([(b"x-a", b"1"), (b":status", b"200")]))
    assert len(decoder.header_table.dynamic_entries) == 0


def test_fast_path_enforces_the_list_limit() -> None:
    """Stateless blocks are held to the header list limit as well."""
    block = _hpack.encode_block([(b"x-big", b"v" * 2000)])
    with pytest.raises(RemoteProtocolError) as info:
        _hpack.HeaderDecoder(1000).decode(block)
    assert info.value.error_code is ErrorCode.ENHANCE_YOUR_CALM


def test_integer_encoding_matches_rfc_7541_examples() -> None:
    """C.1 of RFC 7541: 10 and 1337 with a 5-bit prefix, 42 with an 8-bit prefix."""
    assert _hpack.encode_integer(10, 5, 0) == b"\x0a"
    assert _hpack.encode_integer(1337, 5, 0) == b"\x1f\x9a\x0a"
    assert _hpack.encode_integer(42, 8, 0) == b"\x2a"


def _call_on_fresh_server(block: bytes) -> list[Event]:
    server = GrpcCodec(Role.SERVER)
    server.receive_data(PREFACE + settings())
    return server.receive_data(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))


def test_timeouts_of_many_calls_on_one_connection() -> None:
    """Each call's grpc-timeout is reported, though the rest of its head is cached."""
    client = GrpcCodec(Role.CLIENT)
    server = GrpcCodec(Role.SERVER)
    server.receive_data(client.data_to_send())
    for i, timeout in enumerate([0.5, 1.25, None, 30.0, 0.000001, 250_000.0]):
        sid = 2 * i + 1
        client.send(
            CallStarted(stream_id=sid, service="p.S", method="M", timeout=timeout, end_stream=True)
        )
        (call,) = [
            e for e in server.receive_data(client.data_to_send()) if isinstance(e, CallStarted)
        ]
        assert call.timeout == (None if timeout is None else pytest.approx(timeout, rel=1e-6))
        assert call.service == "p.S"


def test_timeout_lookalike_inside_a_value_is_not_split() -> None:
    """grpc-timeout bytes inside another field's value are that value, not a timeout."""
    inner = b"\x00\x0cgrpc-timeout\x021S"
    block = _hpack.encode_block(
        [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", b"/p.S/M"),
            (b"content-type", b"application/grpc"),
            (b"x-odd", b"ab" + inner + b"cd"),
        ]
    )
    (call,) = [e for e in _call_on_fresh_server(block) if isinstance(e, CallStarted)]
    assert call.timeout is None
    assert call.metadata == (("x-odd", (b"ab" + inner + b"cd").decode()),)


def test_malformed_split_timeout_is_answered_internal() -> None:
    """A malformed grpc-timeout gets a Trailers-Only INTERNAL answer, and no event."""
    block = (
        _hpack.encode_block([(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/p.S/M")])
        + _hpack.encode_field(b"grpc-timeout", b"12x")
        + _hpack.encode_block([(b"content-type", b"application/grpc")])
    )
    server = GrpcCodec(Role.SERVER)
    server.receive_data(PREFACE + settings())
    server.data_to_send()
    assert server.receive_data(frame(HEADERS, END_HEADERS | END_STREAM, 1, block)) == []
    (reply,) = [f for f in parse_frames(server.data_to_send()) if f[0] == HEADERS]
    fields = dict(hpack.Decoder().decode(reply[3], raw=True))
    assert fields[b"grpc-status"] == b"13"


def test_indexed_blocks_follow_the_dynamic_table() -> None:
    """A repeated all-indexed block is served from cache only while the table is unchanged."""
    encoder = hpack.Encoder()
    decoder = _hpack.HeaderDecoder(1 << 16)
    assert decoder.decode(encoder.encode([("x-a", "1")])) == ((b"x-a", b"1"),)
    again = encoder.encode([("x-a", "1")])
    assert again == b"\xbe"  # index 62: the entry just added
    assert decoder.decode(again) == ((b"x-a", b"1"),)
    assert decoder.decode(again) == ((b"x-a", b"1"),)
    decoder.decode(encoder.encode([("x-b", "2")]))  # x-b now sits at index 62
    assert encoder.encode([("x-b", "2")]) == b"\xbe"
    assert decoder.decode(b"\xbe") == ((b"x-b", b"2"),)


@pytest.mark.parametrize(
    ("text", "coded"),
    [
        (b"www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
        (b"no-cache", "a8eb10649cbf"),
        (b"custom-key", "25a849e95ba97d7f"),
        (b"custom-value", "25a849e95bb8e8b4bf"),
        (b"", ""),
    ],
)
def test_huffman_matches_rfc_7541_examples(text: bytes, coded: str) -> None:
    """Huffman coding reproduces RFC 7541 C.4's strings (EOS-padded)."""
    assert _hpack.huffman_encode(text) == bytes.fromhex(coded)


@hypothesis_settings(deadline=None)
@given(st.binary(max_size=400))
def test_string_literals_are_never_longer_than_raw(data: bytes) -> None:
    """A string literal is Huffman-coded only when that is shorter, and hpack reads it back."""
    literal = _hpack.encode_string(data)
    assert len(literal) <= len(_hpack.encode_raw_string(data))
    block = b"\x00" + _hpack.encode_string(b"x-k") + literal
    assert hpack.Decoder().decode(block, raw=True) == [(b"x-k", data)]


def test_constant_head_fields_are_huffman_coded() -> None:
    """Our request head carries content-type and grpc-accept-encoding Huffman-coded: the
    raw strings are not in the block, and h2's decoder still reads them."""
    client = GrpcCodec(Role.CLIENT)
    client.data_to_send()
    client.send(CallStarted(stream_id=1, service="pkg.S", method="M", encoding="proto"))
    (head,) = [f for f in parse_frames(client.data_to_send()) if f[0] == HEADERS]
    block = head[3]
    assert b"application/grpc" not in block
    assert b"identity,deflate,gzip" not in block
    fields = dict(hpack.Decoder().decode(block, raw=True))
    assert fields[b"content-type"] == b"application/grpc"
    assert fields[b"grpc-accept-encoding"] == b"identity,deflate,gzip"


@hypothesis_settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"x-user", b"user-agent", b"x-trace-id", b"authorization", b"a"]),
            st.binary(max_size=300),
        ),
        max_size=10,
    )
)
def test_metadata_blocks_decode_with_hpack_and_fast_path(
    fields: list[tuple[bytes, bytes]],
) -> None:
    """Per-call metadata (Huffman names, raw values) decodes identically in hpack and in
    our fast path, without touching the dynamic table."""
    block = _hpack.encode_metadata(fields)
    decoder = hpack.Decoder()
    assert [tuple(f) for f in decoder.decode(block, raw=True)] == fields
    assert len(decoder.header_table.dynamic_entries) == 0
    assert list(_hpack.HeaderDecoder(1 << 20).decode(block)) == fields


@hypothesis_settings(deadline=None)
@given(st.binary(max_size=200), st.integers(0, 40))
def test_fast_path_refuses_malformed_huffman_like_hpack(data: bytes, cut: int) -> None:
    """A truncated or garbled Huffman literal is a COMPRESSION_ERROR (never a crash or a
    wrong field), whichever decoder path sees it."""
    block = b"\x00" + _hpack.encode_string(b"x-k") + _hpack.encode_string(data)
    damaged = block[: max(len(block) - cut, 0)] if cut else block[:-1] + b"\x00"
    try:
        expected = [tuple(f) for f in hpack.Decoder().decode(damaged, raw=True)]
    except hpack.HPACKError:
        with pytest.raises(RemoteProtocolError) as info:
            _hpack.HeaderDecoder(1 << 20).decode(damaged)
        assert info.value.error_code is ErrorCode.COMPRESSION_ERROR
    else:
        assert list(_hpack.HeaderDecoder(1 << 20).decode(damaged)) == expected
