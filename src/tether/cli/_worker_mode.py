"""What a ``tether serve --worker`` process does differently (see :mod:`._workers`).

A worker listens with ``reuse_port``, tags every reply with the response header
``x-tether-worker-pid`` (so clients and tests can see how connections are spread), and
drains if its supervisor disappears (its parent pid changes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from .._context import ServerContext
from .._service import MethodSpec, Service

#: The response header a worker adds to every reply.
WORKER_PID_HEADER = "x-tether-worker-pid"


def tag_replies(services: Sequence[Service], headers: dict[str, str]) -> list[Service]:
    """Copies of ``services`` whose handlers set ``headers`` as response headers first.

    A handler that sets its own headers replaces these (``ServerContext.set_headers``).
    """
    tagged: list[Service] = []
    for service in services:
        copy = Service(service.name)
        for name, spec in service.methods.items():
            copy.methods[name] = _tag(spec, headers)
        tagged.append(copy)
    return tagged


def _tag(spec: MethodSpec, headers: dict[str, str]) -> MethodSpec:
    handler = spec.handler
    if handler is None:
        return spec
    takes_context = spec.takes_context

    def call(request: Any, ctx: ServerContext) -> Any:
        ctx.set_headers(headers)
        return handler(request, ctx) if takes_context else handler(request)

    wrapped: Callable[..., Any]
    if spec.cardinality.server_streaming:

        async def stream(request: Any, ctx: ServerContext) -> AsyncIterator[Any]:
            async for reply in call(request, ctx):
                yield reply

        wrapped = stream
    else:

        async def unary(request: Any, ctx: ServerContext) -> Any:
            return await call(request, ctx)

        wrapped = unary
    return dataclasses.replace(spec, handler=wrapped, takes_context=True)


def watch_parent(on_orphaned: Callable[[], None], interval: float = 1.0) -> asyncio.TimerHandle:
    """Call ``on_orphaned`` once the parent process has gone (checked every ``interval``)."""
    loop = asyncio.get_running_loop()
    parent = os.getppid()
    handle: asyncio.TimerHandle

    def check() -> None:
        nonlocal handle
        if os.getppid() != parent:
            on_orphaned()
        else:
            handle = loop.call_later(interval, check)

    handle = loop.call_later(interval, check)
    return handle
