"""ThriftCodec and large payloads: a BufferList goes out without a join (the caller's big
object is one of the buffers handed to the transport), and a large received payload is
lent as a read-only view of its frame that later frames never touch."""

from __future__ import annotations

import pytest

from tether import Status
from tether.buffer import BufferList, ReadBuffer
from tether.framing import CallStarted, Message, Role, Trailers
from tether.framing.thrift import ThriftCodec, Transport
from tether.framing.thrift._envelope import LEND_AT

BIG = b"\x0b\x00\x01" + (4 * LEND_AT).to_bytes(4, "big")  # struct {1: binary} header
FIELD = bytes(range(256)) * (4 * LEND_AT // 256)
STOP = b"\x00"
BY_REFERENCE = [t for t in Transport if t is not Transport.THEADER]


def big_payload() -> BufferList:
    return BufferList((BIG, FIELD, STOP))


def send_request(client: ThriftCodec, data: BufferList | bytes) -> int:
    sid = client.next_stream_id()
    client.send(CallStarted(stream_id=sid, service="Echo", method="echo"))
    client.send_message(sid, data, True)
    return sid


def receive(codec: ThriftCodec, buffer: ReadBuffer, wire: bytes) -> list[object]:
    """Feed ``wire`` through ``buffer`` as a transport would, then release it."""
    buffer.feed(wire)
    events: list[object] = list(codec.receive_from(buffer))
    buffer.release()
    return events


@pytest.mark.parametrize("transport", BY_REFERENCE)
def test_a_request_buffer_list_reaches_the_transport_unjoined(transport: Transport) -> None:
    """The caller's 256 KiB field object is itself among the buffers to send, and the
    bytes are those of the joined payload."""
    client = ThriftCodec(Role.CLIENT, transport=transport)
    send_request(client, big_payload())
    chunks = client.buffers_to_send()
    assert any(chunk is FIELD for chunk in chunks)
    joined = ThriftCodec(Role.CLIENT, transport=transport)
    send_request(joined, bytes(big_payload()))
    assert b"".join(chunks) == joined.data_to_send()


def test_apache_theader_joins_a_buffer_list() -> None:
    """THeader carries one body buffer: the pieces are joined, the bytes the same."""
    client = ThriftCodec(Role.CLIENT, transport=Transport.THEADER)
    send_request(client, big_payload())
    joined = ThriftCodec(Role.CLIENT, transport=Transport.THEADER)
    send_request(joined, bytes(big_payload()))
    assert client.data_to_send() == joined.data_to_send()


@pytest.mark.parametrize("transport", list(Transport))
def test_a_large_request_and_reply_cross_as_lent_views(transport: Transport) -> None:
    """Server and client each get the large payload as a read-only view equal to what
    was sent (Apache THeader: a copy, its body may be transformed); a reply's BufferList
    also goes out unjoined."""
    client = ThriftCodec(Role.CLIENT, transport=transport)
    server = ThriftCodec(Role.SERVER)
    sid = send_request(client, big_payload())
    events = receive(server, ReadBuffer(), client.data_to_send())
    started, request = events
    assert isinstance(started, CallStarted)
    assert isinstance(request, Message)
    if transport is Transport.THEADER:
        assert type(request.data) is bytes
    else:
        assert type(request.data) is memoryview
        assert request.data.readonly
    assert request.data == bytes(big_payload())
    server.send_message(started.stream_id, big_payload(), False)
    server.send_trailers(started.stream_id, Status.OK, "", ())
    chunks = server.buffers_to_send()
    if transport is not Transport.THEADER:
        assert any(chunk is FIELD for chunk in chunks)
    reply, trailers = receive(client, ReadBuffer(), b"".join(chunks))
    assert isinstance(reply, Message)
    assert isinstance(trailers, Trailers)
    assert reply.stream_id == sid
    assert trailers.status is Status.OK
    assert reply.data == bytes(big_payload())


def test_small_payloads_are_still_bytes() -> None:
    """Under the lending threshold a payload is copied out as bytes, as before."""
    client = ThriftCodec(Role.CLIENT, transport=Transport.FRAMED)
    server = ThriftCodec(Role.SERVER)
    send_request(client, b"\x0b\x00\x01\x00\x00\x00\x02hi\x00")
    _, request = receive(server, ReadBuffer(), client.data_to_send())
    assert isinstance(request, Message)
    assert type(request.data) is bytes


def test_a_lent_view_is_untouched_by_the_frames_after_it() -> None:
    """Two large requests through one buffer, the second arriving in pieces after the
    first view was handed out: the first view still holds its own bytes and cannot be
    written."""
    client = ThriftCodec(Role.CLIENT, transport=Transport.FRAMED)
    server = ThriftCodec(Role.SERVER)
    buffer = ReadBuffer()
    send_request(client, big_payload())
    _, first = receive(server, buffer, client.data_to_send())
    other = BufferList((BIG, b"\xee" * len(FIELD), STOP))
    send_request(client, other)
    wire = client.data_to_send()
    got: list[object] = []
    for at in range(0, len(wire), 50_000):
        got += receive(server, buffer, wire[at : at + 50_000])
    assert isinstance(first, Message)
    assert isinstance(got[1], Message)
    assert first.data == bytes(big_payload())
    assert got[1].data == bytes(other)
    with pytest.raises(TypeError):
        first.data[0] = 0  # type: ignore[index]
