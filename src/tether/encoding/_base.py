"""Payload codecs: how one message object becomes bytes and back, apart from framing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

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

    @abstractmethod
    def encode(self, message: T) -> bytes:
        """Serialise ``message``."""

    @abstractmethod
    def decode(self, data: bytes) -> T:
        """Parse ``data``."""


class DecodeError(ValueError):
    """The bytes are not a valid message for this codec (maps to INVALID_ARGUMENT / INTERNAL)."""


class EncodeError(ValueError):
    """The value cannot be serialised by this codec."""
