"""Conformance checks of how connections end: nothing leaks, a lost peer is not a clean
EOF, EOF waits behind paused reading, nothing is sent after ``write_eof()``, and dialing
can be cancelled at any point."""

from __future__ import annotations

import asyncio
import contextlib
import time

from .._exceptions import BrokenResourceError, ClosedResourceError, ConnectError, TransportError
from ..transport import Connection, parse_address
from ._resources import ResourceSnapshot
from ._transport_harness import _Harness
from ._transport_support import _Recorder, _Skip

#: Connect/exchange/end cycles in ``no_leaks``: each of the four endings three times.
LEAK_CYCLES = 12
#: Event-loop iterations ``connect_cancelled`` tries at most before cancelling a dial.
CANCEL_POINTS = 200


class _EndingChecks(_Harness):
    """``no_leaks``, ``connect_cancelled``, ``loss_is_not_eof``, ``paused_eof``,
    ``write_after_eof`` and ``listen_in_use`` (see :class:`TransportChecks`)."""

    # -- resources -------------------------------------------------------------------------

    async def _expect_no_leaks(self, before: ResourceSnapshot, after_what: str) -> None:
        """Wait (up to the timeout) until the process holds no more than ``before``."""
        deadline = time.monotonic() + self.timeout
        while True:
            leaks = ResourceSnapshot.take().leaks_since(before)
            if not leaks:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{after_what}, with every connection and listener closed, the process "
                    f"still holds {'; '.join(leaks)} (waited {self.timeout:g}s)"
                )
            await asyncio.sleep(0.02)

    async def _baseline(self) -> ResourceSnapshot:
        """Warm up with one full cycle (loops and libraries create some resources lazily,
        e.g. uvloop's thread pool), let it settle, and snapshot the process."""
        await self._cycles(1)
        for _ in range(5):
            await asyncio.sleep(0.01)
        return ResourceSnapshot.take()

    async def _cycles(self, count: int) -> None:
        """Connect, exchange bytes, end: client close, server close, client abort, server
        abort in turn; the survivor closes once it saw the end; both wait_closed()."""
        async with self._serve() as session:
            for i in range(count):
                client, crec, server, srec = await self._pair(session)
                await self._exchange(client, crec, server, srec, b"cycle %d" % i)
                ender, survivor, survivor_rec = (
                    (client, server, srec) if i % 2 == 0 else (server, client, crec)
                )
                if i % 4 < 2:
                    ender.close()
                else:
                    ender.abort()
                await survivor_rec.wait_end(self.timeout)
                survivor.close()
                async with asyncio.timeout(self.timeout):
                    await client.wait_closed()
                    await server.wait_closed()

    async def check_no_leaks(self) -> None:
        """Connect/exchange/end cycles (close and abort, by either side) leave no file
        descriptors, shared-memory mappings or tasks behind."""
        before = await self._baseline()
        await self._cycles(LEAK_CYCLES)
        await self._expect_no_leaks(before, f"after {LEAK_CYCLES} connect/close/abort cycles")

    async def check_connect_cancelled(self) -> None:
        """Cancelling connect() at any point of the dial leaves nothing open (Transport.connect)."""
        before = await self._baseline()
        address = None
        finished = 0
        async with self._serve() as session:
            address = parse_address(session.address)
            for point in range(CANCEL_POINTS):
                dial = asyncio.create_task(self.transport.connect(address, self.connect_options))
                for _ in range(point):
                    await asyncio.sleep(0)
                    if dial.done():
                        break
                dial.cancel()
                try:
                    conn = await dial
                except asyncio.CancelledError:
                    continue
                except ConnectError:  # the listener gave up on a dial cancelled earlier
                    continue
                conn.abort()  # it finished before the cancellation reached it
                async with asyncio.timeout(self.timeout):
                    await conn.wait_closed()
                finished += 1
                if finished == 3:
                    break
        await self._expect_no_leaks(before, "after connect() was cancelled at each step")

    # -- loss ------------------------------------------------------------------------------

    async def check_loss_is_not_eof(self) -> None:
        """A peer that dies abruptly (the adapter's ``kill``) ends our side with
        on_inactive(BrokenResourceError), never with on_eof (skipped unless the adapter
        declares ``reports_loss``)."""
        if not self.adapter.reports_loss:
            raise _Skip(self.adapter.no_loss_reason)
        async with self._serve() as session:
            for victim_side in ("server", "client"):
                client, crec, server, srec = await self._pair(session)
                await self._exchange(client, crec, server, srec, b"alive")
                victim, survivor, rec = (
                    (server, client, crec) if victim_side == "server" else (client, server, srec)
                )
                self.adapter.kill(victim)
                await self._expect_loss(survivor, rec, f"its peer (the {victim_side}) died")

    async def _expect_loss(self, conn: Connection, rec: _Recorder, why: str) -> None:
        await rec.wait_for(lambda: rec.inactive > 0, f"{rec.name}'s on_inactive", self.timeout)
        assert not rec.eofs, f"{rec.name} got on_eof after {why}: a loss looked like a clean EOF"
        exc = rec.inactive_exc
        assert isinstance(exc, BrokenResourceError), (
            f"{rec.name}'s on_inactive got {exc!r} after {why}, not a BrokenResourceError"
        )
        assert conn.is_closing(), f"{rec.name}: is_closing() is false after {why}"
        async with asyncio.timeout(self.timeout):
            await conn.wait_closed()
        conn.write_binary(b"into the void")  # must not raise
        conn.flush()

    # -- EOF -------------------------------------------------------------------------------

    async def check_paused_eof(self) -> None:
        """While reading is paused the peer's EOF waits too; resuming delivers every byte,
        then the EOF."""
        payload = b"held while paused " * 1000
        async with self._serve(
            server_recorder=lambda i: _Recorder(f"server#{i}", pause_on_active=True)
        ) as session:
            client, _crec, server, srec = await self._pair(session)
            client.write_binary(payload)
            half_close = client.can_write_eof()
            if half_close:
                client.write_eof()
            else:
                client.close()
            for _ in range(10):  # give a transport that ignores the pause its chance
                await asyncio.sleep(0.01)
            assert not srec.data, "bytes were delivered while reading was paused"
            assert srec.eofs == 0, "on_eof was delivered while reading was paused"
            srec.resume()
            await srec.wait_bytes(len(payload), self.timeout)
            await srec.wait_end(self.timeout)
            assert srec.data == payload, f"got {len(srec.data)} bytes, not the {len(payload)} sent"
            if srec.eofs:
                assert srec.len_at_eof == len(payload), "on_eof came before the held bytes"
            elif half_close:
                raise AssertionError(f"write_eof() reached the server as {srec!r}, not on_eof")
            server.close()
            async with asyncio.timeout(self.timeout):
                await server.wait_closed()

    async def check_write_after_eof(self) -> None:
        """After write_eof(), writing queues silently, flush() and send_buffers() raise
        ClosedResourceError, and the peer never gets those bytes (skipped if
        can_write_eof() is false)."""
        async with self._serve() as session:
            client, crec, server, srec = await self._pair(session)
            if not client.can_write_eof():
                raise _Skip("can_write_eof() is false")
            client.write_binary(b"before")
            client.write_eof()
            client.write_binary(b"after")  # queueing never raises
            try:
                client.flush()
            except ClosedResourceError:
                pass
            else:
                raise AssertionError("flush() after write_eof() did not raise ClosedResourceError")
            try:
                client.send_buffers([b"after, at once"])
            except ClosedResourceError:
                pass
            else:
                raise AssertionError(
                    "send_buffers() after write_eof() did not raise ClosedResourceError"
                )
            await srec.wait_for(lambda: srec.eofs > 0, "the server's on_eof", self.timeout)
            server.write_binary(b"the other way still works")
            server.flush()
            await crec.wait_bytes(25, self.timeout)
            assert srec.data.startswith(b"before"), f"server got {bytes(srec.data)!r}"
            assert b"after" not in srec.data, "bytes written after write_eof() were delivered"

    # -- listening -------------------------------------------------------------------------

    async def check_listen_in_use(self) -> None:
        """Listening on an address a live listener holds raises TransportError, and the
        first listener keeps working (Transport.listen)."""
        async with self._serve() as session:
            try:
                second = await self.transport.listen(
                    parse_address(session.address), self.listen_options, lambda conn: None
                )
            except TransportError:
                pass
            except Exception as exc:
                raise AssertionError(
                    f"listen({session.address!r}) while in use raised {exc!r}, not a TransportError"
                ) from None
            else:
                with contextlib.suppress(Exception):
                    await second.aclose()
                raise AssertionError(f"listen({session.address!r}) succeeded while in use")
            # Probing whether the address is live may have connected to the first
            # listener (a Unix socket file is probed so): find our connection by its bytes.
            client, _crec = await self._connect(session)
            client.write_binary(b"first listener")
            client.flush()
            deadline = time.monotonic() + self.timeout
            while not any(rec.data == b"first listener" for _, rec in session.accepted):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the first listener stopped working after a second listen(): "
                        f"{[rec for _, rec in session.accepted]}"
                    )
                await asyncio.sleep(0.01)
