"""What a benchmark server process holds on to: where it listens and how to stop it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable


class ServerHandle:
    """A started server: where it listens and how to stop it."""

    def __init__(self, address: str, close: Callable[[], Awaitable[None]]) -> None:
        self.address = address
        self._close = close

    async def close(self) -> None:
        await self._close()
