"""tether Client and Server over quic://: every call kind, large messages, many concurrent
calls, a server that goes away mid-call, and a server under junk datagrams."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

import tether
from tether.demo._services import PROTO_SERVICE, demo_services
from tether.demo.echo_pb2 import EchoReply, EchoRequest
from tether.transport._quic import QuicListener

from .conftest import Certs

URL = "quic://127.0.0.1:0?idle_timeout=5"


def _service(started: asyncio.Event) -> tether.Service:
    svc = tether.Service("quic.Test")

    @svc.unary
    async def Raw(request: bytes) -> bytes:
        return request[::-1]

    @svc.unary
    async def Hang(request: Any) -> Any:
        started.set()
        await asyncio.sleep(3600)
        return None

    return svc


@pytest.fixture
async def server(certs: Certs) -> AsyncIterator[tuple[tether.Server, asyncio.Event]]:
    started = asyncio.Event()
    server = tether.Server([*demo_services(), _service(started)], grace=0)
    await server.start(URL, tls=tether.TLSConfig(cert=certs.server))
    try:
        yield server, started
    finally:
        server.close()
        await server.wait_closed()


def _client(server: tether.Server, certs: Certs, **kwargs: Any) -> tether.Client:
    tls = tether.TLSConfig(ca=certs.ca, server_name="localhost")
    return tether.Client(server.addresses[0], tls=tls, **kwargs)


async def test_every_call_kind(server: tuple[tether.Server, asyncio.Event], certs: Certs) -> None:
    """Unary, server-, client- and bidi-streaming calls all work over quic://."""
    async with _client(server[0], certs) as client:
        stub = client.stub(next(s for s in demo_services() if s.name == PROTO_SERVICE))
        reply = await stub.Unary(EchoRequest(data=b"ab", repeat=2), metadata={"k": "v"})
        assert reply.data == b"abab"
        assert reply.metadata["k"] == "v"
        replies = [r.data async for r in stub.ServerStream(EchoRequest(data=b"s", repeat=3))]
        assert replies == [b"s"] * 3
        call = stub.ClientStream()
        for part in (b"x", b"y"):
            await call.send(EchoRequest(data=part))
        assert (await call.response()).data == b"xy"
        async with stub.BidiStream() as bidi:
            for part in (b"1", b"2"):
                await bidi.send(EchoRequest(data=part))
                reply = await bidi.recv()
                assert isinstance(reply, EchoReply)
                assert reply.data == part


async def test_large_messages(server: tuple[tether.Server, asyncio.Event], certs: Certs) -> None:
    """Multi-megabyte requests and replies arrive intact, one after another and at once."""
    payloads = [os.urandom(size) for size in (1, 300_000, 2 << 20)]
    async with _client(server[0], certs) as client:
        for payload in payloads:
            assert await client.unary("quic.Test/Raw", payload) == payload[::-1]
        replies = await asyncio.gather(*(client.unary("quic.Test/Raw", p) for p in payloads))
        assert replies == [p[::-1] for p in payloads]


async def test_many_concurrent_calls(
    server: tuple[tether.Server, asyncio.Event], certs: Certs
) -> None:
    """Hundreds of concurrent calls on one QUIC connection each get their own reply."""
    async with _client(server[0], certs) as client:
        requests = [str(i).encode() * (i % 50 + 1) for i in range(400)]
        replies = await asyncio.gather(*(client.unary("quic.Test/Raw", r) for r in requests))
        assert replies == [r[::-1] for r in requests]


async def test_server_closed_mid_call_cancels_it(
    server: tuple[tether.Server, asyncio.Event], certs: Certs
) -> None:
    """Server.close() with grace=0 ends a waiting call promptly (the server cancels it)."""
    srv, started = server
    async with _client(srv, certs, timeout=60) as client:
        call = asyncio.ensure_future(client.unary("quic.Test/Hang", None))
        await started.wait()
        srv.close()
        with pytest.raises(tether.StatusError) as info:
            async with asyncio.timeout(20):  # a guard against a hang, not a speed check
                await call
        assert info.value.status is tether.Status.CANCELLED, info.value


async def test_server_vanishing_mid_call_fails_it_with_unavailable(
    server: tuple[tether.Server, asyncio.Event], certs: Certs
) -> None:
    """If the server's UDP socket disappears (as when its process dies), a waiting call
    fails with UNAVAILABLE: the next keepalive PING meets ICMP port unreachable."""
    srv, started = server
    tls = tether.TLSConfig(ca=certs.ca, server_name="localhost")
    url = srv.addresses[0] + "?idle_timeout=3"  # keepalive PING every second
    async with tether.Client(url, tls=tls, timeout=60) as client:
        call = asyncio.ensure_future(client.unary("quic.Test/Hang", None))
        await started.wait()
        listener = srv._listeners[0]  # no public way to crash a server in-process
        assert isinstance(listener, QuicListener)
        endpoint_transport = listener._endpoint.transport
        assert endpoint_transport is not None
        endpoint_transport.abort()
        with pytest.raises(tether.StatusError) as info:
            async with asyncio.timeout(20):  # a guard against a hang, not a speed check
                await call
        assert info.value.status is tether.Status.UNAVAILABLE, info.value
        assert "unreachable" in info.value.message


async def test_junk_datagrams_do_not_disturb_calls(
    server: tuple[tether.Server, asyncio.Event], certs: Certs
) -> None:
    """Garbage, oversize and half-handshake datagrams at the server port leave calls working."""
    srv = server[0]
    host, port = "127.0.0.1", int(srv.addresses[0].split("?")[0].rsplit(":", 1)[1])
    async with _client(srv, certs) as client:
        assert await client.unary("quic.Test/Raw", b"before") == b"erofeb"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for size in (0, 1, 50, 1200, 1500, 60_000):
                sock.sendto(os.urandom(size), (host, port))
                sock.sendto(b"\xc0\x00\x00\x00\x01\x08" + os.urandom(max(size, 1300)), (host, port))
            results = await asyncio.gather(
                *(client.unary("quic.Test/Raw", str(i).encode()) for i in range(50))
            )
        assert results == [str(i).encode()[::-1] for i in range(50)]
    async with _client(srv, certs) as fresh:
        assert await fresh.unary("quic.Test/Raw", b"after") == b"retfa"
