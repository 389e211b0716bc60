"""A peer that sends requests but never reads replies cannot make the server buffer
without bound: the server stops reading until its replies drain."""

from __future__ import annotations

import asyncio

import tether
from tether.framing import CallStarted, Message, Role, Trailers, get_framing

PAYLOAD = b"r" * (64 * 1024)
ATTEMPTS = 3000  # 3000 x 64 KiB replies = 188 MiB if nothing pushed back


async def test_server_stops_reading_from_a_peer_that_does_not_read() -> None:
    """Requests beyond what the socket buffers hold are not handled until replies are read."""
    handled = 0
    svc = tether.Service("bp.Test")

    @svc.unary
    async def Echo(request: bytes) -> bytes:
        nonlocal handled
        handled += 1
        return request

    server = tether.Server([svc])
    await server.start("tcp://127.0.0.1:0")
    port = int(server.addresses[0].rsplit(":", 1)[1])
    codec = get_framing("tether").create(Role.CLIENT, tether.CodecConfig())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        for _ in range(ATTEMPTS):
            sid = codec.next_stream_id()
            codec.send(CallStarted(stream_id=sid, service="bp.Test", method="Echo", encoding="raw"))
            codec.send(Message(stream_id=sid, data=PAYLOAD, end_stream=True))
            writer.write(codec.data_to_send())
            sent += 1
            try:
                await asyncio.wait_for(writer.drain(), 0.5)
            except TimeoutError:
                break  # the server stopped reading: our own writes block
        assert sent < ATTEMPTS, "the server read every request without anyone reading replies"
        await asyncio.sleep(0.2)
        stalled = handled
        assert stalled < sent
        # Reading the replies lets the server go on; every request gets its answer.
        finished = 0
        while finished < sent:
            data = await asyncio.wait_for(reader.read(1 << 20), 10)
            assert data, "the server closed the connection"
            finished += sum(
                1 for e in codec.receive_data(data) if isinstance(e, Trailers) and e.status == 0
            )
            if codec.has_data_to_send():
                writer.write(codec.data_to_send())
        assert handled == sent
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
