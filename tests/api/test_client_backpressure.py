"""A client whose server stops reading stops queueing requests: a unary call waits for
the transport's write buffer to drain instead of adding to it."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import tether
from tether.framing import CodecConfig

PAYLOAD = b"q" * (60 * 1024)  # one request per stream window, written whole
CALLS = 400  # 400 x 60 KiB = 23 MiB: far more than the socket buffers hold


async def test_unary_calls_wait_while_the_server_does_not_read() -> None:
    """Once the connection's writes back up, new unary calls open no stream until it drains."""
    # A listener that accepts and never reads: the kernel's buffers fill, then ours.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    loop = asyncio.get_running_loop()
    client = tether.Client(
        f"tcp://127.0.0.1:{port}", codec_config=CodecConfig(max_concurrent_streams=None)
    )
    await client.connect()
    peer, _ = await loop.sock_accept(listener)
    (dispatcher,) = client._dispatchers
    conn = dispatcher.connection
    assert conn is not None
    calls: list[asyncio.Task[object]] = []
    try:
        # One call per loop turn, so each one's bytes are written before the next starts.
        for _ in range(CALLS):
            calls.append(asyncio.create_task(client.unary("bp.Test/Echo", PAYLOAD)))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        assert conn.is_write_paused(), "the writes never backed up"
        opened = len(dispatcher.streams)
        assert opened < CALLS, "every call queued its request although nothing was read"
        assert not any(call.done() for call in calls)
        # The calls left waiting open no stream while nothing drains.
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(dispatcher.streams) == opened
    finally:
        for call in calls:
            call.cancel()
        peer.close()
        listener.close()
        with contextlib.suppress(Exception):
            await asyncio.gather(*calls, return_exceptions=True)
        await client.close()
