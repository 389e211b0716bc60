"""Hypothesis: round trips through every Kitex-family format, and fuzzing of every
decoder with random and mutated frames (only typed protocol errors, never a crash or a
hang; iterations bounded)."""

from __future__ import annotations

import struct

from hypothesis import given, settings, strategies as st

from tether import RemoteProtocolError
from tether.framing import CallStarted, ConnectionClosed, Event, Message, Role, Trailers
from tether.framing.thrift import (
    THeader,
    ThriftCodec,
    Transport,
    decode_theader,
    decode_ttheader,
    encode_theader,
    encode_ttheader,
    skip_struct,
)
from tether.framing.thrift._binary import StructWalker

FUZZ = settings(max_examples=300, deadline=None)
ROUND_TRIP = settings(max_examples=60, deadline=None)
HEADER_TRANSPORTS = (Transport.TTHEADER, Transport.TTHEADER_FRAMED, Transport.THEADER)


def _field(type_id: int, field_id: int, value: bytes) -> bytes:
    return struct.pack(">bh", type_id, field_id) + value


def _string(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


scalars = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(lambda v: (8, struct.pack(">i", v))),
    st.binary(max_size=20).map(lambda v: (11, _string(v))),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4).map(
        lambda vs: (
            15,
            struct.pack(">bi", 10, len(vs)) + b"".join(struct.pack(">q", v) for v in vs),
        )
    ),
    st.dictionaries(st.binary(max_size=5), st.binary(max_size=5), max_size=3).map(
        lambda d: (
            13,
            struct.pack(">bbi", 11, 11, len(d))
            + b"".join(_string(k) + _string(v) for k, v in d.items()),
        )
    ),
)


def _struct_of(fields: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_field(t, i + 1, v) for i, (t, v) in enumerate(fields)) + b"\x00"


thrift_structs = st.recursive(
    st.lists(scalars, max_size=4).map(_struct_of),
    lambda inner: st.lists(st.one_of(scalars, inner.map(lambda s: (12, s))), max_size=4).map(
        _struct_of
    ),
    max_leaves=8,
)
keys = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=12
).filter(lambda k: k not in ("isn", "crrst"))
metadata = st.dictionaries(keys, st.text(max_size=16), max_size=4).map(lambda d: tuple(d.items()))
methods = st.text(min_size=1, max_size=16)
transports = st.sampled_from(list(Transport))


def feed(codec: ThriftCodec, data: bytes, cuts: list[int]) -> list[Event]:
    events: list[Event] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        events += codec.receive_data(data[start:cut])
        start = cut
    return events


@ROUND_TRIP
@given(
    transport=transports,
    method=methods,
    args=thrift_structs,
    result=thrift_structs,
    request_md=metadata,
    reply_md=metadata,
    timeout_ms=st.none() | st.integers(1, 10**7),
    cuts=st.lists(st.integers(0, 10**4), max_size=5),
)
def test_thrift_round_trip(
    transport: Transport,
    method: str,
    args: bytes,
    result: bytes,
    request_md: tuple[tuple[str, str], ...],
    reply_md: tuple[tuple[str, str], ...],
    timeout_ms: int | None,
    cuts: list[int],
) -> None:
    """Any call and reply cross every transport intact, however the bytes are split."""
    client = ThriftCodec(Role.CLIENT, transport=transport)
    server = ThriftCodec(Role.SERVER)
    sid = client.next_stream_id()
    timeout = None if timeout_ms is None else timeout_ms / 1000
    client.send(
        CallStarted(
            stream_id=sid, service="Echo", method=method, metadata=request_md, timeout=timeout
        )
    )
    client.send(Message(stream_id=sid, data=args, end_stream=True))
    got = feed(server, client.data_to_send(), cuts)
    started, body = got
    assert isinstance(started, CallStarted)
    assert (started.stream_id, started.method, started.encoding) == (sid, method, "thrift")
    assert body == Message(stream_id=sid, data=args, end_stream=True)
    if transport in HEADER_TRANSPORTS:
        assert set(request_md) <= set(started.metadata)
    if transport in (Transport.TTHEADER, Transport.TTHEADER_FRAMED):
        assert (started.service, started.timeout) == ("Echo", timeout)
    server.send(Message(stream_id=sid, data=result))
    server.send(Trailers(stream_id=sid, metadata=reply_md))
    reply = feed(client, server.data_to_send(), cuts)
    assert reply[0] == Message(stream_id=sid, data=result)
    final = reply[1]
    assert isinstance(final, Trailers)
    if transport in HEADER_TRANSPORTS:
        assert set(reply_md) <= set(final.metadata)
    assert client.receive_eof() == server.receive_eof() == [ConnectionClosed()]


@ROUND_TRIP
@given(
    transport=st.sampled_from(list(Transport)[:-1]),
    method=methods,
    body=st.binary(max_size=64),
    seq=st.integers(1, 2**31 - 1),
)
def test_kitex_protobuf_round_trip(
    transport: Transport, method: str, body: bytes, seq: int
) -> None:
    """Kitex Protobuf messages (any bytes) round-trip with any seq id."""
    client = ThriftCodec(Role.CLIENT, transport=transport, encoding="proto")
    server = ThriftCodec(Role.SERVER)
    client._next_seq = seq
    sid = client.next_stream_id()
    client.send(CallStarted(stream_id=sid, service="EchoPB", method=method))
    client.send(Message(stream_id=sid, data=body, end_stream=True))
    started, message = server.receive_data(client.data_to_send())
    assert isinstance(started, CallStarted)
    assert (started.stream_id, started.method, started.encoding) == (sid, method, "proto")
    assert message == Message(stream_id=sid, data=body, end_stream=True)
    server.send(Message(stream_id=sid, data=body[::-1]))
    server.send(Trailers(stream_id=sid))
    assert client.receive_data(server.data_to_send())[0] == Message(stream_id=sid, data=body[::-1])


header_strings = st.text(max_size=30)


@FUZZ
@given(
    str_info=st.dictionaries(header_strings, header_strings, max_size=5),
    int_info=st.dictionaries(st.integers(0, 0xFFFF), header_strings, max_size=5),
    flags=st.integers(0, 0xFFFF),
    seq=st.integers(-(2**31), 2**31 - 1),
    payload=st.binary(max_size=20),
)
def test_ttheader_encode_decode_round_trip(
    str_info: dict[str, str], int_info: dict[int, str], flags: int, seq: int, payload: bytes
) -> None:
    """Any TTHeader fields encode and decode back unchanged."""
    frame = (
        encode_ttheader(
            flags=flags,
            seq_id=seq,
            protocol_id=0,
            str_info=dict(str_info),
            int_info=int_info,
            payload_size=len(payload),
        )
        + payload
    )
    header, start = decode_ttheader(memoryview(frame), 0, len(frame))
    assert (header.flags, header.seq_id, header.str_info, header.int_info) == (
        flags,
        seq,
        str_info,
        int_info,
    )
    assert frame[start:] == payload
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4


@FUZZ
@given(
    headers=st.dictionaries(header_strings, header_strings, max_size=5),
    zlib=st.booleans(),
    seq=st.integers(-(2**31), 2**31 - 1),
    payload=st.binary(max_size=40),
)
def test_theader_encode_decode_round_trip(
    headers: dict[str, str], zlib: bool, seq: int, payload: bytes
) -> None:
    """Any THeader headers and payload (zlib or not) encode and decode back unchanged."""
    frame = encode_theader(
        THeader(seq_id=seq, transforms=(1,) if zlib else ()), dict(headers), payload
    )
    header, got = decode_theader(memoryview(frame), 0, len(frame), 1 << 20)
    assert (header.seq_id, header.headers, got) == (seq, headers, payload)


@FUZZ
@given(thrift_structs, st.integers(0, 200))
def test_skip_struct_finds_every_generated_struct(data: bytes, cut: int) -> None:
    """The walker ends exactly at the generated struct's end and never before it."""
    view = memoryview(data + b"tail")
    assert skip_struct(view, 0, len(view)) == len(data)
    if cut < len(data):
        assert skip_struct(view, 0, cut) == -1


@FUZZ
@given(thrift_structs, st.lists(st.integers(0, 300), max_size=8))
def test_struct_walker_resumes_across_pieces(data: bytes, cuts: list[int]) -> None:
    """Walking a struct piece by piece (keeping the walker) ends exactly where a one-shot
    walk does, and reports NEED_MORE before that."""
    view = memoryview(data)
    walker = StructWalker(0)
    for cut in sorted(c % len(data) for c in cuts):
        assert walker.walk(view, cut) == -1
        assert walker.pos <= cut
    assert walker.walk(view, len(data)) == len(data)


# -- fuzzing ------------------------------------------------------------------------


def _corpus() -> list[bytes]:
    """One valid request and reply per transport and encoding."""
    frames = []
    for transport in Transport:
        for encoding in ("thrift", "proto"):
            if encoding == "proto" and transport is Transport.THEADER:
                continue
            client = ThriftCodec(Role.CLIENT, transport=transport)
            server = ThriftCodec(Role.SERVER)
            client.send(
                CallStarted(
                    stream_id=1,
                    service="Echo",
                    method="echo",
                    metadata=(("RPC_TRANSIT_k", "v"),),
                    timeout=1.0,
                    encoding=encoding,
                )
            )
            client.send(
                Message(stream_id=1, data=bytes.fromhex("0b000100000002686900"), end_stream=True)
            )
            request = client.data_to_send()
            server.receive_data(request)
            server.send(Trailers(stream_id=1, metadata=(("b", "1"),)))
            frames += [request, server.data_to_send()]
    return frames


CORPUS = _corpus()


def check_decoders(data: bytes) -> None:
    """Feed ``data`` to a server and a client codec: only RemoteProtocolError may escape."""
    for role in (Role.SERVER, Role.CLIENT):
        codec = ThriftCodec(role)
        if role is Role.CLIENT:
            for sid in (0, 1, 2):
                codec._pending[sid] = CallStarted(stream_id=sid, service="s", method="m")
        try:
            events = codec.receive_data(data)
            assert all(isinstance(e, Event) for e in events)
            codec.receive_eof()
        except RemoteProtocolError:
            pass


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_protocol_errors(data: bytes) -> None:
    """Random bytes never crash a decoder."""
    check_decoders(data)


@FUZZ
@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 400),
    st.booleans(),
)
def test_mutated_frames_only_raise_protocol_errors(
    frame: bytes, changes: list[tuple[int, int]], cut: int, truncate: bool
) -> None:
    """Valid frames with bytes changed (and maybe truncated) never crash a decoder."""
    data = bytearray(frame)
    for position, value in changes:
        data[position % len(data)] = value
    if truncate:
        data = data[: cut % (len(data) + 1)]
    check_decoders(bytes(data))
    check_decoders(bytes(data) + frame)
