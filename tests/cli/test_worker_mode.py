"""Worker mode: every reply of a tagged service carries the worker's header."""

from __future__ import annotations

from collections.abc import AsyncIterator

import tether
from tether.cli._worker_mode import tag_replies
from tether.testing import client_for


async def test_tag_replies_on_every_cardinality() -> None:
    """Tagged services send the header on unary, streaming and oneway-less methods alike."""
    svc = tether.Service("test.Tag")

    @svc.unary
    async def One(request: int) -> int:
        return request + 1

    @svc.server_stream
    async def Many(request: int, ctx: tether.ServerContext) -> AsyncIterator[int]:
        for i in range(request):
            yield i

    @svc.bidi_stream
    async def Both(requests: AsyncIterator[int]) -> AsyncIterator[int]:
        async for value in requests:
            yield -value

    [tagged] = tag_replies([svc], {"x-tag": "yes"})
    async with client_for([tagged]) as client:
        reply, call = await client.unary("test.Tag/One", 1, with_call=True)
        assert reply == 2
        assert call.initial_metadata["x-tag"] == "yes"
        stream = client.server_stream("test.Tag/Many", 3)
        assert [v async for v in stream] == [0, 1, 2]
        assert (await stream.initial_metadata())["x-tag"] == "yes"
        bidi = client.bidi_stream("test.Tag/Both")
        await bidi.send(5)
        await bidi.done_writing()
        assert [v async for v in bidi] == [-5]
        assert (await bidi.initial_metadata())["x-tag"] == "yes"
