"""Async generators over a receive function, kept out of the compiled modules.

mypyc (see ``docs/compiled.md``) does not compile async generators, so the modules it
compiles (``_calls``, ``_server``) build their message iterators here instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

R = TypeVar("R")
T = TypeVar("T")


async def until_none(receive: Callable[[], Awaitable[T | None]]) -> AsyncIterator[T]:
    """Yield what ``receive()`` returns until it returns ``None`` (end of stream).

    Errors raised by ``receive`` propagate to the consumer; closing the iterator early
    simply stops calling ``receive``.
    """
    while (item := await receive()) is not None:
        yield item


async def decoded_until_none(
    receive: Callable[[], Awaitable[R | None]], decode: Callable[[R], T]
) -> AsyncIterator[T]:
    """Like :func:`until_none`, yielding ``decode(item)`` for each received item."""
    while (item := await receive()) is not None:
        yield decode(item)
