"""Protocol Buffers payloads: one generated message class per codec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar, cast, final

from google.protobuf import message as _pb_message

from .._types import BufferLike
from ._base import DecodeError, EncodeError, PayloadCodec

M = TypeVar("M", bound=_pb_message.Message)


@final
class ProtobufCodec(PayloadCodec[M], Generic[M]):
    """Protobuf binary encoding (content subtype ``proto``) of one message type.

    ``encode`` is ``SerializeToString()``; ``decode`` is ``message_type.FromString``.
    Stateless and thread-safe.

    Args:
        message_type: the generated message class (a ``google.protobuf`` ``Message``
            subclass).

    Raises:
        TypeError: ``message_type`` is not a protobuf message class.
    """

    name = "proto"

    def __init__(self, message_type: type[M]) -> None:
        tp: object = message_type  # callers are not always type-checked
        if not (isinstance(tp, type) and issubclass(tp, _pb_message.Message)):
            raise TypeError(f"{message_type!r} is not a protobuf message class")
        self.message_type = message_type
        # Both runtimes (upb and pure Python) parse any buffer, not only bytes.
        self._from_string = cast("Callable[[BufferLike], M]", message_type.FromString)

    def encode(self, message: M) -> bytes:
        """Serialise ``message``.

        Raises:
            EncodeError: ``message`` is not an instance of ``message_type``, or a
                required (proto2) field is missing.
        """
        if type(message) is not self.message_type and not isinstance(message, self.message_type):
            raise EncodeError(
                f"expected {self.message_type.DESCRIPTOR.full_name}, got {type(message).__name__}"
            )
        try:
            return message.SerializeToString()
        except _pb_message.EncodeError as exc:
            raise EncodeError(f"cannot encode {type(message).__name__}: {exc}") from exc

    def decode(self, data: BufferLike) -> M:
        """Parse ``data`` as one ``message_type``.

        Raises:
            DecodeError: ``data`` is not a valid encoding of ``message_type`` (malformed
                varint or tag, truncated field, invalid UTF-8 in a ``string`` field,
                nesting too deep).
        """
        try:
            return self._from_string(data)
        except _pb_message.DecodeError as exc:
            raise DecodeError(
                f"invalid {self.message_type.DESCRIPTOR.full_name} payload: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"ProtobufCodec({self.message_type.__qualname__})"
