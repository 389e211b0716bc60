"""Eager task start: a handler's first step runs inside the read callback that delivered it.

A handler that finishes without suspending (an echo, a lookup) then costs no Task and no
loop turn, and its reply leaves in the flush at the end of that read callback. A handler
that suspends continues in an ordinary Task from the point where it suspended.

* Python 3.12+: ``Task(..., eager_start=True)`` does exactly this.
* Python 3.11 has no eager tasks, so :func:`start_eagerly` steps the coroutine itself, in
  a copy of the current context, with a stand-in (:class:`_FirstStep`) registered as the
  loop's current task for the duration of that step. Everything a handler does with its
  current task works on the stand-in: ``asyncio.timeout()`` and ``TaskGroup`` call
  ``cancel``/``cancelling``/``uncancel`` on it, and once the handler suspends those calls
  are forwarded to the Task that continues it (:class:`_Continue` replays the future the
  first step yielded, so that Task waits on it exactly as if it had run the step).

The first step runs under a :class:`~._eager_driver.Driver` (``yield from`` in an
interpreted generator), so a coroutine finishing there costs no ``StopIteration``.

Contract of :func:`start_eagerly`: the coroutine's first step runs before it returns;
``None`` means the coroutine already finished (its result is discarded; an exception it
raised propagates to the caller, as ``Task.result()`` would raise it), otherwise the Task
running the rest is returned. Cancelling that Task cancels the coroutine where it waits.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import Any, ClassVar, Final, cast

from ._eager_driver import DONE, drive

# Module constants marked Final are C statics when compiled (a plain global is a dict
# lookup on every use); the copy of DONE and copy_context likewise.
_DONE: Final = DONE
_copy_context: Final = contextvars.copy_context

EAGER: Final = sys.version_info >= (3, 12)

# The loop's current-task registry (C functions in CPython 3.11; private but stable, and
# the same ones asyncio's own Task uses on every step).
# Typed for the stand-in: the registry stores any object, asyncio's stubs say Task.
_enter_task: Final = cast(
    Callable[[asyncio.AbstractEventLoop, object], None], asyncio.tasks._enter_task
)
_leave_task: Final = cast(
    Callable[[asyncio.AbstractEventLoop, object], None], asyncio.tasks._leave_task
)
# The registry itself: asyncio.current_task() is a Python function reading it (3.11).
_current_tasks: Final = cast(dict[asyncio.AbstractEventLoop, object], asyncio.tasks._current_tasks)  # type: ignore[attr-defined]


def start_eagerly(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None] | None:
    """Run ``coro``'s first step now; return the Task running the rest, or ``None`` if done."""
    if EAGER:  # pragma: no cover - CI runs 3.11
        task: asyncio.Task[None] = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
        return None if task.done() else task
    context = _copy_context()
    stand_in = _FirstStep(loop, coro)
    idle = _IDLE_DRIVERS
    driver = idle.pop() if idle else _Driver()
    outer = _current_tasks.get(loop)  # set when a transport delivers inside a task's step
    if outer is not None:
        _leave_task(loop, outer)
    _enter_task(loop, stand_in)
    try:
        yielded = context.run(driver.send, coro)
    finally:
        _leave_task(loop, stand_in)
        if outer is not None:
            _enter_task(loop, outer)
    if yielded is _DONE:
        idle.append(driver)  # (a driver that raised is dropped: it has ended)
        return None
    # The coroutine waits: its driver goes with it, and ends when it does.
    driver.handing_over[0] = True
    task = loop.create_task(_Continue(driver.gen, yielded), context=context)
    stand_in.handed_to(task)
    return task


class _Driver:
    """A started :func:`~._eager_driver.drive` generator, its ``send``, and the flag
    that hands it over to a Task."""

    __slots__ = ("gen", "handing_over", "send")

    def __init__(self) -> None:
        self.handing_over = [False]
        gen = drive(self.handing_over)
        gen.send(None)
        self.gen: Generator[Any, Any, None] = gen
        self.send: Callable[[Any], Any] = gen.send


#: Drivers not running a step now (a stack: a step inside a step takes another one; an
#: event loop per thread never shares one, as ``pop`` and ``append`` are atomic).
_IDLE_DRIVERS: Final[list[_Driver]] = []


class _FirstStep:
    """The current task while a coroutine's first step runs outside a Task (Python 3.11).

    Cancellation requests made during the step are counted and replayed on the Task that
    continues the coroutine; after the hand-over every call is forwarded to that Task.
    """

    __slots__ = ("_cancel_message", "_cancel_requests", "_coro", "_loop", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
        self._loop = loop
        self._coro = coro
        self._task: asyncio.Task[None] | None = None
        self._cancel_requests = 0
        self._cancel_message: Any = None

    def handed_to(self, task: asyncio.Task[None]) -> None:
        self._task = task
        for _ in range(self._cancel_requests):
            task.cancel(self._cancel_message)

    def cancel(self, msg: Any = None) -> bool:
        if self._task is not None:
            return self._task.cancel(msg)
        self._cancel_requests += 1
        self._cancel_message = msg
        return True

    def cancelling(self) -> int:
        if self._task is not None:
            return self._task.cancelling()
        return self._cancel_requests

    def uncancel(self) -> int:
        if self._task is not None:
            return self._task.uncancel()
        if self._cancel_requests > 0:
            self._cancel_requests -= 1
        return self._cancel_requests

    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def cancelled(self) -> bool:
        return self._task is not None and self._task.cancelled()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def get_coro(self) -> Coroutine[Any, Any, None]:
        return self._coro

    def get_name(self) -> str:
        return self._task.get_name() if self._task is not None else "tether-eager-step"

    def __getattr__(self, name: str) -> Any:
        task = self._task
        if task is None:
            raise AttributeError(
                f"{name!r} is not available while a handler's first step runs eagerly"
            )
        return getattr(task, name)


class _Continue(Coroutine[Any, Any, None]):
    """``coro`` resumed by a Task: the first ``send`` hands back what its first step yielded."""

    __slots__ = ("_coro", "_first")

    _NOTHING: ClassVar[Any] = object()

    def __init__(
        self, coro: Coroutine[Any, Any, None] | Generator[Any, Any, None], first: Any
    ) -> None:
        self._coro = coro
        self._first = first

    def send(self, value: Any) -> Any:
        first = self._first
        if first is not _Continue._NOTHING:
            self._first = _Continue._NOTHING
            return first
        return self._coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._first = _Continue._NOTHING
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)  # pragma: no cover - legacy signature

    def close(self) -> None:
        self._first = _Continue._NOTHING
        self._coro.close()

    def __await__(self) -> Generator[Any, None, None]:  # pragma: no cover - Tasks use send
        raise TypeError("a continued handler is run by its Task, not awaited")
