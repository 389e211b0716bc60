"""Positional builders for the events the native receive path creates on every call.

The event classes are frozen, slotted, keyword-only dataclasses: their generated
``__init__`` binds keywords and assigns every field through ``object.__setattr__``,
which costs about 2 µs for a :class:`CallStarted`. These builders make the very same
objects (same class, every field set, equal and hashing alike) by writing the slots
through their member descriptors, at about a third of the cost. Every argument is
required, so nothing relies on a field default.

An import-time check ties each builder to its class: if a field is added, removed or
reordered in :mod:`._events` (or a ``__post_init__`` appears), importing this module
fails instead of building events with a slot left unset or a check skipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .._status import Status
from .._types import MetadataPairs
from ._events import CallStarted, Event, Message, Trailers

_Setter = Callable[[Event, Any], None]


def _setters(cls: type[Event], *names: str) -> tuple[_Setter, ...]:
    """The slot setters of ``cls`` for ``names``, which must be all its fields, in order."""
    declared = tuple(field.name for field in dataclasses.fields(cls))
    if names != declared:
        raise RuntimeError(f"{cls.__name__} fields are {declared}, the builder sets {names}")
    if hasattr(cls, "__post_init__"):
        raise RuntimeError(f"{cls.__name__} validates in __post_init__: build it normally")
    return tuple(vars(cls)[name].__set__ for name in names)


# Each class's own __new__ (object.__new__ when interpreted; compiled classes refuse it).
_new_call_started = CallStarted.__new__
_new_message = Message.__new__
_new_trailers = Trailers.__new__

(
    _call_stream_id,
    _call_service,
    _call_method,
    _call_metadata,
    _call_timeout,
    _call_encoding,
    _call_end_stream,
    _call_oneway,
) = _setters(
    CallStarted,
    "stream_id",
    "service",
    "method",
    "metadata",
    "timeout",
    "encoding",
    "end_stream",
    "oneway",
)
_message_stream_id, _message_data, _message_end_stream = _setters(
    Message, "stream_id", "data", "end_stream"
)
_trailers_stream_id, _trailers_status, _trailers_message, _trailers_metadata = _setters(
    Trailers, "stream_id", "status", "message", "metadata"
)


def call_started(
    stream_id: int,
    service: str,
    method: str,
    metadata: MetadataPairs,
    timeout: float | None,
    encoding: str,
    end_stream: bool,
    oneway: bool,
) -> CallStarted:
    """``CallStarted(stream_id=..., service=..., ...)``, every field given."""
    event = _new_call_started(CallStarted)
    _call_stream_id(event, stream_id)
    _call_service(event, service)
    _call_method(event, method)
    _call_metadata(event, metadata)
    _call_timeout(event, timeout)
    _call_encoding(event, encoding)
    _call_end_stream(event, end_stream)
    _call_oneway(event, oneway)
    return event


def message(stream_id: int, data: bytes, end_stream: bool) -> Message:
    """``Message(stream_id=..., data=..., end_stream=...)``."""
    event = _new_message(Message)
    _message_stream_id(event, stream_id)
    _message_data(event, data)
    _message_end_stream(event, end_stream)
    return event


def trailers(stream_id: int, status: Status, message: str, metadata: MetadataPairs) -> Trailers:
    """``Trailers(stream_id=..., status=..., message=..., metadata=...)``."""
    event = _new_trailers(Trailers)
    _trailers_stream_id(event, stream_id)
    _trailers_status(event, status)
    _trailers_message(event, message)
    _trailers_metadata(event, metadata)
    return event
