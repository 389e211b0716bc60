"""tether Client/Server over kcp://: every call kind, loss tolerance through a lossy UDP
relay, and a half-open peer."""

from __future__ import annotations

import asyncio
import random
from typing import Any, cast

import pytest

import tether
from tether.demo._services import PROTO_SERVICE, demo_services
from tether.demo.echo_pb2 import EchoReply, EchoRequest
from tether.transport._kcp import KCPListener

from .conftest import Certs
from .kcp_helpers import eventually

FAST = "idle_timeout=1&heartbeat=0.2"


class _Side(asyncio.DatagramProtocol):
    """One socket of the relay; hands what it receives to a callback."""

    def __init__(self, on_datagram: Any) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self._on_datagram = on_datagram

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass


class LossyRelay:
    """A UDP relay between kcp:// clients and a server on 127.0.0.1.

    Each client address gets its own upstream socket (the server sees one peer per
    client). Per direction, a seeded RNG drops ``drop`` of the datagrams and holds back
    another ``reorder`` until the next datagram has passed (or 5 ms), so they arrive out
    of order. ``blackhole`` drops everything (a peer that vanished without a word).
    """

    def __init__(self, target: tuple[str, int], *, drop: float, reorder: float, seed: int):
        self.target = target
        self.drop = drop
        self.reorder = reorder
        self.blackhole = False
        self.rng = random.Random(seed)
        self.passed = self.dropped = self.reordered = 0
        self._front: _Side | None = None
        self._upstreams: dict[Any, _Side] = {}
        self._held: dict[Any, list[bytes]] = {}

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        _, self._front = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=("127.0.0.1", 0)
        )
        assert self._front.transport is not None
        port = self._front.transport.get_extra_info("sockname")[1]
        return f"kcp://127.0.0.1:{port}"

    def close(self) -> None:
        for side in [self._front, *self._upstreams.values()]:
            if side is not None and side.transport is not None:
                side.transport.close()

    def _from_client(self, data: bytes, addr: Any) -> None:
        upstream = self._upstreams.get(addr)
        if upstream is None:
            asyncio.get_running_loop().create_task(self._open_upstream(addr, data))
            return
        assert upstream.transport is not None
        self._forward(("up", addr), data, upstream.transport.sendto)

    async def _open_upstream(self, addr: Any, first: bytes) -> None:
        if addr in self._upstreams:
            self._from_client(first, addr)
            return
        loop = asyncio.get_running_loop()
        _, side = await loop.create_datagram_endpoint(
            lambda: _Side(lambda data, _: self._to_client(addr, data)), remote_addr=self.target
        )
        self._upstreams[addr] = side
        self._from_client(first, addr)

    def _to_client(self, addr: Any, data: bytes) -> None:
        front = self._front
        if front is not None and front.transport is not None:
            transport = front.transport
            self._forward(("down", addr), data, lambda d: transport.sendto(d, addr))

    def _forward(self, key: Any, data: bytes, send: Any) -> None:
        if self.blackhole:
            return
        roll = self.rng.random()
        if roll < self.drop:
            self.dropped += 1
            return
        if roll < self.drop + self.reorder:
            self.reordered += 1
            held = self._held.setdefault(key, [])
            held.append(data)
            if len(held) == 1:
                asyncio.get_running_loop().call_later(0.005, self._release, key, send)
            return
        self.passed += 1
        send(data)
        self._release(key, send)

    def _release(self, key: Any, send: Any) -> None:
        for data in self._held.pop(key, []):
            send(data)


def proto_stub(client: tether.Client) -> Any:
    return client.stub(next(s for s in demo_services() if s.name == PROTO_SERVICE))


async def exercise(client: tether.Client) -> None:
    """One call of each kind, checked."""
    stub = proto_stub(client)
    reply = await stub.Unary(EchoRequest(data=b"ab", repeat=2), metadata={"k": "v"})
    assert reply.data == b"abab"
    assert reply.metadata["k"] == "v"
    assert [r.data async for r in stub.ServerStream(EchoRequest(data=b"s", repeat=3))] == [b"s"] * 3
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


async def test_every_call_kind_over_kcp_and_tls_kcp(certs: Certs) -> None:
    """A server on kcp:// and tls+kcp:// serves unary, server-, client- and bidi-streaming calls."""
    server = tether.Server(demo_services())
    await server.start(
        "kcp://127.0.0.1:0",
        "tls+kcp://127.0.0.1:0",
        tls=tether.TLSConfig(cert=certs.server, key=certs.server),
    )
    try:
        assert [a.partition("://")[0] for a in server.addresses] == ["kcp", "tls+kcp"]
        for url in server.addresses:
            tls = tether.TLSConfig(ca=certs.ca) if url.startswith("tls") else None
            async with tether.Client(url, tls=tls) as client:
                await exercise(client)
    finally:
        server.close()
        await server.wait_closed()


async def test_calls_survive_five_percent_loss_and_reordering() -> None:
    """Through a relay that drops 5 % and reorders 5 % of datagrams, 200 unary calls and a
    1 MiB echo all succeed."""
    server = tether.Server(demo_services())
    await server.start("kcp://127.0.0.1:0")
    relay = LossyRelay(("127.0.0.1", _port(server.addresses[0])), drop=0.05, reorder=0.05, seed=5)
    address = await relay.start()
    try:
        async with tether.Client(address, timeout=60) as client:
            stub = proto_stub(client)

            async def call(i: int) -> None:
                data = i.to_bytes(4, "big") * 16
                reply = await stub.Unary(EchoRequest(data=data))
                assert reply.data == data

            for batch in range(20):
                await asyncio.gather(*(call(batch * 10 + i) for i in range(10)))
            big = random.Random(9).randbytes(1 << 20)
            reply = await stub.Unary(EchoRequest(data=big))
            assert reply.data == big
        # The orderly close (FIN, CLOSE, CLOSE_ACK) also survives the loss: nothing lingers.
        listener = server._listeners[0]
        assert isinstance(listener, KCPListener)
        await eventually(lambda: listener.sessions == 0)
        assert relay.dropped > 50, relay.dropped
        assert relay.reordered > 50, relay.reordered
    finally:
        relay.close()
        server.close()
        await server.wait_closed()


async def test_half_open_peer_fails_pending_calls() -> None:
    """When the network between client and server goes silent, the pending call fails with
    UNAVAILABLE after the idle timeout; a client on a working path is unaffected."""
    server = tether.Server(demo_services())
    await server.start(f"kcp://127.0.0.1:0?{FAST}")
    direct = server.addresses[0]
    relay = LossyRelay(("127.0.0.1", _port(server.addresses[0])), drop=0, reorder=0, seed=1)
    relayed = f"{await relay.start()}?{FAST}"
    try:
        async with (
            tether.Client(relayed, timeout=30) as doomed,
            tether.Client(direct, timeout=30) as healthy,
        ):
            await exercise(doomed)
            pending = asyncio.create_task(
                proto_stub(doomed).Unary(EchoRequest(data=b"never", delay_ms=60_000))
            )
            await asyncio.sleep(0.1)
            relay.blackhole = True
            with pytest.raises(tether.StatusError) as info:
                async with asyncio.timeout(20):
                    await pending
            assert info.value.status is tether.Status.UNAVAILABLE
            await exercise(healthy)
    finally:
        relay.close()
        server.close()
        await server.wait_closed()


def _port(url: str) -> int:
    port = tether.transport.parse_address(url).port
    assert port is not None
    return port


async def test_client_that_stops_reading_fails_alone() -> None:
    """A client whose connection stops reading while the server streams to it: the
    server's session hits the write timeout, that client's call fails with UNAVAILABLE,
    and another client on the same listener keeps working."""
    server = tether.Server(demo_services())
    await server.start("kcp://127.0.0.1:0?idle_timeout=2&heartbeat=0.2&write_timeout=1")
    try:
        async with (
            tether.Client(server.addresses[0], timeout=30) as stuck,
            tether.Client(server.addresses[0], timeout=30) as healthy,
        ):
            await exercise(stuck)
            connection = stuck._dispatchers[0].connection  # the real kcp session under it
            assert connection is not None
            connection.pause_reading()
            stream = proto_stub(stuck).ServerStream(EchoRequest(data=bytes(60_000), repeat=1000))

            async def consume() -> None:
                async with asyncio.timeout(20):
                    async for _ in stream:
                        pass

            with pytest.raises(tether.StatusError) as info:
                await consume()
            assert info.value.status is tether.Status.UNAVAILABLE
            await exercise(healthy)
    finally:
        server.close()
        await server.wait_closed()
