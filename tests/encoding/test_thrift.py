"""ThriftStructCodec: bare Thrift Binary-protocol structs, on the Cython and Python backends."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import thriftpy2
from hypothesis import given, strategies as st

from tether.demo.schemas import echo_thrift
from tether.encoding import DecodeError, EncodeError, ThriftStructCodec, _thrift as thrift_module

kitchen = thriftpy2.load(
    str(Path(__file__).with_name("kitchen.thrift")), module_name="kitchen_thrift"
)

EchoRequest = echo_thrift.EchoRequest
EchoReply = echo_thrift.EchoReply

BACKENDS = ["cython", "python"]


def make_codec(struct_class: Any, backend: str) -> ThriftStructCodec[Any]:
    """A codec on the given backend (the Python one is what PyPy would use)."""
    if backend == "cython":
        if not thrift_module._CYBIN:
            pytest.skip("thriftpy2 was built without its Cython extensions")
        return ThriftStructCodec(struct_class)
    with mock.patch.object(thrift_module, "_CYBIN", False):
        return ThriftStructCodec(struct_class)


# -- hand-written Binary-protocol pieces (from the Thrift spec) ---------------------------

STOP = b"\x00"


def i16(value: int) -> bytes:
    return value.to_bytes(2, "big", signed=True)


def i32(value: int) -> bytes:
    return value.to_bytes(4, "big", signed=True)


def string(value: bytes) -> bytes:
    return i32(len(value)) + value


def field(ttype: int, fid: int, payload: bytes) -> bytes:
    return bytes([ttype]) + i16(fid) + payload


BOOL, BYTE, DOUBLE, I16, I32, I64, STRING, STRUCT, MAP, SET, LIST = (
    2,
    3,
    4,
    6,
    8,
    10,
    11,
    12,
    13,
    14,
    15,
)

HI_REQUEST = (
    field(STRING, 1, string(b"hi"))
    + field(I32, 2, i32(2))
    + field(I32, 3, i32(5))
    + field(STRING, 4, string(b"no"))
    + STOP
)

int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
requests = st.builds(
    EchoRequest, data=st.none() | st.binary(), repeat=int32s, delay_ms=int32s, fail=st.text()
)
replies = st.builds(
    EchoReply,
    data=st.none() | st.binary(),
    metadata=st.none() | st.dictionaries(st.text(), st.text(), max_size=5),
)


# -- round trips -------------------------------------------------------------------------


def test_name_is_thrift() -> None:
    """The content subtype is ``thrift`` and the codec keeps its struct class."""
    codec = ThriftStructCodec(EchoRequest)
    assert codec.name == "thrift"
    assert codec.struct_class is EchoRequest


@pytest.mark.parametrize("backend", BACKENDS)
def test_encodes_a_bare_struct(backend: str) -> None:
    """The payload is the fields in IDL order and a STOP: no message envelope."""
    codec = make_codec(EchoRequest, backend)
    assert codec.encode(EchoRequest(data=b"hi", repeat=2, delay_ms=5, fail="no")) == HI_REQUEST


@pytest.mark.parametrize("backend", BACKENDS)
def test_decodes_a_hand_written_struct(backend: str) -> None:
    """A struct written by hand from the spec decodes field by field."""
    message = make_codec(EchoRequest, backend).decode(HI_REQUEST)
    assert (message.data, message.repeat, message.delay_ms, message.fail) == (b"hi", 2, 5, "no")


@pytest.mark.parametrize("backend", BACKENDS)
def test_unset_fields_are_left_out(backend: str) -> None:
    """Fields whose value is None are not written."""
    codec = make_codec(EchoReply, backend)
    assert codec.encode(EchoReply()) == STOP
    assert codec.encode(EchoReply(data=b"")) == field(STRING, 1, string(b"")) + STOP


@given(requests)
def test_request_round_trip(message: Any) -> None:
    """Any EchoRequest decodes to an equal struct on both backends, from identical bytes."""
    encoded = {backend: make_codec(EchoRequest, backend).encode(message) for backend in BACKENDS}
    assert encoded["cython"] == encoded["python"]
    for backend in BACKENDS:
        assert make_codec(EchoRequest, backend).decode(encoded[backend]) == message


@given(replies)
def test_reply_round_trip(message: Any) -> None:
    """Any EchoReply, metadata map included, decodes to an equal struct on both backends."""
    for backend in BACKENDS:
        codec = make_codec(EchoReply, backend)
        assert codec.decode(codec.encode(message)) == message


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_thrift_type_round_trips(backend: str, full_kitchen: Any) -> None:
    """Every scalar, container, enum and nested struct survives a round trip."""
    codec = make_codec(kitchen.Kitchen, backend)
    assert codec.decode(codec.encode(full_kitchen)) == full_kitchen


def test_backends_write_the_same_bytes(full_kitchen: Any) -> None:
    """The Cython and Python protocols produce byte-identical payloads."""
    cy, py = (make_codec(kitchen.Kitchen, backend).encode(full_kitchen) for backend in BACKENDS)
    assert cy == py


@pytest.mark.parametrize("backend", BACKENDS)
def test_exception_and_result_structs_round_trip(backend: str) -> None:
    """Exceptions and service result structs (field 0 ``success``) are structs too."""
    error = make_codec(echo_thrift.EchoError, backend).decode(
        make_codec(echo_thrift.EchoError, backend).encode(
            echo_thrift.EchoError(message="m", code=3)
        )
    )
    assert (error.message, error.code) == ("m", 3)
    result_codec = make_codec(echo_thrift.Echo.Unary_result, backend)
    result = echo_thrift.Echo.Unary_result(success=EchoReply(data=b"ok", metadata={}))
    assert result_codec.decode(result_codec.encode(result)) == result


@pytest.mark.parametrize("backend", BACKENDS)
def test_accepts_any_buffer(backend: str) -> None:
    """``bytearray`` and ``memoryview`` payloads decode like ``bytes``."""
    codec = make_codec(EchoRequest, backend)
    assert codec.decode(bytearray(HI_REQUEST)).data == b"hi"
    assert codec.decode(memoryview(b"?" + HI_REQUEST)[1:]).data == b"hi"


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_messages_round_trip(backend: str) -> None:
    """A struct larger than the reused buffer limit round-trips, and so does the next one."""
    codec = make_codec(EchoRequest, backend)
    big = EchoRequest(data=b"x" * (512 * 1024))
    assert codec.decode(codec.encode(big)) == big
    assert codec.decode(codec.encode(EchoRequest(fail="small"))).fail == "small"


# -- Thrift decoding rules ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_absent_fields_keep_idl_defaults(backend: str) -> None:
    """An empty struct decodes with the IDL defaults: repeat 1, delay_ms 0, fail ""."""
    message = make_codec(EchoRequest, backend).decode(STOP)
    assert (message.data, message.repeat, message.delay_ms, message.fail) == (None, 1, 0, "")


@pytest.mark.parametrize("backend", BACKENDS)
def test_fields_may_come_in_any_order(backend: str) -> None:
    """Field order on the wire does not matter (Kitex writes its own order)."""
    reordered = (
        field(STRING, 4, string(b"no"))
        + field(I32, 2, i32(2))
        + field(STRING, 1, string(b"hi"))
        + field(I32, 3, i32(5))
        + STOP
    )
    codec = make_codec(EchoRequest, backend)
    assert codec.decode(reordered) == codec.decode(HI_REQUEST)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_fields_are_skipped(backend: str) -> None:
    """Fields the IDL does not know, of any type, are skipped."""
    unknown = (
        field(STRING, 90, string(b"zzz"))
        + field(DOUBLE, 91, b"\x00" * 8)
        + field(LIST, 92, bytes([I32]) + i32(2) + i32(1) + i32(2))
        + field(
            MAP,
            93,
            bytes([STRING, LIST]) + i32(1) + string(b"k") + bytes([BOOL]) + i32(1) + b"\x01",
        )
        + field(
            STRUCT, 94, field(I64, 1, b"\x00" * 8) + field(SET, 2, bytes([STRING]) + i32(0)) + STOP
        )
        + field(I16, -1, i16(7))
    )
    message = make_codec(EchoRequest, backend).decode(unknown + HI_REQUEST)
    assert (message.data, message.repeat) == (b"hi", 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fields_of_another_type_are_skipped(backend: str) -> None:
    """A known field with an unexpected (non-string) wire type is skipped, keeping the default."""
    message = make_codec(EchoRequest, backend).decode(field(I64, 2, b"\x00" * 7 + b"\x09") + STOP)
    assert message.repeat == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_containers_of_another_element_type_decode_empty(backend: str) -> None:
    """A map whose element types differ from the IDL is skipped and reads as empty (thriftpy2's rule)."""
    wire = field(MAP, 21, bytes([STRING, I64]) + i32(1) + string(b"k") + b"\x00" * 8) + STOP
    assert make_codec(kitchen.Kitchen, backend).decode(wire).counts == {}


# -- malformed input ---------------------------------------------------------------------

MALFORMED = [
    pytest.param(b"", "truncated", id="empty"),
    pytest.param(HI_REQUEST[:-1], "truncated", id="no-stop"),
    pytest.param(HI_REQUEST[:9], "truncated", id="cut-in-field"),
    pytest.param(HI_REQUEST + b"\x00", "trailing", id="trailing-bytes"),
    pytest.param(field(STRING, 1, i32(-16)) + STOP, "negative string length", id="negative-length"),
    pytest.param(field(STRING, 1, i32(2**31 - 16) + b"abc"), "truncated", id="huge-length"),
    pytest.param(bytes([5]) + i16(1) + STOP, "invalid Thrift type id 5", id="bad-field-type"),
    pytest.param(
        bytes([18]) + i16(1) + string(b"hi") + STOP,
        "invalid Thrift type id 18",
        id="binary-wire-type",
    ),
    pytest.param(
        field(LIST, 9, bytes([0]) + i32(2**31 - 1)) + STOP,
        "invalid Thrift type id 0",
        id="zero-width-elements",
    ),
    pytest.param(
        field(LIST, 9, bytes([I32]) + i32(-1)) + STOP,
        "negative container size",
        id="negative-count",
    ),
    pytest.param(
        field(LIST, 9, bytes([I64]) + i32(1000) + b"\x00" * 16) + STOP,
        "does not fit",
        id="count-too-big",
    ),
    pytest.param(
        field(MAP, 9, bytes([STRING, STRING]) + i32(2**30)) + STOP,
        "does not fit",
        id="map-count-too-big",
    ),
    pytest.param(field(I32, 2, b"\x00\x00"), "truncated", id="truncated-int"),
    pytest.param(field(STRING, 2, string(b"12")) + STOP, "string on the wire", id="string-for-i32"),
    pytest.param(field(STRING, 4, string(b"\xff\xfe")) + STOP, "invalid", id="invalid-utf8"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("data", "match"), MALFORMED)
def test_malformed_payloads_are_rejected(backend: str, data: bytes, match: str) -> None:
    """Malformed bytes raise DecodeError, whatever thriftpy2 itself would have done."""
    with pytest.raises(DecodeError, match=match):
        make_codec(EchoRequest, backend).decode(data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_string_keys_for_a_non_string_map_are_rejected(backend: str) -> None:
    """A map<string, ...> on the wire where the IDL has map<i32, ...> is an error, not a misparse."""
    wire = (
        field(MAP, 13, bytes([STRING, LIST]) + i32(1) + string(b"key") + bytes([STRING]) + i32(0))
        + STOP
    )
    with pytest.raises(DecodeError, match=r"map<string, list> on the wire"):
        make_codec(kitchen.Kitchen, backend).decode(wire)


def test_huge_zero_width_containers_fail_fast() -> None:
    """A nine-byte payload declaring 2**31 zero-width elements is refused at once."""
    codec = ThriftStructCodec(EchoRequest)
    payload = field(LIST, 9, bytes([0]) + i32(2**31 - 1)) + STOP
    start = time.perf_counter()
    with pytest.raises(DecodeError):
        codec.decode(payload)
    assert time.perf_counter() - start < 0.1


def nested(levels: int) -> bytes:
    """A Node payload whose structs and lists nest ``levels`` deep in total."""
    assert levels % 2 == 1
    if levels == 1:
        return field(I32, 1, i32(0)) + STOP
    return field(LIST, 2, bytes([STRUCT]) + i32(1) + nested(levels - 2)) + STOP


@pytest.mark.parametrize("backend", BACKENDS)
def test_nesting_is_limited_to_64_levels(backend: str) -> None:
    """Structs and containers may nest 64 levels deep (thriftpy2's limit) but not 65."""
    codec = make_codec(kitchen.Node, backend)
    depth, node = 1, codec.decode(nested(63))
    while node.children:
        depth, node = depth + 1, node.children[0]
    assert depth == 32
    with pytest.raises(DecodeError, match="nested deeper than 64"):
        codec.decode(nested(65))


@given(st.binary())
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    """No input makes decode raise anything but DecodeError."""
    for backend in BACKENDS:
        try:
            make_codec(EchoRequest, backend).decode(data)
        except DecodeError:
            pass


@pytest.fixture(scope="module")
def kitchen_payload() -> bytes:
    """A valid Kitchen payload with every field set."""
    message = kitchen.Kitchen(
        flag=False,
        big=1,
        ratio=0.25,
        text="t",
        blob=b"b",
        leaf=kitchen.Leaf(n=1),
        leaves=[kitchen.Leaf(blob=b"x")],
        tags=["s"],
        buckets={3: [b"y"]},
        by_color={kitchen.Color.BLUE: kitchen.Leaf()},
        labels={"k": "v"},
        matrix=[[1], []],
        switches={True: 1.0},
        by_ratio={2.0: "two"},
        by_blob={b"k": 5},
        colors=[2],
        counts={},
    )
    return ThriftStructCodec(kitchen.Kitchen).encode(message)


@given(data=st.data())
def test_corrupted_payloads_agree_across_backends(
    kitchen_payload: bytes, data: st.DataObject
) -> None:
    """Mutated payloads either decode to the same struct on both backends or fail on both."""
    payload = bytearray(kitchen_payload)
    for _ in range(data.draw(st.integers(1, 4))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    outcomes = []
    for backend in BACKENDS:
        codec = make_codec(kitchen.Kitchen, backend)
        try:
            # Compare re-encoded bytes: a mutated double may be NaN, which is not == itself.
            outcomes.append(codec.encode(codec.decode(bytes(payload[:cut]))))
        except DecodeError:
            outcomes.append(None)
    assert outcomes[0] == outcomes[1]


# -- the one-pass reader of flat structs --------------------------------------------------


def walking_codec(struct_class: Any) -> ThriftStructCodec[Any]:
    """A codec that walks, then reads with thriftpy2, even for a flat struct."""
    with mock.patch.object(thrift_module, "_FLAT", False):
        return ThriftStructCodec(struct_class)


def test_only_structs_of_scalar_fields_are_flat() -> None:
    """Structs of bools, integers, doubles, strings, binaries and enums take the one-pass
    reader; a struct with a nested struct or a container does not."""
    assert ThriftStructCodec(kitchen.Flat)._flat is not None
    assert ThriftStructCodec(EchoRequest)._flat is not None
    assert ThriftStructCodec(kitchen.Kitchen)._flat is None
    assert ThriftStructCodec(EchoReply)._flat is None  # has a map


flats = st.builds(
    kitchen.Flat,
    flag=st.none() | st.booleans(),
    tiny=st.none() | st.integers(-128, 127),
    small=st.none() | st.integers(-(2**15), 2**15 - 1),
    medium=st.none() | int32s,
    big=st.none() | st.integers(-(2**63), 2**63 - 1),
    ratio=st.none() | st.floats(allow_nan=False),
    text=st.none() | st.text(),
    blob=st.none() | st.binary(),
    color=st.none() | st.sampled_from([1, 2, 7]),
)


@given(flats)
def test_flat_reader_reads_what_thriftpy2_reads(message: Any) -> None:
    """Every flat struct decodes to the same fields on the flat reader and thriftpy2's."""
    data = ThriftStructCodec(kitchen.Flat).encode(message)
    flat = ThriftStructCodec(kitchen.Flat).decode(data)
    walked = walking_codec(kitchen.Flat).decode(data)
    assert vars(flat) == vars(walked)
    for name, value in vars(message).items():
        if value is not None:
            assert getattr(flat, name) == value


@given(message=flats, data=st.data())
def test_flat_reader_agrees_with_thriftpy2_on_corrupted_payloads(
    message: Any, data: st.DataObject
) -> None:
    """A mutated or cut flat payload either decodes to the same struct on both readers or
    fails with DecodeError on both."""
    payload = bytearray(ThriftStructCodec(kitchen.Flat).encode(message))
    for _ in range(data.draw(st.integers(0, 4))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    outcomes = []
    for codec in (ThriftStructCodec(kitchen.Flat), walking_codec(kitchen.Flat)):
        try:
            decoded = codec.decode(bytes(payload[:cut]))
            outcomes.append(ThriftStructCodec(kitchen.Flat).encode(decoded))
        except DecodeError:
            outcomes.append(None)
    assert outcomes[0] == outcomes[1]


@given(st.binary(max_size=64))
def test_flat_reader_agrees_with_thriftpy2_on_arbitrary_bytes(data: bytes) -> None:
    """Arbitrary bytes decode alike on both readers, or fail with DecodeError on both."""
    outcomes = []
    for codec in (ThriftStructCodec(EchoRequest), walking_codec(EchoRequest)):
        try:
            outcomes.append(vars(codec.decode(data)))
        except DecodeError:
            outcomes.append(None)
    assert outcomes[0] == outcomes[1]


#: Values of every kind for any field: right and wrong types, in and out of range.
any_value = (
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats()
    | st.text()
    | st.binary()
    | st.sampled_from([kitchen.Color.BLUE, 1.0, [1]])
)


@given(
    st.fixed_dictionaries({name: any_value for _, name, *_ in kitchen.Flat.thrift_spec.values()})
)
def test_flat_writer_writes_what_thriftpy2_writes(values: dict[str, Any]) -> None:
    """Whatever the field values, the flat writer gives thriftpy2's bytes, or the same
    EncodeError (values of another type than the field's go to thriftpy2 itself)."""
    message = kitchen.Flat()
    for name, value in values.items():
        setattr(message, name, value)
    outcomes = []
    for codec in (ThriftStructCodec(kitchen.Flat), walking_codec(kitchen.Flat)):
        try:
            outcomes.append(codec.encode(message))
        except EncodeError:
            outcomes.append(None)
    assert outcomes[0] == outcomes[1]


def test_flat_reader_rejects_what_the_walk_rejects() -> None:
    """Invalid UTF-8 in a string field, a string where the IDL has an integer, a negative
    length and a truncated string are DecodeErrors on the flat reader too."""
    codec = ThriftStructCodec(EchoRequest)
    cases = {
        "UnicodeDecodeError": field(STRING, 4, string(b"\xff")) + STOP,
        "is a string on the wire": field(STRING, 2, string(b"x")) + STOP,
        "negative string length": field(STRING, 1, i32(-1)) + STOP,
        "truncated": field(STRING, 1, i32(9) + b"abc"),
    }
    for match, payload in cases.items():
        with pytest.raises(DecodeError, match=match):
            codec.decode(payload)


# -- encode errors and construction -------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "message",
    [
        pytest.param(EchoReply(data=b"x"), id="other-struct"),
        pytest.param({"data": b"x"}, id="dict"),
        pytest.param(None, id="none"),
    ],
)
def test_wrong_message_type_is_rejected(backend: str, message: object) -> None:
    """Encoding anything but an EchoRequest with the EchoRequest codec raises EncodeError."""
    with pytest.raises(EncodeError, match="expected EchoRequest"):
        make_codec(EchoRequest, backend).encode(message)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "message",
    [
        pytest.param(EchoRequest(repeat="x"), id="str-for-i32"),
        pytest.param(EchoRequest(repeat=2**31), id="i32-overflow"),
        pytest.param(EchoRequest(data=12), id="int-for-binary"),
    ],
)
def test_unencodable_field_values_are_rejected(backend: str, message: object) -> None:
    """A field value that does not fit its IDL type raises EncodeError."""
    with pytest.raises(EncodeError, match="cannot encode EchoRequest"):
        make_codec(EchoRequest, backend).encode(message)


def test_encoder_recovers_after_an_error() -> None:
    """A failed encode leaves nothing behind in the reused buffer."""
    codec = ThriftStructCodec(EchoRequest)
    with pytest.raises(EncodeError):
        codec.encode(EchoRequest(data=b"partial", repeat="x"))
    assert codec.encode(EchoRequest(data=b"hi", repeat=2, delay_ms=5, fail="no")) == HI_REQUEST


class ApacheStyle:
    """Apache Thrift's generated classes carry a tuple ``thrift_spec``."""

    thrift_spec = (None, (1, STRING, "data", "BINARY", None))


@pytest.mark.parametrize("tp", [dict, bytes, EchoRequest(), ApacheStyle, echo_thrift.Echo])
def test_non_struct_types_are_refused(tp: object) -> None:
    """The codec can only be built for a thriftpy2 struct class."""
    with pytest.raises(TypeError, match="not a thriftpy2 struct class"):
        ThriftStructCodec(tp)  # type: ignore[arg-type]
