"""What a handler can see and set about the call it serves."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any, Final, NoReturn

from ._exceptions import StatusError
from ._metadata import Metadata, MetadataLike
from ._status import Status
from ._types import MetadataPairs

if TYPE_CHECKING:
    from ._dispatch import Dispatcher

_current: Final[contextvars.ContextVar[ServerContext]] = contextvars.ContextVar(
    "tether_server_context"
)


class ServerContext:
    """Per-call context handed to handlers (second argument) and via :func:`current_context`.

    Attributes:
        service, method: what was called.
        peer: the peer address as the transport reports it.

    :attr:`metadata` is the request metadata; :attr:`headers` are sent before the first
    response message (or with the status if there is none); :attr:`trailers` go with the
    final status.
    """

    __slots__ = (
        "_backward",
        "_cancelled",
        "_deadline",
        "_dispatcher",
        "_headers",
        "_metadata",
        "_metadata_pairs",
        "_metainfo",
        "_trailers",
        "method",
        "service",
    )

    def __init__(
        self,
        service: str,
        method: str,
        metadata: MetadataPairs,
        dispatcher: Dispatcher,
        deadline: float | None,
    ) -> None:
        self.service = service
        self.method = method
        # The connection's details (peer, loop time, transport extras) are read from the
        # dispatcher when asked for: most handlers ask for none of them.
        self._dispatcher = dispatcher
        self._metadata_pairs = metadata
        self._metadata: Metadata | None = None
        self._headers: Metadata | None = None
        self._trailers: Metadata | None = None
        self._deadline = deadline
        self._cancelled = False
        #: Parsed metainfo (``tether.metainfo``), built on first use.
        self._metainfo: Any = None
        #: Backward metainfo values (case-preserving pairs) sent with the trailers.
        self._backward: MetadataPairs = ()

    # The three Metadata objects are built on first use: most handlers touch none.

    @property
    def metadata_pairs(self) -> MetadataPairs:
        """The request metadata exactly as received (keys keep their case)."""
        return self._metadata_pairs

    @property
    def metadata(self) -> Metadata:
        """The request metadata (keys lower-cased; :attr:`metadata_pairs` keeps their case)."""
        if self._metadata is None:
            # Thrift-family headers keep their keys' case (``RPC_TRANSIT_K``); Metadata
            # looks keys up lower-cased, so it holds them lower-cased too.
            self._metadata = Metadata.from_pairs(
                tuple([(k.lower(), v) for k, v in self._metadata_pairs])
            )
        return self._metadata

    @property
    def headers(self) -> Metadata:
        """Response header metadata (mutable until the first reply is sent)."""
        if self._headers is None:
            self._headers = Metadata()
        return self._headers

    @property
    def trailers(self) -> Metadata:
        """Trailing metadata sent with the final status (mutable until then)."""
        if self._trailers is None:
            self._trailers = Metadata()
        return self._trailers

    def header_pairs(self) -> MetadataPairs:
        """The response headers as wire pairs (empty if never set)."""
        return self._headers.to_pairs() if self._headers is not None else ()

    def trailer_pairs(self) -> MetadataPairs:
        """The trailers as wire pairs (empty if never set), then the backward metainfo."""
        pairs = self._trailers.to_pairs() if self._trailers is not None else ()
        return pairs + self._backward if self._backward else pairs

    @property
    def peer(self) -> Any:
        """The peer address as the transport reports it (``None`` without a connection)."""
        dispatcher = self._dispatcher
        return dispatcher.peer if dispatcher.connection is not None else None

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
        return max(0.0, self._deadline - self._dispatcher.loop.time())

    @property
    def cancelled(self) -> bool:
        """True once the call was cancelled, timed out or lost its connection."""
        return self._cancelled

    def set_headers(self, metadata: MetadataLike) -> None:
        """Replace the response header metadata (before the first response message)."""
        self._headers = Metadata(metadata)

    def set_trailers(self, metadata: MetadataLike) -> None:
        """Replace the trailing metadata sent with the status."""
        self._trailers = Metadata(metadata)

    def extra(self, name: str, default: Any = None) -> Any:
        """Transport details of the call's connection (``peername``, ``peercert``, ...)."""
        conn = self._dispatcher.connection
        return conn.extra(name, default) if conn is not None else default

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
