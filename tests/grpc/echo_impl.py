"""The test flavour of ``tether.demo.Echo`` served by tether, plus what it records.

Every peer server in the gRPC tests (tether, grpcio, grpclib) implements the same rules,
driven by request metadata, so one set of scenarios runs against each:

* ``x-status: N`` — fail with status N and the message in ``x-message``;
* ``x-wait: 1`` — wait until the test sets :attr:`Probe.release` before replying;
* every custom request key ``k`` comes back as initial metadata ``echo-k``;
* trailing metadata is always :data:`TRAILERS`;
* ``delay_ms`` waits (cancellation and deadlines are recorded on the :class:`Probe`).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterable

import tether
from tether.demo.echo_pb2 import EchoReply, EchoRequest

SERVICE = "tether.demo.Echo"
TRAILERS: tuple[tuple[str, str | bytes], ...] = (
    ("x-trailer", "t"),
    ("x-trailer-bin", b"\x00\xfft"),
)


def echo_headers(pairs: Iterable[tuple[str, str | bytes]]) -> list[tuple[str, str | bytes]]:
    """Initial metadata echoing the caller's ``x-*`` keys as ``echo-x-*``."""
    return [(f"echo-{k}", v) for k, v in pairs if k.startswith("x-")]


def failure(pairs: Iterable[tuple[str, str | bytes]]) -> tuple[int, str] | None:
    """``(status, message)`` when the caller asked for a failure with ``x-status``."""
    found = dict(pairs)
    status = int(str(found.get("x-status", "0")))
    if status == 0:
        return None
    raw = found.get("x-message-bin")
    message = raw.decode() if isinstance(raw, bytes) else str(found.get("x-message", "failed"))
    return status, message


def metadata_map(pairs: Iterable[tuple[str, str | bytes]]) -> dict[str, str]:
    """``EchoReply.metadata``: the caller's ``x-*`` keys, bytes values as base64."""
    return {
        k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
        for k, v in pairs
        if k.startswith("x-")
    }


class Probe:
    """What the server-side handlers saw; lives on the test's event loop."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()
        self.time_remaining: float | None = None
        self.in_flight = 0
        self.waiting = 0
        self.calls = 0
        self.waiting_changed = asyncio.Event()

    async def wait_for_waiting(self, count: int) -> None:
        """Wait until ``count`` calls sit in ``x-wait``."""
        while self.waiting < count:
            self.waiting_changed.clear()
            await self.waiting_changed.wait()

    async def hold(self, delay_ms: int, wait: bool) -> None:
        """The shared body of every handler: record, wait as asked, notice cancellation."""
        self.calls += 1
        self.in_flight += 1
        self.started.set()
        try:
            if wait:
                self.waiting += 1
                self.waiting_changed.set()
                try:
                    await self.release.wait()
                finally:
                    self.waiting -= 1
            if delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            self.in_flight -= 1


class TetherEcho:
    """The handler object for ``tether.grpc.service_from_pb2(echo_pb2, "Echo", ...)``."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def _begin(self, ctx: tether.ServerContext) -> list[tuple[str, str | bytes]]:
        pairs = [(k, v) for k in ctx.metadata for v in ctx.metadata.getall(k)]
        self.probe.time_remaining = ctx.time_remaining()
        failed = failure(pairs)
        if failed is not None:
            raise tether.StatusError(tether.Status(failed[0]), failed[1])
        ctx.set_headers(echo_headers(pairs))
        ctx.set_trailers(TRAILERS)
        return pairs

    async def Unary(self, request: EchoRequest, ctx: tether.ServerContext) -> EchoReply:
        pairs = self._begin(ctx)
        await self.probe.hold(request.delay_ms, "x-wait" in ctx.metadata)
        return EchoReply(data=request.data * (request.repeat or 1), metadata=metadata_map(pairs))

    async def ServerStream(
        self, request: EchoRequest, ctx: tether.ServerContext
    ) -> AsyncIterator[EchoReply]:
        pairs = self._begin(ctx)
        for _ in range(request.repeat or 1):
            await self.probe.hold(request.delay_ms, "x-wait" in ctx.metadata)
            yield EchoReply(data=request.data, metadata=metadata_map(pairs))

    async def ClientStream(
        self, requests: AsyncIterator[EchoRequest], ctx: tether.ServerContext
    ) -> EchoReply:
        pairs = self._begin(ctx)
        chunks = [request.data async for request in requests]
        await self.probe.hold(0, "x-wait" in ctx.metadata)
        return EchoReply(data=b"".join(chunks), metadata=metadata_map(pairs))

    async def BidiStream(
        self, requests: AsyncIterator[EchoRequest], ctx: tether.ServerContext
    ) -> AsyncIterator[EchoReply]:
        pairs = self._begin(ctx)
        async for request in requests:
            await self.probe.hold(request.delay_ms, False)
            yield EchoReply(data=request.data, metadata=metadata_map(pairs))
