"""The machinery under the transport conformance checks: the suite's settings, one check's
run with its time limit, and listening, dialing and pairing connections that are all
cleaned up and checked for contract violations afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable

from .._config import ConnectOptions, ListenOptions
from ..transport import Connection, get_transport, parse_address
from ._transport_adapter import TransportAdapter
from ._transport_support import _Recorder, _Session

MiB = 1024 * 1024


class _Harness:
    """Settings and plumbing shared by every group of checks (see :class:`TransportChecks`)."""

    def __init__(
        self,
        url: str,
        *,
        listen_options: ListenOptions | None = None,
        connect_options: ConnectOptions | None = None,
        large_size: int = 16 * MiB,
        timeout: float = 10.0,
        adapter: TransportAdapter | None = None,
    ) -> None:
        self.url = url
        self.scheme = parse_address(url).scheme
        self.transport = get_transport(self.scheme)
        self.listen_options = listen_options or ListenOptions()
        self.connect_options = connect_options or ConnectOptions()
        self.large_size = large_size
        self.timeout = timeout
        self.adapter = adapter or TransportAdapter()

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
