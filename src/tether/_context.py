"""What a handler can see and set about the call it serves."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, NoReturn

from ._exceptions import StatusError
from ._metadata import Metadata, MetadataLike
from ._status import Status

_current: contextvars.ContextVar[ServerContext] = contextvars.ContextVar("tether_server_context")


class ServerContext:
    """Per-call context handed to handlers (second argument) and via :func:`current_context`.

    Attributes:
        service, method: what was called.
        metadata: the request metadata.
        peer: the peer address as the transport reports it.
        headers: response header metadata, sent before the first response message
            (or with the status if there is none). Set it before the first reply.
        trailers: trailing metadata, sent with the final status.
    """

    __slots__ = (
        "_cancelled",
        "_deadline",
        "_extra",
        "_loop_time",
        "headers",
        "metadata",
        "method",
        "peer",
        "service",
        "trailers",
    )

    def __init__(
        self,
        *,
        service: str,
        method: str,
        metadata: Metadata,
        peer: Any,
        deadline: float | None,
        loop_time: Callable[[], float],
        extra: Any = None,
    ) -> None:
        self.service = service
        self.method = method
        self.metadata = metadata
        self.peer = peer
        self._deadline = deadline
        self._loop_time = loop_time
        self._extra = extra
        self._cancelled = False
        self.headers = Metadata()
        self.trailers = Metadata()

    def __repr__(self) -> str:
        return f"<ServerContext {self.service}/{self.method} peer={self.peer!r}>"

    @property
    def deadline(self) -> float | None:
        """The deadline in event-loop time (``loop.time()``), or ``None``."""
        return self._deadline

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or ``None`` without one."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._loop_time())

    @property
    def cancelled(self) -> bool:
        """True once the call was cancelled, timed out or lost its connection."""
        return self._cancelled

    def set_headers(self, metadata: MetadataLike) -> None:
        """Replace the response header metadata (before the first response message)."""
        self.headers = Metadata(metadata)

    def set_trailers(self, metadata: MetadataLike) -> None:
        """Replace the trailing metadata sent with the status."""
        self.trailers = Metadata(metadata)

    def extra(self, name: str, default: Any = None) -> Any:
        """Transport details of the call's connection (``peername``, ``peercert``, ...)."""
        return self._extra(name, default) if self._extra is not None else default

    def abort(self, status: Status, message: str = "") -> NoReturn:
        """End the call now with ``status``.

        Raises:
            StatusError: always.
        """
        raise StatusError(status, message)


def current_context() -> ServerContext:
    """The context of the call the current task is serving.

    Raises:
        LookupError: called outside a handler.
    """
    return _current.get()
