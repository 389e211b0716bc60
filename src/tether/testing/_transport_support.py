"""Building blocks of the transport conformance suite: the report, a handler that records
every event and checks their order, and the bookkeeping of one check's connections."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import final

from ..transport import Connection, ConnectionHandler, Listener


@dataclass(frozen=True, slots=True)
class TransportReport:
    """What :func:`check_transport` ran: the checks that passed and those skipped (why)."""

    url: str
    passed: tuple[str, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)


class _Skip(Exception):
    """A check does not apply to this transport (e.g. it cannot half-close)."""


# -- a handler that records everything and checks the event order ------------------------


@final
class _Recorder(ConnectionHandler):
    """Collects the bytes and events of one connection and notes contract violations."""

    def __init__(self, name: str, *, pause_on_active: bool = False) -> None:
        self.name = name
        self.conn: Connection | None = None
        self.data = bytearray()
        self.active = 0
        self.eofs = 0
        self.inactive = 0
        self.inactive_exc: BaseException | None = None
        self.len_at_eof: int | None = None
        self.paused = pause_on_active
        self.violations: list[str] = []
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return (
            f"<{self.name}: {len(self.data)} bytes, active={self.active} eof={self.eofs} "
            f"inactive={self.inactive} exc={self.inactive_exc!r}>"
        )

    def _violation(self, what: str) -> None:
        self.violations.append(f"{self.name}: {what}")

    def on_active(self, conn: Connection) -> None:
        if self.active or self.eofs or self.inactive:
            self._violation("on_active was not the first event, or came twice")
        self.active += 1
        self.conn = conn
        if self.paused:
            conn.pause_reading()
        self._changed.set()

    def on_read(self, conn: Connection) -> None:
        if not self.active:
            self._violation("on_read before on_active")
        if self.inactive:
            self._violation("on_read after on_inactive")
        if self.eofs:
            self._violation("on_read after on_eof")
        if self.paused:
            self._violation("on_read while reading was paused")
        reader = conn.reader
        n = len(reader)
        if not n:
            self._violation("on_read with an empty reader")
            return
        self.data += reader.peek(n)
        reader.skip(n)
        reader.release()
        self._changed.set()

    def on_eof(self, conn: Connection) -> None:
        if not self.active:
            self._violation("on_eof before on_active")
        if self.eofs:
            self._violation("on_eof twice")
        if self.inactive:
            self._violation("on_eof after on_inactive")
        if self.paused:
            self._violation("on_eof while reading was paused")
        self.eofs += 1
        self.len_at_eof = len(self.data)
        self._changed.set()

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        if not self.active:
            self._violation("on_inactive before on_active")
        if self.inactive:
            self._violation("on_inactive twice")
        self.inactive += 1
        self.inactive_exc = exc
        self._changed.set()

    def pause(self) -> None:
        assert self.conn is not None
        self.paused = True
        self.conn.pause_reading()

    def resume(self) -> None:
        assert self.conn is not None
        self.paused = False
        self.conn.resume_reading()

    async def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float) -> None:
        """Wait until ``predicate()`` holds, or fail saying ``what`` was awaited."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; {self!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    async def wait_bytes(self, n: int, timeout: float) -> None:
        await self.wait_for(
            lambda: len(self.data) >= n, f"{self.name} to receive {n} bytes", timeout
        )

    async def wait_end(self, timeout: float) -> None:
        """Wait for the peer's EOF or the end of the connection."""
        await self.wait_for(
            lambda: bool(self.eofs or self.inactive), f"{self.name} to see EOF or the end", timeout
        )


@dataclass
class _Session:
    """One listener plus every connection a check made, for cleanup and final checks."""

    listener: Listener
    address: str
    accepted: list[tuple[Connection, _Recorder]] = field(default_factory=list)
    connections: list[tuple[Connection, _Recorder]] = field(default_factory=list)
    accepted_event: asyncio.Event = field(default_factory=asyncio.Event)


def _first_diff(a: bytes | bytearray, b: bytes | bytearray) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"offset {i}"
    return f"offset {min(len(a), len(b))} (lengths {len(a)} and {len(b)})"
