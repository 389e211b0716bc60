"""A conformance suite for transports: run it against any registered URL scheme.

Usage (in a test, with an event loop running)::

    from tether.testing import check_transport

    async def test_my_transport() -> None:
        await check_transport("mine://127.0.0.1:0")

The suite only uses the public registry (:func:`~tether.transport.get_transport`) and
the :class:`~tether.transport.Connection` / :class:`~tether.transport.Listener`
contracts, so a third-party transport is checked exactly like the built-in ones. Each
check listens on the URL afresh (port 0, a temporary path or a memory name), dials the
address the listener reports, and cleans up every connection and listener it made.
Failures raise :class:`AssertionError` naming the URL and the check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import random
import struct
import time
from collections.abc import Iterable
from typing import final

from .._config import ConnectOptions, ListenOptions
from .._exceptions import BrokenResourceError, ConnectError
from .._types import BufferLike
from ..transport import Connection, parse_address
from ._transport_adapter import TransportAdapter
from ._transport_endings import _EndingChecks
from ._transport_harness import MiB
from ._transport_support import TransportReport, _first_diff, _Recorder, _Skip

#: Every check, in the order :func:`check_transport` runs them.
TRANSPORT_CHECKS: tuple[str, ...] = (
    "connect_and_listen",
    "ordering",
    "write_buffers",
    "send_buffers",
    "early_data",
    "eof",
    "half_close",
    "paused_eof",
    "write_after_eof",
    "large_writes",
    "concurrent_writers",
    "backpressure",
    "drain_when_lost",
    "abort",
    "connect_refused",
    "close_idempotent",
    "listener_aclose",
    "listen_in_use",
    "loss_is_not_eof",
    "no_leaks",
    "connect_cancelled",
)


# -- the checks ----------------------------------------------------------------------------


@final
class TransportChecks(_EndingChecks):
    """The named checks of the transport contract, each a coroutine method ``check_<name>``.

    Args:
        url: where to listen, e.g. ``tcp://127.0.0.1:0``, ``unix:///tmp/x.sock``,
            ``memory://name``; the scheme selects the transport from the registry.
        listen_options / connect_options: passed to ``listen`` / ``connect`` (TLS lives here).
        large_size: bytes sent each way by ``large_writes``.
        timeout: seconds allowed for each awaited event (a check as a whole gets four
            times as long).
        adapter: what the transport declares that the suite cannot discover (whether
            it tells a lost peer from a closed one, how to kill a peer); see
            :class:`TransportAdapter`.
    """

    async def run(self, checks: Iterable[str] | None = None) -> TransportReport:
        """Run ``checks`` (default: all of :data:`TRANSPORT_CHECKS`) in order.

        Raises:
            AssertionError: the first failing check, prefixed with the URL and its name.
            ValueError: an unknown check name.
        """
        names = tuple(checks) if checks is not None else TRANSPORT_CHECKS
        unknown = [n for n in names if n not in TRANSPORT_CHECKS]
        if unknown:
            raise ValueError(f"unknown transport checks {unknown}; known: {TRANSPORT_CHECKS}")
        passed: list[str] = []
        skipped: dict[str, str] = {}
        for name in names:
            try:
                await self.run_check(name)
            except _Skip as skip:
                skipped[name] = str(skip)
            else:
                passed.append(name)
        return TransportReport(self.url, tuple(passed), skipped)

    # -- checks ----------------------------------------------------------------------------

    async def check_connect_and_listen(self) -> None:
        """Dial the listener's address; both ends go active and exchange bytes; extras."""
        async with self._serve() as session:
            reported = parse_address(session.address).scheme
            assert reported == self.scheme, (
                f"listener.address {session.address!r} has scheme {reported!r}, not {self.scheme!r}"
            )
            client, crec, server, srec = await self._pair(session)
            assert crec.active == 1, "the client handler did not get on_active"
            await self._exchange(client, crec, server, srec, b"ping")
            for conn in (client, server):
                assert not conn.is_closing(), f"{conn!r} is closing while open"
                scheme = conn.extra("scheme")
                assert scheme in (None, self.scheme), f"extra('scheme') is {scheme!r}"
                assert conn.extra("no-such-extra", "dflt") == "dflt", "extra() ignores its default"
            client.close()
            await srec.wait_end(self.timeout)
            server.close()
            async with asyncio.timeout(self.timeout):
                await client.wait_closed()
                await server.wait_closed()

    async def check_ordering(self) -> None:
        """Thousands of small writes (write_binary and malloc, odd flushes) arrive in order."""
        rng = random.Random(1)
        async with self._serve() as session:
            client, crec, server, srec = await self._pair(session)
            for sender, receiver in ((client, srec), (server, crec)):
                expected = bytearray()
                for seq in range(3000):
                    body = struct.pack(">I", seq) + bytes([seq & 0xFF]) * rng.randrange(0, 200)
                    if seq % 7 == 3:
                        region = sender.malloc(len(body))
                        region[:] = body  # filled after queueing: must still be sent
                    else:
                        sender.write_binary(body)
                    expected += body
                    if rng.random() < 0.2:
                        sender.flush()
                    if rng.random() < 0.02:
                        await sender.drain()
                        await asyncio.sleep(0)
                sender.flush()
                await receiver.wait_bytes(len(expected), self.timeout)
                assert receiver.data == expected, (
                    f"{receiver.name} received {len(receiver.data)} bytes that differ from the "
                    f"{len(expected)} sent (first difference at {_first_diff(receiver.data, expected)})"
                )

    async def check_write_buffers(self) -> None:
        """write_buffers() queues its chunks in order among write_binary() calls, as one
        atomic batch; the transport does not keep the caller's list."""
        async with self._serve() as session:
            client, crec, server, srec = await self._pair(session)
            for sender, receiver in ((client, srec), (server, crec)):
                expected = bytearray()
                for seq in range(200):
                    chunks: list[BufferLike] = [
                        b"<%d>" % seq,
                        bytearray(b"b" * (seq % 7)),
                        memoryview(bytes([seq & 0xFF]) * (seq * 97 % 70000)),
                    ]
                    expected += b"".join(chunks)
                    sender.write_buffers(chunks)
                    chunks.clear()  # the list is the caller's again: not its buffers
                    chunks.append(b"NOT SENT")
                    tail = b"|%d|" % seq
                    sender.write_binary(tail)
                    expected += tail
                    if seq % 3 == 0:
                        sender.flush()
                        await sender.drain()
                sender.flush()
                await receiver.wait_bytes(len(expected), self.timeout)
                assert receiver.data == expected, (
                    f"{receiver.name}: write_buffers() bytes differ from those sent (first "
                    f"difference at {_first_diff(receiver.data, expected)})"
                )

    async def check_send_buffers(self) -> None:
        """send_buffers() sends its chunks at once, after any bytes already queued and in
        order; an empty list sends nothing; the transport does not keep the caller's list."""
        async with self._serve() as session:
            client, crec, server, srec = await self._pair(session)
            for sender, receiver in ((client, srec), (server, crec)):
                expected = bytearray()
                for seq in range(200):
                    if seq % 4 == 1:
                        head = b"(%d)" % seq  # queued, not flushed: must go first
                        sender.write_binary(head)
                        expected += head
                    chunks: list[BufferLike] = [b"<%d>" % seq]
                    if seq % 2:
                        chunks.append(memoryview(bytes([seq & 0xFF]) * (seq * 89 % 50000)))
                    expected += b"".join(chunks)
                    sender.send_buffers(chunks)
                    chunks.clear()
                    chunks.append(b"NOT SENT")
                    sender.send_buffers([])
                    if seq % 5 == 0:
                        await sender.drain()
                await receiver.wait_bytes(len(expected), self.timeout)
                assert receiver.data == expected, (
                    f"{receiver.name}: send_buffers() bytes differ from those sent (first "
                    f"difference at {_first_diff(receiver.data, expected)})"
                )

    async def check_early_data(self) -> None:
        """Bytes sent before the server calls start() are kept and delivered after on_active."""
        async with self._serve(start_delay=0.05) as session:
            client, _crec = await self._connect(session)
            client.write_binary(b"early bird ")
            client.flush()
            await asyncio.sleep(0.01)
            client.write_binary(b"gets the worm")
            client.flush()
            _server, srec = await self._accepted(session)
            await srec.wait_bytes(24, self.timeout)
            assert srec.data == b"early bird gets the worm", f"server got {bytes(srec.data)!r}"

    async def check_eof(self) -> None:
        """close() delivers every queued byte, then the peer sees EOF (on_eof or on_inactive)."""
        payload = bytes(range(256)) * 512
        async with self._serve() as session:
            client, _crec, server, srec = await self._pair(session)
            client.write_binary(payload)
            client.write_binary(b"last")
            client.close()
            await srec.wait_end(self.timeout)
            await srec.wait_bytes(len(payload) + 4, self.timeout)
            assert srec.data == payload + b"last", "bytes before EOF were lost or reordered"
            if srec.eofs:
                assert srec.len_at_eof == len(payload) + 4, "on_eof came before all the bytes"
            server.close()
            async with asyncio.timeout(self.timeout):
                await server.wait_closed()
                await client.wait_closed()

    async def check_half_close(self) -> None:
        """After write_eof() the peer sees EOF, and can still write back to us."""
        async with self._serve() as session:
            client, crec, server, srec = await self._pair(session)
            if not client.can_write_eof():
                raise _Skip("can_write_eof() is false")
            client.write_binary(b"request")
            client.write_eof()
            client.write_eof()  # idempotent
            await srec.wait_for(lambda: srec.eofs > 0, "the server's on_eof", self.timeout)
            assert srec.data == b"request", f"server got {bytes(srec.data)!r} before EOF"
            assert srec.len_at_eof == 7, "on_eof came before the bytes"
            assert not srec.inactive, "the server went inactive on a half-close"
            server.write_binary(b"response after EOF")
            server.flush()
            await crec.wait_bytes(18, self.timeout)
            assert crec.data == b"response after EOF", f"client got {bytes(crec.data)!r}"
            server.close()
            await crec.wait_end(self.timeout)
            client.close()
            async with asyncio.timeout(self.timeout):
                await client.wait_closed()
                await server.wait_closed()

    async def check_large_writes(self) -> None:
        """One large write each way, at the same time, arrives complete and unchanged."""
        size = self.large_size
        up = random.Random(2).randbytes(size)
        down = random.Random(3).randbytes(size)
        async with self._serve() as session:
            client, crec, server, srec = await self._pair(session)

            async def send(conn: Connection, data: bytes) -> None:
                conn.write_binary(data)
                conn.flush()
                await conn.drain()

            async with asyncio.TaskGroup() as tg:
                tg.create_task(send(client, up))
                tg.create_task(send(server, down))
                tg.create_task(srec.wait_bytes(size, self.timeout))
                tg.create_task(crec.wait_bytes(size, self.timeout))
            assert len(srec.data) == size, f"server got {len(srec.data)} bytes, not {size}"
            assert srec.data == up, f"upload corrupted at {_first_diff(srec.data, up)}"
            assert crec.data == down, f"download corrupted at {_first_diff(crec.data, down)}"

    async def check_concurrent_writers(self) -> None:
        """Many tasks writing whole messages: each arrives intact, contiguous, in task order."""
        writers, per_writer = 32, 12
        rng = random.Random(4)
        sizes = [[rng.randrange(0, 20000) for _ in range(per_writer)] for _ in range(writers)]
        async with self._serve() as session:
            client, _crec, _server, srec = await self._pair(session)

            async def writer(wid: int) -> None:
                for seq, size in enumerate(sizes[wid]):
                    header = struct.pack(">IHH", 8 + size, wid, seq)
                    body = bytes([(wid * 31 + seq) & 0xFF]) * size
                    if seq % 2:
                        client.write_binary(header + body)
                    else:  # two writes, no await between them: still one message
                        client.write_binary(header)
                        client.write_binary(body)
                    if seq % 3 != 2:
                        client.flush()
                    await client.drain()
                    await asyncio.sleep(0)
                client.flush()

            async with asyncio.TaskGroup() as tg:
                for wid in range(writers):
                    tg.create_task(writer(wid))
            total = sum(8 + s for row in sizes for s in row)
            await srec.wait_bytes(total, self.timeout)
            data, pos = srec.data, 0
            next_seq = [0] * writers
            while pos < len(data):
                length, wid, seq = struct.unpack_from(">IHH", data, pos)
                assert wid < writers, f"garbage header at offset {pos}: interleaved writes?"
                assert seq == next_seq[wid], f"writer {wid}: message {seq} out of order"
                size = sizes[wid][seq]
                assert length == 8 + size, f"writer {wid} message {seq}: bad length at {pos}"
                body = data[pos + 8 : pos + length]
                if body.count((wid * 31 + seq) & 0xFF) != size:
                    raise AssertionError(f"writer {wid} message {seq} is not contiguous")
                next_seq[wid] += 1
                pos += length
            assert next_seq == [per_writer] * writers, f"messages missing: {next_seq}"

    async def check_backpressure(self) -> None:
        """A peer that pauses reading makes drain() block; resuming unblocks, nothing lost."""
        async with self._serve(
            server_recorder=lambda i: _Recorder(f"server#{i}", pause_on_active=True)
        ) as session:
            client, _crec, _server, srec = await self._pair(session)
            sent = hashlib.sha256()
            blocked, written = await self._fill_until_blocked(client, srec, sent.update)
            assert client.is_write_paused(), "drain() blocks but is_write_paused() is false"
            # Cancelling a blocked drain() leaves the connection intact.
            blocked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await blocked
            assert not client.is_closing(), "cancelling drain() closed the connection"
            again = asyncio.create_task(client.drain())
            await asyncio.sleep(0.05)
            assert not again.done(), "drain() returned while the peer was still paused"
            srec.resume()
            async with asyncio.timeout(self.timeout):
                await again
            assert not client.is_write_paused(), "drain() returned; is_write_paused() is true"
            tail = b"the end"
            client.write_binary(tail)
            client.flush()
            sent.update(tail)
            written += len(tail)
            await srec.wait_bytes(written, self.timeout)
            assert len(srec.data) == written, f"server got {len(srec.data)} of {written} bytes"
            assert hashlib.sha256(srec.data).digest() == sent.digest(), "bytes were corrupted"

    async def check_drain_when_lost(self) -> None:
        """A drain() blocked on a paused peer raises BrokenResourceError if the peer aborts."""
        async with self._serve(
            server_recorder=lambda i: _Recorder(f"server#{i}", pause_on_active=True)
        ) as session:
            client, crec, server, srec = await self._pair(session)
            blocked, _ = await self._fill_until_blocked(client, srec, lambda data: None)
            server.abort()
            try:
                async with asyncio.timeout(self.timeout):
                    await blocked
            except BrokenResourceError:
                pass
            except TimeoutError:
                raise AssertionError("drain() still blocked after the peer aborted") from None
            else:
                raise AssertionError("drain() returned normally after the peer aborted")
            await crec.wait_for(lambda: crec.inactive > 0, "the client's on_inactive", self.timeout)

    async def check_abort(self) -> None:
        """abort() ends our side at once; the peer promptly sees the end (EOF or error)."""
        async with self._serve() as session:
            client, crec, server, srec = await self._pair(session)
            await self._exchange(client, crec, server, srec, b"before abort")
            client.write_binary(b"x" * 100_000)  # queued, may be dropped
            client.abort()
            assert client.is_closing(), "is_closing() is false after abort()"
            client.abort()  # idempotent
            await crec.wait_for(lambda: crec.inactive > 0, "the aborting side's on_inactive", 5)
            async with asyncio.timeout(5):
                await client.wait_closed()
            await srec.wait_end(5)
            server.write_binary(b"into the void")  # must not raise
            server.flush()
            server.close()
            await srec.wait_for(lambda: srec.inactive > 0, "the peer's on_inactive", self.timeout)
            assert server.is_closing(), "is_closing() is false after on_inactive"

    async def check_connect_refused(self) -> None:
        """Dialing an address nobody listens on raises ConnectError within the timeout."""
        async with self._serve() as session:
            address = session.address
        timeout = min(self.connect_options.connect_timeout, 5.0)
        options = dataclasses.replace(self.connect_options, connect_timeout=timeout)
        started = time.monotonic()
        try:
            conn = await self.transport.connect(parse_address(address), options)
        except ConnectError:
            pass
        else:
            conn.abort()
            raise AssertionError(f"connect({address!r}) succeeded after the listener closed")
        elapsed = time.monotonic() - started
        assert elapsed < timeout + 2, f"ConnectError took {elapsed:.1f}s (timeout {timeout}s)"

    async def check_close_idempotent(self) -> None:
        """close()/abort() twice never raise, writes after close are dropped, wait_closed ends."""
        async with self._serve() as session:
            client, crec, server, srec = await self._pair(session)
            await self._exchange(client, crec, server, srec, b"hello")
            waiter = asyncio.create_task(client.wait_closed())
            await asyncio.sleep(0)
            waiter.cancel()  # cancelling wait_closed() leaves the connection intact
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
            await self._exchange(client, crec, server, srec, b"still open")
            client.close()
            client.close()
            client.write_binary(b"after close")
            client.flush()
            client.abort()
            assert client.is_closing(), "is_closing() is false after close()"
            async with asyncio.timeout(self.timeout):
                await client.wait_closed()
                await client.wait_closed()
            assert crec.inactive == 1, f"client on_inactive ran {crec.inactive} times"
            await srec.wait_end(self.timeout)
            server.close()
            server.close()
            async with asyncio.timeout(self.timeout):
                await server.wait_closed()
            assert srec.inactive == 1, f"server on_inactive ran {srec.inactive} times"
            assert b"after close" not in srec.data, "a write after close() was delivered"

    async def check_listener_aclose(self) -> None:
        """aclose() stops accepting (ConnectError), is idempotent, and spares open connections."""
        async with self._serve() as session:
            client, crec, server, srec = await self._pair(session)
            await session.listener.aclose()
            await session.listener.aclose()
            options = dataclasses.replace(
                self.connect_options,
                connect_timeout=min(self.connect_options.connect_timeout, 5.0),
            )
            try:
                extra = await self.transport.connect(parse_address(session.address), options)
            except ConnectError:
                pass
            else:
                extra.abort()
                raise AssertionError("connect() succeeded after listener.aclose()")
            await self._exchange(client, crec, server, srec, b"still here")


async def check_transport(
    url: str,
    *,
    listen_options: ListenOptions | None = None,
    connect_options: ConnectOptions | None = None,
    checks: Iterable[str] | None = None,
    large_size: int = 16 * MiB,
    timeout: float = 10.0,
    adapter: TransportAdapter | None = None,
) -> TransportReport:
    """Run the transport conformance suite against the transport registered for ``url``.

    Args:
        url: where to listen (port 0, a temporary path, a memory name...).
        listen_options / connect_options: passed through (TLS settings live here).
        checks: names from :data:`TRANSPORT_CHECKS` (default: all of them).
        large_size: bytes each way in ``large_writes`` (16 MiB).
        timeout: seconds allowed for each awaited event (each check gets four times that).
        adapter: the transport's declared capabilities (:class:`TransportAdapter`);
            without one, ``loss_is_not_eof`` is skipped.

    Returns:
        which checks passed and which were skipped as not applicable, with the reason
        (``half_close`` and ``write_after_eof`` for transports whose ``can_write_eof()``
        is false, ``loss_is_not_eof`` unless the adapter declares ``reports_loss``).

    Raises:
        AssertionError: a check failed; the message names the URL and the check.
        ConfigError: nothing is registered for the URL's scheme.
    """
    suite = TransportChecks(
        url,
        listen_options=listen_options,
        connect_options=connect_options,
        large_size=large_size,
        timeout=timeout,
        adapter=adapter,
    )
    return await suite.run(checks)


__all__ = [
    "TRANSPORT_CHECKS",
    "TransportAdapter",
    "TransportChecks",
    "TransportReport",
    "check_transport",
]
