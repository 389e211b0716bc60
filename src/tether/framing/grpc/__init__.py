"""gRPC over HTTP/2 as a sans-I/O :class:`~tether.framing.FrameCodec` (framing ``grpc``).

tether's own HTTP/2 implementation, specialised for gRPC (``h2`` is its reference in the
tests, not its runtime); header blocks are coded with the ``hpack`` package. Modules:

* :mod:`._frames`: HTTP/2 frame layouts, constants, SETTINGS;
* :mod:`._hpack`: header block encoding (stateless blocks, Huffman literals, the model
  of the peer's dynamic table for indexed blocks), decoding with limits;
* :mod:`._mapping`: gRPC conventions (timeouts, status text and mappings, content
  types, metadata, compression);
* :mod:`._streams`: per-stream state, windows, send queue, receive credit;
* :mod:`._heads`: request/response header lists parsed into calls, response blocks;
* :mod:`._core`: connection state shared by both directions, the FrameCodec queries;
* :mod:`._receive` (HTTP/2 frames), :mod:`._messages` (DATA → messages) and
  :mod:`._calls` (header blocks → calls): bytes → events;
* :mod:`._send`: events → bytes; :mod:`._codec`: the codec class.

Nothing here performs I/O, reads a clock or creates tasks. Importing this package is
cheap: the codec (and ``hpack``) load when the first gRPC connection is made, so a
process that never speaks gRPC does not carry them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .._base import CodecConfig, Detection, FrameCodec, Role
from ._frames import PREFACE
from ._options import GrpcOptions as GrpcOptions

if TYPE_CHECKING:
    from ._codec import GrpcCodec as GrpcCodec

__all__ = ["GrpcCodec", "GrpcOptions", "create_grpc_codec", "detect_grpc"]


def detect_grpc(prefix: bytes) -> Detection:
    """Server-side detection: does a connection that starts with ``prefix`` speak HTTP/2?

    Returns:
        MATCH once the 24-byte client preface ``PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n``
        is there; NEED_MORE while ``prefix`` is a shorter prefix of it; NO_MATCH
        otherwise.
    """
    if prefix[: len(PREFACE)] == PREFACE:
        return Detection.MATCH
    if len(prefix) < len(PREFACE) and PREFACE.startswith(prefix):
        return Detection.NEED_MORE
    return Detection.NO_MATCH


def create_grpc_codec(
    role: Role, config: CodecConfig, options: GrpcOptions | None = None
) -> FrameCodec:
    """The :class:`~tether.framing.Framing` factory for the ``grpc`` protocol (its
    ``create`` and, with a server's or client's options, ``create_with_options``)."""
    from ._codec import GrpcCodec

    return GrpcCodec(role, config, options)


_LAZY = {"GrpcCodec": "._codec"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
