"""Transparent retry of calls a gRPC server refused before running them (REFUSED_STREAM,
or above the last stream id of its GOAWAY), against an ``h2`` server that refuses on
command: unary and server-streaming calls are sent again; calls the server may have
seen, or refused for another reason, are not."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest

import tether
import tether.grpc
from tether import ErrorCode, Status, StatusError, StreamResetError
from tether._client_protocols import MAX_TRANSPARENT_RETRIES, not_processed, retry_pause
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoReply, EchoRequest

#: What the server does with the n-th stream it sees (0-based): "serve", "refuse"
#: (RST_STREAM REFUSED_STREAM), "headers+refuse" (response headers, then that reset),
#: "cancel" (RST_STREAM CANCEL), "goaway" (GOAWAY below this stream, then close).
Policy = Callable[[int], str]


def _lpm(data: bytes) -> bytes:
    return struct.pack(">BL", 0, len(data)) + data


@dataclass
class RefusingServer:
    """An h2 gRPC server on loopback that answers every stream as its policy says."""

    policy: Policy
    streams_seen: list[tuple[str, str | None]] = field(default_factory=list)
    server: asyncio.Server | None = None
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"tcp://{host}:{port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        bodies: dict[int, bytes] = {}
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = dict(event.headers)
                        index = len(self.streams_seen)
                        self.streams_seen.append((headers[":path"], headers.get("grpc-timeout")))
                        action = self.policy(index)
                        sid = event.stream_id
                        if action == "refuse-late":
                            await asyncio.sleep(0.02)
                        if action.startswith("refuse"):
                            conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                        elif action == "headers+refuse":
                            conn.send_headers(sid, _RESPONSE_HEADERS)
                            conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                        elif action == "cancel":
                            conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                        elif action == "goaway":
                            conn.close_connection(last_stream_id=max(sid - 2, 0))
                        else:
                            bodies[sid] = b""
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                        if event.stream_id in bodies:
                            bodies[event.stream_id] += event.data
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id in bodies:
                        self._answer(conn, event.stream_id, bodies.pop(event.stream_id))
                writer.write(conn.data_to_send())
                if conn.state_machine.state is h2.connection.ConnectionState.CLOSED:
                    break
        finally:
            writer.close()

    @staticmethod
    def _answer(conn: h2.connection.H2Connection, sid: int, body: bytes) -> None:
        """Echo: ``repeat`` replies (at least one) carrying the request's data."""
        request = EchoRequest.FromString(body[5:])
        conn.send_headers(sid, _RESPONSE_HEADERS)
        for _ in range(max(request.repeat, 1)):
            conn.send_data(sid, _lpm(EchoReply(data=request.data).SerializeToString()))
        conn.send_headers(sid, [("grpc-status", "0")], end_stream=True)


_RESPONSE_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]


@contextlib.asynccontextmanager
async def serve(policy: Policy) -> AsyncIterator[RefusingServer]:
    """A RefusingServer listening on 127.0.0.1 for the duration of the block."""
    server = RefusingServer(policy)
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    try:
        yield server
    finally:
        for writer in server.writers:
            writer.close()
        server.server.close()
        await server.server.wait_closed()


async def _call(stub: Any, method: str, data: bytes) -> list[bytes]:
    """Call ``method`` (Unary or ServerStream) and return the reply data."""
    if method == "Unary":
        return [(await stub.Unary(EchoRequest(data=data))).data]
    return [r.data async for r in stub.ServerStream(EchoRequest(data=data))]


def first(count: int, action: str) -> Policy:
    """``action`` for the first ``count`` streams, then serve."""
    return lambda index: action if index < count else "serve"


async def test_unary_call_refused_twice_is_sent_again() -> None:
    """A unary call the server refuses twice with REFUSED_STREAM succeeds on the third try."""
    async with (
        serve(first(2, "refuse")) as server,
        tether.Client(server.url, protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        reply = await stub.Unary(EchoRequest(data=b"u"))
    assert reply.data == b"u"
    assert [path for path, _ in server.streams_seen] == ["/tether.demo.Echo/Unary"] * 3


async def test_server_streaming_call_refused_is_sent_again() -> None:
    """A server-streaming call refused (REFUSED_STREAM) before any response is sent again
    and delivers every reply of the attempt that ran."""
    async with (
        serve(first(2, "refuse")) as server,
        tether.Client(server.url, protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        replies = [r.data async for r in stub.ServerStream(EchoRequest(data=b"s", repeat=3))]
    assert replies == [b"s"] * 3
    assert [path for path, _ in server.streams_seen] == ["/tether.demo.Echo/ServerStream"] * 3


async def test_server_streaming_retry_also_covers_initial_metadata() -> None:
    """Waiting for the initial metadata of a refused server-streaming call retries too."""
    async with (
        serve(first(1, "refuse")) as server,
        tether.Client(server.url, protocol="grpc") as client,
    ):
        call = tether.grpc.stub(client, echo_pb2, "Echo").ServerStream(
            EchoRequest(data=b"m", repeat=2)
        )
        metadata = await call.initial_metadata()
        replies = [r.data async for r in call]
    assert "grpc-status" not in metadata
    assert replies == [b"m", b"m"]
    assert len(server.streams_seen) == 2


async def test_retry_sends_the_time_left() -> None:
    """A retried server-streaming call sends the remaining deadline, not the original
    (the server waits 20 ms before refusing, so some time is surely gone)."""
    async with (
        serve(first(1, "refuse-late")) as server,
        tether.Client(server.url, protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        replies = [r.data async for r in stub.ServerStream(EchoRequest(data=b"t"), timeout=30.0)]
    assert replies == [b"t"]
    (_, first_timeout), (_, second_timeout) = server.streams_seen
    assert first_timeout is not None
    assert second_timeout is not None
    assert first_timeout.endswith("u")
    assert second_timeout.endswith("u")
    assert int(second_timeout[:-1]) < int(first_timeout[:-1]) <= 30_000_000


async def test_streams_above_goaway_are_sent_again_on_a_new_connection() -> None:
    """Calls above the last stream id of the server's GOAWAY go out again on a new
    connection: unary and server-streaming."""
    async with (
        serve(lambda i: "goaway" if i in (0, 2) else "serve") as server,
        tether.Client(server.url, protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        reply = await stub.Unary(EchoRequest(data=b"g"))
        replies = [r.data async for r in stub.ServerStream(EchoRequest(data=b"h", repeat=2))]
    assert reply.data == b"g"
    assert replies == [b"h", b"h"]
    assert len(server.writers) == 3


async def test_refusal_after_response_headers_is_not_retried() -> None:
    """A server-streaming call whose response headers arrived is never sent again: the
    server may have run it."""
    async with (
        serve(first(1, "headers+refuse")) as server,
        tether.Client(server.url, protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        with pytest.raises(StreamResetError) as info:
            [r async for r in stub.ServerStream(EchoRequest(data=b"x"))]
    assert info.value.status is Status.UNAVAILABLE
    assert info.value.error_code == ErrorCode.REFUSED_STREAM
    assert len(server.streams_seen) == 1


@pytest.mark.parametrize("method", ["Unary", "ServerStream"])
async def test_other_resets_are_not_retried(method: str) -> None:
    """A stream reset with another code (CANCEL) fails the call at once, untried again."""
    async with (
        serve(first(1, "cancel")) as server,
        tether.Client(server.url, protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        with pytest.raises(StreamResetError) as info:
            await _call(stub, method, b"c")
    assert info.value.status is Status.CANCELLED
    assert info.value.error_code == ErrorCode.CANCEL
    assert len(server.streams_seen) == 1


async def test_bidi_call_is_not_retried() -> None:
    """A bidi-streaming call refused by the server fails: its requests are not kept."""
    async with (
        serve(first(1, "refuse")) as server,
        tether.Client(server.url, protocol="grpc") as client,
    ):
        call = tether.grpc.stub(client, echo_pb2, "Echo").BidiStream()
        await call.send(EchoRequest(data=b"b"))
        await call.done_writing()
        with pytest.raises(StreamResetError):
            await call.recv()
    assert len(server.streams_seen) == 1


@pytest.mark.parametrize("method", ["Unary", "ServerStream"])
async def test_retries_are_bounded(method: str) -> None:
    """A server that refuses every stream gets the call 1 + MAX_TRANSPARENT_RETRIES
    times, then the caller sees the refusal."""
    async with (
        serve(lambda i: "refuse") as server,
        tether.Client(server.url, protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        with pytest.raises(StreamResetError) as info:
            await _call(stub, method, b"r")
    assert not_processed(info.value)
    assert len(server.streams_seen) == 1 + MAX_TRANSPARENT_RETRIES


def test_not_processed_reads_the_error_code_not_the_text() -> None:
    """The retry rule is the reset code: a message that merely mentions REFUSED_STREAM
    is not a refusal, and a refusal with any message is one."""
    refused = StreamResetError(Status.UNAVAILABLE, "x", error_code=ErrorCode.REFUSED_STREAM)
    assert not_processed(refused)
    assert not not_processed(StatusError(Status.UNAVAILABLE, "reset (REFUSED_STREAM)"))
    assert not not_processed(
        StreamResetError(Status.UNAVAILABLE, "(REFUSED_STREAM)", error_code=ErrorCode.CANCEL)
    )
    assert not not_processed(StreamResetError(Status.UNAVAILABLE, "(REFUSED_STREAM)"))


def test_stream_reset_error_pickles_with_its_code() -> None:
    """A StreamResetError keeps its status, message and error code through pickle."""
    error = StreamResetError(Status.UNAVAILABLE, "refused", error_code=ErrorCode.REFUSED_STREAM)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is StreamResetError
    assert (copy.status, copy.message, copy.error_code) == (
        Status.UNAVAILABLE,
        "refused",
        ErrorCode.REFUSED_STREAM,
    )


def test_retry_pauses_double_and_stay_bounded() -> None:
    """The first retry goes at once; later ones wait 1, 2, 4 ... ms up to 50 ms, so ten
    retries give a server a fraction of a second to release its finished streams."""
    pauses = [retry_pause(n) for n in range(1, MAX_TRANSPARENT_RETRIES + 1)]
    assert pauses[:4] == [0.0, 0.001, 0.002, 0.004]
    assert max(pauses) == 0.05
    assert pauses == sorted(pauses)
    assert sum(pauses) < 0.5
