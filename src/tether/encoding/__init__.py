"""Payload codecs (message <-> bytes), separate from framing."""

from __future__ import annotations

from ._base import DecodeError as DecodeError
from ._base import EncodeError as EncodeError
from ._base import PayloadCodec as PayloadCodec

__all__ = ["DecodeError", "EncodeError", "PayloadCodec"]
