"""The shm control channel codec (sans-I/O): handshake and records, as byte vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from tether import RemoteProtocolError
from tether.transport._shm_wire import (
    DOORBELL,
    MAX_DATA,
    Ack,
    Close,
    Data,
    Doorbell,
    Eof,
    RecordDecoder,
    Ref,
    decode_hello,
    encode_ack,
    encode_close,
    encode_data_header,
    encode_eof,
    encode_hello,
    encode_ref,
)

HELLO_4M = b"TSHM\x03\x00\x00\x00" + (4 << 20).to_bytes(8, "big")


def test_hello_vector() -> None:
    """The handshake is magic, version 3, zero flags and the capacity, big-endian, 16 bytes."""
    assert encode_hello(4 << 20) == HELLO_4M
    hello = decode_hello(HELLO_4M)
    assert (hello.version, hello.capacity) == (3, 4 << 20)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (HELLO_4M[:15], "15 bytes"),
        (HELLO_4M + b"\x00", "17 bytes"),
        (b"GET / HTTP/1.1\r\n", "not a tether shm peer"),
        (b"TSHM\x02" + HELLO_4M[5:], "version 2"),
        (b"TSHM\x04" + HELLO_4M[5:], "version 4"),
        (b"TSHM\x03\x01" + HELLO_4M[6:], "flags"),
        (HELLO_4M[:8] + (3000).to_bytes(8, "big"), "power of two"),
        (HELLO_4M[:8] + (1 << 40).to_bytes(8, "big"), "power of two"),
        (HELLO_4M[:8] + (1024).to_bytes(8, "big"), "power of two"),
    ],
)
def test_bad_hello(data: bytes, message: str) -> None:
    """A truncated, foreign, old- or future-version or oversized handshake is a RemoteProtocolError."""
    with pytest.raises(RemoteProtocolError, match=message):
        decode_hello(data)


def test_hello_respects_local_limit() -> None:
    """A receiver can cap the ring size it is willing to map."""
    with pytest.raises(RemoteProtocolError):
        decode_hello(HELLO_4M, max_capacity=1 << 20)


def test_record_vectors() -> None:
    """Each record type has a fixed, big-endian encoding."""
    assert DOORBELL == b"\x01"
    assert encode_ack(7) == b"\x02" + (7).to_bytes(8, "big")
    assert encode_data_header(9, 3) == b"\x03" + (9).to_bytes(8, "big") + b"\x00\x00\x00\x03"
    assert encode_eof(5) == b"\x04" + (5).to_bytes(8, "big")
    assert encode_close(6) == b"\x05" + (6).to_bytes(8, "big")
    assert encode_ref(6, 1 << 33, 65536, 10) == (
        b"\x06"
        + (6).to_bytes(8, "big")
        + (1 << 33).to_bytes(8, "big")
        + b"\x00\x01\x00\x00\x00\x0a"
    )
    with pytest.raises(ValueError):
        encode_data_header(0, 0)
    with pytest.raises(ValueError):
        encode_data_header(0, MAX_DATA + 1)


STREAM = (
    DOORBELL
    + encode_data_header(4, 5)
    + b"hello"
    + encode_ack(99)
    + DOORBELL
    + encode_ref(4, 100, 70000, 12)
    + encode_eof(4)
    + encode_close(4)
)
RECORDS = [
    Doorbell(),
    Data(4, b"hello"),
    Ack(99),
    Doorbell(),
    Ref(4, 100, 70000, 12),
    Eof(4),
    Close(4),
]


def test_decoder_reads_a_stream() -> None:
    """A stream of records decodes to the records, in order."""
    decoder = RecordDecoder()
    assert decoder.feed(STREAM) == RECORDS
    assert decoder.pending() == 0


def test_decoder_doorbell_fast_path() -> None:
    """A chunk of doorbells only is several doorbells."""
    assert RecordDecoder().feed(b"\x01\x01\x01") == [Doorbell()] * 3


@settings(deadline=None)  # no timing on a loaded 2-core box
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=8))
def test_decoder_ignores_chunking(cuts: list[int]) -> None:
    """However the socket splits the bytes, the same records come out."""
    decoder = RecordDecoder()
    out = []
    last = 0
    for cut in [*sorted(cuts), len(STREAM)]:
        out += decoder.feed(STREAM[last:cut])
        last = cut
    assert out == RECORDS
    assert decoder.pending() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00", "0x00"),
        (b"\x01\xff", "0xff"),
        (b"\x03" + bytes(8) + b"\x00\x00\x00\x00", "0 bytes"),
        (b"\x03" + bytes(8) + (MAX_DATA + 1).to_bytes(4, "big"), "max"),
        (b"\x06" + bytes(16) + bytes(4) + bytes(2), "REF record of 0 bytes"),
    ],
)
def test_decoder_rejects_garbage(data: bytes, message: str) -> None:
    """Unknown record types, DATA lengths out of range and empty REFs are RemoteProtocolErrors."""
    with pytest.raises(RemoteProtocolError, match=message):
        RecordDecoder().feed(data)


@settings(deadline=None)
@given(st.binary(max_size=64))
def test_decoder_arbitrary_input(data: bytes) -> None:
    """Arbitrary bytes decode to records or raise RemoteProtocolError, nothing else."""
    try:
        RecordDecoder().feed(data)
    except RemoteProtocolError:
        pass
