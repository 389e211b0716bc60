"""Async iterators over a receive function (kept out of the compiled modules)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tether._aiter import decoded_until_none, until_none


def _receiver(
    items: list[bytes | None],
) -> tuple[Callable[[], Awaitable[bytes | None]], list[bytes | None]]:
    queue = list(items)

    async def receive() -> bytes | None:
        return queue.pop(0)

    return receive, queue


async def test_until_none_yields_until_the_first_none() -> None:
    """Items are yielded in order; the first ``None`` ends iteration and nothing after it
    is received."""
    receive, queue = _receiver([b"a", b"", b"b", None, b"never"])
    assert [item async for item in until_none(receive)] == [b"a", b"", b"b"]
    assert queue == [b"never"]


async def test_decoded_until_none_decodes_each_item() -> None:
    """Each received item is passed through ``decode``; falsy results are still yielded."""
    receive, _ = _receiver([b"12", b"0", None])
    assert [n async for n in decoded_until_none(receive, int)] == [12, 0]


async def test_errors_from_receive_reach_the_consumer() -> None:
    """An exception raised by ``receive`` propagates out of the iteration."""

    async def receive() -> bytes | None:
        raise ConnectionError("lost")

    with pytest.raises(ConnectionError, match="lost"):
        [item async for item in until_none(receive)]
