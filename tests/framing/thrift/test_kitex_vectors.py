"""The codec against real Kitex v0.16.3 wire captures: every Thrift / TTHeader / Framed /
Buffered / Kitex Protobuf request and response decodes to the right events, and our
encoder reproduces the captured bytes (byte-exact where the capture was stable, header
key-values compared as sets where Go's map order varies)."""

from __future__ import annotations

from typing import Any

import pytest

from tether import Status
from tether.framing import CallStarted, Event, GoAway, Message, Role, Trailers
from tether.framing.thrift import (
    Envelope,
    THeader,
    ThriftCodec,
    Transport,
    TTHeader,
    read_envelope,
)

from .kitex_vectors import Capture, capture_params

CAPTURES = capture_params()

_TRANSPORTS = {
    "PurePayload": Transport.BUFFERED,
    "Framed": Transport.FRAMED,
    "TTHeader": Transport.TTHEADER,
    "TTHeader|Framed": Transport.TTHEADER_FRAMED,
}


def envelopes(data: bytes) -> list[Envelope]:
    """Every message in ``data``, parsed."""
    out = []
    view = memoryview(data)
    while view:
        used, envelope = read_envelope(view, len(view), 1 << 24)
        assert envelope is not None, f"incomplete message in {bytes(view).hex()}"
        out.append(envelope)
        view = view[used:]
    return out


def comparable(data: bytes) -> list[tuple[Any, ...]]:
    """Each message's fields, header key-values as dicts (so entry order does not matter)."""
    rows = []
    for e in envelopes(data):
        header: tuple[Any, ...] = ()
        if isinstance(e.header, TTHeader):
            h = e.header
            header = (h.flags, h.seq_id, h.protocol_id, h.str_info, h.int_info)
        elif isinstance(e.header, THeader):
            header = (e.header.flags, e.header.seq_id, e.header.headers)
        rows.append(
            (e.transport, header, e.encoding, e.message_type, e.method, e.seq_id, e.payload)
        )
    return rows


def assert_same_wire(got: bytes, want: bytes, stable: bool) -> None:
    """Byte-exact when the capture was stable and no header block has two entries or more
    (Go's map order is random even when two runs happened to agree), else as sets."""
    assert len(got) == len(want)
    headers = [e.header for e in envelopes(want) if isinstance(e.header, TTHeader)]
    if stable and all(len(h.str_info) < 2 and len(h.int_info) < 2 for h in headers):
        assert got.hex() == want.hex()
    else:
        assert comparable(got) == comparable(want)


def server_events(capture: Capture) -> list[Event]:
    return ThriftCodec(Role.SERVER).receive_data(capture.request)


@pytest.mark.parametrize("capture", CAPTURES)
def test_server_decodes_the_captured_request(capture: Capture) -> None:
    """Each captured request gives CallStarted + Message per message, matching what the
    real Kitex server observed (method, timeout, metainfo, caller, transport, codec)."""
    events = server_events(capture)
    parsed = envelopes(capture.request)
    assert len(events) == 2 * len(parsed)
    for index, envelope in enumerate(parsed):
        call, body = events[2 * index], events[2 * index + 1]
        assert isinstance(call, CallStarted)
        assert call.stream_id == envelope.seq_id == index + 1
        assert call.method == envelope.method
        assert call.oneway is ("oneway" in capture.name)
        assert body == Message(stream_id=call.stream_id, data=envelope.payload, end_stream=True)
        assert envelope.payload  # the args struct / protobuf body, never empty here
    assert isinstance(events[-1], Message)
    assert capture.request.endswith(events[-1].data)
    observed = capture.server_observed
    if observed is None:
        return
    call = events[0]
    assert isinstance(call, CallStarted)
    metadata = set(call.metadata)
    assert call.method == observed["to_method"]
    assert parsed[0].transport is _TRANSPORTS[observed["transport"]]
    assert call.encoding == {"Thrift": "thrift", "Protobuf": "proto"}[observed["payload_codec"]]
    timeout_ms = observed["rpc_timeout_ms"]
    assert call.timeout == (timeout_ms / 1000 if timeout_ms else None)
    for key, value in (observed["transient"] or {}).items():
        assert (f"RPC_TRANSIT_{key}", value) in metadata
    for key, value in (observed["persistent"] or {}).items():
        assert (f"RPC_PERSIST_{key}", value) in metadata
    if observed["from_service"]:
        assert (":from-service", observed["from_service"]) in metadata
        assert (":from-method", observed["from_method"]) in metadata
        assert call.service == ("EchoPB" if call.encoding == "proto" else "Echo")
    else:
        assert call.service == ""


@pytest.mark.parametrize("capture", CAPTURES)
def test_server_decodes_the_request_fed_byte_by_byte(capture: Capture) -> None:
    """Feeding a captured request one byte at a time yields the same events."""
    codec = ThriftCodec(Role.SERVER)
    events: list[Event] = []
    for index in range(len(capture.request)):
        events += codec.receive_data(capture.request[index : index + 1])
    assert events == server_events(capture)
    assert codec.receive_eof() != []


def client_events(capture: Capture) -> list[Event]:
    """What a client codec that sent the captured calls reports for the response."""
    client = ThriftCodec(Role.CLIENT)
    for event in server_events(capture):
        if isinstance(event, CallStarted) and not event.oneway:
            client._pending[event.stream_id] = event  # the calls this connection sent
    return client.receive_data(capture.response)


@pytest.mark.parametrize("capture", CAPTURES)
def test_client_decodes_the_captured_response(capture: Capture) -> None:
    """Each captured reply gives Message + Trailers(OK) (or Trailers with the mapped
    error), with the backward metainfo and biz-status the real Kitex client reported."""
    events = client_events(capture)
    if not capture.response:
        assert events == []
        return
    if "ttheader_unknown_method" in capture.name:
        # Kitex's crrst=1: the connection is retired once the reply is delivered.
        *events, goaway = events
        assert isinstance(goaway, GoAway)
        assert goaway.last_stream_id == 2**31 - 1
    assert not any(isinstance(e, GoAway) for e in events)
    final = events[-1]
    assert isinstance(final, Trailers)
    metadata = dict(final.metadata)
    if "unknown_method" in capture.name:
        assert final.status is Status.UNIMPLEMENTED
        assert final.message == "unknown service , method nope"
        assert metadata[":tapplication-type"] == "20"
        if "ttheader" in capture.name:
            assert metadata["crrst"] == "1"
        return
    result = capture.raw.get("client_result")
    if result is None:  # the other raw replays: plain echoes
        assert [type(e) for e in events] == [Message, Trailers] * (len(events) // 2)
        return
    for key, value in (result.get("backward") or {}).items():
        assert metadata[key] == value
    if result.get("error_type", "").endswith(".EchoError"):  # a declared exception
        assert final.status is Status.OK
        assert isinstance(events[0], Message)
        assert events[0].data.startswith(b"\x0c\x00\x01")  # result field 1: the exception
    elif result.get("biz_status"):
        assert metadata["biz-status"] == str(result["biz_status"])
        assert isinstance(events[0], Message)
    elif result.get("error"):
        assert final.status is Status.INTERNAL
        assert result["error"].endswith(final.message)
        assert metadata[":tapplication-type"] == "6"
    else:
        assert final.status is Status.OK
        assert isinstance(events[0], Message)


@pytest.mark.parametrize("capture", CAPTURES)
def test_server_reply_reproduces_the_captured_response(capture: Capture) -> None:
    """Replying with the captured result (and the captured backward headers) produces the
    captured response bytes: exactly when the capture was stable, else as header sets."""
    server = ThriftCodec(Role.SERVER)
    server.receive_data(capture.request)
    for event in client_events(capture):
        if isinstance(event, Trailers):
            metadata = tuple(
                (k, v) for k, v in event.metadata if not k.startswith(":") and k != "crrst"
            )
            status = event.status
            if "biz-status" in dict(metadata):
                status = Status.INTERNAL  # how the layer above reports a biz error
            server.send(
                Trailers(
                    stream_id=event.stream_id,
                    status=status,
                    message=event.message,
                    metadata=metadata,
                )
            )
        elif not (isinstance(event, Message) and "bizerr" in capture.name):
            server.send(event)  # a biz error's empty REPLY is the codec's to make
    assert_same_wire(server.data_to_send(), capture.response, capture.response_stable)


@pytest.mark.parametrize("capture", CAPTURES)
def test_client_request_reproduces_the_captured_request(capture: Capture) -> None:
    """Sending what the server decoded, in the transport it arrived in, produces the
    captured request bytes: exactly when stable, else with the same header key-values."""
    parsed = envelopes(capture.request)
    header = parsed[0].header
    no_handler = isinstance(header, TTHeader) and not header.int_info
    client = ThriftCodec(
        Role.CLIENT, transport=parsed[0].transport, handlers=() if no_handler else None
    )
    for event in server_events(capture):
        if isinstance(event, CallStarted):
            assert client.next_stream_id() == event.stream_id
        client.send(event)
    assert_same_wire(client.data_to_send(), capture.request, capture.request_stable)
