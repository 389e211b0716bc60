"""The generator that runs handlers' first steps for :mod:`._eager` without an exception
when they finish (interpreted on purpose: see :func:`drive`).

A coroutine finishing under ``coro.send()`` raises ``StopIteration``; in compiled code
catching it records a traceback and restores the exception state, several thousand
instructions on every call whose handler finishes in its first step (the common case).
Under ``yield from`` the interpreter takes the finish as a plain return instead. So
:func:`drive` runs each first step with ``yield from`` and yields :data:`DONE` when the
coroutine finished.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any

#: What a :func:`drive` generator yields when the coroutine it ran finished within the step.
DONE: Any = object()


@types.coroutine
def drive(handing_over: list[bool]) -> Generator[Any, Any, None]:
    """Run the coroutines sent in, one after another.

    ``send(coro)`` runs ``coro``'s first step; when it finishes there, the generator yields
    :data:`DONE` and waits for the next coroutine. A coroutine that suspends keeps its
    driver: the caller sets ``handing_over`` and hands the generator to a Task, and the
    generator then ends when the coroutine does, as a Task's coroutine must.
    """
    coro: Coroutine[Any, Any, None] = yield None
    while True:
        yield from coro
        del coro  # the finished coroutine (and what its frame held) goes now, not later
        if handing_over[0]:
            return
        coro = yield DONE
