"""Positional shorthands for the events a codec's receive path creates on every call.

Each is exactly the class's keyword constructor with every field given. The classes
spell out their ``__init__`` (see :mod:`._events`), so in the compiled build these are
direct C calls that store the slots natively; the gRPC codec uses them, the native
codec calls the constructors itself.
"""

from __future__ import annotations

from .._status import Status
from .._types import BufferLike, MetadataPairs
from ._events import CallStarted, Message, Trailers


def call_started(
    stream_id: int,
    service: str,
    method: str,
    metadata: MetadataPairs,
    timeout: float | None,
    encoding: str,
    end_stream: bool,
    oneway: bool,
    data: BufferLike | None = None,
) -> CallStarted:
    """``CallStarted(stream_id=..., service=..., ...)``, every field given."""
    return CallStarted(
        stream_id=stream_id,
        service=service,
        method=method,
        metadata=metadata,
        timeout=timeout,
        encoding=encoding,
        end_stream=end_stream,
        oneway=oneway,
        data=data,
    )


def message(stream_id: int, data: BufferLike, end_stream: bool) -> Message:
    """``Message(stream_id=..., data=..., end_stream=...)``."""
    return Message(stream_id=stream_id, data=data, end_stream=end_stream)


def trailers(
    stream_id: int,
    status: Status,
    message: str,
    metadata: MetadataPairs,
    data: BufferLike | None = None,
) -> Trailers:
    """``Trailers(stream_id=..., status=..., message=..., metadata=..., data=...)``."""
    return Trailers(
        stream_id=stream_id, status=status, message=message, metadata=metadata, data=data
    )
