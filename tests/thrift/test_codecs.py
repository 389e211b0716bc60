"""ArgsCodec and ResultCodec: the per-call codecs of Thrift methods write exactly the bytes
ThriftStructCodec writes for the same struct, read back what it reads, and leave every
other case (non-flat structs, wrong value types, unknown fields, malformed bytes) to it."""

from __future__ import annotations

import io
from typing import Any

import pytest
import thriftpy2
from hypothesis import given, settings, strategies as st

from tether.buffer import BufferList
from tether.encoding import DecodeError, EncodeError, ThriftStructCodec
from tether.thrift._codecs import ArgsCodec, ResultCodec, SingleArgCodec

IDL = """
struct Point { 1: i32 x }
service Kinds {
    string flat(3: double ratio, 1: i32 count, 2: binary data, 4: string text = "d",
                5: bool flag, 6: i64 big, 7: byte small, 8: i16 mid)
    binary echo(1: binary data)
    i64 number(1: i64 n)
    void nothing(1: i32 n)
    list<i32> listed(1: Point p)
}
"""

MODULE: Any = thriftpy2.load_fp(io.StringIO(IDL), module_name="codecs_kinds_thrift")
KINDS = MODULE.Kinds
FLAT_NAMES = ["count", "data", "ratio", "text", "flag", "big", "small", "mid"]

flat_values = st.tuples(
    st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
    st.one_of(st.none(), st.binary(max_size=40)),
    st.one_of(st.none(), st.floats(allow_nan=False)),
    st.one_of(st.none(), st.text(max_size=20)),
    st.one_of(st.none(), st.booleans()),
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), st.integers(-128, 127)),
    st.one_of(st.none(), st.integers(-(2**15), 2**15 - 1)),
)


def _struct_bytes(values: tuple[Any, ...]) -> bytes:
    args = KINDS.flat_args(**dict(zip(FLAT_NAMES, values, strict=False)))
    return ThriftStructCodec(KINDS.flat_args).encode(args)


@settings(max_examples=200, deadline=None)
@given(flat_values)
def test_args_encode_writes_the_struct_codec_bytes(values: tuple[Any, ...]) -> None:
    """A tuple of argument values encodes to the bytes of the args struct built from them."""
    assert ArgsCodec(KINDS.flat_args).encode(values) == _struct_bytes(values)


@settings(max_examples=200, deadline=None)
@given(flat_values)
def test_args_decode_reads_back_every_argument(values: tuple[Any, ...]) -> None:
    """Decoding gives every argument by name, with IDL defaults for the absent ones, as
    the struct codec's decoded struct holds them."""
    data = _struct_bytes(values)
    got = ArgsCodec(KINDS.flat_args).decode(data)
    want = ThriftStructCodec(KINDS.flat_args).decode(data)
    assert got == {name: getattr(want, name) for name in FLAT_NAMES}


def test_args_fewer_values_take_the_idl_defaults() -> None:
    """A short tuple leaves the remaining arguments to their IDL defaults (text="d")."""
    codec = ArgsCodec(KINDS.flat_args)
    assert codec.decode(codec.encode((1,)))["text"] == "d"
    assert codec.decode(b"\x00")["text"] == "d"


def test_args_wrong_types_fall_back_to_the_struct_codec() -> None:
    """A value of another type goes through thriftpy2, which refuses it as before."""
    codec = ArgsCodec(KINDS.flat_args)
    with pytest.raises(EncodeError):
        codec.encode((None, 12345, None, None, None, None, None, None))
    with pytest.raises(EncodeError):
        codec.encode(("not an int", None, None, None, None, None, None, None))


def test_args_encode_takes_a_struct_too() -> None:
    """An args struct (the stub's keyword path) encodes as the struct codec does."""
    args = KINDS.flat_args(count=3, text="x")
    assert ArgsCodec(KINDS.flat_args).encode(args) == ThriftStructCodec(KINDS.flat_args).encode(
        args
    )


def test_args_unknown_and_mistyped_fields_are_skipped_as_thrift_says() -> None:
    """Unknown fields and known ids of another wire type are skipped (the struct codec's
    rules), not taken as arguments."""
    unknown = b"\x08\x00\x63\x00\x00\x00\x07"  # field 99, i32
    mistyped = b"\x0a\x00\x01" + bytes(8)  # field 1 (i32 in the IDL) as an i64
    count = b"\x08\x00\x01\x00\x00\x00\x05"
    got = ArgsCodec(KINDS.flat_args).decode(unknown + mistyped + count + b"\x00")
    assert got["count"] == 5
    assert got["text"] == "d"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x08\x00\x01\x00", b"\x0b\x00\x02\xff\xff\xff\xff\x00", b"\x00\x00", b"\x63"],
)
def test_args_malformed_bytes_raise_the_struct_codec_error(data: bytes) -> None:
    """Truncated, negative-length, trailing or invalid bytes raise DecodeError."""
    with pytest.raises(DecodeError):
        ArgsCodec(KINDS.flat_args).decode(data)


def test_args_invalid_utf8_raises() -> None:
    """A string argument that is not UTF-8 raises DecodeError, as the struct codec does."""
    with pytest.raises(DecodeError):
        ArgsCodec(KINDS.flat_args).decode(b"\x0b\x00\x04\x00\x00\x00\x01\xff\x00")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_args_decode_agrees_with_the_struct_codec_on_any_bytes(data: bytes) -> None:
    """Random bytes: both decode to the same arguments or both raise DecodeError."""
    try:
        want = ThriftStructCodec(KINDS.flat_args).decode(data)
    except DecodeError:
        with pytest.raises(DecodeError):
            ArgsCodec(KINDS.flat_args).decode(data)
        return
    got = ArgsCodec(KINDS.flat_args).decode(data)
    assert got == {name: getattr(want, name) for name in FLAT_NAMES}


@pytest.mark.parametrize(
    ("method", "value"),
    [("echo", b"\x00abc"), ("echo", b""), ("number", -(2**40)), ("nothing", None)],
)
def test_result_round_trip_matches_the_struct_codec(method: str, value: Any) -> None:
    """A return value encodes as the result struct with ``success`` set, and decodes back."""
    result_cls = getattr(KINDS, f"{method}_result")
    codec = ResultCodec(result_cls)
    struct = result_cls() if value is None else result_cls(success=value)
    data = codec.encode(value)
    assert data == ThriftStructCodec(result_cls).encode(struct)
    assert codec.decode(data) == value


def test_result_none_is_an_empty_struct() -> None:
    """``None`` writes no success field; an empty result decodes to ``None``."""
    codec = ResultCodec(KINDS.echo_result)
    assert codec.encode(None) == b"\x00"
    assert codec.decode(b"\x00") is None


def test_result_of_a_container_goes_through_the_struct_codec() -> None:
    """A non-flat success type (list<i32>) still round-trips, through thriftpy2."""
    codec = ResultCodec(KINDS.listed_result)
    assert codec.decode(codec.encode([1, 2, 3])) == [1, 2, 3]


def test_result_wrong_type_and_bad_bytes_raise() -> None:
    """A value thriftpy2 cannot write raises EncodeError; malformed bytes DecodeError."""
    codec = ResultCodec(KINDS.number_result)
    with pytest.raises(EncodeError):
        codec.encode("nope")
    with pytest.raises(DecodeError):
        codec.decode(b"\x0a\x00\x00\x00")
    with pytest.raises(DecodeError):
        codec.decode(b"\x00\x00")


def test_large_values_and_views_take_the_struct_codec_path_with_the_same_result() -> None:
    """A value of 64 KiB or more, and a payload given as a view, go through the struct
    codec (its large-payload path) and give the same bytes and values."""
    big = bytes(range(256)) * 400
    result = ResultCodec(KINDS.echo_result)
    data = result.encode(big)
    assert data == ThriftStructCodec(KINDS.echo_result).encode(KINDS.echo_result(success=big))
    assert result.decode(memoryview(data)) == big
    args = ArgsCodec(KINDS.flat_args)
    values = (1, big, None, None, None, None, None, None)
    encoded = args.encode(values)
    assert encoded == _struct_bytes(values)
    assert args.decode(memoryview(encoded))["data"] == big


def test_large_values_are_sent_by_reference_and_small_ones_as_one_bytes() -> None:
    """encode_payload hands a large argument or result value on as the caller's own
    object inside a BufferList (no join), with exactly encode()'s bytes; small values
    give encode()'s single bytes."""
    big = bytes(range(256)) * 400
    result = ResultCodec(KINDS.echo_result)
    payload = result.encode_payload(big)
    assert isinstance(payload, BufferList)
    assert any(chunk is big for chunk in payload.chunks)
    assert bytes(payload) == result.encode(big)
    args = ArgsCodec(KINDS.echo_args)
    sent = args.encode_payload((big,))
    assert isinstance(sent, BufferList)
    assert any(chunk is big for chunk in sent.chunks)
    assert bytes(sent) == args.encode((big,))
    assert result.encode_payload(b"small") == result.encode(b"small")
    assert args.encode_payload((b"small",)) == args.encode((b"small",))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=40), st.builds(lambda v: b"\x0b\x00\x01" + v, st.binary())))
def test_single_string_fast_path_agrees_with_the_struct_codec_on_any_bytes(data: bytes) -> None:
    """A one-binary-field args struct, a result and the one-argument codec decode any
    bytes as the struct codec does (same value, or DecodeError alike)."""
    args_struct = ThriftStructCodec(KINDS.echo_args)
    try:
        want = args_struct.decode(data).data
    except DecodeError:
        for codec in (ArgsCodec(KINDS.echo_args), SingleArgCodec(KINDS.echo_args)):
            with pytest.raises(DecodeError):
                codec.decode(data)
    else:
        assert ArgsCodec(KINDS.echo_args).decode(data) == {"data": want}
        assert SingleArgCodec(KINDS.echo_args).decode(data) == want
    result = data.replace(b"\x0b\x00\x01", b"\x0b\x00\x00", 1)
    try:
        success = ThriftStructCodec(KINDS.echo_result).decode(result).success
    except DecodeError:
        with pytest.raises(DecodeError):
            ResultCodec(KINDS.echo_result).decode(result)
    else:
        assert ResultCodec(KINDS.echo_result).decode(result) == success


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_single_string_fields_encode_as_the_struct_codec(value: bytes) -> None:
    """A one-binary-field args tuple and a binary result encode to the struct codec's
    bytes, whatever their length (each length's prefix is cached separately)."""
    assert ArgsCodec(KINDS.echo_args).encode((value,)) == ThriftStructCodec(KINDS.echo_args).encode(
        KINDS.echo_args(data=value)
    )
    assert ResultCodec(KINDS.echo_result).encode(value) == ThriftStructCodec(
        KINDS.echo_result
    ).encode(KINDS.echo_result(success=value))


def test_single_string_text_field_decodes_utf8_or_raises() -> None:
    """A one-string-field struct decodes to ``str``; invalid UTF-8 still raises."""
    module: Any = thriftpy2.load_fp(
        io.StringIO("service T { string say(1: string text) }"), module_name="single_text_thrift"
    )
    codec = SingleArgCodec(module.T.say_args)
    assert codec.decode(codec.encode(("héllo",))) == "héllo"
    with pytest.raises(DecodeError):
        codec.decode(b"\x0b\x00\x01\x00\x00\x00\x01\xff\x00")
    assert ResultCodec(module.T.say_result).decode(b"\x0b\x00\x00\x00\x00\x00\x02hi\x00") == "hi"


def test_single_arg_codec_absent_argument_takes_its_default() -> None:
    """An empty args struct decodes to the argument's IDL default (None here)."""
    assert SingleArgCodec(KINDS.echo_args).decode(b"\x00") is None


def test_single_arg_codec_refuses_a_struct_of_several_fields() -> None:
    """SingleArgCodec is only for one-argument methods."""
    with pytest.raises(ValueError, match="not 1"):
        SingleArgCodec(KINDS.flat_args)
