"""message_to_json / message_from_json: one line of JSON per message, for every payload kind."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import thriftpy2
from hypothesis import given, strategies as st

from tether.demo.echo_pb2 import EchoReply, EchoRequest
from tether.demo.schemas import echo_thrift
from tether.encoding import DecodeError, EncodeError, message_from_json, message_to_json

kitchen = thriftpy2.load(
    str(Path(__file__).with_name("kitchen.thrift")), module_name="kitchen_thrift"
)

int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
pb_requests = st.builds(
    EchoRequest, data=st.binary(), repeat=int32s, delay_ms=int32s, fail=st.text()
)
pb_replies = st.builds(
    EchoReply, data=st.binary(), metadata=st.dictionaries(st.text(), st.text(), max_size=5)
)
thrift_requests = st.builds(
    echo_thrift.EchoRequest,
    data=st.none() | st.binary(),
    repeat=int32s,
    delay_ms=int32s,
    fail=st.text(),
)
thrift_replies = st.builds(
    echo_thrift.EchoReply,
    data=st.none() | st.binary(),
    metadata=st.none() | st.dictionaries(st.text(), st.text(), max_size=5),
)


def assert_one_line(text: str) -> None:
    """The output is a single line by every definition Python knows."""
    assert len(text.splitlines()) == 1


# -- protobuf ----------------------------------------------------------------------------


def test_protobuf_request_to_json() -> None:
    """Proto field names, bytes as base64, defaults printed, compact."""
    text = message_to_json(EchoRequest(data=b"hi", repeat=2))
    assert text == '{"data":"aGk=","repeat":2,"delay_ms":0,"fail":""}'


def test_protobuf_reply_to_json() -> None:
    """The metadata map is a JSON object."""
    text = message_to_json(EchoReply(data=b"\xff", metadata={"k": "v"}))
    assert text == '{"data":"/w==","metadata":{"k":"v"}}'


@given(pb_requests)
def test_protobuf_request_round_trip(message: EchoRequest) -> None:
    """Any EchoRequest survives JSON and back, on one line."""
    text = message_to_json(message)
    assert_one_line(text)
    assert message_from_json(text, EchoRequest) == message


@given(pb_replies)
def test_protobuf_reply_round_trip(message: EchoReply) -> None:
    """Any EchoReply, metadata map and binary data included, survives JSON and back."""
    text = message_to_json(message)
    assert_one_line(text)
    assert message_from_json(text, EchoReply) == message


def test_protobuf_parser_takes_camel_case_and_dicts() -> None:
    """lowerCamelCase names and already-parsed dicts are accepted."""
    assert message_from_json('{"delayMs": 3}', EchoRequest) == EchoRequest(delay_ms=3)
    assert message_from_json({"data": "aGk="}, EchoRequest) == EchoRequest(data=b"hi")


@pytest.mark.parametrize(
    "text",
    [
        '{"nope": 1}',
        '{"repeat": "x"}',
        '{"data": "a"}',
        '{"data": 5}',
        "{",
        "[1]",
        '{"repeat": 4294967296}',
    ],
)
def test_protobuf_invalid_json_is_rejected(text: str) -> None:
    """Unknown fields, wrong types, bad base64 and broken JSON raise DecodeError."""
    with pytest.raises(DecodeError):
        message_from_json(text, EchoRequest)


# -- thrift ------------------------------------------------------------------------------


def test_thrift_request_to_json() -> None:
    """IDL field names, binary as base64, i32 as numbers: the same shape as the proto mapping."""
    text = message_to_json(echo_thrift.EchoRequest(data=b"hi", repeat=2))
    assert text == '{"data":"aGk=","repeat":2,"delay_ms":0,"fail":""}'


def test_thrift_reply_to_json() -> None:
    """Unset fields are left out; the metadata map is a JSON object."""
    assert message_to_json(echo_thrift.EchoReply()) == "{}"
    text = message_to_json(echo_thrift.EchoReply(data=b"\xff", metadata={"k": "v"}))
    assert text == '{"data":"/w==","metadata":{"k":"v"}}'


@given(thrift_requests)
def test_thrift_request_round_trip(message: Any) -> None:
    """Any Thrift EchoRequest survives JSON and back, on one line."""
    text = message_to_json(message)
    assert_one_line(text)
    assert message_from_json(text, echo_thrift.EchoRequest) == message


@given(thrift_replies)
def test_thrift_reply_round_trip(message: Any) -> None:
    """Any Thrift EchoReply, metadata map and binary data included, survives JSON and back."""
    text = message_to_json(message)
    assert_one_line(text)
    assert message_from_json(text, echo_thrift.EchoReply) == message


def test_thrift_missing_fields_keep_idl_defaults() -> None:
    """Fields absent from the JSON keep the IDL defaults: repeat 1, delay_ms 0, fail ""."""
    message = message_from_json("{}", echo_thrift.EchoRequest)
    assert (message.data, message.repeat, message.delay_ms, message.fail) == (None, 1, 0, "")


def test_thrift_null_unsets_a_field() -> None:
    """``null`` leaves a field unset even when the IDL gives it a default."""
    assert message_from_json('{"repeat": null}', echo_thrift.EchoRequest).repeat is None


def test_thrift_every_type_to_json(full_kitchen: Any) -> None:
    """Enums by name, map keys as strings, sets as arrays, nested structs as objects."""
    assert json.loads(message_to_json(full_kitchen)) == {
        "flag": True,
        "tiny": -128,
        "small": -32768,
        "medium": 2147483647,
        "big": -9223372036854775808,
        "ratio": -1.5,
        "text": "héllo\n",
        "blob": "AP8=",
        "color": "BLUE",
        "leaf": {"n": 7, "blob": "bGVhZg=="},
        "leaves": [{"n": 1}, {"n": 2, "blob": ""}],
        "tags": ["a", "b"],
        "buckets": {"1": ["eA==", ""], "-2": []},
        "by_color": {"RED": {"n": 3}},
        "labels": {"k": "v", "": ""},
        "matrix": [[1, 2], [], [3]],
        "switches": {"true": 0.5, "false": -2.0},
        "by_ratio": {"1.25": "one and a quarter"},
        "by_blob": {"AQ==": 4611686018427387904},
        "colors": ["RED", "GREEN"],
        "counts": {"n": -1},
    }


def test_thrift_every_type_round_trips(full_kitchen: Any) -> None:
    """Every Thrift type survives JSON and back."""
    text = message_to_json(full_kitchen)
    assert_one_line(text)
    assert message_from_json(text, kitchen.Kitchen) == full_kitchen


def test_thrift_lenient_inputs() -> None:
    """Enums by number, integers as decimal strings, URL-safe unpadded base64 are accepted."""
    message = message_from_json(
        '{"color": 7, "big": "-9223372036854775808", "medium": 3.0, "blob": "-_8",'
        ' "colors": ["RED", 2], "by_color": {"1": {}}, "ratio": "-Infinity"}',
        kitchen.Kitchen,
    )
    assert message.color == kitchen.Color.BLUE
    assert message.big == -(2**63)
    assert message.medium == 3
    assert message.blob == b"\xfb\xff"
    assert message.colors == [1, 2]
    assert message.by_color == {1: kitchen.Leaf()}
    assert message.ratio == -math.inf


def test_thrift_special_doubles_and_unknown_enum_values() -> None:
    """Non-finite doubles become strings; enum values without a name stay numbers."""
    text = message_to_json(kitchen.Kitchen(ratio=math.nan, color=99, by_ratio={math.inf: "i"}))
    assert text == '{"medium":42,"ratio":"NaN","color":99,"by_ratio":{"Infinity":"i"}}'
    assert math.isnan(message_from_json(text, kitchen.Kitchen).ratio)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"nope": 1}', "has no field 'nope'"),
        ('{"repeat": "x"}', "expected an integer, got a string"),
        ('{"repeat": 2147483648}', "does not fit i32"),
        ('{"repeat": true}', "expected an integer, got a boolean"),
        ('{"repeat": 1.5}', "expected an integer, got a number"),
        ('{"data": 5}', "expected a base64 string"),
        ('{"data": "a"}', "invalid base64"),
        ('{"fail": 1}', "expected a string"),
        ("[]", "expected an object"),
        ("{", "invalid JSON"),
    ],
)
def test_thrift_invalid_json_is_rejected(text: str, match: str) -> None:
    """Unknown fields, wrong types, out-of-range numbers and bad base64 raise DecodeError."""
    with pytest.raises(DecodeError, match=match):
        message_from_json(text, echo_thrift.EchoRequest)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"color": "PURPLE"}', "'PURPLE' is not a Color name"),
        ('{"switches": {"yes": 1}}', 'expected "true" or "false"'),
        ('{"by_ratio": {"1.2.3": "x"}}', "expected a number"),
        ('{"buckets": {"x": []}}', "expected an integer"),
        ('{"metadata": []}', "has no field"),
        ('{"labels": {"k": null}}', "expected a string, got null"),
        ('{"leaves": [1]}', "expected an object, got a number"),
        ('{"tags": "a"}', "expected an array"),
        ('{"leaf": {"n": 1, "x": 2}}', "Leaf has no field 'x'"),
        ('{"flag": 1}', "expected a boolean"),
        ('{"ratio": "1.5"}', "expected a number"),
    ],
)
def test_thrift_nested_errors_name_the_path(text: str, match: str) -> None:
    """Errors inside containers and nested structs raise DecodeError."""
    with pytest.raises(DecodeError, match=match):
        message_from_json(text, kitchen.Kitchen)


def test_thrift_struct_keys_have_no_json_form() -> None:
    """A map keyed by structs cannot be written as JSON."""
    with pytest.raises(EncodeError, match="maps keyed by struct"):
        message_to_json(kitchen.StructKeys(by_leaf={kitchen.Leaf(n=1): 1}))
    with pytest.raises(DecodeError, match="maps keyed by struct"):
        message_from_json('{"by_leaf": {"x": 1}}', kitchen.StructKeys)


@pytest.mark.parametrize(
    "message",
    [
        echo_thrift.EchoRequest(repeat="x"),
        echo_thrift.EchoRequest(data=5),
        echo_thrift.EchoRequest(fail=b"\xff"),
        echo_thrift.EchoReply(metadata=[1]),
    ],
)
def test_thrift_unmappable_values_are_rejected(message: Any) -> None:
    """Field values that do not fit their IDL type raise EncodeError."""
    with pytest.raises(EncodeError):
        message_to_json(message)


# -- raw and plain values ----------------------------------------------------------------


def test_raw_is_a_base64_string() -> None:
    """Raw bytes are one base64 JSON string; the standard and URL-safe alphabets parse."""
    assert message_to_json(b"hi") == '"aGk="'
    assert message_to_json(memoryview(b"\xfb\xff")) == '"+/8="'
    assert message_from_json('"aGk="', bytes) == b"hi"
    assert message_from_json('"-_8"', bytes) == b"\xfb\xff"


@given(st.binary())
def test_raw_round_trip(data: bytes) -> None:
    """Any bytes survive JSON and back."""
    assert message_from_json(message_to_json(data), bytes) == data


@pytest.mark.parametrize("text", ["1", '{"data": "aGk="}', '"a"', '"a b="', "null"])
def test_raw_rejects_anything_but_base64(text: str) -> None:
    """Raw JSON must be a valid base64 string."""
    with pytest.raises(DecodeError):
        message_from_json(text, bytes)


def test_plain_values_to_json() -> None:
    """Bytes anywhere become base64, tuples arrays, NaN a string, other keys their JSON text."""
    value = {
        "a": b"\x00",
        "b": (1, 2),
        b"k": 1.5,
        3: None,
        "n": math.nan,
        True: [math.inf],
        None: 0,
    }
    text = message_to_json(value)
    assert (
        text == '{"a":"AA==","b":[1,2],"aw==":1.5,"3":null,"n":"NaN","true":["Infinity"],"null":0}'
    )


def test_plain_values_from_json() -> None:
    """Plain JSON comes back as parsed, checked against a plain class when one is given."""
    assert message_from_json('{"a": [1, "aGk="]}', None) == {"a": [1, "aGk="]}
    assert message_from_json('{"a": 1}', dict) == {"a": 1}
    assert message_from_json("2", float) == 2.0
    assert message_from_json(b'"x"', str) == "x"
    assert message_from_json("[1]", object) == [1]
    with pytest.raises(DecodeError, match="expected dict, got an array"):
        message_from_json("[1]", dict)


@pytest.mark.parametrize("value", [object(), {1, 2}, {(1, 2): 3}, [1, object()]])
def test_plain_values_without_json_form_are_rejected(value: object) -> None:
    """Objects, sets and tuple keys raise EncodeError."""
    with pytest.raises(EncodeError, match="no JSON form"):
        message_to_json(value)


@given(st.text())
def test_output_is_always_one_line(text: str) -> None:
    """Line breaks of every kind inside strings are escaped, and the text round-trips."""
    for message in (text, {"k": text}, echo_thrift.EchoRequest(fail=text), EchoRequest(fail=text)):
        output = message_to_json(message)
        assert_one_line(output)
    assert json.loads(message_to_json(text + "\u2028\x85\n")) == text + "\u2028\x85\n"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["data", "repeat", "metadata", "fail", "leaf", "labels", "n"])
            | st.text(),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(json_values)
def test_arbitrary_json_builds_or_raises_decode_error(value: Any) -> None:
    """No JSON value makes message_from_json raise anything but DecodeError."""
    for tp in (EchoRequest, EchoReply, echo_thrift.EchoReply, kitchen.Kitchen, bytes, dict):
        try:
            message_from_json(json.dumps(value), tp)
        except DecodeError:
            pass


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    """Structures nested past the recursion limit raise EncodeError / DecodeError."""
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="nested too deeply"):
        message_to_json(loop)
    deep = '{"children": [' * 300 + "{}" + "]}" * 300
    with pytest.raises(DecodeError, match="nested too deeply"):
        message_from_json(deep, kitchen.Node)
