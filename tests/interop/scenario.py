"""One conversation with the demo ``Echo`` service, whatever the client and server are."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tether.demo._thrift import echo_thrift

Unary = Callable[[Any], Awaitable[Any]]
Notify = Callable[[Any], Awaitable[None]]


async def converse(unary: Unary, notify: Notify, *, concurrent: int = 1) -> None:
    """Unary echoes, a declared exception, a oneway Notify seen by the next Unary, and
    ``concurrent`` calls at once each getting its own reply."""
    request = echo_thrift.EchoRequest
    reply = await unary(request(data=b"ab", repeat=3))
    assert reply.data == b"ababab"
    with pytest.raises(echo_thrift.EchoError) as info:
        await unary(request(data=b"x", fail="refused"))
    assert (info.value.message, info.value.code) == ("refused", 3)
    await notify(request(data=b"note"))
    for _ in range(200):  # a oneway call has no reply to wait for: poll the server's state
        reply = await unary(request(data=b"y"))
        if reply.metadata.get("notified") == "note":
            break
        await asyncio.sleep(0.01)
    assert reply.metadata.get("notified") == "note"
    if concurrent > 1:
        replies = await asyncio.gather(
            *(
                unary(request(data=str(i).encode(), delay_ms=(concurrent - i) % 4))
                for i in range(concurrent)
            )
        )
        assert [r.data for r in replies] == [str(i).encode() for i in range(concurrent)]
