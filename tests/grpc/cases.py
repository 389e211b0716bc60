"""The gRPC behaviours every client/server pairing must show (tether, grpcio, grpclib).

A test class inherits :class:`GrpcCases` and sets ``serve`` (an async context manager
factory taking a :class:`Probe` and yielding a :class:`PeerServer`) and ``connect`` (a
:class:`Driver` factory taking ``host:port``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar

import pytest

from tether import Status
from tether.demo.echo_pb2 import EchoRequest

from .echo_impl import TRAILERS, Probe
from .endpoints import CallFailed, Driver, PeerServer

FOUR_MIB = 4 * 1024 * 1024
#: A status message with characters grpc-message must percent-encode.
ODD_MESSAGE = "bad input: 100% wrong, ünïcode ✓\nline two"


class GrpcCases:
    """Every cardinality, metadata, status codes, deadlines, cancellation, big messages,
    many streams on one connection, and graceful shutdown."""

    serve: ClassVar[Callable[..., AbstractAsyncContextManager[Any]]]
    connect: ClassVar[Callable[[str], Any]]

    @pytest.fixture
    def probe(self) -> Probe:
        return Probe()

    @pytest.fixture
    async def server(self, probe: Probe) -> AsyncIterator[PeerServer]:
        async with type(self).serve(probe) as server:
            yield server

    @pytest.fixture
    async def driver(self, server: PeerServer) -> AsyncIterator[Driver]:
        driver = type(self).connect(server.address)
        try:
            yield driver
        finally:
            await driver.close()

    async def test_unary(self, driver: Driver) -> None:
        """A unary call returns the one reply."""
        outcome = await driver.unary(EchoRequest(data=b"hi", repeat=3))
        assert [r.data for r in outcome.replies] == [b"hihihi"]

    async def test_server_stream(self, driver: Driver) -> None:
        """A server-streaming call yields every reply, in order."""
        outcome = await driver.server_stream(EchoRequest(data=b"s", repeat=5))
        assert [r.data for r in outcome.replies] == [b"s"] * 5

    async def test_client_stream(self, driver: Driver) -> None:
        """A client-streaming call gets one reply after the client half-closes."""
        requests = [EchoRequest(data=bytes([65 + i])) for i in range(6)]
        outcome = await driver.client_stream(requests)
        assert [r.data for r in outcome.replies] == [b"ABCDEF"]

    async def test_bidi_stream(self, driver: Driver) -> None:
        """A bidi call answers each request before the next is sent."""
        requests = [EchoRequest(data=f"m{i}".encode()) for i in range(4)]
        outcome = await driver.bidi_stream(requests)
        assert [r.data for r in outcome.replies] == [b"m0", b"m1", b"m2", b"m3"]

    async def test_metadata_round_trip(self, driver: Driver) -> None:
        """Text and -bin request metadata reach the handler; initial and trailing metadata
        (text and binary) come back, on unary and streaming calls."""
        metadata = [("x-text", "hello world"), ("x-data-bin", b"\x00\x01\xfe\xff")]
        for outcome in (
            await driver.unary(EchoRequest(data=b"m"), metadata=metadata),
            await driver.server_stream(EchoRequest(data=b"m", repeat=2), metadata=metadata),
            await driver.bidi_stream([EchoRequest(data=b"m")], metadata=metadata),
        ):
            assert outcome.replies[0].metadata == {
                "x-text": "hello world",
                "x-data-bin": "AAH+/w==",
            }
            assert outcome.initial["echo-x-text"] == "hello world"
            assert outcome.initial["echo-x-data-bin"] == b"\x00\x01\xfe\xff"
            for key, value in TRAILERS:
                assert outcome.trailing[key] == value

    async def test_every_status_code(self, driver: Driver) -> None:
        """Each of the 17 status codes travels with its (percent-encoded) message, on unary
        and server-streaming calls."""
        for status in Status:
            metadata = [("x-status", str(int(status))), ("x-message", "m")]
            request = EchoRequest(data=b"ok")
            if status is Status.OK:
                assert (await driver.unary(request, metadata=metadata)).replies[0].data == b"ok"
                continue
            with pytest.raises(CallFailed) as info:
                await driver.unary(request, metadata=metadata)
            assert (info.value.status, info.value.message) == (int(status), "m"), status
            with pytest.raises(CallFailed) as info:
                await driver.server_stream(request, metadata=metadata)
            assert info.value.status == int(status)

    async def test_status_message_encoding(self, driver: Driver) -> None:
        """A message with '%', non-ASCII and a newline arrives unchanged."""
        metadata = [("x-status", "3"), ("x-message-bin", ODD_MESSAGE.encode())]
        with pytest.raises(CallFailed) as info:
            await driver.unary(EchoRequest(), metadata=metadata)
        assert (info.value.status, info.value.message) == (3, ODD_MESSAGE)

    async def test_deadline_exceeded(self, driver: Driver, probe: Probe) -> None:
        """A call past its deadline fails with DEADLINE_EXCEEDED; the handler saw the time
        remaining and is cancelled."""
        with pytest.raises(CallFailed) as info:
            await driver.unary(EchoRequest(delay_ms=60_000), timeout=0.6)
        assert info.value.status == int(Status.DEADLINE_EXCEEDED)
        await probe.cancelled.wait()
        assert probe.time_remaining is not None
        # The server's deadline is its loop time + the grpc-timeout it received; a peer may
        # round that header up to its next unit, and float rounding adds ulps.
        assert 0 < probe.time_remaining <= 0.6 + 0.01

    async def test_cancellation_reaches_the_server(self, driver: Driver, probe: Probe) -> None:
        """Cancelling a call in the client cancels the server's handler."""
        task = asyncio.ensure_future(driver.unary(EchoRequest(), metadata=[("x-wait", "1")]))
        await probe.started.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, CallFailed):
            await task
        await probe.cancelled.wait()
        assert probe.in_flight == 0

    async def test_four_mib_messages(self, driver: Driver) -> None:
        """4 MiB payloads travel both ways, unary and streamed."""
        data = bytes(range(256)) * (FOUR_MIB // 256)
        outcome = await driver.unary(EchoRequest(data=data))
        assert outcome.replies[0].data == data
        outcome = await driver.client_stream([EchoRequest(data=data), EchoRequest(data=b"!")])
        assert outcome.replies[0].data == data + b"!"
        outcome = await driver.server_stream(EchoRequest(data=data, repeat=2))
        assert [r.data for r in outcome.replies] == [data, data]

    async def test_200_concurrent_streams(self, driver: Driver, server: PeerServer) -> None:
        """200 calls in flight at once share one connection and all succeed."""
        outcomes = await asyncio.gather(
            *(driver.unary(EchoRequest(data=str(i).encode(), delay_ms=20)) for i in range(200))
        )
        assert [o.replies[0].data for o in outcomes] == [str(i).encode() for i in range(200)]
        assert server.connection_count() in (1, None)  # None: the library cannot tell
        assert driver.connection_count() in (1, None)

    async def test_graceful_shutdown(
        self, driver: Driver, server: PeerServer, probe: Probe
    ) -> None:
        """Shutting the server down lets in-flight calls finish; later calls fail with
        UNAVAILABLE. (grpclib cannot drain: its server cancels in-flight calls, and its
        client drops the connection on any GOAWAY; with grpclib at either end the
        in-flight calls must fail, promptly, instead.)"""
        calls = [
            asyncio.ensure_future(
                driver.unary(EchoRequest(data=f"{i}".encode()), metadata=[("x-wait", "1")])
            )
            for i in range(3)
        ]
        await probe.wait_for_waiting(3)
        stopping = asyncio.ensure_future(server.stop(grace=30.0))
        for _ in range(20):  # let the GOAWAY reach the client before the calls finish
            await asyncio.sleep(0.005)
        probe.release.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
        await stopping
        if server.drains_on_shutdown and driver.survives_goaway:
            assert [r.replies[0].data for r in results] == [b"0", b"1", b"2"]  # type: ignore[union-attr]
        else:
            assert all(isinstance(r, CallFailed) for r in results), results
        with pytest.raises(CallFailed) as info:
            await driver.unary(EchoRequest(data=b"late"))
        assert info.value.status == int(Status.UNAVAILABLE)
