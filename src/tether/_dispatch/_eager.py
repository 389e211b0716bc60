"""Eager task start: run a coroutine's first step now, make a Task only if it suspends.

A handler that finishes without awaiting anything (an echo, a lookup) then costs no
Task and no extra event-loop turns: its reply is queued inside the very ``on_read``
callback that delivered the request, and leaves in the same flush. This is what
Python 3.12's ``asyncio.eager_task_factory`` does; on 3.11 a coroutine that already
ran its first step is handed to a Task through :class:`_Resumed`, which replays the
future the first step yielded and then forwards ``send``/``throw``/``close``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
import sys
from collections.abc import Coroutine
from typing import Any

_NOTHING: Any = object()


class _Resumed(collections.abc.Coroutine[Any, Any, None]):
    """A coroutine that already ran its first step, as a Task can drive it."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, None], first: Any) -> None:
        self._coro = coro
        self._first = first

    def send(self, value: Any) -> Any:
        first = self._first
        if first is not _NOTHING:
            self._first = _NOTHING
            return first
        return self._coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._first = _NOTHING
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Any:  # pragma: no cover - Tasks drive it with send/throw
        raise TypeError("a resumed coroutine is driven by its Task, not awaited")


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None] | None:
    """Run ``coro`` until it first suspends; return the Task that finishes it, or ``None``
    if it already completed. Exceptions other than ``StopIteration`` propagate.

    The coroutine runs in a copy of the current context (as a Task would), and the Task
    keeps using that same context, so context variables set before the first suspension
    stay visible and can be reset afterwards.
    """
    context = contextvars.copy_context()
    if sys.version_info >= (3, 12):  # pragma: no cover - the project's CI runs 3.11
        task: asyncio.Task[None] = asyncio.Task(coro, loop=loop, context=context, eager_start=True)  # type: ignore[call-arg]
        return None if task.done() else task
    try:
        first = context.run(coro.send, None)
    except StopIteration:
        return None
    return loop.create_task(_Resumed(coro, first), context=context)
