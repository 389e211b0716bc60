"""How a ThriftCodec takes messages out of its receive buffer: small Framed and TTHeader
messages are parsed from bytes copies, larger ones (and other formats) from a view, and
every mix of them, split anywhere, gives the same events."""

from __future__ import annotations

import pytest

from tether.buffer import ReadBuffer
from tether.framing import CallStarted, Event, Message, Role
from tether.framing.thrift import ThriftCodec, Transport
from tether.framing.thrift._codec import COPY_MAX

SIZES = (0, 100, COPY_MAX - 200, COPY_MAX + 1, 3 * COPY_MAX)
FAST = (Transport.FRAMED, Transport.TTHEADER, Transport.TTHEADER_FRAMED)


def _struct(size: int) -> bytes:
    """A Thrift struct {1: binary} whose value is ``size`` bytes."""
    return (
        b"\x0b\x00\x01"
        + size.to_bytes(4, "big")
        + bytes(range(256)) * (size // 256)
        + (bytes(size % 256))
        + b"\x00"
    )


def _requests(
    transport: Transport, sizes: tuple[int, ...], metadata: tuple[tuple[str, str], ...] = ()
) -> tuple[bytes, list[bytes]]:
    """The bytes a client codec writes for one call per size, and their payloads."""
    client = ThriftCodec(Role.CLIENT, transport=transport)
    payloads = []
    for size in sizes:
        sid = client.next_stream_id()
        client.send(CallStarted(stream_id=sid, service="Echo", method="echo", metadata=metadata))
        payload = _struct(size)
        payloads.append(payload)
        client.send(Message(stream_id=sid, data=payload, end_stream=True))
    return client.data_to_send(), payloads


def _receive(data: bytes, chunk: int) -> list[Event]:
    server = ThriftCodec(Role.SERVER)
    buffer = ReadBuffer()
    events: list[Event] = []
    for at in range(0, len(data), chunk):
        buffer.feed(data[at : at + chunk])
        events += server.receive_from(buffer)
        buffer.release()
        assert server.bytes_needed() <= len(buffer) + max(0, len(data) - at - chunk)
    assert len(buffer) == 0
    return events


def _check(events: list[Event], payloads: list[bytes], service: str) -> None:
    starts = [e for e in events if isinstance(e, CallStarted)]
    messages = [e for e in events if isinstance(e, Message)]
    assert [m.data for m in messages] == payloads
    assert [s.stream_id for s in starts] == [m.stream_id for m in messages]
    assert {(s.method, s.service) for s in starts} == {("echo", service)}


@pytest.mark.parametrize("transport", [*FAST, Transport.BUFFERED])
@pytest.mark.parametrize("chunk", [1 << 30, 4096, 7])
def test_small_and_large_messages_mixed_in_one_buffer(transport: Transport, chunk: int) -> None:
    """Small and large messages back to back, fed whole or in pieces, each arrive intact
    and in order, whichever parser takes them."""
    sizes = SIZES if chunk > 7 else SIZES[:3]
    data, payloads = _requests(transport, sizes + sizes[::-1])
    service = "Echo" if transport in FAST[1:] else ""
    _check(_receive(data, chunk), payloads, service)


@pytest.mark.parametrize("transport", FAST[1:])
def test_a_header_larger_than_the_copy_is_parsed_whole(transport: Transport) -> None:
    """A TTHeader whose key-values alone exceed the copied head is still read correctly,
    with a small and with a large payload."""
    big = (("RPC_TRANSIT_big", "v" * (COPY_MAX + 500)),)
    data, payloads = _requests(transport, (10, 2 * COPY_MAX), big)
    events = _receive(data, 1 << 30)
    _check(events, payloads, "Echo")
    starts = [e for e in events if isinstance(e, CallStarted)]
    assert all(big[0] in s.metadata for s in starts)


def test_a_huge_method_name_is_parsed_whole() -> None:
    """A method name longer than the copied head still parses (Framed, large message)."""
    name = "m" * (COPY_MAX + 100)
    client = ThriftCodec(Role.CLIENT, transport=Transport.FRAMED)
    client.send(CallStarted(stream_id=1, service="", method=name))
    client.send(Message(stream_id=1, data=_struct(5), end_stream=True))
    events = _receive(client.data_to_send(), 1 << 30)
    assert isinstance(events[0], CallStarted)
    assert events[0].method == name
    assert events[1] == Message(stream_id=1, data=_struct(5), end_stream=True)
