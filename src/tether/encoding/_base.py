"""Payload codecs: how one message object becomes bytes and back, apart from framing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from .._types import BufferLike
from ..buffer import Payload

T = TypeVar("T")


class PayloadCodec(ABC, Generic[T]):
    """Serialises one kind of message.

    ``name`` is the content subtype that travels with a call (``proto``, ``thrift``,
    ``msgpack``, ``raw``), like gRPC's ``application/grpc+<name>``.

    :meth:`decode` raises :class:`~tether.encoding.DecodeError` on bytes it cannot parse;
    :meth:`encode` raises :class:`~tether.encoding.EncodeError` on a value it cannot
    serialise. Both are pure and thread-safe.
    """

    name: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "encode_payload" not in cls.__dict__ and "encode" in cls.__dict__:
            # Same contract, no extra call per message: the per-call path calls this.
            cls.encode_payload = cls.encode  # type: ignore[method-assign]

    @abstractmethod
    def encode(self, message: T) -> bytes:
        """Serialise ``message``."""

    def encode_payload(self, message: T) -> Payload:
        """:meth:`encode` for sending: the same bytes, possibly as a
        :class:`~tether.buffer.BufferList` that travels without being joined (what the
        client and server send). By default it *is* :meth:`encode` (a subclass that
        defines ``encode`` but not this gets its ``encode`` here too).

        Raises:
            EncodeError: as :meth:`encode`.
        """
        return self.encode(message)

    @abstractmethod
    def decode(self, data: BufferLike) -> T:
        """Parse ``data``.

        ``data`` may be a ``memoryview`` of a received frame (a large payload is lent
        without a copy, see ``docs/thrift.md``): a decoder must copy what it keeps and
        must not keep the view itself in the message it returns.
        """


class DecodeError(ValueError):
    """The bytes are not a valid message for this codec (maps to INVALID_ARGUMENT / INTERNAL)."""


class EncodeError(ValueError):
    """The value cannot be serialised by this codec."""
