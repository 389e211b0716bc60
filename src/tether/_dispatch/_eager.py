"""Eager task start where the runtime supports it correctly.

On Python 3.12+ a handler's first step runs inside ``Task(..., eager_start=True)``: a
handler that finishes without suspending (an echo, a lookup) costs no loop turn, and
its reply leaves in the flush at the end of the read callback that delivered the
request. The task is still the current task, so ``asyncio.timeout()`` and
``asyncio.current_task()`` work inside handlers.

Python 3.11 has no way to run a coroutine's first step inside a Task, and running it
outside one breaks ``asyncio.timeout()`` in handlers, so there the handler gets an
ordinary Task.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

EAGER = sys.version_info >= (3, 12)


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None] | None:
    """Start ``coro`` as a task; return it, or ``None`` if it already finished (3.12+)."""
    if EAGER:  # pragma: no cover - CI runs 3.11
        task: asyncio.Task[None] = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
        return None if task.done() else task
    return loop.create_task(coro)
