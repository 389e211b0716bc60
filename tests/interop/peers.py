"""The demo ``Echo`` service (echo.thrift) as the third-party peers serve it.

Same semantics as :class:`tether.demo._services.ThriftEchoHandler`, written for the
peers' handler styles: plain methods (threaded servers) and coroutines (thriftpy2 aio).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from tether.demo._thrift import echo_thrift


class SyncEchoHandler:
    """echo.thrift's ``Echo`` for thread-based servers; ``metadata`` is always empty
    (Framed/Buffered carry none)."""

    def __init__(self) -> None:
        self.notified: bytes | None = None
        self.notify_seen = threading.Event()

    def Unary(self, req: Any) -> Any:
        if req.delay_ms and req.delay_ms > 0:
            time.sleep(req.delay_ms / 1000)
        if req.fail:
            raise echo_thrift.EchoError(message=req.fail, code=3)
        metadata: dict[str, str] = {}
        if self.notified is not None:
            metadata["notified"] = self.notified.decode("utf-8", "replace")
            self.notified = None
        return echo_thrift.EchoReply(
            data=(req.data or b"") * max(req.repeat or 0, 0), metadata=metadata
        )

    def Notify(self, req: Any) -> None:
        self.notified = req.data or b""
        self.notify_seen.set()


class AsyncEchoHandler(SyncEchoHandler):
    """The same for thriftpy2's asyncio server (coroutine methods)."""

    async def Unary(self, req: Any) -> Any:  # type: ignore[override]
        return SyncEchoHandler.Unary(self, req)

    async def Notify(self, req: Any) -> None:  # type: ignore[override]
        SyncEchoHandler.Notify(self, req)


def run_in_thread(serve: Callable[[], None]) -> threading.Thread:
    """Start a blocking ``serve()`` in a daemon thread."""
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def unblock_accept(port: int) -> None:
    """Wake a thread blocked in ``accept()`` on ``port`` so it can see it was closed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    except OSError:
        pass
