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
from collections.abc import AsyncIterator, Callable, Iterable
from typing import final

from .._config import ConnectOptions, ListenOptions
from .._exceptions import BrokenResourceError, ConnectError
from ..transport import Connection, get_transport, parse_address
from ._transport_support import TransportReport, _first_diff, _Recorder, _Session, _Skip

MiB = 1024 * 1024

#: Every check, in the order :func:`check_transport` runs them.
TRANSPORT_CHECKS: tuple[str, ...] = (
    "connect_and_listen",
    "ordering",
    "early_data",
    "eof",
    "half_close",
    "large_writes",
    "concurrent_writers",
    "backpressure",
    "drain_when_lost",
    "abort",
    "connect_refused",
    "close_idempotent",
    "listener_aclose",
)


# -- the checks ----------------------------------------------------------------------------


@final
class TransportChecks:
    """The named checks of the transport contract, each a coroutine method ``check_<name>``.

    Args:
        url: where to listen, e.g. ``tcp://127.0.0.1:0``, ``unix:///tmp/x.sock``,
            ``memory://name``; the scheme selects the transport from the registry.
        listen_options / connect_options: passed to ``listen`` / ``connect`` (TLS lives here).
        large_size: bytes sent each way by ``large_writes``.
        timeout: seconds allowed for each awaited event (a check as a whole gets four
            times as long).
    """

    def __init__(
        self,
        url: str,
        *,
        listen_options: ListenOptions | None = None,
        connect_options: ConnectOptions | None = None,
        large_size: int = 16 * MiB,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.scheme = parse_address(url).scheme
        self.transport = get_transport(self.scheme)
        self.listen_options = listen_options or ListenOptions()
        self.connect_options = connect_options or ConnectOptions()
        self.large_size = large_size
        self.timeout = timeout
        self._session: _Session | None = None

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

    async def run_check(self, name: str) -> None:
        """Run one check, with its time limit and the universal event-order checks."""
        check = getattr(self, f"check_{name}")
        limit = 4 * self.timeout
        try:
            async with asyncio.timeout(limit):
                await check()
        except AssertionError as exc:
            raise AssertionError(f"{self.url} [{name}]: {exc}") from None
        except TimeoutError:
            raise AssertionError(f"{self.url} [{name}]: did not finish within {limit:g}s") from None

    # -- plumbing --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _serve(
        self,
        *,
        server_recorder: Callable[[int], _Recorder] | None = None,
        start_delay: float = 0.0,
    ) -> AsyncIterator[_Session]:
        """Listen on :attr:`url`; yield a session; then abort and check everything."""
        make = server_recorder or (lambda i: _Recorder(f"server#{i}"))
        loop = asyncio.get_running_loop()
        session: _Session | None = None

        def on_connection(conn: Connection) -> None:
            assert session is not None
            recorder = make(len(session.accepted))
            session.accepted.append((conn, recorder))
            session.accepted_event.set()
            if start_delay:
                loop.call_later(start_delay, conn.start, recorder)
            else:
                conn.start(recorder)

        listener = await self.transport.listen(
            parse_address(self.url), self.listen_options, on_connection
        )
        session = _Session(listener, listener.address)
        try:
            yield session
        finally:
            await listener.aclose()
            everything = session.connections + session.accepted
            for conn, _ in everything:
                conn.abort()
            for conn, recorder in everything:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.timeout):
                        await conn.wait_closed()
                if recorder.active and recorder.inactive != 1:
                    recorder._violation(f"on_inactive ran {recorder.inactive} times, not once")
        violations = [v for _, r in everything for v in r.violations]
        if violations:
            raise AssertionError("contract violations: " + "; ".join(violations))

    async def _connect(
        self, session: _Session, *, options: ConnectOptions | None = None
    ) -> tuple[Connection, _Recorder]:
        conn = await self.transport.connect(
            parse_address(session.address), options or self.connect_options
        )
        recorder = _Recorder(f"client#{len(session.connections)}")
        session.connections.append((conn, recorder))
        conn.start(recorder)
        return conn, recorder

    async def _accepted(self, session: _Session, index: int = 0) -> tuple[Connection, _Recorder]:
        deadline = time.monotonic() + self.timeout
        while len(session.accepted) <= index:
            if time.monotonic() > deadline:
                raise AssertionError("the listener never handed over the connection")
            session.accepted_event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - time.monotonic()):
                    await session.accepted_event.wait()
        return session.accepted[index]

    async def _pair(self, session: _Session) -> tuple[Connection, _Recorder, Connection, _Recorder]:
        client, crec = await self._connect(session)
        server, srec = await self._accepted(session, len(session.connections) - 1)
        await srec.wait_for(lambda: srec.active > 0, "server on_active", self.timeout)
        return client, crec, server, srec

    async def _exchange(
        self, a: Connection, arec: _Recorder, b: Connection, brec: _Recorder, tag: bytes
    ) -> None:
        """a sends ``tag``, b answers it reversed; both must arrive."""
        start_b, start_a = len(brec.data), len(arec.data)
        a.write_binary(tag)
        a.flush()
        await brec.wait_bytes(start_b + len(tag), self.timeout)
        assert bytes(brec.data[start_b:]) == tag, f"{brec.name} got {bytes(brec.data[start_b:])!r}"
        b.write_binary(tag[::-1])
        b.flush()
        await arec.wait_bytes(start_a + len(tag), self.timeout)
        assert bytes(arec.data[start_a:]) == tag[::-1], f"{arec.name} got {arec.data[start_a:]!r}"

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

    async def _fill_until_blocked(
        self,
        conn: Connection,
        peer: _Recorder,
        record: Callable[[bytes], object],
        chunk: int = 64 * 1024,
    ) -> tuple[asyncio.Task[None], int]:
        """Write until drain() blocks; return the blocked drain task and bytes written."""
        rng = random.Random(5)
        written = 0
        limit = 512 * MiB
        while written < limit:
            if peer.violations:
                raise AssertionError("contract violations: " + "; ".join(peer.violations))
            data = rng.randbytes(chunk)
            conn.write_binary(data)
            conn.flush()
            record(data)
            written += chunk
            task = asyncio.create_task(conn.drain())
            done, _ = await asyncio.wait({task}, timeout=0.02)
            if not done:
                await asyncio.sleep(0.2)
                if not task.done():
                    return task, written
            else:
                task.result()
        raise AssertionError(f"drain() never blocked after {limit // MiB} MiB to a paused peer")

    async def check_backpressure(self) -> None:
        """A peer that pauses reading makes drain() block; resuming unblocks, nothing lost."""
        async with self._serve(
            server_recorder=lambda i: _Recorder(f"server#{i}", pause_on_active=True)
        ) as session:
            client, _crec, _server, srec = await self._pair(session)
            sent = hashlib.sha256()
            blocked, written = await self._fill_until_blocked(client, srec, sent.update)
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
) -> TransportReport:
    """Run the transport conformance suite against the transport registered for ``url``.

    Args:
        url: where to listen (port 0, a temporary path, a memory name...).
        listen_options / connect_options: passed through (TLS settings live here).
        checks: names from :data:`TRANSPORT_CHECKS` (default: all of them).
        large_size: bytes each way in ``large_writes`` (16 MiB).
        timeout: seconds allowed for each awaited event (each check gets four times that).

    Returns:
        which checks passed and which were skipped as not applicable, with the reason
        (``half_close`` for transports whose ``can_write_eof()`` is false).

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
    )
    return await suite.run(checks)


__all__ = ["TRANSPORT_CHECKS", "TransportChecks", "TransportReport", "check_transport"]
