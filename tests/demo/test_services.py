"""The demo services do exactly what the comments of echo.proto and echo.thrift promise."""

from __future__ import annotations

import asyncio
import base64

import pytest

import tether
from tether.demo._services import PROTO_SERVICE, THRIFT_SERVICE, demo_services
from tether.demo._thrift import echo_thrift
from tether.demo.echo_pb2 import EchoReply, EchoRequest
from tether.testing import client_for
from tether.thrift import ThriftStub

UNARY = f"{PROTO_SERVICE}/Unary"


async def test_unary_repeats_data_and_echoes_metadata() -> None:
    """Unary repeats `data` `repeat` times and returns the custom request metadata."""
    async with client_for(demo_services()) as client:
        reply = await client.unary(
            UNARY,
            EchoRequest(data=b"ab", repeat=3),
            response_type=EchoReply,
            metadata={"k": "v", "blob-bin": b"\x00\xff"},
        )
    assert reply.data == b"ababab"
    assert dict(reply.metadata) == {"k": "v", "blob-bin": base64.b64encode(b"\x00\xff").decode()}


async def test_unary_repeat_zero_counts_as_one() -> None:
    """A repeat of 0 (proto3's default) counts as 1."""
    async with client_for(demo_services()) as client:
        reply = await client.unary(UNARY, EchoRequest(data=b"x"), response_type=EchoReply)
    assert reply.data == b"x"


async def test_unary_fail_is_invalid_argument() -> None:
    """A non-empty `fail` fails the call with INVALID_ARGUMENT and that message."""
    async with client_for(demo_services()) as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary(UNARY, EchoRequest(fail="nope"), response_type=EchoReply)
    assert info.value.status is tether.Status.INVALID_ARGUMENT
    assert info.value.message == "nope"


async def test_unary_delay() -> None:
    """`delay_ms` delays the reply, so a shorter deadline expires first."""
    async with client_for(demo_services()) as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary(
                UNARY, EchoRequest(data=b"x", delay_ms=500), response_type=EchoReply, timeout=0.1
            )
    assert info.value.status is tether.Status.DEADLINE_EXCEEDED


async def test_server_stream_sends_repeat_replies() -> None:
    """ServerStream sends `repeat` replies, each carrying `data`."""
    async with client_for(demo_services()) as client:
        call = client.server_stream(
            f"{PROTO_SERVICE}/ServerStream",
            EchoRequest(data=b"d", repeat=4),
            response_type=EchoReply,
        )
        replies = [r.data async for r in call]
    assert replies == [b"d"] * 4


async def test_client_stream_concatenates_in_order() -> None:
    """ClientStream replies once, after the client ends, with all data concatenated."""
    async with client_for(demo_services()) as client:
        call = client.client_stream(
            f"{PROTO_SERVICE}/ClientStream", request_type=EchoRequest, response_type=EchoReply
        )
        for part in (b"a", b"b", b"c"):
            await call.send(EchoRequest(data=part))
        reply = await call.response()
    assert reply.data == b"abc"


async def test_bidi_replies_to_each_request() -> None:
    """BidiStream replies to each request as it arrives, with that request's data."""
    async with client_for(demo_services()) as client:
        call = client.bidi_stream(
            f"{PROTO_SERVICE}/BidiStream", request_type=EchoRequest, response_type=EchoReply
        )
        async with call:
            for part in (b"1", b"2"):
                await call.send(EchoRequest(data=part))
                reply = await call.recv()
                assert reply is not None
                assert reply.data == part
            await call.done_writing()
            assert await call.recv() is None


async def test_thrift_unary_and_declared_exception() -> None:
    """Thrift Unary repeats data, and `fail` raises EchoError(message=fail, code=3)."""
    async with client_for(demo_services()) as client:
        stub = ThriftStub(client, echo_thrift.Echo, name=THRIFT_SERVICE)
        reply = await stub.Unary(req=echo_thrift.EchoRequest(data=b"hi", repeat=2))
        assert reply.data == b"hihi"
        with pytest.raises(echo_thrift.EchoError) as info:
            await stub.Unary(echo_thrift.EchoRequest(data=b"x", fail="bad"))
    assert info.value.message == "bad"
    assert info.value.code == 3


async def test_thrift_notify_shows_up_in_next_unary() -> None:
    """Notify records the request; the next Unary reply's metadata carries notified=data."""
    async with client_for(demo_services()) as client:
        stub = ThriftStub(client, echo_thrift.Echo, name=THRIFT_SERVICE)
        assert await stub.Notify(req=echo_thrift.EchoRequest(data=b"ping")) is None
        await asyncio.sleep(0.05)
        first = await stub.Unary(req=echo_thrift.EchoRequest(data=b"a"))
        second = await stub.Unary(req=echo_thrift.EchoRequest(data=b"b"))
    assert first.metadata["notified"] == "ping"
    assert "notified" not in second.metadata
